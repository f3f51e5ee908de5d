#!/usr/bin/env bash
# What Firedrill's TCP proxy costs a request: closed-loop HTTP/1.1 load
# (firedrill load --closed, 16 connections) against tests/'s tiny-http-server,
# straight and through `firedrill inject network ... latency=0ms --proxy`,
# rounds alternating. Prints requests/s and latency p99 for each, and the ratio.
# IDLE_CONNECTIONS more connections are held open through the proxy and the
# server the whole time, doing nothing (a client's idle keep-alive pool): they
# show whether the proxy's cost grows with connections that are not busy.
#
#   bench/proxy_overhead.sh [BUILD_DIR] [SECONDS_PER_ROUND] [ROUNDS] [IDLE_CONNECTIONS]
set -euo pipefail
build=${1:-build}
seconds=${2:-5}
rounds=${3:-3}
idle=${4:-0}
firedrill=$build/cli/firedrill
server=$build/tests/tiny-http-server
[ -x "$firedrill" ] && [ -x "$server" ] || { echo "build firedrill and tiny-http-server in $build first"; exit 2; }
work=$(mktemp -d)
"$server" > "$work/port" &
server_pid=$!
trap 'kill $server_pid ${proxy_pid:-} ${idle_pid:-} 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(awk '{print $2}' "$work/port")
"$firedrill" inject network endpoint=http latency=0ms --proxy "http=127.0.0.1:$port" --journal "$work/journal.db" \
  > "$work/proxy" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do grep -q "^started" "$work/proxy" && break; sleep 0.05; done
proxied=$(awk '/^proxy:/ {print $5}' "$work/proxy")
if [ "$idle" -gt 0 ]; then
  python3 - "$proxied" "$idle" "$work/idle" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
held = [socket.create_connection((host, int(port))) for _ in range(int(sys.argv[2]))]
open(sys.argv[3], "w").write("ready\n")
while True:
    time.sleep(3600)
PY
  idle_pid=$!
  for _ in $(seq 200); do [ -s "$work/idle" ] && break; sleep 0.05; done
fi
measure() {
  "$firedrill" --log-level warning load "$1" --closed -c 16 -d "${seconds}s" --progress never --json |
    python3 -c 'import json,sys; p=json.load(sys.stdin)["phases"][0]; print("%.0f %.3f" % (p["achieved_rate"], p["latency_ns"]["corrected"]["p99"] / 1e6))'
}
echo "tiny-http-server on 127.0.0.1:$port, proxy on $proxied; 16 connections (and $idle idle ones through the proxy), ${seconds}s a round; $(date -u +%F) on $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%-6s %14s %12s %14s %12s %7s\n' round direct_req_s direct_p99 proxied_req_s proxied_p99 ratio
for round in $(seq "$rounds"); do
  read -r direct_rate direct_p99 < <(measure "http://127.0.0.1:$port/")
  read -r proxied_rate proxied_p99 < <(measure "http://$proxied/")
  printf '%-6s %14s %10sms %14s %10sms %7s\n' "$round" "$direct_rate" "$direct_p99" "$proxied_rate" "$proxied_p99" \
    "$(python3 -c "print(f'{$proxied_rate / $direct_rate:.2f}')")"
done
