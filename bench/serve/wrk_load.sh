#!/usr/bin/env bash
# Load bench of `k2gym serve` on loopback with wrk: requests/s, p50/p99 latency, non-2xx count and the
# server's RSS at 1, 16 and 64 connections, for a reference binary and the current one in the same run.
# Usage: bench/serve/wrk_load.sh BEFORE_K2GYM AFTER_K2GYM [SECONDS_PER_LEVEL]
# BEFORE_FLAGS / AFTER_FLAGS (environment) are added to each binary's `serve` command line.
# Model: configs/models/small.json (random weights), a 1024-id tokenizer trained on docs/, 8 greedy
# tokens per request. Prints a markdown table.
set -euo pipefail
before=$1 after=$2 dur=${3:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$root"/docs/*.md > "$tmp/corpus.txt"
"$after" tokenizer train --corpus "$tmp/corpus.txt" --out "$tmp/tok" --vocab-size 1024 --db "$tmp/t.db" >/dev/null 2>&1
sed 's/"vocab_size": 256/"vocab_size": 1024/' "$root/configs/models/small.json" > "$tmp/model.json"
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "| binary | connections | requests/s | p50 ms | p99 ms | non-2xx | RSS MiB before → after |"
echo "|---|---|---|---|---|---|---|"
for label in before after; do
  bin=$before flags=${BEFORE_FLAGS:-}
  [ "$label" = after ] && bin=$after flags=${AFTER_FLAGS:-}
  "$bin" serve --model "$tmp/model.json" --tokenizer "$tmp/tok" --port 0 --db "$tmp/$label.db" $flags \
    > "$tmp/$label.out" 2> "$tmp/$label.err" &
  pid=$!
  for _ in $(seq 1 300); do grep -q "listening on" "$tmp/$label.out" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$tmp/$label.out")
  url="http://127.0.0.1:$port/v1/chat/completions"
  wrk -t1 -c1 -d2s -s "$root/bench/serve/chat.lua" "$url" > /dev/null  # warm-up
  for c in 1 16 64; do
    r0=$(rss $pid)
    t=2; [ $c -lt 2 ] && t=1
    out=$(wrk -t$t -c$c -d${dur}s --timeout 30s --latency -s "$root/bench/serve/chat.lua" "$url")
    r1=$(rss $pid)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    ms() { echo "$out" | awk -v q="$1" '$1 == q {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.1f", v}'; }
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}'); non2xx=${non2xx:-0}
    errs=$(echo "$out" | awk '/Socket errors/ {print $0}' | sed 's/.*Socket errors: //')
    echo "| $label | $c | $rps | $(ms 50%) | $(ms 99%) | $non2xx${errs:+ ($errs)} | $((r0/1024)) → $((r1/1024)) |"
  done
  kill -TERM $pid; wait $pid || true
done
