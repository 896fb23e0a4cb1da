// Engine commands: `pretrain` (byte-level pretraining with MuonClip, metrics, checkpoints, resume),
// `model info` (parameters, FLOPs, tensor dtypes and memory of a config.json or an HF checkpoint
// directory), `model grad` and `corpus gen` (synthetic text corpus).
#include <cstdio>
#include <filesystem>

#include "apps/cli.h"
#include "core/metrics.h"
#include "engine/checkpoint.h"
#include "engine/data.h"
#include "engine/dist/comm.h"
#include "engine/engine.h"
#include "engine/pretrain.h"

namespace k2::app {
namespace {

K2_CONFIG_SECTION("pretrain", engine::PretrainConfig, "byte-level pretraining (k2gym pretrain)");

struct EngineArgs {
  std::string model = "configs/models/small.json";
  std::string data;
  std::string out = "runs/pretrain";
  int64_t steps = 0;  // 0 = pretrain.steps
  bool resume = false, overwrite = false;
  int64_t context = 4096;
  std::string weights;
  std::string ckpt;
  std::string tokens;
  std::string grad_out;
  std::string corpus_out;
  int64_t corpus_bytes = 1 << 20;
} args;

std::string Human(double v) {
  char buf[64];
  if (v >= 1e12) std::snprintf(buf, sizeof buf, "%.3fT", v / 1e12);
  else if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// Bytes of the model's state per backend (activations excluded; they depend on the batch). The CPU
// Model keeps fp32 weights and an fp32 gradient for every trainable tensor from creation, so serving
// from it costs both; training adds MuonClip's momentum (every trainable tensor) and AdamW's second
// moment (the non-Muon ones). A device backend (engine/backend.h) stores weights in its dtype (fp32 or
// bf16) with fp32 gradients; training keeps fp32 master weights and optimizer state beside them. The
// KV cache holds kv_lora_rank + qk_rope_head_dim values per token and layer.
json MemoryPlan(const engine::ModelConfig& c, const engine::ModelStats& s, int64_t context) {
  const int64_t E = c.n_routed_experts;
  const int64_t n_moe = c.num_hidden_layers - c.first_k_dense_replace;
  // Non-trainable: the router correction bias; AdamW (non-Muon): embeddings, lm_head, norms.
  const int64_t frozen = n_moe * E;
  const int64_t norms = c.num_hidden_layers * (2 * c.hidden_size + c.kv_lora_rank + (c.q_lora_rank ? *c.q_lora_rank : 0)) +
                        c.hidden_size;
  const int64_t adamw = 2 * s.embedding_params + norms;
  const double P = static_cast<double>(s.total_params), T = static_cast<double>(s.total_params - frozen),
               A = static_cast<double>(adamw);
  const double kv_per_token = static_cast<double>(c.num_hidden_layers * (c.kv_lora_rank + c.qk_rope_head_dim));
  auto entry = [&](double weights, double grads, double master, double opt, double kv_elem) {
    const double kv = kv_per_token * static_cast<double>(context) * kv_elem;
    return json{{"inference_bytes", weights + grads + kv},
                {"training_bytes", weights + grads + master + opt},
                {"weights_bytes", weights},
                {"grads_bytes", grads},
                {"master_bytes", master},
                {"optimizer_bytes", opt},
                {"kv_cache_bytes_per_sequence", kv}};
  };
  json out = json::object();
  // CPU Model<float>: w + g always; training: + m for all trainable, + v for AdamW ones.
  out["cpu_fp32"] = entry(4 * P, 4 * T, 0, 4 * T + 4 * A, 4);
  json f32 = entry(4 * P, 0, 0, 0, 4);  // device fp32: inference holds weights only
  f32["training_bytes"] = 4 * P + 4 * T + 4 * T + 4 * A;
  f32["grads_bytes"] = 4 * T;
  f32["optimizer_bytes"] = 4 * T + 4 * A;
  out["device_fp32"] = f32;
  json b16 = entry(2 * P, 0, 0, 0, 2);
  b16["training_bytes"] = 2 * P + 4 * T + 4 * P + 4 * T + 4 * A;
  b16["grads_bytes"] = 4 * T;
  b16["master_bytes"] = 4 * P;
  b16["optimizer_bytes"] = 4 * T + 4 * A;
  out["device_bf16"] = b16;
  return out;
}

std::string Bytes(double b) {
  char buf[64];
  if (b >= 1e12) std::snprintf(buf, sizeof buf, "%.2f TB", b / 1e12);
  else if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.2f MB", b / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f kB", b / 1e3);
  return buf;
}

int ModelInfo(Context& ctx) {
  std::vector<std::string> taken;
  std::string source = args.model;
  Expected<engine::ModelConfig> cfg = InvalidArgument("model info: give --model CONFIG or --ckpt DIR");
  std::optional<engine::HfCheckpointSummary> summary;
  std::optional<engine::Fp8Quantization> quant;
  if (!args.ckpt.empty()) {
    source = args.ckpt;
    auto hc = engine::ReadHfCheckpointConfig(args.ckpt);
    if (!hc.ok()) return Fail(hc.status());
    cfg = hc->config;
    taken = hc->defaults_taken;
    quant = hc->quantization;
    auto sm = engine::SummarizeHfCheckpoint(args.ckpt, hc->config.num_hidden_layers);
    if (!sm.ok()) return Fail(sm.status());
    summary = std::move(*sm);
  } else if (!args.model.empty()) {
    cfg = engine::LoadModelConfig(args.model, &taken);
  }
  if (!cfg.ok()) return Fail(cfg.status());
  engine::ModelStats s = engine::ComputeModelStats(*cfg, args.context);
  json mem = MemoryPlan(*cfg, s, args.context);
  json classes = json::object();
  if (summary) {
    for (const auto& [name, c] : summary->classes)
      classes[name] = {{"tensors", c.tensors}, {"elements", c.elements}, {"bytes", c.bytes}, {"dtypes", c.dtypes}};
  }
  if (ctx.g.json) {
    json out = {{"model", source},
                {"total_params", s.total_params},
                {"activated_params", s.activated_params},
                {"embedding_params", s.embedding_params},
                {"context", s.context},
                {"flops_per_token_forward", s.flops_per_token_fwd},
                {"flops_per_token_train", s.flops_per_token_train},
                {"layers", cfg->num_hidden_layers},
                {"routed_experts", cfg->n_routed_experts},
                {"experts_per_token", cfg->num_experts_per_tok},
                {"defaults_taken", taken},
                {"memory", mem}};
    if (summary) {
      out["checkpoint"] = {{"shards", summary->shards}, {"bytes", summary->bytes}, {"tensor_classes", classes}};
      if (quant)
        out["checkpoint"]["quantization"] = {{"quant_method", "fp8"}, {"fmt", quant->fmt},
                                             {"weight_block_size", {quant->block_rows, quant->block_cols}}};
    }
    ctx.PrintJson(out);
    return kExitOk;
  }
  std::printf("model %s\n", source.c_str());
  if (!taken.empty()) {
    std::printf("  absent fields took DeepseekV3Config defaults:");
    for (auto& t : taken) std::printf(" %s", t.c_str());
    std::printf("\n");
  }
  std::printf("  layers %lld (dense %lld, MoE %lld), hidden %lld, heads %lld, experts %lld (top-%lld, %lld shared)\n",
              static_cast<long long>(cfg->num_hidden_layers), static_cast<long long>(cfg->first_k_dense_replace),
              static_cast<long long>(cfg->num_hidden_layers - cfg->first_k_dense_replace),
              static_cast<long long>(cfg->hidden_size), static_cast<long long>(cfg->num_attention_heads),
              static_cast<long long>(cfg->n_routed_experts), static_cast<long long>(cfg->num_experts_per_tok),
              static_cast<long long>(cfg->n_shared_experts));
  std::printf("  total parameters      %s (%lld)\n", Human(static_cast<double>(s.total_params)).c_str(),
              static_cast<long long>(s.total_params));
  std::printf("  activated per token   %s (%lld)\n", Human(static_cast<double>(s.activated_params)).c_str(),
              static_cast<long long>(s.activated_params));
  std::printf("  FLOPs per token       %s forward, %s train (context %lld)\n", Human(s.flops_per_token_fwd).c_str(),
              Human(s.flops_per_token_train).c_str(), static_cast<long long>(s.context));
  if (summary) {
    std::printf("  checkpoint            %lld shard(s), %s", static_cast<long long>(summary->shards),
                Bytes(static_cast<double>(summary->bytes)).c_str());
    if (quant)
      std::printf(", fp8 %s blocks %lldx%lld", quant->fmt.c_str(), static_cast<long long>(quant->block_rows),
                  static_cast<long long>(quant->block_cols));
    std::printf("\n");
    for (const auto& [name, c] : summary->classes) {
      std::string dts;
      for (const auto& [dt, n] : c.dtypes) dts += (dts.empty() ? "" : ", ") + dt + " x" + std::to_string(n);
      std::printf("    %-15s %5lld tensors %10s elements %10s  %s\n", name.c_str(), static_cast<long long>(c.tensors),
                  Human(static_cast<double>(c.elements)).c_str(), Bytes(static_cast<double>(c.bytes)).c_str(),
                  dts.c_str());
    }
  }
  std::printf("  memory (activations excluded; KV cache for one sequence of %lld tokens)\n",
              static_cast<long long>(args.context));
  for (const char* b : {"cpu_fp32", "device_fp32", "device_bf16"}) {
    const json& m = mem[b];
    std::printf("    %-12s inference %10s  training %10s\n", b, Bytes(m["inference_bytes"].get<double>()).c_str(),
                Bytes(m["training_bytes"].get<double>()).c_str());
  }
  return kExitOk;
}

// Forward + backward of a weights file on given token rows (next-token loss, mean over B*(T-1)); writes
// logits, loss and every gradient by HF name. tools/hf_parity.py compares them with transformers.
int ModelGrad(Context& ctx) {
  auto cfg = engine::LoadModelConfig(args.model);
  if (!cfg.ok()) return Fail(cfg.status());
  auto model = engine::Model<float>::Create(*cfg, 0);
  if (!model.ok()) return Fail(model.status());
  Status ls = (*model)->LoadSafetensors(args.weights);
  if (!ls.ok()) return Fail(ls);
  auto tj = ReadJsonFile(args.tokens);
  if (!tj.ok()) return Fail(tj.status());
  if (!tj->is_array() || tj->empty() || !(*tj)[0].is_array() || (*tj)[0].size() < 2)
    return Fail(InvalidArgument(args.tokens + ": expected [[token, ...], ...] with rows of >= 2 tokens"));
  engine::Batch b;
  b.B = static_cast<int64_t>(tj->size());
  b.T = static_cast<int64_t>((*tj)[0].size());
  for (size_t r = 0; r < tj->size(); ++r) {
    const json& row = (*tj)[r];
    if (!row.is_array() || static_cast<int64_t>(row.size()) != b.T)
      return Fail(InvalidArgument(args.tokens + ": row " + std::to_string(r) + ": expected " + std::to_string(b.T) + " tokens"));
    for (int64_t t = 0; t < b.T; ++t) {
      if (!row[t].is_number_integer())
        return Fail(InvalidArgument(args.tokens + ": [" + std::to_string(r) + "][" + std::to_string(t) + "]: expected integer"));
      b.tokens.push_back(row[t].get<int32_t>());
      const bool last = t + 1 == b.T;
      b.targets.push_back(last ? 0 : row[t + 1].get<int32_t>());
      b.weights.push_back(last ? 0.0f : 1.0f);
    }
  }
  auto r = (*model)->Forward(b);
  if (!r.ok()) return Fail(r.status());
  (*model)->ZeroGrad();
  (*model)->Backward();
  engine::StFile f;
  f.metadata["format"] = "k2gym-grad";
  std::vector<double> buf((*model)->logits().begin(), (*model)->logits().end());
  f.tensors["logits"] = engine::StFromFloats({b.B * b.T, cfg->vocab_size}, buf.data(), static_cast<int64_t>(buf.size()), "F32");
  double loss = r->loss;
  f.tensors["loss"] = engine::StFromFloats({1}, &loss, 1, "F32");
  for (auto& p : (*model)->params()) {
    if (!p.trainable) continue;
    buf.assign(p.g.begin(), p.g.end());
    f.tensors["grad." + p.name] = engine::StFromFloats(p.shape, buf.data(), p.numel(), "F32");
  }
  Status ws = engine::WriteSafetensors(args.grad_out, f);
  if (!ws.ok()) return Fail(ws);
  if (ctx.g.json) ctx.PrintJson({{"loss", loss}, {"out", args.grad_out}});
  return kExitOk;
}

int CorpusGen(Context& ctx) {
  std::string text = engine::GenerateCorpus(ctx.g.seed, args.corpus_bytes);
  Status st = WriteFileAtomic(args.corpus_out, text);
  if (!st.ok()) return Fail(st);
  if (!ctx.g.quiet) std::fprintf(stderr, "wrote %lld bytes to %s\n", static_cast<long long>(text.size()), args.corpus_out.c_str());
  return kExitOk;
}

int Pretrain(Context& ctx) {
  auto pc = config::Get<engine::PretrainConfig>(ctx.config, "pretrain");
  if (!pc.ok()) return Fail(pc.status());
  if (args.steps > 0) pc->steps = args.steps;
  if (pc->optimizer.total_steps < pc->steps) pc->optimizer.total_steps = pc->steps;
  auto mc = engine::LoadModelConfig(args.model);
  if (!mc.ok()) return Fail(mc.status());
  auto model = engine::Model<float>::Create(*mc, ctx.g.seed);
  if (!model.ok()) return Fail(model.status());
  std::error_code ec;
  std::filesystem::create_directories(args.out, ec);
  if (ec) return Fail(IoError(args.out + ": cannot create: " + ec.message()));
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  json run_cfg = {{"model", args.model}, {"data", args.data}, {"pretrain", config::ToJson(*pc)}, {"seed", ctx.g.seed}};
  // The store run, metrics and checkpoint protocol (engine/checkpoint.h); a resumed run keeps its run
  // id. Data-parallel ranks other than 0 write neither metrics nor checkpoints.
  auto launch = engine::dist::LaunchEnvFromEnv();
  if (!launch.ok()) return Fail(launch.status());  // before the run directory is touched
  const bool rank0 = launch->rank == 0;
  engine::TrainingRunOptions tro;
  tro.db = rank0 ? db->get() : nullptr;  // one store run, rank 0's
  tro.kind = "pretrain";
  tro.name = args.out;
  tro.config = run_cfg.dump();
  tro.out_dir = rank0 ? args.out : "";
  tro.checkpoint_dir = rank0 ? args.out + "/checkpoint" : "";
  tro.metrics_csv = rank0 ? args.out + "/metrics.csv" : "";
  tro.resume = args.resume;
  tro.overwrite = args.overwrite;
  auto tr = engine::TrainingRun::Open(tro);
  if (!tr.ok()) return Fail(tr.status());
  const int64_t run = (*tr)->run_id();
  MetricsLogger& metrics = (*tr)->metrics();
  Progress progress("pretrain", pc->steps, ctx.g.quiet ? nullptr : stderr);
  engine::PretrainRun pr;
  pr.corpus_path = args.data;
  pr.checkpoint_dir = args.out + "/checkpoint";
  pr.resume = args.resume;
  pr.seed = ctx.g.seed;
  pr.commit_metrics = [&] { return (*tr)->CommitMetrics(); };
  double first_loss = -1, last_loss = 0;
  pr.on_step = [&](const engine::PretrainStep& s) {
    if (first_loss < 0) first_loss = s.fwd.loss;
    last_loss = s.fwd.loss;
    metrics.Log(s.step, "loss", s.fwd.loss);
    metrics.Log(s.step, "ce_loss", s.fwd.ce_loss);
    if (pc->aux_loss_alpha > 0) metrics.Log(s.step, "aux_loss", s.fwd.aux_loss);
    metrics.Log(s.step, "lr", s.opt.lr);
    metrics.Log(s.step, "grad_norm", s.opt.grad_norm);
    metrics.Log(s.step, "max_logit", s.opt.max_logit);
    metrics.Log(s.step, "qk_clipped_heads", static_cast<double>(s.opt.clipped_heads));
    metrics.Log(s.step, "expert_load_max_over_mean", s.load_imbalance);
    metrics.Log(s.step, "tokens_per_s", s.tokens_per_s);
    const auto& ml = (*model)->max_logits();
    for (size_t l = 0; l < ml.size(); ++l)
      for (size_t h = 0; h < ml[l].size(); ++h)
        metrics.Log(s.step, "max_logit/l" + std::to_string(l) + "h" + std::to_string(h), ml[l][h]);
    char note[128];
    std::snprintf(note, sizeof note, "loss %.4f lr %.2e max_logit %.1f %.0f tok/s", s.fwd.loss, s.opt.lr,
                  s.opt.max_logit, s.tokens_per_s);
    progress.SetNote(note);
    progress.Set(s.step + 1);
  };
  auto taken = engine::Pretrain(model->get(), *pc, pr);
  progress.Finish();
  Status fl = (*tr)->Finish(taken.ok() ? "done" : "failed");
  if (!taken.ok()) return Fail(taken.status());
  if (!fl.ok()) return Fail(fl);
  if (!rank0) {
    if (ctx.g.json) ctx.PrintJson({{"rank", launch->rank}, {"steps_taken", *taken}});
    return kExitOk;
  }
  (void)AddArtifact(db->get(), run, "checkpoint", pr.checkpoint_dir, "{}");
  if (ctx.g.json) {
    ctx.PrintJson({{"run", run}, {"steps_taken", *taken}, {"first_loss", first_loss}, {"last_loss", last_loss},
                   {"checkpoint", pr.checkpoint_dir}, {"metrics_csv", args.out + "/metrics.csv"}});
  } else if (!ctx.g.quiet) {
    std::printf("pretrain: %lld steps, loss %.4f -> %.4f, checkpoint %s\n", static_cast<long long>(*taken), first_loss,
                last_loss, pr.checkpoint_dir.c_str());
  }
  return kExitOk;
}

K2_COMMAND("pretrain", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("pretrain", "Pretrain a model on a text corpus (byte-level tokens), MuonClip");
  c->add_option("--model", args.model, "model config.json (HF DeepseekV3 fields)")->capture_default_str()
      ->check(CLI::ExistingFile);
  c->add_option("--data", args.data, "text corpus file (bytes are tokens)")->required()->check(CLI::ExistingFile);
  c->add_option("--steps", args.steps, "optimizer steps (overrides pretrain.steps)");
  c->add_option("--out", args.out, "run directory: metrics.csv and checkpoint/")->capture_default_str();
  c->add_flag("--resume", args.resume, "continue from OUT/checkpoint");
  c->add_flag("--overwrite", args.overwrite, "start afresh in an OUT that holds another run (its checkpoint and metrics are discarded)");
  c->callback([action] { *action = Pretrain; });
});

K2_COMMAND("model", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("model", "Inspect model configs");
  c->require_subcommand(1);
  auto* info = c->add_subcommand(
      "info", "Parameters, FLOPs per token, tensor dtypes and memory of a config.json or a checkpoint directory");
  auto* im = info->add_option("--model", args.model, "model config.json")->check(CLI::ExistingFile);
  auto* ic = info->add_option("--ckpt", args.ckpt, "Hugging Face checkpoint directory (config.json + safetensors)")
                ->check(CLI::ExistingDirectory);
  im->excludes(ic);
  info->callback([action, im] {
    // One of --model / --ckpt (the struct's default model path serves `pretrain`, not this command).
    if (im->count() == 0) args.model.clear();
    *action = ModelInfo;
  });
  info->add_option("--context", args.context, "context length for attention FLOPs and the KV cache")
      ->capture_default_str();
  auto* grad = c->add_subcommand("grad", "Forward+backward of a weights file on token rows; writes logits, loss, grads");
  grad->add_option("--model", args.model, "model config.json")->required()->check(CLI::ExistingFile);
  grad->add_option("--weights", args.weights, "model.safetensors (HF names)")->required()->check(CLI::ExistingFile);
  grad->add_option("--tokens", args.tokens, "JSON file [[token, ...], ...] (equal-length rows)")->required();
  grad->add_option("--out", args.grad_out, "output .safetensors (logits, loss, grad.<name>)")->required();
  grad->callback([action] { *action = ModelGrad; });
});

K2_COMMAND("corpus", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("corpus", "Text corpora for pretraining demos");
  c->require_subcommand(1);
  auto* gen = c->add_subcommand("gen", "Write a synthetic English-like corpus (deterministic in --seed)");
  gen->add_option("--out", args.corpus_out, "output file")->required();
  gen->add_option("--bytes", args.corpus_bytes, "size in bytes")->capture_default_str();
  gen->callback([action] { *action = CorpusGen; });
});

}  // namespace
}  // namespace k2::app
