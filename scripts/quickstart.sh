#!/usr/bin/env bash
# The main job on the embedded default: CPU, one SQLite file, no server to start. Until the
# SFT -> RL pipeline (scripts/pipeline.sh, issue [sft-rl]) is verified end to end, this runs the most
# end-to-end path k2gym has: the tool repository (real MCP corpus + synthetic domains with executable
# tools and verified tasks), oracle trajectories with a simulated user and judge, tau2-style evaluation,
# the sandbox, a verifier, and pretraining the small DeepSeek-V3-architecture model with MuonClip.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/default/apps/k2gym
OUT=${K2GYM_OUT:-runs/quickstart}
DB=${K2GYM_DB:-$OUT/k2gym.db}
mkdir -p "$OUT"
step() { echo; echo "== $*"; }

step "k2gym build"
$BIN version

CORPUS=../shared/data/mcp_servers.jsonl
if [ -f "$CORPUS" ]; then
  step "import the real MCP tool corpus ($CORPUS)"
  $BIN tools import "$CORPUS" --db "$DB"
else
  step "no $CORPUS here: skipping the real MCP corpus"
fi

step "synthesize tools by hierarchical domain evolution, then agents and verified tasks"
$BIN toolgen synth --count 2000 --verify --db "$DB" --seed 1
$BIN toolgen agents --db "$DB" --seed 1
$BIN toolgen tasks --count 200 --db "$DB" --seed 1 --out "$OUT/tasks.tau2.json"
$BIN toolgen stats --db "$DB"

step "simulate oracle episodes (scripted user, judge-filtered) and export OpenAI-format trajectories"
$BIN simulate --tasks "$OUT/tasks.tau2.json" --policy oracle --user scripted --episodes 100 \
  --db "$DB" --seed 1 --out "$OUT/oracle.jsonl"

step "evaluate the oracle and a random policy on the built-in held-out tau2-style suite"
$BIN eval --suite builtin:heldout-small --policy oracle --trials 2 --k 1,2 --db "$DB"
$BIN eval --suite builtin:heldout-small --policy random --trials 2 --k 1,2 --db "$DB"

step "run untrusted code in the sandbox"
printf 'import sys\nprint(sum(range(10**6)))\n' > "$OUT/hello.py"
$BIN sandbox run "$OUT/hello.py"

step "score a case file with the math verifier"
$BIN reward check --kind math --input tests/rewards/data/math.jsonl | tail -n 1

step "pretrain the small MoE model (MLA + 8 routed experts + shared expert) with MuonClip"
$BIN corpus gen --out "$OUT/corpus.txt" --bytes 200000 --seed 1
$BIN pretrain --model configs/models/small.json --data "$OUT/corpus.txt" --steps 30 --out "$OUT/pretrain" --db "$DB"

step "the store"
$BIN db info --db "$DB"
echo
echo "quickstart done: store $DB, outputs in $OUT/"
