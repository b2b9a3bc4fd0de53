"""Validates outputs against their schemas with Python's jsonschema.

Usage: python validate.py RESULTS.json
RESULTS: [{"name", "schema", "constrained", "baseline"}]; prints
{"total", "constrained_valid", "baseline_valid", "invalid": [names...]}.
"""
import json
import sys

import jsonschema


def valid(text, schema):
    try:
        jsonschema.validate(json.loads(text), schema)
        return True
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False


rows = json.load(open(sys.argv[1]))
out = {"total": len(rows), "constrained_valid": 0, "baseline_valid": 0, "invalid": []}
for r in rows:
    if valid(r["constrained"], r["schema"]):
        out["constrained_valid"] += 1
    else:
        out["invalid"].append(r["name"])
    if r.get("baseline") is not None and valid(r["baseline"].strip(), r["schema"]):
        out["baseline_valid"] += 1
print(json.dumps(out))
