#!/usr/bin/env bash
# 60 s soak of `k2gym sandbox serve`: 64 concurrent clients (sandbox_load); samples the server's RSS every
# 5 s; afterwards checks that no sandbox cgroup or temp dir is left. usage: soak.sh BUILD_DIR [SECONDS] [CLIENTS]
set -uo pipefail
build=${1:?usage: soak.sh BUILD_DIR [SECONDS] [CLIENTS]}
secs=${2:-60}
clients=${3:-64}
out=$(mktemp)
"$build/apps/k2gym" --json --db /tmp/k2gym-soak.db sandbox serve --port 0 >"$out" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '"port"' "$out" 2>/dev/null && break; sleep 0.1; done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$out")
echo "server pid $server on port $port; machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
( for _ in $(seq $((secs / 5))); do sleep 5; echo "rss_kb $(ps -o rss= -p $server)"; done ) &
sampler=$!
"$build/bench/sandbox/sandbox_load" --port "$port" --clients "$clients" --seconds "$secs"
rc=$?
kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
kill -TERM $server
wait $server || true
trap - EXIT
left=$(find /sys/fs/cgroup -maxdepth 4 -name "k2gym-sandbox-${server}-*" 2>/dev/null | wc -l)
tmp=$(ls -d /tmp/k2gym-sandbox-* 2>/dev/null | wc -l)
echo "after stop: cgroup dirs left: $left; /tmp/k2gym-sandbox-* dirs: $tmp; server exit ok"
rm -f "$out"
exit $rc
