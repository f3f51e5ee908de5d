#!/usr/bin/python3
"""Checks result.json files against the published schema, docs/result.schema.json
(python3-jsonschema, draft 2020-12). Usage: result_schema_test.py SCHEMA RESULT..."""
import json
import sys

import jsonschema

with open(sys.argv[1]) as f:
    schema = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
failures = 0
for path in sys.argv[2:]:
    with open(path) as f:
        result = json.load(f)
    errors = sorted(validator.iter_errors(result), key=lambda e: list(e.path))
    for error in errors[:5]:
        print(f"FAIL: {path}: {error.message} at {'/'.join(str(p) for p in error.path)}")
    failures += bool(errors)
    if not errors:
        print(f"ok: {path} follows the schema")
sys.exit(1 if failures else 0)
