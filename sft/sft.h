// Supervised fine-tuning on dialogs: trajectories (agents::Trajectory JSON Lines) or OpenAI chat
// exports ({"messages", "tools"} per line) rendered with the Kimi-K2 chat template (loss on assistant
// tokens only), packed into rows with document boundaries kept in attention, trained with MuonClip.
//
// Shapes: a Row holds T input positions; targets are the next token; weights are 1 where the target is
// an assistant token (RenderChat's loss mask) and 0 elsewhere (prompts, tool results, padding).
// Threading: one caller thread; the engine parallelizes internally. Failures (files, bad dialogs,
// checkpoints) come back as Status naming the file, line and field.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json.h"
#include "core/message.h"
#include "core/status.h"
#include "engine/dist/comm.h"
#include "engine/engine.h"
#include "engine/text/tokenizer.h"

namespace k2::sft {

struct Dialog {
  std::string id;                 // "id" of the line when present, else "FILE:LINE"
  std::vector<Message> messages;
  json tools = json::array();
  std::optional<double> reward;   // trajectories carry one
};

// One dialog per line: an object with "messages" (OpenAI messages) and optional "tools", "id",
// "reward" (a Trajectory line has all of them). Lines with a reward below `min_reward` are skipped.
// Errors name FILE:LINE and the field.
Expected<std::vector<Dialog>> LoadDialogs(const std::string& path,
                                          double min_reward = -std::numeric_limits<double>::infinity());

struct Example {
  std::string id;
  std::vector<int32_t> tokens;  // the rendered dialog
  std::vector<uint8_t> mask;    // 1 on assistant tokens (loss)
};
Expected<Example> RenderExample(const Dialog& d, const text::Tokenizer& tok);

struct Row {
  std::vector<int32_t> tokens, targets, positions, segment_ids;  // [T]
  std::vector<float> weights;                                    // [T]
  std::vector<int32_t> segment_parents;  // [T] or empty (none): engine::Batch::segment_parents (RL groups)
};

struct PackStats {
  int64_t rows = 0, documents = 0, truncated = 0, loss_tokens = 0, pad_tokens = 0;
  PackStats& operator+=(const PackStats& o) {
    rows += o.rows, documents += o.documents, truncated += o.truncated;
    loss_tokens += o.loss_tokens, pad_tokens += o.pad_tokens;
    return *this;
  }
};

// A document of n tokens fills n-1 positions (input t predicts token t+1). pack = true: documents are
// laid greedily in order into rows of T (a document that does not fit in the current row's space starts
// a new row); pack = false: one document per row. A document longer than T+1 tokens is cut to T+1.
// Positions restart at 0 per document; segment ids count documents within a row; padding is segment -1
// with weight 0. Assistant targets weigh 1; the other targets of a document (system, user, tool results)
// weigh `context_weight` (0: the K2 SFT loss; > 0 adds language modelling of the whole dialog).
std::vector<Row> PackExamples(const std::vector<Example>& docs, int64_t T, bool pack, PackStats* stats,
                              float context_weight = 0.0f);

// Rows [idx...] as one engine batch (B = idx.size()). With `segments` false the positions and segment
// ids are left empty (one document per row is then required for exactness).
engine::Batch MakeBatch(const std::vector<Row>& rows, const std::vector<int64_t>& idx, bool segments);

struct SftConfig {
  int64_t seq_len = 512;          // T positions per row
  int64_t batch_size = 8;         // rows per step
  int64_t epochs = 3;
  bool pack = true;
  double eval_fraction = 0.1;     // every round(1/f)-th dialog is held out
  int64_t eval_every = 0;         // steps; 0 = after every epoch
  int64_t checkpoint_every = 0;   // steps; 0 = at the end only
  double checkpoint_every_s = 300;  // also a checkpoint once this much time passed since the last (0 = off)
  int64_t threads = 0;
  double aux_loss_alpha = 0.0;
  double context_loss_weight = 0.0;  // weight of non-assistant targets in the training loss
  int64_t copy_dialogs = 0;          // synthetic copy dialogs added to the training rows (copy_dialogs.h)
  int64_t copy_warmup_dialogs = 0;   // further copy dialogs trained on once, before the first epoch
  int64_t value_variants = 0;        // copies of each training dialog with fresh values (value_variants.h)
  engine::dist::DistConfig dist;
  engine::OptimizerConfig optimizer = [] {
    engine::OptimizerConfig o;
    o.lr = 2e-3;
    o.warmup_steps = 10;
    o.weight_decay = 0.0;
    return o;
  }();
  template <class V> void Visit(V& v) {
    v("seq_len", seq_len, "positions per packed row", {.min = 2});
    v("batch_size", batch_size, "rows per optimizer step", {.min = 1});
    v("epochs", epochs, "passes over the training rows (--epochs overrides)", {.min = 1});
    v("pack", pack, "pack several dialogs per row (attention never crosses dialogs)");
    v("eval_fraction", eval_fraction, "share of dialogs held out for the eval loss", {.min = 0.0, .max = 0.5});
    v("eval_every", eval_every, "eval period in steps (0 = after every epoch)", {.min = 0});
    v("checkpoint_every", checkpoint_every, "checkpoint period in steps (0 = at the end only)", {.min = 0});
    v("checkpoint_every_s", checkpoint_every_s,
      "also checkpoint (and commit the metrics) when this many seconds passed since the last save, so a killed "
      "run loses at most that much work (0 = off)",
      {.min = 0.0, .max = 1e9});
    v("threads", threads, "compute threads (0 = default)", {.min = 0});
    v("aux_loss_alpha", aux_loss_alpha, "sequence-wise MoE balance loss weight", {.min = 0.0});
    v("context_loss_weight", context_loss_weight,
      "training-loss weight of the non-assistant tokens (system, user, tool results) relative to the assistant's; "
      "0 = assistant tokens only (K2). > 0 also teaches a model without pretraining to read and copy its context; "
      "the held-out loss stays assistant-only", {.min = 0.0, .max = 1.0});
    v("copy_dialogs", copy_dialogs,
      "synthetic copy dialogs (sft/copy_dialogs.h: echo ids/emails/amounts, read a field of a JSON record) added "
      "to the training rows, seeded by --seed: a model without pretraining learns to copy from its context; "
      "never in the held-out rows", {.min = 0});
    v("copy_warmup_dialogs", copy_warmup_dialogs,
      "further synthetic copy dialogs (distinct from copy_dialogs) trained on once, in their own rows, before the "
      "first epoch: a copy curriculum (docs/training.md: the copy ability appears far sooner than when the same "
      "dialogs are mixed in); the steps count in sft.optimizer's schedule", {.min = 0});
    v("value_variants", value_variants,
      "per training dialog, this many more copies with its ids, emails and decimal amounts replaced by fresh random "
      "values, the same replacement everywhere in the dialog (sft/value_variants.h): the values can then only be "
      "copied, not recalled; never in the held-out rows", {.min = 0});
    v("optimizer", optimizer, "MuonClip settings (total_steps is set from epochs x steps per epoch)");
    v("dist", dist, "data parallelism (active when WORLD_SIZE > 1; docs/distributed.md)");
  }
};

struct SftStep {
  int64_t step = 0, epoch = 0, total_steps = 0;
  engine::ForwardResult fwd;
  engine::StepStats opt;
  double load_imbalance = 0;
  double tokens_per_s = 0;
};

struct SftRun {
  std::string checkpoint_dir;  // "" = no checkpoints
  bool resume = false;
  uint64_t seed = 0;           // row order per epoch
  int64_t max_steps = 0;       // stop after this many steps of this invocation (checkpointed); 0 = all
  std::function<void(const SftStep&)> on_step;
  std::function<void(int64_t step, double eval_loss)> on_eval;
  // Before each checkpoint: makes the metrics logged so far durable and returns what the checkpoint's
  // manifest records of them (engine/checkpoint.h TrainingRun::CommitMetrics). Null = nothing to commit.
  std::function<Expected<json>()> commit_metrics;
  // Data parallelism: null = from the launcher's environment (engine/dist LaunchEnvFromEnv; a world of
  // 1 is plain training). Only rank 0 calls on_step/on_eval/commit_metrics and writes checkpoints.
  engine::dist::Communicator* comm = nullptr;
};

struct SftResult {
  int64_t steps_taken = 0, total_steps = 0;
  int64_t checkpoints = 0;  // saves of this call (periodic ones and the final one)
  bool interrupted = false;  // SIGINT/SIGTERM (core/interrupt.h): stopped after a step, its checkpoint saved
  int64_t interrupted_at = 0;  // the step the interrupted run's checkpoint holds
  double final_train_loss = 0, final_eval_loss = 0;
  PackStats train, eval;
};

// Splits dialogs into train/held-out (deterministic: by index), renders, packs and trains.
//
// Data parallel (world W > 1, docs/distributed.md): every rank renders and orders the same rows; each
// step's global batch (sft.batch_size rows) is split into W contiguous shards, the loss is normalized by
// the global weight sum, gradients are summed over ranks in buckets during Backward, max logits and
// expert loads are reduced before QK-Clip and the router bias update, so W ranks compute what one
// process computes on the combined batch; the held-out loss is sharded by row and summed. Every batch
// must have at least W rows (checked up front). Resume works at any world size: the checkpoint holds
// the step, and the row order depends only on the seed.
Expected<SftResult> TrainSft(engine::Model<float>* model, const text::Tokenizer& tok,
                             const std::vector<Dialog>& dialogs, const SftConfig& cfg, const SftRun& run);

// Weighted mean next-token cross-entropy of the rows (assistant tokens only), in batches of B.
Expected<double> EvalLoss(engine::Model<float>* model, const std::vector<Row>& rows, int64_t B);

}  // namespace k2::sft
