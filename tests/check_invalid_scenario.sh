#!/usr/bin/env bash
# check_invalid_scenario.sh FIREDRILL DIR NAME
# Runs `firedrill validate` on DIR/NAME.yaml (with the arguments in NAME.args,
# if any) from DIR, and passes when it exits 2 and prints exactly the lines in
# NAME.expected.
set -u
firedrill=$1 dir=$2 name=$3
cd "$dir" || exit 1
args=()
[ -f "$name.args" ] && read -r -a args < "$name.args"
actual=$("$firedrill" validate "${args[@]}" "$name.yaml" 2>&1 >/dev/null)
rc=$?
expected=$(cat "$name.expected")
status=0
if [ "$rc" -ne 2 ]; then
  echo "FAIL: firedrill validate $name.yaml exited $rc, expected 2"
  status=1
fi
if [ "$actual" != "$expected" ]; then
  echo "FAIL: output differs from $name.expected"
  diff <(echo "$expected") <(echo "$actual")
  status=1
fi
[ $status -eq 0 ] && echo "ok: $name.yaml -> exit 2, $(wc -l <<<"$actual") expected line(s)"
exit $status
