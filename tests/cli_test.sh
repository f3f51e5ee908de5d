#!/usr/bin/env bash
# cli_test.sh FIREDRILL TINY_HTTP_SERVER HSOF_PIPELINE: the command line's
# contract — help with examples, exit codes, JSON output — checked against
# the real binaries.
set -u
firedrill=$1
tiny_http_server=$2
hsof_pipeline=$3
failures=0
check() {  # check DESCRIPTION EXPECTED_RC COMMAND...
  local description=$1 expected=$2; shift 2
  "$@" >/tmp/firedrill-cli-test.$$ 2>&1
  local rc=$?
  if [ "$rc" -ne "$expected" ]; then
    echo "FAIL: $description: exit $rc, expected $expected"; cat /tmp/firedrill-cli-test.$$; failures=$((failures + 1))
  else
    echo "ok: $description"
  fi
}
contains() {  # contains DESCRIPTION TEXT
  if grep -qF -- "$2" /tmp/firedrill-cli-test.$$; then echo "ok: $1"; else
    echo "FAIL: $1: output lacks '$2'"; cat /tmp/firedrill-cli-test.$$; failures=$((failures + 1)); fi
}
trap 'rm -f /tmp/firedrill-cli-test.$$' EXIT

check "--help exits 0" 0 "$firedrill" --help
contains "--help shows examples" "Examples:"
for sub in validate plan schema reference doctor load recover inject run; do
  check "$sub --help exits 0" 0 "$firedrill" "$sub" --help
  contains "$sub --help shows an example" "  firedrill $sub"
done
check "--version" 0 "$firedrill" --version
contains "--version names the program" "firedrill 0."
check "no subcommand is bad usage" 2 "$firedrill"
check "unknown subcommand is bad usage" 2 "$firedrill" frobnicate
check "unknown flag is bad usage" 2 "$firedrill" validate --frobnicate scenarios/system-down.yaml
check "-p without = is bad usage" 2 "$firedrill" validate -p rate scenarios/system-down.yaml
check "valid files exit 0" 0 "$firedrill" validate scenarios/system-down.yaml runbooks/system-down.yaml
contains "valid files are confirmed" "scenarios/system-down.yaml: ok (Scenario system-down)"
check "one invalid file among valid ones exits 2" 2 "$firedrill" validate scenarios/system-down.yaml tests/scenarios/invalid/unknown-top-key.yaml
check "json output" 2 "$firedrill" validate --format json tests/scenarios/invalid/unknown-top-key.yaml
contains "json output carries the message" '"message": "unknown key \"timline\" at the top level; did you mean \"timeline\"?"'
check "plan prints the timeline" 0 "$firedrill" plan scenarios/system-down.yaml -p rate=3/s
contains "plan shows the override" "parameter rate = 3/s  (set with -p; default 0.2/s)"
check "plan of a runbook is refused" 2 "$firedrill" plan runbooks/system-down.yaml
check "schema prints JSON" 0 "$firedrill" schema --kind runbook
contains "schema is JSON Schema" '"$schema": "https://json-schema.org/draft/2020-12/schema"'
check "doctor on the CPU" 0 "$firedrill" doctor --device cpu
contains "doctor logs the device choice in one line" "gpu: using the cpu backend"
check "doctor in JSON lines" 0 "$firedrill" --log-format json doctor --device cpu
contains "JSON log lines" '"component":"gpu"'
check "doctor with a bad device is bad usage" 2 "$firedrill" doctor --device rocm
check "HSOF's rule unit tests pass" 0 "$firedrill" rules test rules/hsof-alerts_test.yml
contains "rules test reports like promtool" "  SUCCESS"
check "rules test of a missing file is invalid" 2 "$firedrill" rules test rules/no-such-test.yml
check "rules lint finds HSOF rules that page an idle pipeline" 1 "$firedrill" rules lint rules/hsof-alerts.yml --metrics tests/alerts/lint/hsof-idle.txt
contains "lint: an idle pipeline pages for stalled feature processing" "alert FeatureProcessingStalled: fires on the idle target"
contains "lint: the temperature metric is missing" "metric hsof_gpu_temperature_celsius is not exposed by the target"
check "rules lint of an unreachable target is a harness failure" 4 "$firedrill" rules lint rules/hsof-alerts.yml --metrics http://127.0.0.1:1/metrics
check "load without a rate is bad usage" 2 "$firedrill" load http://127.0.0.1:1/
contains "load says what to give" "give --rate"
check "load refuses a target off loopback" 2 "$firedrill" load http://192.0.2.1/ --rate 1/s -d 1s
contains "load names the rule" "is not a loopback address"
check "load with a bad workload file names the place" 2 "$firedrill" load http://127.0.0.1:1/ -f tests/scenarios/invalid/workload-spike-longer-than-every.yaml
contains "load: file:line:column of the bad arrival" "workload-spike-longer-than-every.yaml:9:16: workload.phases[bursts].arrival"
check "load with a bad trace names the CSV line" 2 "$firedrill" load http://127.0.0.1:1/ -f tests/scenarios/invalid/workload-bad-trace.yaml
contains "load: the trace's line and column" "bad-feature-count.csv:3:9: features: expected an integer"
"$tiny_http_server" > /tmp/firedrill-cli-port.$$ &
server=$!
for _ in $(seq 100); do [ -s /tmp/firedrill-cli-port.$$ ] && break; sleep 0.05; done
url="http://127.0.0.1:$(awk '{print $2}' /tmp/firedrill-cli-port.$$)/"
out=$(mktemp -d)
check "load with GPU stress on the CPU device" 0 "$firedrill" load "$url" --rate 100/s -d 300ms --stress memory:25% --stress-memory-cap 64MiB --device cpu --json --progress never --max-lag 1s
contains "load: the stress result is in the summary" '"held_bytes": 16777216'
check "load --max-lag: a limit no generator meets marks the run invalid" 1 "$firedrill" load "$url" --rate 200/s -d 300ms --max-lag 1ns --progress never
contains "load --max-lag: the reason is given" "schedule lag p99"
check "load refuses a --max-lag that is not a duration" 2 "$firedrill" load "$url" --rate 200/s --max-lag soon
check "load refuses an unknown stress mode" 2 "$firedrill" load "$url" --rate 100/s -d 300ms --stress thermal:10%
check "load: -f and --rate do not go together" 2 "$firedrill" load "$url" -f tests/workload/short-steps.yaml --rate 1/s
# The phases are what is tested here, not this shared machine's scheduling: a
# generous --max-lag keeps a busy CI host from marking the run invalid.
check "load runs a workload file's phases" 0 "$firedrill" load "$url" -f tests/workload/short-steps.yaml -o "$out" --progress never --max-lag 1s
check "load: the summary parses and counts every phase" 0 python3 -c "
import json, sys
s = json.load(open('$out/load-summary.json'))
assert [p['phase'] for p in s['phases']] == ['baseline', 'step-up', 'bursts', 'cool-down'], s['phases']
for p in s['phases']:
    assert p['counts']['answered'] == p['counts']['scheduled'] > 0, p['counts']
    assert p['histograms']['corrected']['total'] == p['counts']['answered']
assert s['seed'] == 42"
kill $server; rm -rf "$out" /tmp/firedrill-cli-port.$$
journal=$(mktemp -d)/journal.db
check "run of a file that is not there is bad usage" 2 "$firedrill" run /nonexistent/drill.yaml --journal "$journal"
contains "run names the file" "/nonexistent/drill.yaml"
check "run of a runbook is bad usage" 2 "$firedrill" run runbooks/system-down.yaml --journal "$journal"
contains "run says it takes scenarios" "is not a Scenario; run takes scenarios"
check "run without the pipeline binary is a harness failure" 4 "$firedrill" run scenarios/system-down.yaml \
  --pipeline /nonexistent/hsof-pipeline --journal "$journal" -o "$(dirname "$journal")/drills" --progress none
contains "run says what is missing" "/nonexistent/hsof-pipeline is not there"
check "run at a time scale of 0 is bad usage" 2 "$firedrill" run scenarios/system-down.yaml --time-scale 0
check "recover with an empty journal" 0 "$firedrill" recover --journal "$journal"
contains "recover says there is nothing to do" "nothing to undo in $journal"
python3 - "$journal" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
# A fault left by a Firedrill that is gone (pid 0): a file to remove.
import os
fill = os.path.join(os.path.dirname(sys.argv[1]), "disk-fill", "left-1.fill")
os.makedirs(os.path.dirname(fill))
open(fill, "w").write("x")
db.execute("INSERT INTO faults (id, kind, target, undo, owner_pid, started_ms, lease_until_ms) VALUES "
           "('left-1', 'disk-fill', 'area', ?, 0, 1, 2)", ('{"action":"remove","path":"%s"}' % fill,))
db.commit()
PY
check "recover undoes what a dead Firedrill left" 0 "$firedrill" recover --journal "$journal"
contains "recover names the fault" "undone: disk-fill on area (left-1, started by pid 0)"
check "recover removed the fill" 1 test -e "$(dirname "$journal")/disk-fill/left-1.fill"
check "recover twice finds nothing" 0 "$firedrill" recover --journal "$journal" --json
contains "recover --json" '"undone": []'
check "inject refuses an unknown injector" 2 "$firedrill" inject no-such-fault --journal "$journal"
contains "inject lists the injectors it knows" "known: gpu-memory-hog"
check "inject refuses an unknown parameter" 2 "$firedrill" inject cpu-hog thread=2 --journal "$journal"
contains "inject names the injector's parameters" "its parameters (threads (required), duty)"
check "inject wants the required parameters" 2 "$firedrill" inject disk-fill share=50% --journal "$journal"
check "inject wants one of two parameters" 2 "$firedrill" inject gpu-memory-leak perJob=1MiB rate=1MiB --pipeline-grpc 127.0.0.1:1 --journal "$journal"
contains "inject names the two" "gpu-memory-leak: give exactly one of perJob and rate"
check "inject refuses a fill over --max-disk" 2 "$firedrill" inject disk-fill share=50% areaSize=2GiB --max-disk 1GiB --journal "$journal"
contains "inject names the cap" "over the drill's disk cap of 1GiB"
check "inject --dry-run" 0 "$firedrill" inject disk-fill share=50% areaSize=8MiB --dry-run --journal "$journal"
contains "inject --dry-run says what it would do" "dry run: would disk-fill: write 4MiB (50% of a 8MiB area)"
check "inject runs a fault for its time" 0 "$firedrill" inject cpu-hog threads=1 duty=10% --for 200ms --journal "$journal"
contains "inject says when it stopped" "stopped: cpu-hog"
check "inject runs a GPU burn on the CPU twin" 0 "$firedrill" inject gpu-compute-burn intensity=20% --device cpu --for 200ms --journal "$journal"
contains "inject says where the burn runs" "compute burn at 20% of the CPU's cores"
# SIGTERM ends a fault that runs until told: the fill is written, then removed.
area=$(mktemp -d)
"$firedrill" inject disk-fill share=50% areaSize=4MiB --drill-dir "$area" --journal "$journal" >/tmp/firedrill-cli-test.$$ 2>&1 &
injector=$!
for _ in $(seq 200); do ls "$area"/disk-fill/*.fill >/dev/null 2>&1 && break; sleep 0.02; done
check "inject wrote the fill" 0 sh -c "ls $area/disk-fill/*.fill"
kill -TERM $injector; wait $injector; status=$?
if [ "$status" = 0 ]; then echo "ok: inject ends on SIGTERM with exit 0"; else
  echo "FAIL: inject ends on SIGTERM: exit $status"; failures=$((failures + 1)); fi
check "inject removed the fill on SIGTERM" 0 sh -c "! ls $area/disk-fill/*.fill"
# Firedrill's own metrics show the fault while it runs.
"$firedrill" inject cpu-hog threads=1 duty=5% --metrics-port 0 --journal "$journal" >"$area/out" 2>&1 &
injector=$!
for _ in $(seq 200); do grep -q "^started" "$area/out" 2>/dev/null && break; sleep 0.02; done
metrics_url=$(awk '/^metrics:/ {print $2}' "$area/out")
check "inject serves its metrics" 0 curl -sf "$metrics_url"
contains "inject: firedrill_fault_active while the fault runs" 'firedrill_fault_active{kind="cpu-hog",target="this process"} 1'
kill -TERM $injector; wait $injector
check "recover after inject finds nothing" 0 "$firedrill" recover --journal "$journal"
contains "recover after inject: nothing to undo" "nothing to undo in $journal"
rm -rf "$(dirname "$journal")" "$area"
check "load --resume needs --jobs" 2 "$firedrill" load http://127.0.0.1:1 --resume ledger.jsonl
check "load --jobs wants a pipeline address" 2 "$firedrill" load ftp://127.0.0.1:1 --jobs --rate 1/s
data=$(mktemp -d)
"$hsof_pipeline" --data-dir "$data" --backend cpu --workers 2 --port-file "$data/ports.json" 2>"$data/log" &
pipeline=$!
for _ in $(seq 100); do [ -s "$data/ports.json" ] && break; sleep 0.05; done
http_port=$(python3 -c "import json; print(json.load(open('$data/ports.json'))['http'])")
grpc_port=$(python3 -c "import json; print(json.load(open('$data/ports.json'))['grpc'])")
check "load --jobs over HTTP accounts for every job" 0 "$firedrill" load "http://127.0.0.1:$http_port" --jobs -f tests/workload/small-jobs.yaml -o "$data/out" --progress never
contains "load --jobs: nothing lost" "nothing lost: yes"
check "load --jobs: the ledger file replays" 0 python3 -c "
import json
events = [json.loads(line) for line in open('$data/out/ledger.jsonl')]
summary = json.load(open('$data/out/load-summary.json'))
assert summary['ledger']['completed'] == 12, summary['ledger']
assert len(events) >= 36, len(events)"
check "load --jobs --resume of a finished run finds nothing to do" 0 "$firedrill" load "http://127.0.0.1:$http_port" --jobs --resume "$data/out/ledger.jsonl"
contains "resume: nothing followed" "followed 0, resent 0"
check "load --jobs over gRPC" 0 "$firedrill" load "grpc://127.0.0.1:$grpc_port" --jobs -f tests/workload/small-jobs.yaml --progress never
kill $pipeline; wait $pipeline 2>/dev/null; rm -rf "$data"
if "$firedrill" reference | diff -u docs/REFERENCE.md - >/tmp/firedrill-cli-test.$$; then
  echo "ok: docs/REFERENCE.md matches firedrill reference"
else
  echo "FAIL: docs/REFERENCE.md is stale; regenerate it with: firedrill reference > docs/REFERENCE.md"
  cat /tmp/firedrill-cli-test.$$; failures=$((failures + 1))
fi
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
