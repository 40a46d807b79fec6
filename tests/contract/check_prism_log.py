#!/usr/bin/env python3
"""Reads Prism's proxy log and fails on any violation of Klaviyo's OpenAPI document that
allowlist.tsv does not allow, printing each with its request (method, path and query, and the
operationId the spec gives it). The plan engine has several requests in flight, so Prism's log
interleaves them: a request's own violations follow its "Request received" line at once (Prism
checks a request before it forwards it), and its response's violations follow the line "The
upstream call to PATH has returned N", which names the path; the oldest outstanding request to
that path is the one answered. Usage: check_prism_log.py SPEC ALLOWLIST PRISM_LOG [EXPECTED_REQUESTS]
EXPECTED_REQUESTS (the emulator's call count) must equal the requests Prism logged."""
import json
import re
import sys
import time

spec = json.load(open(sys.argv[1]))
ALLOW_REASON = "identical oneOf alternatives in Klaviyo's spec"

ops = []  # (method, compiled path regex, operationId), literal paths first
for path, item in spec["paths"].items():
    for method, op in item.items():
        if isinstance(op, dict) and "operationId" in op:
            rx = re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)) + "$")
            ops.append((path.count("{"), method.upper(), rx, op["operationId"]))
ops.sort(key=lambda o: o[0])


def operation(method, path):
    path = path.split("?", 1)[0]
    for _, m, rx, op_id in ops:
        if m == method and rx.match(path):
            return op_id
    return None


allow = {}
for line in open(sys.argv[2]):
    line = line.rstrip("\n")
    if line and not line.startswith("#"):
        op_id, location, reason = line.split("\t")
        if reason == ALLOW_REASON:
            allow[(op_id, location)] = 0

log_path = sys.argv[3]
expected = int(sys.argv[4]) if len(sys.argv) > 4 else None
req_rx = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) .*Request received")
up_rx = re.compile(r"\[PROXY\] .*The upstream call to (\S+) has returned")


def read_lines():
    return open(log_path, encoding="utf-8", errors="replace").read().splitlines()


lines = read_lines()
# Prism logs a request before it answers; wait for the last ones to reach the file.
for _ in range(50):
    if expected is None or sum(1 for l in lines if req_rx.search(l)) >= expected:
        break
    time.sleep(0.1)
    lines = read_lines()

requests = 0
failures = 0
cur = None       # the request whose request-side violations may follow
answered = None  # the request whose response-side violations may follow
outstanding = []
per_op = {}
for line in lines:
    m = up_rx.search(line)
    if m:
        path = m.group(1).split("?", 1)[0]
        answered = next((r for r in outstanding if r[1].split("?", 1)[0] == path), None)
        if answered is None:
            failures += 1
            print(f"contract_plan: FAIL: an answer to {path}, which no outstanding request asked")
        else:
            outstanding.remove(answered)
        continue
    m = req_rx.search(line)
    if m:
        method, target = m.group(1).upper(), m.group(2)
        cur = (method, target, operation(method, target))
        outstanding.append(cur)
        requests += 1
        per_op[cur[2]] = per_op.get(cur[2], 0) + 1
        if cur[2] is None:
            failures += 1
            print(f"contract_plan: FAIL: Prism saw {method} {target}, which is no operation of the spec")
        continue
    if "[HTTP SERVER]" in line and "Request terminated with error" in line:
        failures += 1
        print(f"contract_plan: FAIL: Prism could not complete a request: {line}")
        continue
    i = line.find("Violation: ")
    if i < 0:
        continue
    v = line[i + len("Violation: "):]
    location, _, message = v.partition(" ")
    req = answered if location.startswith("response") else cur
    if req is None:
        failures += 1
        print(f"contract_plan: FAIL: a violation before any request: {v}")
        continue
    method, target, op_id = req
    key = (op_id, location)
    if "oneOf" in message and key in allow:
        allow[key] += 1
        print(f"contract_plan: allowed ({ALLOW_REASON}): {op_id} {location}")
        continue
    failures += 1
    print(f"contract_plan: FAIL: violation in {op_id} ({method} {target}): {location} {message}")

if expected is not None and requests != expected:
    failures += 1
    print(f"contract_plan: FAIL: the emulator answered {expected} requests but Prism logged {requests}")
for op_id in sorted(per_op, key=str):
    print(f"contract_plan: {op_id or '?':45} requests={per_op[op_id]}")
print(f"contract_plan: {len(per_op)} operations, {requests} requests, {failures} failure"
      f"{'' if failures == 1 else 's'}")
sys.exit(1 if failures else 0)
