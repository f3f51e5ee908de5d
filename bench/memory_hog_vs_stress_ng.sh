#!/usr/bin/env bash
# Firedrill's host memory hog against stress-ng --vm, side by side: each
# holds TARGET for SECONDS, and the resident size of the held mapping (the
# largest anonymous mapping in /proc/PID/smaps, so neither tool's own code
# and libraries count) is sampled every 100 ms once it first reaches 99% of
# the target. Prints the share of samples within +-1% of the target, the
# lowest and highest sample, for docs/PERFORMANCE.md.
#
#   bench/memory_hog_vs_stress_ng.sh [BUILD_DIR] [SECONDS] [TARGET_MIB]
set -euo pipefail
build=${1:-build}
seconds=${2:-60}
target_mib=${3:-1024}
firedrill=$build/cli/firedrill
command -v stress-ng >/dev/null || { echo "stress-ng is not installed (apt-get install stress-ng)"; exit 2; }
[ -x "$firedrill" ] || { echo "build firedrill in $build first"; exit 2; }
work=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT

# sample PID_COMMAND LABEL: samples the hog's mapping until the process ends.
sample() {
  python3 - "$1" "$2" "$target_mib" "$seconds" <<'PY'
import os, sys, time
find, label, target_mib, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
target = target_mib * 1024
def pids():
    out = []
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                if find.encode() in open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')[0]:
                    out.append(pid)
            except OSError:
                pass
    return out
def held(pid):  # kB resident in the hog's mapping: anonymous, at least 90% of the target
    mappings = []  # [anonymous, size kB, rss kB]
    try:
        for line in open(f'/proc/{pid}/smaps'):
            fields = line.split()
            if len(fields) >= 5 and '-' in fields[0] and not fields[0].endswith(':'):
                mappings.append([len(fields) == 5, 0, 0])
            elif fields and fields[0] == 'Size:' and mappings: mappings[-1][1] = int(fields[1])
            elif fields and fields[0] == 'Rss:' and mappings: mappings[-1][2] = int(fields[1])
    except OSError:
        return None
    return max([rss for anonymous, size, rss in mappings if anonymous and size >= target * 0.9], default=0)
samples, start, reached = [], time.monotonic(), None
while time.monotonic() - start < seconds + 30:
    values = [v for v in (held(p) for p in pids()) if v]
    value = max(values) if values else 0
    if reached is None and value >= target * 0.99: reached = time.monotonic()
    if reached is not None:
        if time.monotonic() - reached > seconds - 1: break
        samples.append(value)
    time.sleep(0.1)
if not samples:
    print(f'{label:10s} never reached 99% of {target_mib} MiB'); sys.exit(1)
within = sum(1 for s in samples if abs(s - target) <= target * 0.01)
print(f'{label:10s} {len(samples):7d} {100.0 * within / len(samples):9.1f}% '
      f'{min(samples) / 1024:10.1f} {max(samples) / 1024:10.1f} {sum(samples) / len(samples) / 1024:10.1f}')
PY
}

echo "holding ${target_mib} MiB for ${seconds}s each; $(date -u +%F) on $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
printf '%-10s %7s %10s %10s %10s %10s\n' tool samples within_1% min_MiB max_MiB mean_MiB
"$firedrill" inject host-memory-hog share=100% limit=${target_mib}MiB --max-memory ${target_mib}MiB \
  --for "$((seconds + 5))s" --journal "$work/journal.db" >"$work/firedrill.log" 2>&1 &
sample "/firedrill" firedrill
wait
stress-ng --vm 1 --vm-bytes ${target_mib}M --vm-keep --timeout "$((seconds + 5))s" >"$work/stress-ng.log" 2>&1 &
sample "stress-ng" stress-ng
wait
