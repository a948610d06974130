#!/usr/bin/env python3
"""Create Vigil's DynamoDB tables and SQS queues on a local AWS emulator (LocalStack, moto).

The definitions are read from infra/template.yaml, the same template that is deployed, so there is no other
copy of them: every AWS::DynamoDB::Table and AWS::SQS::Queue resource is created with its keys, indexes, TTL,
visibility timeout, retention and redrive policy. Physical names come from the template (`!Sub
"${NamePrefix}-events"` with the parameter defaults, i.e. the defaults of shared/src/schema.rs); override a
parameter with --param NamePrefix=dev, or with VIGIL_TEMPLATE_PARAMS="NamePrefix=dev ..." (whitespace-separated
NAME=VALUE pairs, read before any --param; this is how a LocalStack init hook, which runs without arguments,
gets them).

Idempotent: existing tables are left as they are (a key mismatch is reported), existing queues get their
attributes updated.

Endpoint: --endpoint, else AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL, else
http://localhost:4566. Credentials default to test/test and the region to us-east-1 when none are set.
Needs boto3 and PyYAML (both ship inside the LocalStack image and with aws-sam-cli).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

DEFAULT_ENDPOINT = "http://localhost:4566"
DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent.parent / "infra" / "template.yaml"

# Template queue properties that are SQS queue attributes of the same name.
QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
)


# ------------------------------------------------------------------------------------------- template


def load_template(path: Path) -> dict:
    import yaml

    class CfnLoader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "Condition":
            return {"Condition": value}
        if suffix == "GetAtt" and isinstance(value, str):
            resource, _, attribute = value.partition(".")
            return {"Fn::GetAtt": [resource, attribute]}
        return {f"Fn::{suffix}": value}

    CfnLoader.add_multi_constructor("!", construct)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


class Resolver:
    """Evaluates the few intrinsics the table and queue definitions use, with parameters at their defaults."""

    def __init__(self, template: dict, overrides: dict[str, str], region: str, account: str):
        self.template = template
        self.params = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
        unknown = set(overrides) - set(self.params)
        if unknown:
            raise SystemExit(f"bootstrap: unknown template parameter(s): {', '.join(sorted(unknown))}")
        self.params.update(overrides)
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "vigil-local",
        }
        # logical id -> {"Ref": ..., "Arn": ..., "QueueName": ...}, filled in as resources are created
        self.created: dict[str, dict[str, str]] = {}
        self.ensure_resource = None  # set by the caller: creates a resource on first reference

    def ref(self, name: str) -> str:
        if name in self.params:
            return self.params[name]
        if name in self.pseudo:
            return self.pseudo[name]
        return self.attribute(name, "Ref")

    def attribute(self, logical: str, attribute: str) -> str:
        if logical not in self.created:
            if logical not in self.template.get("Resources", {}) or self.ensure_resource is None:
                raise SystemExit(f"bootstrap: cannot resolve {logical}.{attribute}")
            self.ensure_resource(logical)
        try:
            return self.created[logical][attribute]
        except KeyError:
            raise SystemExit(f"bootstrap: {logical} has no attribute {attribute} here") from None

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(m: re.Match) -> str:
            name = m.group(1)
            if name in variables:
                return str(self(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return self.attribute(logical, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(logical, attribute)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], arg[1])
                return self.sub(arg, {})
            if key == "Fn::Join":
                return arg[0].join(str(self(v)) for v in arg[1])
            if key.startswith("Fn::"):
                raise SystemExit(f"bootstrap: {key} is not supported in table/queue definitions")
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


# ------------------------------------------------------------------------------------------- AWS side


def endpoint_for(service_env: str, explicit: str | None) -> str:
    url = explicit or os.environ.get(service_env) or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT
    host = urlparse(url).hostname or ""
    if host.endswith("amazonaws.com") or host.endswith("amazonaws.com.cn"):
        raise SystemExit(f"bootstrap: {url} is real AWS; deploy infra/template.yaml with `sam deploy` instead")
    return url


def client(service: str, endpoint: str, region: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
    )


def wait_until(what: str, ready, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - the emulator may still be starting
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise SystemExit(f"bootstrap: timed out waiting for {what}")
        time.sleep(0.5)


class Bootstrap:
    def __init__(self, template: dict, resolver: Resolver, dynamodb, sqs, dry_run: bool):
        self.template = template
        self.r = resolver
        self.dynamodb = dynamodb
        self.sqs = sqs
        self.dry_run = dry_run
        resolver.ensure_resource = self.ensure

    def resources(self, kind: str) -> list[str]:
        return [k for k, v in self.template.get("Resources", {}).items() if v.get("Type") == kind]

    def ensure(self, logical: str) -> None:
        if logical in self.r.created:
            return
        kind = self.template["Resources"][logical]["Type"]
        if kind == "AWS::DynamoDB::Table":
            self.table(logical)
        elif kind == "AWS::SQS::Queue":
            self.queue(logical)
        else:
            raise SystemExit(f"bootstrap: {logical} ({kind}) is not created locally")

    # ---- DynamoDB

    def table(self, logical: str) -> None:
        props = self.r(self.template["Resources"][logical].get("Properties", {}))
        name = props.get("TableName", logical)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(key):
                request[key] = props[key]
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        ttl = props.get("TimeToLiveSpecification")
        self.r.created[logical] = {
            "Ref": name,
            "Arn": f"arn:aws:dynamodb:{self.r.pseudo['AWS::Region']}:{self.r.pseudo['AWS::AccountId']}:table/{name}",
        }
        if self.dry_run:
            print(f"table {name}: {json.dumps(request, sort_keys=True)} ttl={json.dumps(ttl)}")
            return

        ddb = self.dynamodb
        try:
            existing = ddb.describe_table(TableName=name)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            existing = None
        if existing is None:
            try:
                ddb.create_table(**request)
                state = "created"
            except ddb.exceptions.ResourceInUseException:
                state = "exists"  # created concurrently
        else:
            state = "exists"
            if existing["KeySchema"] != request["KeySchema"]:
                print(
                    f"bootstrap: WARNING table {name} exists with key {existing['KeySchema']}, the template says "
                    f"{request['KeySchema']}: delete it to recreate",
                    file=sys.stderr,
                )
        wait_until(f"table {name}", lambda: ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE")
        self.r.created[logical]["Arn"] = ddb.describe_table(TableName=name)["Table"]["TableArn"]

        if ttl and str(ttl.get("Enabled")).lower() == "true":
            current = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or current.get("AttributeName") != ttl["AttributeName"]:
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
        print(f"table {name}: {state}" + (f", ttl {ttl['AttributeName']}" if ttl else ""))

    # ---- SQS

    def queue(self, logical: str) -> None:
        props = self.r(self.template["Resources"][logical].get("Properties", {}))
        name = props.get("QueueName", logical)
        attributes = {k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k]) for k in QUEUE_ATTRIBUTES if k in props}
        if "RedrivePolicy" in props:
            redrive = props["RedrivePolicy"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": redrive["deadLetterTargetArn"], "maxReceiveCount": int(redrive["maxReceiveCount"])}
            )
        region, account = self.r.pseudo["AWS::Region"], self.r.pseudo["AWS::AccountId"]
        if self.dry_run:
            self.r.created[logical] = {
                "Ref": f"{DEFAULT_ENDPOINT}/{account}/{name}",
                "Arn": f"arn:aws:sqs:{region}:{account}:{name}",
                "QueueName": name,
            }
            print(f"queue {name}: {json.dumps(attributes, sort_keys=True)}")
            return

        sqs = self.sqs
        try:
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            state = "ready"
        except sqs.exceptions.QueueNameExists:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            mutable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
            sqs.set_queue_attributes(QueueUrl=url, Attributes=mutable)
            state = "updated"
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.r.created[logical] = {"Ref": url, "Arn": arn, "QueueName": name}
        detail = ", ".join(f"{k}={v}" for k, v in sorted(attributes.items()) if k != "RedrivePolicy")
        if "RedrivePolicy" in attributes:
            redrive = json.loads(attributes["RedrivePolicy"])
            detail += f", dead letters to {redrive['deadLetterTargetArn'].rsplit(':', 1)[-1]} after {redrive['maxReceiveCount']}"
        print(f"queue {name}: {state} ({detail})")

    def run(self) -> None:
        for logical in self.resources("AWS::DynamoDB::Table") + self.resources("AWS::SQS::Queue"):
            self.ensure(logical)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", type=Path, default=Path(os.environ.get("VIGIL_TEMPLATE", DEFAULT_TEMPLATE)))
    ap.add_argument("--endpoint", help="one endpoint for both services (default: from the environment)")
    ap.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    ap.add_argument(
        "--param",
        action="append",
        default=os.environ.get("VIGIL_TEMPLATE_PARAMS", "").split(),
        metavar="NAME=VALUE",
        help="template parameter override (also: $VIGIL_TEMPLATE_PARAMS, whitespace-separated)",
    )
    ap.add_argument("--dry-run", action="store_true", help="print what would be created; contact no endpoint")
    args = ap.parse_args(argv)

    overrides = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--param {item}: expected NAME=VALUE")
        overrides[name] = value

    template = load_template(args.template)
    resolver = Resolver(template, overrides, args.region, "000000000000")
    if args.dry_run:
        Bootstrap(template, resolver, None, None, dry_run=True).run()
        return 0

    ddb_endpoint = endpoint_for("AWS_ENDPOINT_URL_DYNAMODB", args.endpoint)
    sqs_endpoint = endpoint_for("AWS_ENDPOINT_URL_SQS", args.endpoint)
    dynamodb = client("dynamodb", ddb_endpoint, args.region)
    sqs = client("sqs", sqs_endpoint, args.region)
    # The emulator may still be coming up when this runs from the host.
    wait_until(f"DynamoDB at {ddb_endpoint}", lambda: dynamodb.list_tables(Limit=1) is not None, timeout=30)
    wait_until(f"SQS at {sqs_endpoint}", lambda: sqs.list_queues(MaxResults=1) is not None, timeout=30)
    print(f"bootstrap: {args.template.name} -> dynamodb {ddb_endpoint}, sqs {sqs_endpoint} ({args.region})")
    Bootstrap(template, resolver, dynamodb, sqs, dry_run=False).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
