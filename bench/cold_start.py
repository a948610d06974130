#!/usr/bin/env python3
"""Cold start of each Lambda bootstrap against a local Lambda Runtime API.

usage: bench/cold_start.py [TARGET_DIR=target] [RUNS=7]

For every target/lambda/<function>/bootstrap this serves the Runtime API (`/2018-06-01/runtime/...`) on a
loopback port, starts the binary with the environment Lambda gives it, and measures
  ready    process start → its first `GET /invocation/next` (init done: config, SDK clients, rules loaded)
  first    process start → the response to a first invocation has been posted
Queue settings are URLs, so no network call happens at start-up, as in the deployed template. Prints medians.
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENTS = {
    "vigil-ingest": {
        "version": "2.0", "routeKey": "$default", "rawPath": "/healthz", "rawQueryString": "",
        "headers": {"host": "localhost"},
        "requestContext": {"http": {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1", "userAgent": "bench"},
                           "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "", "timeEpoch": 0,
                           "accountId": "1", "apiId": "a", "domainName": "localhost", "domainPrefix": "localhost"},
        "isBase64Encoded": False,
    },
    "vigil-score": {"Records": []},
    "vigil-alert": {"Records": []},
}
EVENTS["vigil-tickets"] = EVENTS["vigil-analytics"] = EVENTS["vigil-ingest"]
DEFAULT_EVENT = {"Records": []}


class Runtime:
    def __init__(self, event):
        self.event = event
        self.t0 = 0.0
        self.ready = None
        self.responded = None
        self.done = threading.Event()
        self.served = False


def make_handler(rt):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path.endswith("/runtime/invocation/next"):
                if rt.served:
                    rt.done.wait(30)  # the second poll just waits; the process gets killed
                    return
                rt.ready = time.monotonic() - rt.t0
                rt.served = True
                body = json.dumps(rt.event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:1:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-0-0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            if "/response" in self.path or "/error" in self.path:
                rt.responded = (time.monotonic() - rt.t0, "/error" not in self.path)
                rt.done.set()
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return H


def run_once(binary, name):
    rt = Runtime(EVENTS.get(name, DEFAULT_EVENT))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rt))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_LAMBDA_LOG_STREAM_NAME": "s", "AWS_LAMBDA_LOG_GROUP_NAME": "g",
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "VIGIL_EVENTS_QUEUE": "http://127.0.0.1:9/000000000000/vigil-events",
        "VIGIL_DETECTIONS_QUEUE": "http://127.0.0.1:9/000000000000/vigil-detections",
        "VIGIL_JWT_SECRET": "cold-start-bench-secret-0123456789abcdef", "RUST_LOG": "error",
    }
    rt.t0 = time.monotonic()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rt.done.wait(30)
    proc.kill()
    _, err = proc.communicate()
    server.shutdown()
    if rt.ready is None or rt.responded is None or not rt.responded[1]:
        raise SystemExit(f"{name}: no successful first invocation; stderr:\n{err.decode(errors='replace')[-2000:]}")
    return rt.ready, rt.responded[0]


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "target"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    root = os.path.join(target, "lambda")
    names = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "bootstrap")))
    print(f"{'function':<18}{'size':>10}{'ready (median)':>18}{'first response':>18}")
    for name in names:
        binary = os.path.join(root, name, "bootstrap")
        results = [run_once(binary, name) for _ in range(runs)]
        ready = statistics.median(r[0] for r in results) * 1000
        first = statistics.median(r[1] for r in results) * 1000
        size = os.path.getsize(binary) / (1024 * 1024)
        print(f"{name:<18}{size:>8.1f}MB{ready:>15.1f} ms{first:>15.1f} ms")


if __name__ == "__main__":
    main()
