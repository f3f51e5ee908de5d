#!/usr/bin/python3
"""The JSON Schema that `firedrill schema` prints is what editors check files
with, so it must accept every valid file and reject the structural mistakes
the validator rejects. Checked with python3-jsonschema (draft 2020-12)."""
import glob
import json
import subprocess
import sys

import jsonschema
import yaml

firedrill = sys.argv[1]
schema = json.loads(subprocess.run([firedrill, "schema"], check=True, capture_output=True, text=True).stdout)
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)

failures = 0
valid = sorted(glob.glob("scenarios/*.yaml") + glob.glob("runbooks/*.yaml") + glob.glob("workloads/*.yaml")
               + glob.glob("tests/scenarios/valid/*.yaml"))
for path in valid:
    with open(path) as f:
        document = yaml.safe_load(f)
    errors = list(validator.iter_errors(document))
    if errors:
        failures += 1
        print(f"FAIL: {path} is valid but the schema rejects it: {errors[0].message} at {list(errors[0].path)}")
    else:
        print(f"ok: schema accepts {path}")

# Structural mistakes the schema can see (references and units need the validator).
structural = ["unknown-top-key", "unknown-nested-key", "missing-metadata-name", "missing-target",
              "tags-not-a-list", "unknown-injector", "unknown-injector-parameter", "missing-injector-parameter",
              "missing-injector-kind", "unknown-arrival", "unknown-action", "runbook-missing-steps",
              "exec-argv-string", "bad-enum", "unknown-target-kind", "remote-missing-http", "field-of-other-variant",
              "integer-out-of-range", "not-an-integer", "unknown-report-format", "trigger-both", "trigger-none",
              "expectation-missing-within", "duration-words", "rate-bad-unit", "size-bad-unit", "ratio-over-one",
              "bad-api-version", "unknown-kind", "unknown-config-key"]
for name in structural:
    path = f"tests/scenarios/invalid/{name}.yaml"
    with open(path) as f:
        document = yaml.safe_load(f)
    if validator.is_valid(document):
        failures += 1
        print(f"FAIL: the schema accepts {path}, which firedrill validate rejects")
    else:
        print(f"ok: schema rejects {path}")

print(f"{len(valid) + len(structural) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
