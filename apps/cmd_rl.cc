// `k2gym rl` (the RL loop over synthetic tool tasks: engine policy on the trained model, scripted user,
// judge reward, K2/GRPO + PTX updates, checkpoints, resume) and `k2gym rl eval` (held-out success and
// pass^k of a checkpoint). docs/training.md.
#include <cstdio>
#include <filesystem>
#include <map>

#include "apps/cli.h"
#include "core/thread_pool.h"
#include "eval/passk.h"
#include "rl/engine_rollouts.h"
#include "rl/loop.h"
#include "toolgen/synth/tasks.h"

namespace k2::app {
namespace {

// Inputs of `k2gym rl` / `k2gym rl eval`.
struct RlRunConfig {
  std::string init;                 // model dir: config.json + model.safetensors (an SFT checkpoint)
  std::string tokenizer;            // tokenizer dir
  std::string tasks;                // tau2 task array (k2gym toolgen tasks --out)
  std::string out = "runs/rl";
  double eval_fraction = 0.25;      // every round(1/f)-th task is held out (never trained on)
  bool task_tools_only = false;     // offer a domain only the tools some task's gold plan calls
  rl::RolloutConfig rollout;
  template <class V> void Visit(V& v) {
    v("init", init, "model directory (config.json + model.safetensors), e.g. an SFT checkpoint");
    v("tokenizer", tokenizer, "tokenizer directory");
    v("tasks", tasks, "tau2 task array from `k2gym toolgen tasks --out`");
    v("out", out, "run directory");
    v("eval_fraction", eval_fraction, "share of tasks held out from RL (`rl eval --split heldout`)",
      {.min = 0.0, .max = 0.9});
    v("task_tools_only", task_tools_only,
      "offer each domain only the tools the gold plans of rl_run.tasks call (short prompts for small models)");
    v("rollout", rollout, "episodes: threads, limits, judge reward");
  }
};

K2_CONFIG_SECTION("rl", rl::RlConfig, "the RL loop (k2gym rl)");
K2_CONFIG_SECTION("rl_run", RlRunConfig, "inputs and rollout settings of k2gym rl / rl eval");

struct Args {
  std::string init, tokenizer, tasks, out, split = "heldout";
  bool resume = false, include_heldout = false;
  int64_t stop_after = 0, trials = 4, limit = 0;
  double temperature = 0.0;
} args;

using TaskList = std::vector<std::shared_ptr<const agents::EpisodeTask>>;

Expected<TaskList> LoadTasks(const std::string& path) {
  K2_ASSIGN_OR_RETURN(json arr, ReadJsonFile(path));
  if (!arr.is_array()) return InvalidArgument(path + ": expected a JSON array of tau2 tasks");
  TaskList out;
  for (size_t i = 0; i < arr.size(); ++i) {
    K2_ASSIGN_OR_RETURN(toolgen::synth::Task t, toolgen::synth::TaskFromTau2(arr[i], path + "[" + std::to_string(i) + "]"));
    out.push_back(agents::EpisodeTask::FromSynth(std::move(t)));
  }
  if (out.empty()) return InvalidArgument(path + ": no tasks");
  return out;
}

// Deterministic split by index: every round(1/f)-th task is held out.
void Split(const TaskList& all, double f, TaskList* train, TaskList* heldout) {
  const int64_t every = f > 0 ? std::max<int64_t>(2, std::llround(1.0 / f)) : 0;
  for (size_t i = 0; i < all.size(); ++i)
    (every > 0 && static_cast<int64_t>(i % every) == every - 1 ? heldout : train)->push_back(all[i]);
}

// Model (from rl_run.init), tokenizer, the store's synthetic world and the engine rollouts.
struct Rollouts {
  std::unique_ptr<engine::Model<float>> model;
  std::optional<text::Tokenizer> tok;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<rl::EngineRollouts> engine;

  Status Init(Context& ctx, const RlRunConfig& cfg, const TaskList& tasks, Db* db) {
    K2_ASSIGN_OR_RETURN(engine::ModelConfig mc, engine::LoadModelConfig(cfg.init + "/config.json"));
    K2_ASSIGN_OR_RETURN(model, engine::Model<float>::Create(mc, ctx.g.seed));
    K2_RETURN_IF_ERROR(model->LoadSafetensors(cfg.init + "/model.safetensors"));
    K2_ASSIGN_OR_RETURN(text::Tokenizer t, text::Tokenizer::Load(cfg.tokenizer));
    tok.emplace(std::move(t));
    pool = std::make_unique<ThreadPool>(2);
    K2_ASSIGN_OR_RETURN(auto world, agents::SyntheticWorld::FromStore(db, pool.get()));
    if (cfg.task_tools_only) world = agents::TaskToolsOnly(*world, tasks);
    K2_ASSIGN_OR_RETURN(engine, rl::EngineRollouts::Create(model.get(), &*tok, world, tasks, cfg.rollout));
    return Status::Ok();
  }
  std::vector<agents::Trajectory> Run(const std::vector<agents::EpisodeJob>& jobs, double temperature, uint64_t seed) {
    return engine->Run(jobs, temperature, seed);
  }
};

void ApplyOverrides(RlRunConfig* c) {
  if (!args.init.empty()) c->init = args.init;
  if (!args.tokenizer.empty()) c->tokenizer = args.tokenizer;
  if (!args.tasks.empty()) c->tasks = args.tasks;
  if (!args.out.empty()) c->out = args.out;
}

int RunRlCommand(Context& ctx) {
  auto cfg = config::Get<rl::RlConfig>(ctx.config, "rl");
  if (!cfg.ok()) return Fail(cfg.status());
  auto rc = config::Get<RlRunConfig>(ctx.config, "rl_run");
  if (!rc.ok()) return Fail(rc.status());
  ApplyOverrides(&*rc);
  if (rc->init.empty() || rc->tokenizer.empty() || rc->tasks.empty())
    return Fail(InvalidArgument("rl: rl_run.init, rl_run.tokenizer and rl_run.tasks are required (or --init/--tokenizer/--tasks)"));
  auto all = LoadTasks(rc->tasks);
  if (!all.ok()) return Fail(all.status());
  TaskList train, heldout;
  Split(*all, rc->eval_fraction, &train, &heldout);
  // Tasks on held-out domains (toolgen::synth::IsHeldOutDomain: eval's built-in suites) are never
  // trained on unless asked.
  if (!args.include_heldout) {
    TaskList keep;
    for (auto& t : train)
      if (!toolgen::synth::IsHeldOutDomain(t->domain)) keep.push_back(t);
    if (keep.size() != train.size() && !ctx.g.quiet)
      std::fprintf(stderr, "rl: %zu training task(s) on held-out domains excluded (--include-heldout keeps them)\n",
                   train.size() - keep.size());
    if (keep.empty()) return Fail(InvalidArgument("rl: every training task is on a held-out domain (--include-heldout)"));
    train = std::move(keep);
  }
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  Rollouts ro;
  if (Status s = ro.Init(ctx, *rc, *all, db->get()); !s.ok()) return Fail(s);
  rl::RlRun run;
  run.out_dir = rc->out;
  run.resume = args.resume;
  run.seed = ctx.g.seed;
  run.db = db->get();
  run.stop_after = args.stop_after;
  run.run_config = json{{"rl", config::ToJson(*cfg)}, {"rl_run", config::ToJson(*rc)}, {"seed", ctx.g.seed}}.dump();
  Progress progress("rl", cfg->iterations, ctx.g.quiet ? nullptr : stderr);
  run.on_iteration = [&](int64_t it, const std::map<std::string, double>& m) {
    char note[200];
    std::snprintf(note, sizeof note, "reward %.3f success %.2f T %.2f loss %.4f len %.0f", m.at("reward_mean"),
                  m.at("success_rate"), m.at("temperature"), m.at("loss_policy"), m.at("response_length"));
    progress.SetNote(note);
    progress.Set(it + 1);
  };
  rl::CollectFn collect = [&](const std::vector<agents::EpisodeJob>& jobs, double temperature,
                              uint64_t seed) -> Expected<std::vector<agents::Trajectory>> {
    return ro.Run(jobs, temperature, seed);
  };
  run.partial_collect = [&](const std::vector<rl::PartialJob>& jobs, int64_t iteration, int64_t budget) {
    return ro.engine->Advance(jobs, iteration, budget);
  };
  auto res = rl::RunRl(ro.model.get(), *ro.tok, *cfg, train, collect, run);
  progress.Finish();
  if (!res.ok()) {
    return Fail(res.status());
  }
  if (res->iterations_done >= cfg->iterations) (void)FinishRun(db->get(), res->run, "done");
  Status ts = ro.tok->Save(rc->out + "/checkpoint/tokenizer");
  if (!ts.ok()) return Fail(ts);
  json out = {{"run", res->run}, {"iterations_done", res->iterations_done}, {"train_tasks", train.size()},
              {"heldout_tasks", heldout.size()}, {"checkpoint", rc->out + "/checkpoint"},
              {"metrics_csv", rc->out + "/metrics.csv"}};
  if (!res->history.empty()) {
    out["first"] = res->history.front();
    out["last"] = res->history.back();
  }
  if (ctx.g.json) ctx.PrintJson(out);
  else if (!ctx.g.quiet && !res->history.empty())
    std::printf("rl: %lld iterations, reward %.3f -> %.3f, success %.2f -> %.2f, checkpoint %s/checkpoint\n",
                static_cast<long long>(res->iterations_done), res->history.front().at("reward_mean"),
                res->history.back().at("reward_mean"), res->history.front().at("success_rate"),
                res->history.back().at("success_rate"), rc->out.c_str());
  return kExitOk;
}

// Success and pass^k of a model on the held-out (or train/all) tasks: `trials` episodes per task.
int RunRlEval(Context& ctx) {
  auto rc = config::Get<RlRunConfig>(ctx.config, "rl_run");
  if (!rc.ok()) return Fail(rc.status());
  ApplyOverrides(&*rc);
  if (rc->init.empty() || rc->tokenizer.empty() || rc->tasks.empty())
    return Fail(InvalidArgument("rl eval: --init, --tokenizer and --tasks are required (or rl_run.*)"));
  auto all = LoadTasks(rc->tasks);
  if (!all.ok()) return Fail(all.status());
  TaskList train, heldout, pick;
  Split(*all, rc->eval_fraction, &train, &heldout);
  if (args.split == "heldout") pick = heldout;
  else if (args.split == "train") pick = train;
  else pick = *all;
  if (args.limit > 0 && static_cast<int64_t>(pick.size()) > args.limit) pick.resize(args.limit);
  if (pick.empty()) return Fail(InvalidArgument("rl eval: no tasks in split " + args.split));
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  Rollouts ro;
  if (Status s = ro.Init(ctx, *rc, *all, db->get()); !s.ok()) return Fail(s);
  std::vector<agents::EpisodeJob> jobs;
  for (const auto& t : pick)
    for (int k = 0; k < args.trials; ++k) jobs.push_back({t, k});
  auto trajs = ro.Run(jobs, args.temperature, ctx.g.seed);
  std::map<std::string, eval::TaskTrials> per;
  int64_t ok = 0;
  for (const auto& t : trajs) {
    auto& tt = per[t.task_id];
    tt.task_id = t.task_id;
    tt.domain = t.domain;
    tt.n += 1;
    const bool success = t.reward_components.count("task_success") && t.reward_components.at("task_success") >= 1.0;
    tt.c += success ? 1 : 0;
    tt.reward_sum += t.reward;
    ok += success ? 1 : 0;
  }
  json out = {{"model", rc->init}, {"split", args.split}, {"tasks", pick.size()}, {"trials", args.trials},
              {"temperature", args.temperature}, {"success", static_cast<double>(ok) / static_cast<double>(trajs.size())}};
  for (int64_t k = 1; k <= args.trials; ++k) {
    double sum = 0;
    for (const auto& [id, tt] : per) sum += *eval::PassHatK(tt.n, tt.c, k);
    out["pass^" + std::to_string(k)] = sum / static_cast<double>(per.size());
  }
  if (!args.out.empty()) {
    std::string lines;
    for (const auto& t : trajs) lines += t.ToJson().dump() + "\n";
    std::filesystem::create_directories(args.out);
    if (Status s = WriteFileAtomic(args.out + "/eval_trajectories.jsonl", lines); !s.ok()) return Fail(s);
    if (Status s = WriteFileAtomic(args.out + "/eval.json", out.dump(2) + "\n"); !s.ok()) return Fail(s);
  }
  if (ctx.g.json) ctx.PrintJson(out);
  else if (!ctx.g.quiet) std::printf("%s\n", out.dump().c_str());
  return kExitOk;
}

}  // namespace

K2_COMMAND("rl", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("rl", "RL on synthetic tool tasks: engine policy, K2/GRPO, PTX, schedules (docs/training.md)");
  c->add_option("--init", args.init, "model dir (overrides rl_run.init)")->option_text("DIR");
  c->add_option("--tokenizer", args.tokenizer, "tokenizer dir (overrides rl_run.tokenizer)")->option_text("DIR");
  c->add_option("--tasks", args.tasks, "tau2 task array (overrides rl_run.tasks)")->option_text("FILE");
  c->add_option("--out", args.out, "run directory (overrides rl_run.out)")->option_text("DIR");
  c->add_flag("--resume", args.resume, "continue from OUT/checkpoint");
  c->add_flag("--include-heldout", args.include_heldout, "also train on tasks of held-out domains (eval's built-in suites)");
  c->add_option("--stop-after", args.stop_after, "leave after this many iterations (then --resume)");
  auto* e = c->add_subcommand("eval", "Held-out success and pass^k of a model on synthetic tasks");
  e->add_option("--init", args.init, "model dir")->option_text("DIR");
  e->add_option("--tokenizer", args.tokenizer, "tokenizer dir")->option_text("DIR");
  e->add_option("--tasks", args.tasks, "tau2 task array")->option_text("FILE");
  e->add_option("--split", args.split, "heldout | train | all")->check(CLI::IsMember({"heldout", "train", "all"}))->capture_default_str();
  e->add_option("--trials", args.trials, "episodes per task (pass^k for k <= trials)")->capture_default_str();
  e->add_option("--temperature", args.temperature, "sampling temperature (0 = greedy)")->capture_default_str();
  e->add_option("--limit", args.limit, "evaluate at most this many tasks");
  e->add_option("--out", args.out, "write eval.json and eval_trajectories.jsonl here")->option_text("DIR");
  e->callback([action] { *action = RunRlEval; });
  // The parent's callback runs after the subcommand's: only the plain `rl` picks the loop.
  c->callback([action, e] {
    if (!e->parsed()) *action = RunRlCommand;
  });
  c->require_subcommand(0, 1);
});

}  // namespace k2::app
