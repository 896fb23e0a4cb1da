// SFT data path (dialog JSON Lines -> chat-template tokens -> packed rows) and the training loop
// (MuonClip, epochs, held-out loss, crash-safe checkpoints with exact resume). See sft/sft.h.
#include "sft/sft.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/fault.h"
#include "core/interrupt.h"
#include "core/rng.h"
#include "engine/checkpoint.h"
#include "engine/dist/data_parallel.h"
#include "engine/pretrain.h"
#include "engine/text/chat_template.h"
#include "sft/copy_dialogs.h"
#include "sft/value_variants.h"

namespace k2::sft {

Expected<std::vector<Dialog>> LoadDialogs(const std::string& path, double min_reward) {
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<Dialog> out;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    K2_ASSIGN_OR_RETURN(json j, ParseJson(line, where));
    if (!j.is_object()) return InvalidArgument(where + ": expected a JSON object with \"messages\"");
    if (!j.contains("messages")) return InvalidArgument(where + ": missing \"messages\" (array of OpenAI messages)");
    Dialog d;
    d.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : where;
    K2_ASSIGN_OR_RETURN(d.messages, MessagesFromJson(j["messages"], where + ": messages"));
    if (j.contains("tools") && !j["tools"].is_null()) {
      if (!j["tools"].is_array()) return InvalidArgument(where + ": tools: expected an array of tool objects");
      d.tools = j["tools"];
    }
    if (j.contains("reward") && !j["reward"].is_null()) {
      if (!j["reward"].is_number()) return InvalidArgument(where + ": reward: expected a number");
      d.reward = j["reward"].get<double>();
      if (*d.reward < min_reward) continue;
    }
    out.push_back(std::move(d));
  }
  return out;
}

Expected<Example> RenderExample(const Dialog& d, const text::Tokenizer& tok) {
  K2_ASSIGN_OR_RETURN(text::RenderedChat r, text::RenderChat(d.messages, d.tools, &tok));
  Example e;
  e.id = d.id;
  e.tokens.assign(r.tokens.begin(), r.tokens.end());
  e.mask = std::move(r.loss_mask);
  if (e.tokens.size() != e.mask.size())
    return Internal(d.id + ": chat template returned " + std::to_string(e.tokens.size()) + " tokens but " +
                    std::to_string(e.mask.size()) + " mask entries");
  return e;
}

std::vector<Row> PackExamples(const std::vector<Example>& docs, int64_t T, bool pack, PackStats* stats,
                              float context_weight) {
  K2_CHECK(T >= 1) << "PackExamples: T=" << T;
  PackStats st;
  std::vector<Row> rows;
  int64_t fill = T;  // positions used in the last row; T = "no open row"
  int32_t seg = 0;
  auto open_row = [&] {
    Row r;
    r.tokens.assign(T, 0);
    r.targets.assign(T, 0);
    r.positions.assign(T, 0);
    r.segment_ids.assign(T, -1);
    r.weights.assign(T, 0.0f);
    rows.push_back(std::move(r));
    fill = 0;
    seg = 0;
  };
  for (const Example& d : docs) {
    if (d.tokens.size() < 2) continue;  // nothing to predict
    int64_t n = static_cast<int64_t>(d.tokens.size()) - 1;  // positions this document needs
    if (n > T) {
      n = T;
      ++st.truncated;
    }
    if (!pack || fill + n > T) open_row();
    Row& r = rows.back();
    for (int64_t j = 0; j < n; ++j) {
      const int64_t p = fill + j;
      r.tokens[p] = d.tokens[j];
      r.targets[p] = d.tokens[j + 1];
      r.weights[p] = d.mask[j + 1] ? 1.0f : context_weight;
      r.positions[p] = static_cast<int32_t>(j);
      r.segment_ids[p] = seg;
      st.loss_tokens += d.mask[j + 1] ? 1 : 0;
    }
    fill += n;
    ++seg;
    ++st.documents;
    if (!pack) fill = T;
  }
  st.rows = static_cast<int64_t>(rows.size());
  for (const Row& r : rows)
    for (int32_t s : r.segment_ids) st.pad_tokens += s < 0 ? 1 : 0;
  if (stats) *stats = st;
  return rows;
}

engine::Batch MakeBatch(const std::vector<Row>& rows, const std::vector<int64_t>& idx, bool segments) {
  engine::Batch b;
  b.B = static_cast<int64_t>(idx.size());
  b.T = rows.empty() ? 0 : static_cast<int64_t>(rows[0].tokens.size());
  bool parents = false;
  for (int64_t i : idx) parents = parents || (segments && !rows[i].segment_parents.empty());
  for (int64_t i : idx) {
    const Row& r = rows[i];
    b.tokens.insert(b.tokens.end(), r.tokens.begin(), r.tokens.end());
    b.targets.insert(b.targets.end(), r.targets.begin(), r.targets.end());
    b.weights.insert(b.weights.end(), r.weights.begin(), r.weights.end());
    if (segments) {
      b.positions.insert(b.positions.end(), r.positions.begin(), r.positions.end());
      b.segment_ids.insert(b.segment_ids.end(), r.segment_ids.begin(), r.segment_ids.end());
    }
    if (parents) {
      if (r.segment_parents.empty()) b.segment_parents.insert(b.segment_parents.end(), r.tokens.size(), -1);
      else b.segment_parents.insert(b.segment_parents.end(), r.segment_parents.begin(), r.segment_parents.end());
    }
  }
  return b;
}

namespace {

// Weighted CE sum and weight sum of the rows `which` (indices into rows), in batches of B.
Expected<std::pair<double, double>> EvalSums(engine::Model<float>* model, const std::vector<Row>& rows,
                                             const std::vector<int64_t>& which, int64_t B) {
  double num = 0, den = 0;
  for (size_t s = 0; s < which.size(); s += static_cast<size_t>(B)) {
    std::vector<int64_t> idx;
    double w = 0;
    for (size_t i = s; i < std::min(which.size(), s + static_cast<size_t>(B)); ++i) {
      idx.push_back(which[i]);
      for (float x : rows[which[i]].weights) w += x;
    }
    if (w <= 0) continue;  // a batch of rows without assistant tokens has no loss to measure
    engine::Batch b = MakeBatch(rows, idx, true);
    K2_ASSIGN_OR_RETURN(engine::ForwardResult f, model->Forward(b));
    num += f.ce_loss * f.weight_sum;
    den += f.weight_sum;
  }
  return std::make_pair(num, den);
}

}  // namespace

Expected<double> EvalLoss(engine::Model<float>* model, const std::vector<Row>& rows, int64_t B) {
  std::vector<int64_t> all(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) all[i] = static_cast<int64_t>(i);
  K2_ASSIGN_OR_RETURN(auto nd, EvalSums(model, rows, all, B));
  if (nd.second <= 0) return InvalidArgument("eval: no assistant tokens in the held-out rows");
  return nd.first / nd.second;
}

namespace {

double LoadImbalance(const engine::Model<float>& m) {
  double worst = 0;
  for (const auto& layer : m.expert_load()) {
    if (layer.empty()) continue;
    double sum = 0, mx = 0;
    for (int64_t c : layer) {
      sum += static_cast<double>(c);
      mx = std::max(mx, static_cast<double>(c));
    }
    if (sum > 0) worst = std::max(worst, mx / (sum / static_cast<double>(layer.size())));
  }
  return worst;
}

// Row order of one epoch: a permutation from the run seed and the epoch number only, so a resumed
// run replays exactly the remaining batches.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  Rng rng = Rng(seed).Fork("sft.epoch." + std::to_string(epoch));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[static_cast<int64_t>(rng.Below(i + 1))]);
  return order;
}

// Every rank must start from the same weights, rows and settings: a hash of them is compared with
// rank 0's so that a mismatched launch fails at the first step instead of silently diverging.
uint64_t Fingerprint(const engine::Model<float>& model, const std::vector<Row>& rows, int64_t step, int64_t total,
                     int64_t B, uint64_t seed) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const auto& p : model.params()) mix(p.w.data(), p.w.size() * sizeof(float));
  const int64_t ints[] = {static_cast<int64_t>(rows.size()), step, total, B};
  mix(ints, sizeof ints);
  mix(&seed, sizeof seed);
  for (const Row& r : rows) mix(r.tokens.data(), r.tokens.size() * sizeof(int32_t));
  return h;
}

// Contiguous shard [lo, hi) of n rows for rank r of W (sizes differ by at most one).
std::pair<int64_t, int64_t> ShardOf(int64_t n, int r, int W) {
  const int64_t lo = r * (n / W) + std::min<int64_t>(r, n % W);
  return {lo, lo + n / W + (r < n % W ? 1 : 0)};
}

}  // namespace

Expected<SftResult> TrainSft(engine::Model<float>* model, const text::Tokenizer& tok,
                             const std::vector<Dialog>& dialogs, const SftConfig& cfg, const SftRun& run) {
  if (tok.vocab_size() > model->config().vocab_size)
    return InvalidArgument("sft: tokenizer vocabulary " + std::to_string(tok.vocab_size()) +
                           " exceeds the model's vocab_size " + std::to_string(model->config().vocab_size));
  engine::SetComputeThreads(cfg.threads);
  std::unique_ptr<engine::dist::Communicator> owned;
  engine::dist::Communicator* comm = run.comm;
  if (comm == nullptr) {
    K2_ASSIGN_OR_RETURN(engine::dist::LaunchEnv env, engine::dist::LaunchEnvFromEnv());
    K2_ASSIGN_OR_RETURN(owned, engine::dist::ConnectFromEnv(env, cfg.dist, "sft"));
    comm = owned.get();
  }
  const int W = comm ? comm->world_size() : 1, R = comm ? comm->rank() : 0;
  std::vector<Example> train, eval;
  const int64_t every = cfg.eval_fraction > 0 ? std::max<int64_t>(2, std::llround(1.0 / cfg.eval_fraction)) : 0;
  for (size_t i = 0; i < dialogs.size(); ++i) {
    K2_ASSIGN_OR_RETURN(Example e, RenderExample(dialogs[i], tok));
    if (every > 0 && static_cast<int64_t>(i % every) == every - 1) {
      eval.push_back(std::move(e));
      continue;
    }
    train.push_back(std::move(e));
    for (int64_t v = 1; v <= cfg.value_variants; ++v) {
      const uint64_t vseed = Rng(run.seed).Fork("sft.value_variants").Fork(i * 1000003 + v).Next();
      K2_ASSIGN_OR_RETURN(Example ve, RenderExample(ValueVariant(dialogs[i], vseed), tok));
      train.push_back(std::move(ve));
    }
  }
  // One seeded set: the first copy_warmup_dialogs go to the warm-up rows, the rest are mixed in.
  std::vector<Example> warm;
  const std::vector<Dialog> copies = MakeCopyDialogs(cfg.copy_warmup_dialogs + cfg.copy_dialogs, run.seed);
  for (size_t i = 0; i < copies.size(); ++i) {
    K2_ASSIGN_OR_RETURN(Example e, RenderExample(copies[i], tok));
    (static_cast<int64_t>(i) < cfg.copy_warmup_dialogs ? warm : train).push_back(std::move(e));
  }
  SftResult res;
  std::vector<Row> train_rows =
      PackExamples(train, cfg.seq_len, cfg.pack, &res.train, static_cast<float>(cfg.context_loss_weight));
  PackStats ws;
  std::vector<Row> warm_rows = PackExamples(warm, cfg.seq_len, cfg.pack, &ws);
  res.train += ws;
  std::vector<Row> eval_rows = PackExamples(eval, cfg.seq_len, cfg.pack, &res.eval);
  if (train_rows.empty()) return InvalidArgument("sft: no training rows (no dialog with at least 2 tokens)");
  if (res.train.loss_tokens == 0) return InvalidArgument("sft: the training dialogs have no assistant tokens");

  const int64_t n = static_cast<int64_t>(train_rows.size());
  const int64_t B = std::min(cfg.batch_size, n);
  const int64_t per_epoch = (n + B - 1) / B;
  const int64_t n_warm = static_cast<int64_t>(warm_rows.size());
  const int64_t warm_steps = (n_warm + B - 1) / B;  // the copy warm-up, once, before epoch 0
  const std::vector<int64_t> warm_order = EpochOrder(n_warm, run.seed, -1);
  res.total_steps = warm_steps + per_epoch * cfg.epochs;
  engine::OptimizerConfig oc = cfg.optimizer;
  oc.total_steps = res.total_steps;
  engine::Optimizer<float> opt(model, oc);

  if (W > 1) {
    // Every batch (the last of an epoch and of the warm-up included) needs a row on every rank.
    for (int64_t rows_n : {n, n_warm}) {
      const int64_t last = rows_n % B;
      if (rows_n > 0 && (std::min(B, rows_n) < W || (last != 0 && last < W)))
        return InvalidArgument("sft: data parallel over " + std::to_string(W) + " ranks needs at least " +
                               std::to_string(W) + " rows in every batch, but " + std::to_string(rows_n) +
                               " rows in batches of " + std::to_string(B) + " leave a batch of " +
                               std::to_string(rows_n < B ? rows_n : last) +
                               " (change sft.batch_size, or launch fewer ranks)");
    }
  }

  engine::TrainerState ts;
  if (run.resume && !run.checkpoint_dir.empty()) {
    // The newest complete checkpoint, after finishing a save that a crash interrupted (engine/checkpoint.h);
    // rank 0 recovers, the other ranks wait for its verdict, then every rank loads it.
    int64_t have = 0;
    if (R == 0) {
      K2_ASSIGN_OR_RETURN(std::optional<engine::CheckpointInfo> ck, engine::RecoverCheckpoint(run.checkpoint_dir));
      have = ck.has_value() ? 1 : 0;
    }
    if (W > 1) K2_RETURN_IF_ERROR(comm->Broadcast(&have, sizeof have, 0));
    if (have) K2_RETURN_IF_ERROR(engine::LoadCheckpoint(run.checkpoint_dir, model, &opt, &ts));
  }
  std::unique_ptr<engine::dist::ModelSync> sync;
  if (W > 1) {
    const uint64_t fp = Fingerprint(*model, train_rows, ts.step, res.total_steps, B, run.seed);
    uint64_t fp0 = fp;
    K2_RETURN_IF_ERROR(comm->Broadcast(&fp0, sizeof fp0, 0));
    double mismatch = fp0 != fp ? 1.0 : 0.0;
    K2_RETURN_IF_ERROR(comm->AllReduce(&mismatch, 1, engine::dist::ReduceOp::kMax));
    if (mismatch > 0)
      return FailedPrecondition("sft: rank " + std::to_string(R) + " of " + std::to_string(W) +
                                (fp0 != fp ? " starts" : ": another rank starts") +
                                " from different weights, data, settings, seed or checkpoint than rank 0 (launch "
                                "every rank with the same --model/--init, --data, --tokenizer, config, --seed and --out)");
    sync = std::make_unique<engine::dist::ModelSync>(comm, model,
                                                     engine::dist::BucketOptions{cfg.dist.bucket_mb, cfg.dist.overlap});
  }
  int64_t saved_step = -1;
  auto last_save = std::chrono::steady_clock::now();
  auto save = [&](int64_t step) -> Status {
    if (R != 0 || run.checkpoint_dir.empty() || step == saved_step) return Status::Ok();
    engine::TrainerState s;
    s.step = step;
    s.data_position = step * B;
    s.extra = {{"kind", "sft"}, {"epochs", cfg.epochs}, {"seed", run.seed}};
    json meta = json::object();
    if (run.commit_metrics) {
      K2_ASSIGN_OR_RETURN(meta, run.commit_metrics());  // the rows before it, first
    }
    K2_RETURN_IF_ERROR(engine::SaveCheckpointWithMeta(run.checkpoint_dir, *model, opt, s, meta));
    saved_step = step;
    last_save = std::chrono::steady_clock::now();
    ++res.checkpoints;
    return Status::Ok();
  };
  // The held-out loss; data parallel: rank r scores rows r, r+W, ... with the hooks detached (its
  // forwards are its own) and the sums are added over ranks.
  auto held_out = [&]() -> Expected<double> {
    if (W == 1) return EvalLoss(model, eval_rows, B);
    sync.reset();
    std::vector<int64_t> mine;
    for (int64_t i = R; i < static_cast<int64_t>(eval_rows.size()); i += W) mine.push_back(i);
    auto nd = EvalSums(model, eval_rows, mine, B);
    double sums[2] = {nd.ok() ? nd->first : 0.0, nd.ok() ? nd->second : 0.0};
    sync = std::make_unique<engine::dist::ModelSync>(comm, model,
                                                     engine::dist::BucketOptions{cfg.dist.bucket_mb, cfg.dist.overlap});
    K2_RETURN_IF_ERROR(comm->AllReduce(sums, 2, engine::dist::ReduceOp::kSum));
    if (!nd.ok()) return nd.status();
    if (sums[1] <= 0) return InvalidArgument("eval: no assistant tokens in the held-out rows");
    return sums[0] / sums[1];
  };
  auto do_eval = [&](int64_t step) -> Status {
    if (eval_rows.empty()) return Status::Ok();
    K2_ASSIGN_OR_RETURN(double el, held_out());
    res.final_eval_loss = el;
    if (run.on_eval && R == 0) run.on_eval(step, el);
    return Status::Ok();
  };

  const auto t0 = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  std::vector<int64_t> order;
  int64_t order_epoch = -1;
  int64_t end_step = res.total_steps;
  if (run.max_steps > 0) end_step = std::min(end_step, ts.step + run.max_steps);
  for (int64_t step = ts.step; step < end_step; ++step) {
    const bool warming = step < warm_steps;
    const int64_t epoch = warming ? 0 : (step - warm_steps) / per_epoch;
    const int64_t k = warming ? step : (step - warm_steps) % per_epoch;
    if (!warming && epoch != order_epoch) {
      order = EpochOrder(n, run.seed, epoch);
      order_epoch = epoch;
    }
    const std::vector<Row>& rows = warming ? warm_rows : train_rows;
    const std::vector<int64_t>& ord = warming ? warm_order : order;
    const int64_t rows_n = warming ? n_warm : n;
    std::vector<int64_t> idx;
    double w = 0;
    for (int64_t i = k * B; i < std::min(rows_n, (k + 1) * B); ++i) {
      idx.push_back(ord[i]);
      for (float x : rows[ord[i]].weights) w += x;
    }
    if (w <= 0) continue;  // a batch of only non-assistant tokens (rare: tiny data) teaches nothing
    const int64_t global_rows = static_cast<int64_t>(idx.size());
    engine::ForwardOptions fo;
    fo.aux_loss_alpha = cfg.aux_loss_alpha;
    if (W > 1) {
      // This rank's contiguous shard; the loss normalizer is the global weight sum, so each rank's loss
      // is its share of the full-batch mean and the summed gradients are the full-batch gradient. The
      // sequence-wise aux loss averages over this rank's rows: rescaled to the global row count.
      const auto [lo, hi] = ShardOf(global_rows, R, W);
      idx = std::vector<int64_t>(idx.begin() + lo, idx.begin() + hi);
      fo.loss_normalizer = w;
      fo.aux_loss_alpha = cfg.aux_loss_alpha * static_cast<double>(hi - lo) / static_cast<double>(global_rows);
    }
    engine::Batch batch = MakeBatch(rows, idx, true);
    model->ZeroGrad();
    K2_ASSIGN_OR_RETURN(engine::ForwardResult f, model->Forward(batch, fo));
    if (sync) K2_RETURN_IF_ERROR(sync->Check());
    model->Backward();
    if (sync) {
      K2_RETURN_IF_ERROR(sync->FinishBackward());
      double parts[2] = {f.ce_loss, f.aux_loss};
      K2_RETURN_IF_ERROR(comm->AllReduce(parts, 2, engine::dist::ReduceOp::kSum));
      f.ce_loss = parts[0], f.aux_loss = parts[1], f.loss = parts[0] + parts[1];
      f.weight_sum = w;
    }
    SftStep s;
    s.total_steps = res.total_steps;
    s.step = step;
    s.epoch = epoch;
    s.fwd = f;
    s.load_imbalance = LoadImbalance(*model);
    s.opt = opt.Step(step);
    if (sync) K2_RETURN_IF_ERROR(sync->Check());
    tokens += global_rows * batch.T;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.tokens_per_s = el > 0 ? static_cast<double>(tokens) / el : 0;
    res.final_train_loss = f.ce_loss;
    ++res.steps_taken;
    if (run.on_step && R == 0) run.on_step(s);
    CrashPoint("train.step");
    const bool epoch_end = !warming && k == per_epoch - 1;
    if ((cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0) || (cfg.eval_every == 0 && epoch_end))
      K2_RETURN_IF_ERROR(do_eval(step + 1));
    const bool periodic = cfg.checkpoint_every > 0 && (step + 1) % cfg.checkpoint_every == 0;
    const bool timed = cfg.checkpoint_every_s > 0 &&
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - last_save).count() >=
                           cfg.checkpoint_every_s;
    if (periodic || timed) K2_RETURN_IF_ERROR(save(step + 1));
    bool interrupt = InterruptRequested() && step + 1 < end_step;
    if (W > 1) {  // every rank stops after the same step (a signal may reach only some of them)
      double f = interrupt ? 1.0 : 0.0;
      K2_RETURN_IF_ERROR(comm->AllReduce(&f, 1, engine::dist::ReduceOp::kMax));
      interrupt = f > 0;
    }
    if (interrupt) {  // stop cleanly: the step's checkpoint to resume from
      K2_RETURN_IF_ERROR(save(step + 1));
      res.interrupted = true;
      res.interrupted_at = step + 1;
      return res;
    }
  }
  if (res.steps_taken == 0 && !eval_rows.empty()) {
    // Resumed at the end (the last save was interrupted after it was published): the held-out loss for
    // the result, not logged again (it was logged before that checkpoint).
    K2_ASSIGN_OR_RETURN(res.final_eval_loss, held_out());
  }
  K2_RETURN_IF_ERROR(save(end_step));
  return res;
}

}  // namespace k2::sft
