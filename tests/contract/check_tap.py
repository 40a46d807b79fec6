#!/usr/bin/env python3
"""Fails on any violation of Klaviyo's OpenAPI document that allowlist.tsv does not allow, among
the exchanges prism_tap.py recorded (each with the violations Prism found in that request and its
response), printing each with its request: operationId, method, target and body.
Usage: check_tap.py SPEC ALLOWLIST TAP_RECORD PRISM_LOG EXPECTED_REQUESTS [OPERATION_ID...]
EXPECTED_REQUESTS (the emulator's call count) must equal the exchanges recorded and the requests
Prism logged, and every OPERATION_ID named must have been sent at least once."""
import json
import re
import sys

spec = json.load(open(sys.argv[1]))
ALLOW_REASON = "identical oneOf alternatives in Klaviyo's spec"
record, prism_log, expected, required = sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6:]

ops = []  # (number of parameters, METHOD, path regex, operationId): literal paths match first
for path, item in spec["paths"].items():
    for method, op in item.items():
        if isinstance(op, dict) and "operationId" in op:
            rx = re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)) + "$")
            ops.append((path.count("{"), method.upper(), rx, op["operationId"]))
ops.sort(key=lambda o: o[0])


def operation(method, target):
    path = target.split("?", 1)[0]
    return next((op_id for _, m, rx, op_id in ops if m == method and rx.match(path)), None)


allow = {}
for line in open(sys.argv[2]):
    line = line.rstrip("\n")
    if line and not line.startswith("#"):
        op_id, location, reason = line.split("\t")
        if reason == ALLOW_REASON:
            allow[(op_id, location)] = 0

failures = 0


def fail(msg):
    global failures
    failures += 1
    print(f"contract_plan: FAIL: {msg}")


exchanges = [json.loads(l) for l in open(record, encoding="utf-8") if l.strip()]
per_op = {}
for x in exchanges:
    op_id = operation(x["method"], x["target"])
    per_op[op_id] = per_op.get(op_id, 0) + 1
    if op_id is None:
        fail(f"{x['method']} {x['target']} is no operation of the spec")
    for v in x["violations"]:
        location = ".".join(str(p) for p in v.get("location", []))
        message = v.get("message", "")
        if "oneOf" in message and (op_id, location) in allow:
            allow[(op_id, location)] += 1
            print(f"contract_plan: allowed ({ALLOW_REASON}): {op_id} {location}")
            continue
        fail(f"violation in {op_id}: {location}: {message}\n"
             f"    request: {x['method']} {x['target']} -> {x['status']}\n"
             f"    body: {x['body'] or '(none)'}")

logged = sum(1 for l in open(prism_log, encoding="utf-8", errors="replace")
             if "[HTTP SERVER]" in l and "Request received" in l)
if not expected == len(exchanges) == logged:
    fail(f"the emulator answered {expected} requests, the tap recorded {len(exchanges)}, "
         f"Prism logged {logged}")
for op_id in required:
    if op_id not in per_op:
        fail(f"{op_id} was never sent, so the check did not cover it")
for op_id in sorted(per_op, key=str):
    print(f"contract_plan: {op_id or '?':45} requests={per_op[op_id]}")
print(f"contract_plan: {len(per_op)} operations, {len(exchanges)} requests, {failures} failure"
      f"{'' if failures == 1 else 's'}")
sys.exit(1 if failures else 0)
