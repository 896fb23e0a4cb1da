#!/usr/bin/env bash
# The main job on the embedded default (CPU, the small model, one SQLite file): the K2 post-training
# pipeline end to end. Synthesize a small tool domain and verified tasks -> oracle trajectories
# (scripted user, judge-filtered) -> BPE tokenizer on their rendering (compact tool declarations, digits split) ->
# SFT the small MLA + MoE model with MuonClip -> held-out evaluation -> RL (K2 objective, PTX,
# temperature decay, token budget) -> held-out evaluation again (`k2gym eval`); the SFT checkpoint is
# also served over the OpenAI API and evaluated through it. Prints the SFT vs RL table and writes the report.
# K2GYM_QS_* variables scale it; figures measured with the defaults are in docs/training.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# Deterministic mode (docs/guide.md): the same seed prints the same table on any machine of this
# architecture; every k2gym below, and the server it starts, inherits it. K2GYM_DETERMINISTIC=0 turns it off.
export K2GYM_DETERMINISTIC=${K2GYM_DETERMINISTIC:-1}
BIN=${K2GYM_BIN:-build/default/apps/k2gym}
OUT=${K2GYM_OUT:-runs/quickstart}
DB=${K2GYM_DB:-$OUT/k2gym.db}
SEED=${K2GYM_SEED:-1}
TASKS=${K2GYM_QS_TASKS:-800}          # generated tasks; every 4th is held out (rl_run.eval_fraction 0.25)
EPISODES=${K2GYM_QS_EPISODES:-320}    # oracle demonstrations on the first EPISODES training tasks; RL gets the rest
TRIALS=${K2GYM_QS_TRIALS:-2}
EVAL_TASKS=${K2GYM_QS_EVAL_TASKS:-40}
EPOCHS=${K2GYM_QS_EPOCHS:-1}
VARIANTS=${K2GYM_QS_VARIANTS:-1}      # value variants per oracle dialog (sft.value_variants; docs/training.md)
COPY=${K2GYM_QS_COPY:-1500}           # synthetic copy dialogs in SFT (sft.copy_dialogs; docs/training.md)
COPY_WARMUP=${K2GYM_QS_COPY_WARMUP:-17000} # copy dialogs trained on first, once (sft.copy_warmup_dialogs)
ITERS=${K2GYM_QS_ITERS:-12}
KINDS=${K2GYM_QS_KINDS:-'["profile","report","transfer"]'}
rm -rf "$OUT"
mkdir -p "$OUT"
step() { echo; echo "== $(date -u +%H:%M:%S) $*"; }
T0=$(date +%s)

step "k2gym build"
$BIN version

step "synthesize a small tool domain (hierarchical domain evolution) and verified one-goal tasks"
$BIN toolgen synth --count 14 --verify --db "$DB" --seed "$SEED" --quiet
# --include-heldout (toolgen tasks, simulate, rl): a seed may synthesize a domain that eval's built-in
# suites hold out; this run keeps its own held-out split below and stores no tasks, so it may use it.
$BIN toolgen tasks --count "$TASKS" --db "$DB" --seed "$SEED" --out "$OUT/tasks.tau2.json" --quiet --include-heldout \
  --set toolgen_synth.task_max_goals=1 --set "toolgen_synth.task_kinds=$KINDS"
# The held-out split is every 4th task (rl_run.eval_fraction = 0.25, the source's heldout_fraction):
# only the others get oracle demonstrations, so no held-out task is ever trained on. Every evaluation
# below (the SFT model in process, the same model served over the OpenAI API, the RL model) is one
# `k2gym eval` over one task source: the first EVAL_TASKS held-out tasks, stored and comparable.
python3 - "$OUT" "$EVAL_TASKS" "$EPISODES" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
tasks = json.load(open(f"{out}/tasks.tau2.json"))
train = [t for i, t in enumerate(tasks) if i % 4 != 3]
episodes = int(sys.argv[3])
json.dump(train[:episodes], open(f"{out}/tasks.sft.json", "w"))  # oracle demonstrations (SFT)
json.dump(train[episodes:], open(f"{out}/tasks.rl.json", "w"))   # RL prompts: never demonstrated
json.dump({"kind": "synthetic", "name": "quickstart", "tasks": "tasks.tau2.json", "db": "k2gym.db",
           "heldout_fraction": 0.25, "task_tools_only": True, "include_heldout": True},
          open(f"{out}/heldout.source.json", "w"))
PY

# --task-tools-only: each prompt declares only the tools the tasks' gold plans call (short prompts for the
# small model); rl_run.task_tools_only and the suite's task_tools_only give RL and eval the same prompts.
step "oracle trajectories on the training tasks (scripted user, judge-filtered)"
$BIN simulate --tasks "$OUT/tasks.sft.json" --include-heldout --task-tools-only --policy oracle --user scripted --episodes "$EPISODES" \
  --threads 2 --db "$DB" --seed "$SEED" --out "$OUT/oracle_train.jsonl" --quiet

# --split-digits: one digit per token, so every id, amount and total the model copies is a run of the
# ten digit tokens (with 1-3 digit tokens the first group of a number was the one copied wrong).
step "BPE tokenizer on the rendered trajectories (Kimi-K2 special tokens, compact tool declarations, digits split)"
$BIN tokenizer train --corpus "$OUT/oracle_train.jsonl" --dialogs --tool-declarations compact --split-digits \
  --vocab-size 4096 --out "$OUT/tokenizer" --quiet

step "SFT the small model (MLA + 8 routed experts + shared expert, MuonClip) on the oracle trajectories + copy dialogs"
$BIN sft --config configs/sft/quickstart.json --model configs/sft/model_small.json --data "$OUT/oracle_train.jsonl" \
  --tokenizer "$OUT/tokenizer" --epochs "$EPOCHS" --set sft.copy_dialogs="$COPY" \
  --set sft.copy_warmup_dialogs="$COPY_WARMUP" --set sft.value_variants="$VARIANTS" --out "$OUT/sft" --db "$DB" \
  --seed "$SEED"

RLCFG=(--config configs/rl/quickstart.json --set "rl_run.tasks=$OUT/tasks.tau2.json" --set "rl_run.tokenizer=$OUT/tokenizer")
# The episode limits of configs/rl/quickstart.json's rollouts, temperature 0.7, 16 episodes at once (the
# generator decodes them together); an OpenAI request carries the temperature and max_tokens too.
EVAL=(--source "$OUT/heldout.source.json" --split heldout --max-tasks "$EVAL_TASKS" --trials "$TRIALS" --k 1,2
  --set eval.threads=16 --set eval.episode.temperature=0.7 --set eval.episode.max_turns=10
  --set eval.episode.max_tokens_per_turn=96 --set eval.episode.max_tokens=2048 --db "$DB" --seed "$SEED")
step "held-out evaluation of the SFT model ($EVAL_TASKS tasks x $TRIALS trials)"
$BIN eval "${EVAL[@]}" --policy "engine:$OUT/sft/checkpoint" --tokenizer "$OUT/tokenizer" --out "$OUT/eval_sft"

step "the SFT checkpoint behind the OpenAI API (k2gym serve), evaluated through it ($EVAL_TASKS held-out tasks)"
PORT_FILE="$OUT/serve.port"
$BIN serve --ckpt "$OUT/sft/checkpoint" --tokenizer "$OUT/tokenizer" --port 0 --max-tokens 96 > "$OUT/serve.log" 2>&1 &
SERVE_PID=$!
trap 'kill $SERVE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  PORT=$(grep -o '127.0.0.1:[0-9]*' "$OUT/serve.log" | head -n 1 | cut -d: -f2 || true)
  [ -n "$PORT" ] && break
  sleep 0.2
done
[ -n "$PORT" ] || { echo "serve did not report its port:"; cat "$OUT/serve.log"; exit 1; }
$BIN eval "${EVAL[@]}" --policy "openai:http://127.0.0.1:$PORT/v1" --out "$OUT/eval_served"
kill $SERVE_PID; wait $SERVE_PID 2>/dev/null || true; trap - EXIT

step "RL: K2 objective, PTX, temperature decay, token budget ($ITERS iterations)"
# The temperature schedule spans the run: rl.temperature.steps follows K2GYM_QS_ITERS.
$BIN rl "${RLCFG[@]}" --set "rl_run.tasks=$OUT/tasks.rl.json" --set rl_run.eval_fraction=0 \
  --set rl.iterations="$ITERS" --set rl.temperature.steps="$ITERS" --set rl_run.out="$OUT/rl" --set rl.ptx.data="$OUT/oracle_train.jsonl" \
  --init "$OUT/sft/checkpoint" --db "$DB" --seed "$SEED" --include-heldout

step "held-out evaluation of the RL model"
$BIN eval "${EVAL[@]}" --policy "engine:$OUT/rl/checkpoint" --tokenizer "$OUT/tokenizer" --out "$OUT/eval_rl"

step "curves and report"
$BIN plot "$OUT/rl"
cp "$OUT/eval_rl/eval_trajectories.jsonl" "$OUT/rl/eval_trajectories.jsonl"
$BIN report "$OUT/rl"

python3 - "$OUT/eval_sft/eval.json" "$OUT/eval_served/eval.json" "$OUT/eval_rl/eval.json" "$TRIALS" <<'PY'
import json, sys
runs = [json.load(open(p)) for p in sys.argv[1:4]]
k = int(sys.argv[4])
def row(r):
    ph = r["rows"][-1]["pass_hat"]  # the "all" row
    return [r["success"]] + [ph[str(i)] for i in range(1, k + 1)]
cols = ["success"] + [f"pass^{i}" for i in range(1, k + 1)]
sft, served, rl = runs
print()
print(f"held-out tasks: {sft['tasks']} x {sft['trials']} trials, temperature {sft['temperature']}"
      f" (eval runs {sft['run']}, {served['run']}, {rl['run']}: `k2gym eval compare A B`)")
print(f"{'model':<10}" + "".join(f"{c:>10}" for c in cols))
for name, r in (("SFT", sft), ("SFT served", served), ("RL", rl)):
    print(f"{name:<10}" + "".join(f"{100 * v:>9.1f}%" for v in row(r)))
print(f"{'lift':<10}" + "".join(f"{100 * (b - a):>+9.1f}p" for a, b in zip(row(sft), row(rl))))
PY
echo
echo "quickstart done in $(( $(date +%s) - T0 )) s: store $DB, report $OUT/rl/report.html"
