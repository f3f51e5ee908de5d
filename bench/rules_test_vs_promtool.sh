#!/usr/bin/env bash
# Side by side: `firedrill rules test` against `promtool test rules` on the
# same promtool unit-test files, in the same run, alternating so machine
# noise hits both. Prints each round's times and the ratio.
#
#   bench/rules_test_vs_promtool.sh [FIREDRILL] [ROUNDS]
#
# The files are the differential test's 200 generated files (seed 20261127):
# HSOF's rules and rules using every PromQL construct, random series.
set -euo pipefail
cd "$(dirname "$0")/.."
firedrill=$(realpath "${1:-build/cli/firedrill}")
rounds=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 tests/alerts/promtool_diff/gen_and_compare.py --firedrill "$firedrill" --count 200 \
  --seed 20261127 --jobs 2 --workdir "$work" --keep >/dev/null
cd "$work"
files=(files/t*.yml)
files=($(printf '%s\n' "${files[@]}" | grep -v '\.rules\.yml$'))
echo "files: ${#files[@]} promtool unit-test files; $(nproc) CPUs; $(date -u +%F)"

now() { date +%s.%N; }
printf '%-6s %12s %12s %8s\n' round promtool_s firedrill_s ratio
ratios=()
for round in $(seq 1 "$rounds"); do
  start=$(now); promtool test rules "${files[@]}" >/dev/null 2>&1 || true; middle=$(now)
  "$firedrill" rules test "${files[@]}" >/dev/null 2>&1 || true; end=$(now)
  p=$(awk "BEGIN {print $middle - $start}"); f=$(awk "BEGIN {print $end - $middle}")
  r=$(awk "BEGIN {print $p / $f}")
  ratios+=("$r")
  printf '%-6s %12.3f %12.3f %8.1f\n' "$round" "$p" "$f" "$r"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median ratio: %.1fx faster (target: at least 5x)\n", a[int((NR+1)/2)]}'
