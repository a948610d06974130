//! `infra/template.yaml` against the code: what cfn-lint and `sam validate` cannot know.
//!
//! - drift: the tables and queues are exactly `vigil::schema`'s (keys, indexes, TTL, redrive, timeouts, names);
//! - wiring: each SQS consumer reads the right queue and reports partial batch failures;
//! - timing: a queue hides a message for at least 6 x its consumer's timeout (+ the batching window);
//! - configuration: each function gets the table/queue env vars it needs, each pointing at the right resource;
//! - permissions: each role reaches exactly its function's resources, never `*`;
//! - routes: each HTTP function serves exactly its routes, and no route is served twice.
//!
//! The template may use short tags (`!Ref X`) or long form (`Ref: X`); both are normalised to long form here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use vigil::schema::{
    QueueSpec, TableSpec, ALERTS_TABLE, DEAD_LETTER_RETENTION_SECONDS, DETECTIONS_QUEUE, EVENTS_QUEUE, EVENTS_TABLE,
    QUEUES, STATE_TABLE, TABLES, TICKETS_TABLE,
};

/// What each function binary needs; tables/queues here must reach it through env vars and its role.
struct FunctionNeeds {
    binary: &'static str,
    /// The queue it consumes through an SQS event source, if any.
    consumes: Option<QueueSpec>,
    /// Queues it sends to.
    sends: &'static [QueueSpec],
    /// Tables it reads and writes.
    tables: &'static [TableSpec],
    /// Tables it only reads (`GetItem`, `Query`).
    reads: &'static [TableSpec],
    /// Whether it lists tickets through the tickets table's global secondary indexes (`Query` on each).
    lists_tickets: bool,
    /// Queues (logical ids, dead-letter queues included) whose depth it reads with `sqs:GetQueueAttributes`.
    inspects: &'static [&'static str],
    /// Queues whose URL it looks up with `sqs:GetQueueUrl` (the AWS backend finds dead-letter queues so).
    looks_up: &'static [&'static str],
    /// Other env vars it must be given.
    env: &'static [&'static str],
    /// Whether it checks JWTs (then it needs a verification key).
    authenticates: bool,
    /// HTTP routes it serves on the HttpApi.
    routes: &'static [(&'static str, &'static str)],
}

const NEEDS_NOTHING: FunctionNeeds = FunctionNeeds {
    binary: "",
    consumes: None,
    sends: &[],
    tables: &[],
    reads: &[],
    lists_tickets: false,
    inspects: &[],
    looks_up: &[],
    env: &[],
    authenticates: false,
    routes: &[],
};

const FUNCTIONS: &[FunctionNeeds] = &[
    FunctionNeeds {
        binary: "vigil-ingest",
        sends: &[EVENTS_QUEUE],
        authenticates: true,
        routes: &[
            ("POST", "/v1/events"),
            ("POST", "/v1/syslog"),
            ("POST", "/services/collector/event"),
            ("POST", "/services/collector/raw"),
            ("POST", "/services/collector/ack"),
            ("GET", "/services/collector/health"),
            ("GET", "/healthz"),
        ],
        ..NEEDS_NOTHING
    },
    FunctionNeeds {
        binary: "vigil-score",
        consumes: Some(EVENTS_QUEUE),
        sends: &[DETECTIONS_QUEUE],
        tables: &[EVENTS_TABLE, STATE_TABLE],
        env: &["VIGIL_EVENT_RETENTION_DAYS"],
        ..NEEDS_NOTHING
    },
    FunctionNeeds {
        binary: "vigil-alert",
        consumes: Some(DETECTIONS_QUEUE),
        tables: &[STATE_TABLE, ALERTS_TABLE, TICKETS_TABLE],
        env: &["VIGIL_WEBHOOKS"],
        ..NEEDS_NOTHING
    },
    FunctionNeeds {
        binary: "vigil-tickets",
        // Ticket actions update the ticket and its aggregates (state table) in one transaction.
        tables: &[TICKETS_TABLE, STATE_TABLE],
        reads: &[ALERTS_TABLE, EVENTS_TABLE],
        lists_tickets: true,
        authenticates: true,
        routes: &[
            ("GET", "/v1/events/{id}"),
            ("GET", "/v1/alerts"),
            ("GET", "/v1/alerts/{id}"),
            ("GET", "/v1/tickets"),
            ("GET", "/v1/tickets/{id}"),
            ("POST", "/v1/tickets/{id}/{action}"),
        ],
        ..NEEDS_NOTHING
    },
    FunctionNeeds {
        binary: "vigil-analytics",
        reads: &[TICKETS_TABLE, ALERTS_TABLE, STATE_TABLE],
        lists_tickets: true,
        inspects: &["EventsQueue", "EventsDeadLetterQueue", "DetectionsQueue", "DetectionsDeadLetterQueue"],
        looks_up: &["EventsDeadLetterQueue", "DetectionsDeadLetterQueue"],
        authenticates: true,
        routes: &[("GET", "/v1/analytics/{report}"), ("GET", "/metrics")],
        ..NEEDS_NOTHING
    },
];

// ------------------------------------------------------------------------------------------------ loading

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// YAML (with CloudFormation short tags) to JSON in long form.
fn normalise(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(normalise).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml::to_string(&other).expect("key").trim().to_string(),
                    };
                    (key, normalise(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = normalise(t.value);
            match name {
                "Ref" => json!({ "Ref": inner }),
                "Condition" => json!({ "Condition": inner }),
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (res, attr) = s.split_once('.').unwrap_or_else(|| panic!("!GetAtt {s}: no attribute"));
                        json!({ "Fn::GetAtt": [res, attr] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): inner }),
            }
        }
    }
}

struct Template {
    doc: Value,
}

impl Template {
    fn load() -> Template {
        let path = repo_root().join("infra/template.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Template::parse(&text)
    }

    fn parse(text: &str) -> Template {
        let yaml: serde_yaml::Value = serde_yaml::from_str(text).expect("template.yaml is valid YAML");
        Template { doc: normalise(yaml) }
    }

    fn resources(&self) -> &Map<String, Value> {
        self.doc["Resources"].as_object().expect("Resources")
    }

    fn resource(&self, id: &str) -> &Value {
        self.resources().get(id).unwrap_or_else(|| panic!("no resource {id}"))
    }

    fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources().iter().filter(move |(_, r)| r["Type"] == ty)
    }

    fn parameter(&self, name: &str) -> &Value {
        self.doc["Parameters"].get(name).unwrap_or_else(|| panic!("no parameter {name}"))
    }

    /// A string property's value with the parameters at their defaults (`Fn::Sub` of parameters only).
    fn resolve_string(&self, v: &Value) -> String {
        if let Some(s) = v.as_str() {
            return s.to_string();
        }
        let template = v["Fn::Sub"].as_str().unwrap_or_else(|| panic!("expected a string or a simple Fn::Sub: {v}"));
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closing brace") + start;
            let name = &rest[start + 2..end];
            let default = &self.parameter(name)["Default"];
            out.push_str(&default.as_str().map(str::to_string).unwrap_or_else(|| default.to_string()));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn global_function(&self) -> &Value {
        &self.doc["Globals"]["Function"]
    }

    /// A function property, falling back to Globals.Function.
    fn function_property<'a>(&'a self, f: &'a Value, name: &str) -> &'a Value {
        let own = &f["Properties"][name];
        if own.is_null() {
            &self.global_function()[name]
        } else {
            own
        }
    }

    /// Globals' environment merged with the function's (the function wins), as SAM does.
    fn function_env(&self, f: &Value) -> Map<String, Value> {
        let mut env = self.global_function()["Environment"]["Variables"].as_object().cloned().unwrap_or_default();
        if let Some(own) = f["Properties"]["Environment"]["Variables"].as_object() {
            env.extend(own.clone());
        }
        env
    }

    fn functions(&self) -> BTreeMap<String, &Value> {
        self.of_type("AWS::Serverless::Function").map(|(id, f)| (id.clone(), f)).collect()
    }

    /// The logical id of the function built from `binary`.
    fn function_for(&self, binary: &str) -> (String, &Value) {
        let found: Vec<_> = self
            .functions()
            .into_iter()
            .filter(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"] == binary)
            .collect();
        assert_eq!(found.len(), 1, "exactly one function must build {binary}, found {}", found.len());
        found.into_iter().next().unwrap()
    }

    /// A number written literally or as a Ref to a parameter: (value with the default, largest allowed value).
    fn number(&self, v: &Value) -> (u64, u64) {
        if let Some(p) = v["Ref"].as_str() {
            let param = self.parameter(p);
            let default = as_u64(&param["Default"]).unwrap_or_else(|| panic!("parameter {p} has no numeric default"));
            let max = as_u64(&param["MaxValue"]).unwrap_or_else(|| panic!("parameter {p} needs a MaxValue"));
            (default, max)
        } else {
            let n = as_u64(v).unwrap_or_else(|| panic!("expected a number: {v}"));
            (n, n)
        }
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// `Fn::GetAtt [X, Arn]` -> X.
fn getatt_arn(v: &Value) -> Option<&str> {
    let parts = v["Fn::GetAtt"].as_array()?;
    (parts.len() == 2 && parts[1] == "Arn").then(|| parts[0].as_str()).flatten()
}

/// Logical ids a policy Resource (or a list of them) names through Ref / GetAtt / Sub.
fn referenced_ids(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| referenced_ids(i, out)),
        Value::Object(m) => {
            if let Some(r) = m.get("Ref").and_then(Value::as_str) {
                out.insert(r.to_string());
            } else if let Some(parts) = m.get("Fn::GetAtt").and_then(Value::as_array) {
                out.insert(parts[0].as_str().expect("GetAtt resource").to_string());
            } else if let Some(s) = m.get("Fn::Sub") {
                let text = s.as_str().or_else(|| s[0].as_str()).unwrap_or_default();
                for piece in text.split("${").skip(1) {
                    let name = piece.split(['}', '.']).next().unwrap_or_default();
                    if !name.starts_with("AWS::") {
                        out.insert(name.to_string());
                    }
                }
            } else {
                m.values().for_each(|i| referenced_ids(i, out));
            }
        }
        _ => {}
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

// ------------------------------------------------------------------------------------------------ (a) drift

fn key_schema(spec_key: &vigil::schema::KeySpec) -> Value {
    let mut k = vec![json!({ "AttributeName": spec_key.hash, "KeyType": "HASH" })];
    if let Some(r) = spec_key.range {
        k.push(json!({ "AttributeName": r, "KeyType": "RANGE" }));
    }
    Value::Array(k)
}

#[test]
fn tables_match_the_schema_exactly() {
    let t = Template::load();
    let declared: BTreeSet<&str> = t.of_type("AWS::DynamoDB::Table").map(|(id, _)| id.as_str()).collect();
    let expected: BTreeSet<&str> = TABLES.iter().map(|s| s.logical).collect();
    assert_eq!(declared, expected, "the template's tables must be exactly schema::TABLES");

    for spec in TABLES {
        let p = &t.resource(spec.logical)["Properties"];
        let who = spec.logical;
        assert_eq!(t.resolve_string(&p["TableName"]), spec.default_name, "{who}: TableName with default NamePrefix");
        assert_eq!(p["KeySchema"], key_schema(&spec.key), "{who}: KeySchema");

        let mut key_attrs: BTreeSet<&str> = [spec.key.hash].into_iter().chain(spec.key.range).collect();
        let mut expected_gsis = BTreeMap::new();
        for ix in spec.indexes {
            key_attrs.extend([ix.key.hash].into_iter().chain(ix.key.range));
            expected_gsis.insert(ix.name.to_string(), key_schema(&ix.key));
        }
        let defs = p["AttributeDefinitions"].as_array().unwrap_or_else(|| panic!("{who}: AttributeDefinitions"));
        let defined: BTreeSet<&str> = defs.iter().map(|d| d["AttributeName"].as_str().expect("name")).collect();
        assert_eq!(defined, key_attrs, "{who}: AttributeDefinitions must be exactly the key attributes");
        assert_eq!(defined.len(), defs.len(), "{who}: an attribute is defined twice");
        for d in defs {
            assert_eq!(d["AttributeType"], "S", "{who}: {} must be a string (S)", d["AttributeName"]);
        }

        let gsis: BTreeMap<String, Value> = p["GlobalSecondaryIndexes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|g| (g["IndexName"].as_str().expect("IndexName").to_string(), g["KeySchema"].clone()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(gsis, expected_gsis, "{who}: global secondary indexes");
        assert!(p["LocalSecondaryIndexes"].is_null(), "{who}: schema.rs has no local secondary indexes");

        match spec.ttl {
            Some(attr) => assert_eq!(
                p["TimeToLiveSpecification"],
                json!({ "AttributeName": attr, "Enabled": true }),
                "{who}: TTL on {attr}"
            ),
            None => assert!(p["TimeToLiveSpecification"].is_null(), "{who}: schema.rs has no TTL for this table"),
        }
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{who}: on-demand billing");
        assert_eq!(p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true, "{who}: PITR");
        assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{who}: SSE");
    }
}

#[test]
fn queues_match_the_schema_exactly() {
    let t = Template::load();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for spec in QUEUES {
        let who = spec.logical;
        let p = &t.resource(spec.logical)["Properties"];
        assert_eq!(t.resource(spec.logical)["Type"], "AWS::SQS::Queue", "{who}: type");
        assert_eq!(t.resolve_string(&p["QueueName"]), spec.default_name, "{who}: QueueName with default NamePrefix");
        assert_eq!(
            as_u64(&p["VisibilityTimeout"]),
            Some(spec.visibility_timeout_seconds.into()),
            "{who}: VisibilityTimeout"
        );
        assert_eq!(
            as_u64(&p["MessageRetentionPeriod"]),
            Some(spec.retention_seconds.into()),
            "{who}: MessageRetentionPeriod"
        );
        let redrive = &p["RedrivePolicy"];
        assert_eq!(as_u64(&redrive["maxReceiveCount"]), Some(spec.max_receive_count.into()), "{who}: maxReceiveCount");
        let dlq = getatt_arn(&redrive["deadLetterTargetArn"])
            .unwrap_or_else(|| panic!("{who}: deadLetterTargetArn must be !GetAtt <queue>.Arn"));
        let d = t.resource(dlq);
        assert_eq!(d["Type"], "AWS::SQS::Queue", "{who}: dead-letter target {dlq} is a queue");
        let dp = &d["Properties"];
        assert_eq!(t.resolve_string(&dp["QueueName"]), spec.dead_letter_name, "{dlq}: QueueName");
        assert_eq!(
            as_u64(&dp["MessageRetentionPeriod"]),
            Some(DEAD_LETTER_RETENTION_SECONDS.into()),
            "{dlq}: retention"
        );
        assert!(dp["RedrivePolicy"].is_null(), "{dlq}: a dead-letter queue has no redrive of its own");
        expected.insert(spec.logical.to_string());
        assert!(expected.insert(dlq.to_string()), "{dlq} is the dead-letter queue of two queues");

        // Somebody hears about it when a message lands there.
        let alarms: Vec<_> = t
            .of_type("AWS::CloudWatch::Alarm")
            .filter(|(_, a)| {
                let ap = &a["Properties"];
                ap["MetricName"] == "ApproximateNumberOfMessagesVisible"
                    && ap["Dimensions"].as_array().is_some_and(|ds| {
                        ds.iter().any(|d| {
                            d["Name"] == "QueueName" && d["Value"] == json!({ "Fn::GetAtt": [dlq, "QueueName"] })
                        })
                    })
            })
            .collect();
        assert_eq!(alarms.len(), 1, "{dlq}: one alarm on ApproximateNumberOfMessagesVisible");
        let ap = &alarms[0].1["Properties"];
        assert_eq!(ap["ComparisonOperator"], "GreaterThanThreshold", "{dlq} alarm");
        assert_eq!(as_u64(&ap["Threshold"]), Some(0), "{dlq} alarm threshold");
    }
    let declared: BTreeSet<String> = t.of_type("AWS::SQS::Queue").map(|(id, _)| id.clone()).collect();
    assert_eq!(declared, expected, "the template's queues must be exactly schema::QUEUES and their dead-letter queues");
}

// ------------------------------------------------------------------------------------------------ (b)/(c) wiring

#[test]
fn each_queue_has_its_consumer_with_partial_batch_failures() {
    let t = Template::load();
    assert_eq!(
        t.of_type("AWS::Lambda::EventSourceMapping").count(),
        0,
        "declare event sources on the functions (Events: Type: SQS)"
    );

    let mut consumers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, f) in t.functions() {
        let events = f["Properties"]["Events"].as_object().cloned().unwrap_or_default();
        for (name, ev) in events.iter().filter(|(_, e)| e["Type"] == "SQS") {
            let p = &ev["Properties"];
            let queue =
                getatt_arn(&p["Queue"]).unwrap_or_else(|| panic!("{id}.{name}: Queue must be !GetAtt <queue>.Arn"));
            assert_eq!(
                p["FunctionResponseTypes"],
                json!(["ReportBatchItemFailures"]),
                "{id}.{name}: FunctionResponseTypes must be exactly [ReportBatchItemFailures]"
            );
            for knob in ["BatchSize", "MaximumBatchingWindowInSeconds"] {
                let param = p[knob]["Ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id}.{name}: {knob} must be a template parameter"));
                t.parameter(param);
            }
            consumers.entry(queue.to_string()).or_default().push(id.clone());
        }
    }

    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for need in FUNCTIONS {
        if let Some(q) = need.consumes {
            let (id, _) = t.function_for(need.binary);
            expected.entry(q.logical.to_string()).or_default().push(id);
        }
    }
    assert_eq!(consumers, expected, "queue -> consuming functions");
    for spec in QUEUES {
        assert!(consumers.contains_key(spec.logical), "{} has no consumer", spec.logical);
    }
}

#[test]
fn visibility_timeout_covers_six_times_the_consumer_timeout() {
    let t = Template::load();
    for need in FUNCTIONS {
        let Some(queue) = need.consumes else { continue };
        let (id, f) = t.function_for(need.binary);
        let (timeout, _) = t.number(t.function_property(f, "Timeout"));
        let event = f["Properties"]["Events"]
            .as_object()
            .and_then(|evs| evs.values().find(|e| getatt_arn(&e["Properties"]["Queue"]) == Some(queue.logical)))
            .expect("event source");
        let window = &event["Properties"]["MaximumBatchingWindowInSeconds"];
        let (_, max_window) = if window.is_null() { (0, 0) } else { t.number(window) };
        let visibility =
            as_u64(&t.resource(queue.logical)["Properties"]["VisibilityTimeout"]).expect("VisibilityTimeout");
        assert!(
            visibility >= 6 * timeout,
            "{}: VisibilityTimeout {visibility}s < 6 x {id} Timeout {timeout}s",
            queue.logical
        );
        assert!(
            visibility >= 6 * timeout + max_window,
            "{}: VisibilityTimeout {visibility}s < 6 x {timeout}s + batching window up to {max_window}s",
            queue.logical
        );
    }
}

// ------------------------------------------------------------------------------------------------ (d) environment

#[test]
fn functions_get_the_env_vars_they_need() {
    let t = Template::load();
    for need in FUNCTIONS {
        let (id, f) = t.function_for(need.binary);
        let env = t.function_env(f);
        let required_refs = need
            .tables
            .iter()
            .chain(need.reads)
            .map(|s| (s.env, s.logical))
            .chain(need.sends.iter().map(|q| (q.env, q.logical)));
        for (var, logical) in required_refs {
            assert_eq!(env.get(var), Some(&json!({ "Ref": logical })), "{id}: {var} must be !Ref {logical}");
        }
        // AwsBackend::connect resolves BOTH queues at start-up: a URL costs nothing, a bare name would need
        // sqs:GetQueueUrl, which the roles do not grant. So every function gets every queue's URL.
        for q in QUEUES {
            assert_eq!(
                env.get(q.env),
                Some(&json!({ "Ref": q.logical })),
                "{id}: {} must be !Ref {}",
                q.env,
                q.logical
            );
        }
        for var in need.env {
            assert!(env.contains_key(*var), "{id}: {var} missing");
        }
        // Whatever table/queue variable a function does get must name the right resource.
        for (var, logical) in TABLES.iter().map(|s| (s.env, s.logical)).chain(QUEUES.iter().map(|q| (q.env, q.logical)))
        {
            if let Some(v) = env.get(var) {
                assert_eq!(v, &json!({ "Ref": logical }), "{id}: {var} must be !Ref {logical}");
            }
        }
    }

    // Functions that check tokens need a key, and never from a plain parameter default.
    for need in FUNCTIONS.iter().filter(|n| n.authenticates) {
        let (id, f) = t.function_for(need.binary);
        let env = t.function_env(f);
        assert!(
            env.contains_key("VIGIL_JWT_PUBLIC_KEY") || env.contains_key("VIGIL_JWT_SECRET"),
            "{id}: needs VIGIL_JWT_PUBLIC_KEY or VIGIL_JWT_SECRET"
        );
    }
    for (name, p) in t.doc["Parameters"].as_object().expect("Parameters") {
        let default = p["Default"].as_str().unwrap_or_default();
        assert!(!default.contains("BEGIN"), "parameter {name}: no key material as a default");
        if name.to_ascii_lowercase().contains("jwtpublickey") {
            assert_eq!(p["Type"], "AWS::SSM::Parameter::Value<String>", "{name}: the public key comes from SSM");
        }
    }
}

// ------------------------------------------------------------------------------------------------ (e) permissions

#[test]
fn each_role_reaches_exactly_its_functions_resources() {
    let t = Template::load();
    let table_ids: BTreeSet<&str> = TABLES.iter().map(|s| s.logical).collect();
    let queue_ids: BTreeSet<String> = t.of_type("AWS::SQS::Queue").map(|(id, _)| id.clone()).collect();

    for need in FUNCTIONS {
        let (id, f) = t.function_for(need.binary);
        assert!(
            f["Properties"]["Policies"].is_null(),
            "{id}: use an explicit Role (SAM Policies add `*` managed policies for SQS)"
        );
        let role_id = getatt_arn(t.function_property(f, "Role"))
            .unwrap_or_else(|| panic!("{id}: Role must be !GetAtt <role>.Arn"));
        let role = t.resource(role_id);
        assert_eq!(role["Type"], "AWS::IAM::Role", "{id}: role type");
        assert!(role["Properties"]["ManagedPolicyArns"].is_null(), "{role_id}: no managed policies");

        // action -> logical ids it is allowed on
        let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // action -> `Fn::Sub` resource strings (index ARNs)
        let mut sub_grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for policy in role["Properties"]["Policies"].as_array().unwrap_or_else(|| panic!("{role_id}: inline Policies"))
        {
            for st in policy["PolicyDocument"]["Statement"].as_array().expect("Statement") {
                assert_eq!(st["Effect"], "Allow", "{role_id}: only Allow statements");
                assert!(!strings(&st["Resource"]).iter().any(|r| r.contains('*')), "{role_id}: no wildcard Resource");
                let mut ids = BTreeSet::new();
                referenced_ids(&st["Resource"], &mut ids);
                assert!(!ids.is_empty(), "{role_id}: every statement names template resources");
                let subs: Vec<String> = match &st["Resource"] {
                    Value::Array(items) => {
                        items.iter().filter_map(|i| i["Fn::Sub"].as_str().map(str::to_string)).collect()
                    }
                    other => other["Fn::Sub"].as_str().map(str::to_string).into_iter().collect(),
                };
                for action in strings(&st["Action"]) {
                    assert!(!action.contains('*'), "{role_id}: no wildcard action ({action})");
                    grants.entry(action.clone()).or_default().extend(ids.iter().cloned());
                    sub_grants.entry(action).or_default().extend(subs.iter().cloned());
                }
            }
        }
        let on = |action: &str| grants.get(action).cloned().unwrap_or_default();
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

        let sends: Vec<&str> = need.sends.iter().map(|q| q.logical).collect();
        assert_eq!(on("sqs:SendMessage"), set(&sends), "{id}: may send exactly to {sends:?}");
        let consumes: Vec<&str> = need.consumes.iter().map(|q| q.logical).collect();
        for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage"] {
            assert_eq!(on(action), set(&consumes), "{id}: {action} exactly on {consumes:?}");
        }
        let inspects: Vec<&str> = consumes.iter().copied().chain(need.inspects.iter().copied()).collect();
        assert_eq!(
            on("sqs:GetQueueAttributes"),
            set(&inspects),
            "{id}: sqs:GetQueueAttributes exactly on {inspects:?}"
        );
        assert_eq!(on("sqs:GetQueueUrl"), set(need.looks_up), "{id}: sqs:GetQueueUrl exactly on {:?}", need.looks_up);
        let tables: Vec<&str> = need.tables.iter().map(|s| s.logical).collect();
        for action in ["dynamodb:PutItem", "dynamodb:UpdateItem"] {
            assert_eq!(on(action), set(&tables), "{id}: {action} exactly on {tables:?}");
        }
        let readable: Vec<&str> = tables.iter().copied().chain(need.reads.iter().map(|s| s.logical)).collect();
        assert_eq!(on("dynamodb:GetItem"), set(&readable), "{id}: dynamodb:GetItem exactly on {readable:?}");
        // Index ARNs: exactly the tickets table's indexes, and only for Query.
        let index_arns: BTreeSet<String> = if need.lists_tickets {
            TICKETS_TABLE
                .indexes
                .iter()
                .map(|ix| format!("${{{}.Arn}}/index/{}", TICKETS_TABLE.logical, ix.name))
                .collect()
        } else {
            BTreeSet::new()
        };
        for (action, subs) in &sub_grants {
            let want = if action == "dynamodb:Query" { index_arns.clone() } else { BTreeSet::new() };
            assert_eq!(subs, &want, "{id}: {action} on index ARNs");
        }
        if need.lists_tickets {
            assert!(sub_grants.contains_key("dynamodb:Query"), "{id}: dynamodb:Query on the tickets indexes");
        }

        // Nothing else: every granted resource is one of its tables or queues, or its own log group.
        let log_group = f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup must be !Ref <its log group>"));
        let lg = t.resource(log_group);
        assert_eq!(lg["Type"], "AWS::Logs::LogGroup", "{id}: log group type");
        assert_eq!(lg["Properties"]["RetentionInDays"], json!({ "Ref": "LogRetentionDays" }), "{log_group}: retention");
        let allowed: BTreeSet<String> = sends
            .iter()
            .chain(&inspects)
            .chain(need.looks_up)
            .chain(&readable)
            .map(|s| s.to_string())
            .chain([log_group.to_string()])
            .collect();
        for (action, ids) in &grants {
            for r in ids {
                assert!(allowed.contains(r), "{id}: {action} on {r} is not needed");
                if action.starts_with("dynamodb:") {
                    assert!(table_ids.contains(r.as_str()), "{id}: {action} on non-table {r}");
                }
                if action.starts_with("sqs:") {
                    assert!(queue_ids.contains(r), "{id}: {action} on non-queue {r}");
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------ the rest

#[test]
fn functions_build_from_the_workspace_binaries_and_serve_their_routes() {
    let t = Template::load();
    let g = t.global_function();
    assert_eq!(g["Runtime"], "provided.al2023");
    assert_eq!(g["Handler"], "bootstrap");
    assert_eq!(g["Architectures"], json!([{ "Ref": "Architecture" }]));
    let arch = t.parameter("Architecture");
    assert_eq!(arch["Default"], "arm64");
    assert_eq!(arch["AllowedValues"], json!(["arm64", "x86_64"]));

    let mut bins = BTreeSet::new();
    for dir in std::fs::read_dir(repo_root().join("functions")).expect("functions/") {
        let manifest = dir.expect("entry").path().join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            for line in text.lines().map(str::trim) {
                if let Some(name) = line.strip_prefix("name = \"").and_then(|s| s.strip_suffix('"')) {
                    bins.insert(name.to_string());
                }
            }
        }
    }
    for (id, f) in t.functions() {
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{id}: BuildMethod");
        let bin = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{id}: Binary"));
        assert!(bins.contains(bin), "{id}: no binary {bin} in functions/*/Cargo.toml");
        assert!(
            FUNCTIONS.iter().any(|n| n.binary == bin),
            "{id}: add {bin} to FUNCTIONS in this test, with the queues and tables it needs"
        );
        let code = t.function_property(f, "CodeUri").as_str().expect("CodeUri");
        assert!(
            repo_root().join("infra").join(code).join("Cargo.toml").is_file(),
            "{id}: CodeUri {code} is the workspace root"
        );
    }
    for need in FUNCTIONS {
        t.function_for(need.binary);
    }

    let api_id = t.of_type("AWS::Serverless::HttpApi").map(|(id, _)| id.clone()).next().expect("an HttpApi");
    let mut served: BTreeMap<(String, String), String> = BTreeMap::new();
    for need in FUNCTIONS {
        let (id, f) = t.function_for(need.binary);
        let mut routes = BTreeSet::new();
        let events = f["Properties"]["Events"].as_object().cloned().unwrap_or_default();
        for ev in events.values().filter(|ev| ev["Type"] == "HttpApi") {
            let p = &ev["Properties"];
            assert_eq!(p["ApiId"], json!({ "Ref": api_id }), "{id}: routes on {api_id}");
            assert!(p["Auth"].is_null(), "{id}: the function checks the JWT itself");
            let route =
                (p["Method"].as_str().expect("Method").to_string(), p["Path"].as_str().expect("Path").to_string());
            if let Some(other) = served.insert(route.clone(), id.clone()) {
                panic!("{route:?} is served by both {other} and {id}");
            }
            routes.insert(route);
        }
        let expected: BTreeSet<_> = need.routes.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        assert_eq!(routes, expected, "{id}: routes");
    }

    for out in ["ApiUrl", "MetricsUrl"] {
        assert!(!t.doc["Outputs"][out]["Value"].is_null(), "output {out}");
    }
    let metrics = t.doc["Outputs"]["MetricsUrl"]["Value"]["Fn::Sub"].as_str().expect("MetricsUrl is a Fn::Sub");
    let api = t.doc["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"].as_str().expect("ApiUrl is a Fn::Sub");
    assert_eq!(metrics, format!("{api}/metrics"), "MetricsUrl = ApiUrl + /metrics");
}

#[test]
fn short_tags_become_long_form() {
    let t = Template::parse(
        "A: !Ref X\nB: !GetAtt Q.Arn\nC: !Sub '${P}-x'\nD: !If [C1, !Ref Y, !Ref AWS::NoValue]\nE: {'Fn::GetAtt': [Q, Arn]}\n",
    );
    assert_eq!(t.doc["A"], json!({ "Ref": "X" }));
    assert_eq!(t.doc["B"], json!({ "Fn::GetAtt": ["Q", "Arn"] }));
    assert_eq!(t.doc["B"], t.doc["E"]);
    assert_eq!(t.doc["C"], json!({ "Fn::Sub": "${P}-x" }));
    assert_eq!(t.doc["D"], json!({ "Fn::If": ["C1", { "Ref": "Y" }, { "Ref": "AWS::NoValue" }] }));
}
