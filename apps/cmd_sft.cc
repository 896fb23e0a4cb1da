// `k2gym sft`: supervised fine-tuning of a model on dialogs (trajectory or OpenAI JSON Lines) with the
// Kimi-K2 chat template, packing, MuonClip, held-out loss, checkpoints and resume (docs/training.md).
#include <cstdio>
#include <filesystem>

#include "apps/cli.h"
#include "apps/streamed_run.h"
#include "core/interrupt.h"
#include "core/metrics.h"
#include "engine/checkpoint.h"
#include "engine/dist/comm.h"
#include "engine/engine.h"
#include "engine/text/tokenizer.h"
#include "sft/sft.h"

namespace k2::app {
namespace {

K2_CONFIG_SECTION("sft", sft::SftConfig, "supervised fine-tuning (k2gym sft)");

struct SftArgs {
  std::string model, init, data, tokenizer, out = "runs/sft";
  int64_t epochs = 0;
  double min_reward = -1e300;
  bool resume = false, overwrite = false;
} args;

// A model from a config (vocab widened to the tokenizer's) or from a checkpoint/weights directory.
Expected<std::unique_ptr<engine::Model<float>>> MakeModel(const text::Tokenizer& tok, uint64_t seed) {
  if (!args.init.empty()) {
    K2_ASSIGN_OR_RETURN(engine::ModelConfig mc, engine::LoadModelConfig(args.init + "/config.json"));
    K2_ASSIGN_OR_RETURN(auto m, engine::Model<float>::Create(mc, seed));
    K2_RETURN_IF_ERROR(m->LoadSafetensors(args.init + "/model.safetensors"));
    return m;
  }
  K2_ASSIGN_OR_RETURN(engine::ModelConfig mc, engine::LoadModelConfig(args.model));
  if (mc.vocab_size < tok.vocab_size()) mc.vocab_size = tok.vocab_size();
  return engine::Model<float>::Create(mc, seed);
}

int RunSft(Context& ctx) {
  auto cfg = config::Get<sft::SftConfig>(ctx.config, "sft");
  if (!cfg.ok()) return Fail(cfg.status());
  if (args.epochs > 0) cfg->epochs = args.epochs;
  if (args.model.empty() == args.init.empty()) return Fail(InvalidArgument("sft: give exactly one of --model CFG or --init DIR"));
  auto tok = text::Tokenizer::Load(args.tokenizer);
  if (!tok.ok()) return Fail(tok.status());
  auto dialogs = sft::LoadDialogs(args.data, args.min_reward);
  if (!dialogs.ok()) return Fail(dialogs.status());
  auto model = MakeModel(*tok, ctx.g.seed);
  if (!model.ok()) return Fail(model.status());
  // Data parallel (docs/distributed.md): ranks other than 0 train and exit; they write no tokenizer,
  // metrics, store rows or checkpoints (they read OUT/checkpoint on --resume).
  auto launch = engine::dist::LaunchEnvFromEnv();
  if (!launch.ok()) return Fail(launch.status());
  if (launch->rank != 0) {
    sft::SftRun sr;
    sr.checkpoint_dir = args.out + "/checkpoint";
    sr.resume = args.resume;
    sr.seed = ctx.g.seed;
    InstallInterruptHandlers();  // the ranks agree to stop after the same step (rank 0 saves it)
    auto res = sft::TrainSft(model->get(), *tok, *dialogs, *cfg, sr);
    if (!res.ok()) return Fail(res.status());
    if (ctx.g.json) ctx.PrintJson({{"rank", launch->rank}, {"steps_taken", res->steps_taken}});
    if (res->interrupted) return 128 + (InterruptSignal() > 0 ? InterruptSignal() : 2);
    return kExitOk;
  }
  std::error_code ec;
  std::filesystem::create_directories(args.out, ec);
  if (ec) return Fail(IoError(args.out + ": cannot create: " + ec.message()));
  Status ts = tok->Save(args.out + "/tokenizer");
  if (!ts.ok()) return Fail(ts);
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  json run_cfg = {{"model", args.model}, {"init", args.init}, {"data", args.data}, {"tokenizer", args.tokenizer},
                  {"sft", config::ToJson(*cfg)}, {"seed", ctx.g.seed}};
  // The store run, metrics and checkpoint protocol (engine/checkpoint.h); a resumed run keeps its run id.
  engine::TrainingRunOptions tro;
  tro.db = db->get();
  tro.kind = "sft";
  tro.name = args.out;
  tro.config = run_cfg.dump();
  tro.out_dir = args.out;
  tro.checkpoint_dir = args.out + "/checkpoint";
  tro.metrics_csv = args.out + "/metrics.csv";
  tro.resume = args.resume;
  tro.overwrite = args.overwrite;
  auto tr = engine::TrainingRun::Open(tro);
  if (!tr.ok()) return Fail(tr.status());
  const int64_t run = (*tr)->run_id();
  MetricsLogger& metrics = (*tr)->metrics();
  Progress progress("sft", 0, ctx.g.quiet ? nullptr : stderr);
  sft::SftRun sr;
  sr.checkpoint_dir = args.out + "/checkpoint";
  sr.resume = args.resume;
  sr.seed = ctx.g.seed;
  sr.commit_metrics = [&] { return (*tr)->CommitMetrics(); };
  sr.on_step = [&](const sft::SftStep& s) {
    metrics.Log(s.step, "loss", s.fwd.ce_loss);
    metrics.Log(s.step, "lr", s.opt.lr);
    metrics.Log(s.step, "grad_norm", s.opt.grad_norm);
    metrics.Log(s.step, "max_logit", s.opt.max_logit);
    metrics.Log(s.step, "qk_clipped_heads", static_cast<double>(s.opt.clipped_heads));
    metrics.Log(s.step, "expert_load_max_over_mean", s.load_imbalance);
    metrics.Log(s.step, "tokens_per_s", s.tokens_per_s);
    char note[128];
    std::snprintf(note, sizeof note, "epoch %lld loss %.4f %.0f tok/s", static_cast<long long>(s.epoch), s.fwd.ce_loss,
                  s.tokens_per_s);
    progress.SetNote(note);
    progress.SetTotal(s.total_steps);
    progress.Set(s.step + 1);
  };
  sr.on_eval = [&](int64_t step, double l) { metrics.Log(step, "eval_loss", l); };
  InstallInterruptHandlers();  // SIGINT/SIGTERM: stop after the step in flight with a checkpoint
  auto res = sft::TrainSft(model->get(), *tok, *dialogs, *cfg, sr);
  progress.Finish();
  Status fl = (*tr)->Finish(!res.ok() ? "failed" : res->interrupted ? "interrupted" : "done");
  if (!res.ok()) return Fail(res.status());
  if (!fl.ok()) return Fail(fl);
  if (res->interrupted) {
    return TrainingInterrupted(ctx, run, res->interrupted_at, res->total_steps, "steps");
  }
  (void)AddArtifact(db->get(), run, "checkpoint", sr.checkpoint_dir, "{}");
  json out = {{"run", run},
              {"dialogs", dialogs->size()},
              {"train_rows", res->train.rows},
              {"train_documents", res->train.documents},
              {"truncated_documents", res->train.truncated + res->eval.truncated},
              {"loss_tokens", res->train.loss_tokens},
              {"steps", res->total_steps},
              {"steps_taken", res->steps_taken},
              {"final_train_loss", res->final_train_loss},
              {"final_eval_loss", res->final_eval_loss},
              {"checkpoint", sr.checkpoint_dir}};
  if (ctx.g.json) {
    ctx.PrintJson(out);
  } else if (!ctx.g.quiet) {
    std::printf("sft: %zu dialogs -> %lld rows (%lld loss tokens), %lld steps, train loss %.4f, held-out loss %.4f, "
                "checkpoint %s\n",
                dialogs->size(), static_cast<long long>(res->train.rows), static_cast<long long>(res->train.loss_tokens),
                static_cast<long long>(res->total_steps), res->final_train_loss, res->final_eval_loss,
                sr.checkpoint_dir.c_str());
  }
  return kExitOk;
}

}  // namespace

K2_COMMAND("sft", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("sft", "Supervised fine-tuning on dialogs with the Kimi-K2 template (docs/training.md)");
  c->add_option("--model", args.model, "model config.json (new model; vocab widened to the tokenizer's)")->option_text("FILE")
      ->check(CLI::ExistingFile);
  c->add_option("--init", args.init, "start from this checkpoint/weights dir (config.json + model.safetensors)")->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  c->add_option("--data", args.data, "dialogs: trajectory or OpenAI JSON Lines")->required()->option_text("FILE")
      ->check(CLI::ExistingFile);
  c->add_option("--tokenizer", args.tokenizer, "tokenizer directory (with the chat-template special tokens)")->required()->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  c->add_option("--epochs", args.epochs, "passes over the data (overrides sft.epochs)");
  c->add_option("--out", args.out, "run directory: metrics.csv, tokenizer/, checkpoint/")->capture_default_str();
  c->add_option("--min-reward", args.min_reward, "skip dialogs whose reward is below this");
  c->add_flag("--resume", args.resume, "continue from OUT/checkpoint");
  c->add_flag("--overwrite", args.overwrite, "start afresh in an OUT that holds another run (its checkpoint and metrics are discarded)");
  c->callback([action] { *action = RunSft; });
});

}  // namespace k2::app
