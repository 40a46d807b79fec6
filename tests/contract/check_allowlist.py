#!/usr/bin/env python3
"""Proves each allowlist entry's claim from Klaviyo's OpenAPI document: the location it names
holds a oneOf whose alternatives cannot be told apart (identical, or all-optional open object
schemas, which every object satisfies at once). Usage: check_allowlist.py SPEC ALLOWLIST"""
import json
import sys

spec = json.load(open(sys.argv[1]))


def res(s):
    while isinstance(s, dict) and "$ref" in s:
        node = spec
        for k in s["$ref"][2:].split("/"):
            node = node[k]
        s = node
    return s


def step(s, key):
    s = res(s)
    if key.isdigit() and s.get("type") == "array":
        return s.get("items")
    for part in s.get("allOf", []):
        found = step(part, key)
        if found is not None:
            return found
    return s.get("properties", {}).get(key)


def indistinguishable(alts):
    alts = [res(a) for a in alts]
    if len({json.dumps(a, sort_keys=True) for a in alts}) == 1:
        return True
    return all(a.get("type") == "object" and not a.get("required")
               and a.get("additionalProperties", True) is not False for a in alts)


ops = {op["operationId"]: op for item in spec["paths"].values() for op in item.values()
       if isinstance(op, dict) and "operationId" in op}
bad = 0
for line in open(sys.argv[2]):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    op_id, location, _ = line.split("\t")
    parts = location.split(".")
    ok = False
    if op_id in ops and parts[:2] == ["response", "body"]:
        for code, r in res(ops[op_id]["responses"]).items():
            r = res(r)
            if not code.startswith("2") or "content" not in r:
                continue
            node = r["content"]["application/vnd.api+json"]["schema"]
            for key in parts[2:]:
                node = step(node, key) if node is not None else None
            node = res(node) if node is not None else None
            if node and "oneOf" in node and indistinguishable(node["oneOf"]):
                ok = True
    if not ok:
        bad += 1
        print(f"allowlist: {op_id} {location}: no oneOf with indistinguishable alternatives there")
sys.exit(1 if bad else 0)
