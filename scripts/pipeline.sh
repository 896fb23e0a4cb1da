#!/usr/bin/env bash
# The post-training pipeline: synthesize a tool domain and verified tasks -> oracle trajectories ->
# tokenizer -> SFT the small model -> held-out eval -> RL -> held-out eval again; prints the SFT vs RL
# table (success, pass^k) and writes the report. Sizes aim at ~15 minutes on 2 cores; K2GYM_QS_*
# variables scale them. NOT YET VERIFIED END TO END (issue [sft-rl]): every command it calls has its
# own tests, but this sequence has not been run to completion; it replaces scripts/quickstart.sh once
# it has, with measured figures in docs/training.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${K2GYM_BIN:-build/default/apps/k2gym}
OUT=${K2GYM_OUT:-runs/pipeline}
DB=${K2GYM_DB:-$OUT/k2gym.db}
SEED=${K2GYM_SEED:-1}
TASKS=${K2GYM_QS_TASKS:-96}
TRIALS=${K2GYM_QS_TRIALS:-4}
EVAL_TASKS=${K2GYM_QS_EVAL_TASKS:-12}
EPOCHS=${K2GYM_QS_EPOCHS:-3}
ITERS=${K2GYM_QS_ITERS:-12}
mkdir -p "$OUT"
step() { echo; echo "== $(date -u +%H:%M:%S) $*"; }
T0=$(date +%s)

step "k2gym build"
$BIN version

step "synthesize a small tool catalog (hierarchical domain evolution) and verified tasks"
$BIN toolgen synth --count 60 --verify --db "$DB" --seed "$SEED" --quiet
$BIN toolgen tasks --count "$TASKS" --db "$DB" --seed "$SEED" --out "$OUT/tasks.tau2.json" --quiet
# The RL loop and `rl eval` hold out every 4th task (rl_run.eval_fraction = 0.25); only the others get
# oracle demonstrations, so the held-out evaluation never sees a task it was trained on.
python3 - "$OUT/tasks.tau2.json" "$OUT/tasks.train.json" <<'PY'
import json, sys
tasks = json.load(open(sys.argv[1]))
json.dump([t for i, t in enumerate(tasks) if i % 4 != 3], open(sys.argv[2], "w"))
PY

step "oracle trajectories on the training tasks (scripted user, judge-filtered)"
$BIN simulate --tasks "$OUT/tasks.train.json" --policy oracle --user scripted --episodes $((TASKS * 2)) \
  --threads 2 --db "$DB" --seed "$SEED" --out "$OUT/oracle_train.jsonl" --quiet
wc -l < "$OUT/oracle_train.jsonl" | xargs echo "kept oracle trajectories:"

step "tokenizer with the Kimi-K2 chat-template special tokens (BPE on the trajectories)"
$BIN tokenizer train --corpus "$OUT/oracle_train.jsonl" --vocab-size 1536 --out "$OUT/tokenizer" --quiet

step "SFT the small model (MLA + MoE, MuonClip) on the oracle trajectories"
$BIN sft --config configs/sft/quickstart.json --model configs/sft/model_small.json --data "$OUT/oracle_train.jsonl" \
  --tokenizer "$OUT/tokenizer" --epochs "$EPOCHS" --out "$OUT/sft" --db "$DB" --seed "$SEED"

RLCFG="--config configs/rl/quickstart.json --set rl_run.tasks=$OUT/tasks.tau2.json --set rl_run.tokenizer=$OUT/tokenizer"
step "held-out evaluation of the SFT model ($EVAL_TASKS tasks x $TRIALS trials)"
$BIN rl eval $RLCFG --init "$OUT/sft/checkpoint" --split heldout --limit "$EVAL_TASKS" --trials "$TRIALS" \
  --temperature 0.7 --db "$DB" --seed "$SEED" --out "$OUT/eval_sft"

step "RL: K2 objective, PTX, temperature decay, budget ($ITERS iterations)"
$BIN rl $RLCFG --set rl.iterations="$ITERS" --set rl_run.out="$OUT/rl" --set rl.ptx.data="$OUT/oracle_train.jsonl" \
  --init "$OUT/sft/checkpoint" --db "$DB" --seed "$SEED"

step "held-out evaluation of the RL model"
$BIN rl eval $RLCFG --init "$OUT/rl/checkpoint" --split heldout --limit "$EVAL_TASKS" --trials "$TRIALS" \
  --temperature 0.7 --db "$DB" --seed "$SEED" --out "$OUT/eval_rl"

step "report"
$BIN plot "$OUT/rl"
cp "$OUT/eval_rl/eval_trajectories.jsonl" "$OUT/rl/eval_trajectories.jsonl"
$BIN report "$OUT/rl"

python3 - "$OUT/eval_sft/eval.json" "$OUT/eval_rl/eval.json" "$TRIALS" <<'PY'
import json, sys
sft, rl, k = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
cols = ["success"] + [f"pass^{i}" for i in range(1, k + 1)]
print()
print(f"held-out tasks: {sft['tasks']} x {sft['trials']} trials, temperature {sft['temperature']}")
print(f"{'model':<6}" + "".join(f"{c:>10}" for c in cols))
for name, r in (("SFT", sft), ("RL", rl)):
    print(f"{name:<6}" + "".join(f"{100 * r[c]:>9.1f}%" for c in cols))
print(f"{'lift':<6}" + "".join(f"{100 * (rl[c] - sft[c]):>+9.1f}p" for c in cols))
PY
echo
echo "quickstart done in $(( $(date +%s) - T0 )) s: store $DB, report $OUT/rl/report.html"
