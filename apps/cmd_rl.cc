// `k2gym rl`: the RL loop over synthetic tool tasks (engine policy on the trained model, scripted user,
// judge reward) or any task sources (--source), K2/GRPO + PTX updates, checkpoints, resume. A
// checkpoint is evaluated by `k2gym eval --policy engine:CKPT` (docs/training.md).
#include <cstdio>
#include <filesystem>
#include <map>

#include "agents/http_policy.h"
#include "apps/cli.h"
#include "apps/streamed_run.h"
#include "core/interrupt.h"
#include "apps/pipeline_cli.h"
#include "pipeline/endpoints.h"
#include "rewards/policy_bridge.h"
#include "rewards/scrr.h"
#include "core/thread_pool.h"
#include "rl/engine_rollouts.h"
#include "rl/loop.h"
#include "toolgen/synth/tasks.h"

namespace k2::app {
namespace {

// Inputs of `k2gym rl`.
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
    v("eval_fraction", eval_fraction,
      "share of tasks held out from RL (the synthetic source's heldout_fraction gives `eval --split heldout` the same split)",
      {.min = 0.0, .max = 0.9});
    v("task_tools_only", task_tools_only,
      "offer each domain only the tools the gold plans of rl_run.tasks call (short prompts for small models)");
    v("rollout", rollout, "episodes: threads, limits, judge reward");
  }
};

K2_CONFIG_SECTION("rl", rl::RlConfig, "the RL loop (k2gym rl)");
K2_CONFIG_SECTION("rl_run", RlRunConfig, "inputs and rollout settings of k2gym rl");

struct Args {
  PipelineFlags pipe;
  std::string critic;  // "" | policy
  int64_t critic_max_tokens = 24;
  std::string init, tokenizer, tasks, out;
  bool resume = false, overwrite = false, include_heldout = false;
  int64_t stop_after = 0;
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

// SCRR inside an iteration, with the policy being trained (or an endpoint) as critic:
// 1. open-ended tasks (reward {"type": "scrr"}) get their reward here: each group's responses are
//    compared pairwise in both orders (rewards::ScoreGroup) and each response's Bradley–Terry score is
//    its reward (component reward/scrr; task_success = score >= the spec's success_threshold);
// 2. the closed loop on verifiable tasks: pairs of a group whose verifiable rewards differ are compared,
//    agreement with the verifiable outcome is logged and the critic-training records are written to
//    OUT/critic/iter_N.jsonl.
Expected<std::map<std::string, double>> CriticStep(agents::Policy& policy, int64_t max_tokens, const std::string& out,
                                                   int64_t it, std::vector<agents::Trajectory>& trajs,
                                                   const std::vector<int64_t>& groups, const pipeline::Pipeline& pipe) {
  auto first_user = [](const agents::Trajectory& t) {
    for (const auto& m : t.messages)
      if (m.role == "user") return m.content;
    return std::string();
  };
  auto last_answer = [](const agents::Trajectory& t) {
    for (auto m = t.messages.rbegin(); m != t.messages.rend(); ++m)
      if (m->role == "assistant") return m->content;
    return std::string();
  };
  rewards::PolicyChatOptions po;
  po.temperature = 0.0;
  po.max_tokens = max_tokens;
  po.seed = static_cast<uint64_t>(it);
  auto critic = rewards::MakePolicyCritic(policy, po);

  std::map<int64_t, std::vector<size_t>> open;  // group -> members whose task is scored by SCRR
  std::vector<bool> is_open(trajs.size(), false);
  for (size_t i = 0; i < trajs.size(); ++i) {
    const pipeline::Task* task = pipe.Find(trajs[i].task_id);
    if (task && task->reward.is_object() && task->reward.value("type", "") == "scrr") {
      open[groups[i]].push_back(i);
      is_open[i] = true;
    }
  }
  double comparisons = 0, failures = 0;
  for (const auto& [g, members] : open) {
    const pipeline::Task* task = pipe.Find(trajs[members[0]].task_id);
    K2_ASSIGN_OR_RETURN(rewards::ScrrTaskSpec spec, rewards::ScrrSpecFromConfig(task->reward, "task " + task->id + ": reward"));
    if (members.size() < 2)
      return InvalidArgument("rl: task " + task->id + " is scored by SCRR, which compares a group's responses: "
                             "rl.rollouts_per_task must be >= 2");
    std::vector<std::string> responses;
    for (size_t i : members) responses.push_back(last_answer(trajs[i]));
    K2_ASSIGN_OR_RETURN(rewards::ScrrResult r, rewards::ScoreGroup(*critic, first_user(trajs[members[0]]), responses,
                                                                   spec.rubrics, spec.config));
    comparisons += r.comparisons;
    failures += r.critic_failures;
    for (size_t k = 0; k < members.size(); ++k) {
      agents::Trajectory& t = trajs[members[k]];
      t.reward = r.scores[k];
      t.reward_components.erase("score_error");
      t.provenance.erase("score_error");
      t.reward_components["reward/scrr"] = r.scores[k];
      t.reward_components["task_success"] = r.scores[k] >= spec.success_threshold ? 1 : 0;
      t.provenance["reward"] = {{"value", r.scores[k]},
                                {"explanation", "scrr: " + spec.config.method + " score among " +
                                                    std::to_string(members.size()) + " responses, " +
                                                    std::to_string(r.comparisons) + " critic comparisons (" +
                                                    std::to_string(r.critic_failures) + " failed, counted as ties)"},
                                {"config", task->reward}};
    }
  }

  std::map<int64_t, rewards::VerifiedGroup> by_group;
  for (size_t i = 0; i < trajs.size(); ++i) {
    const auto& t = trajs[i];
    if (is_open[i] || t.reward_components.count("score_error")) continue;
    auto& g = by_group[groups[i]];
    if (g.prompt.empty()) g.prompt = first_user(t);
    g.responses.push_back(last_answer(t));
    g.verifiable.push_back(t.reward);
  }
  std::vector<rewards::VerifiedGroup> list;
  for (auto& [id, g] : by_group)
    if (g.responses.size() >= 2) list.push_back(std::move(g));
  std::filesystem::create_directories(out + "/critic");
  K2_ASSIGN_OR_RETURN(rewards::CriticLoopResult r,
                      rewards::RunCriticLoop(*critic, list, rewards::CoreRubrics(),
                                             out + "/critic/iter_" + std::to_string(it) + ".jsonl"));
  return std::map<std::string, double>{{"critic_agreement", r.agreement.rate},
                                       {"critic_decisive_pairs", static_cast<double>(r.agreement.decisive)},
                                       {"critic_agree", static_cast<double>(r.agreement.agree)},
                                       {"critic_ties", static_cast<double>(r.agreement.critic_ties)},
                                       {"critic_records", static_cast<double>(r.records)},
                                       {"scrr_groups", static_cast<double>(open.size())},
                                       {"scrr_comparisons", comparisons},
                                       {"scrr_critic_failures", failures}};
}

// rl --source: RL on any task sources (a weighted mixture), rollouts through the episode pipeline,
// each rollout scored by its task's reward; per-source metrics; optional SCRR closed loop.
// Data-parallel ranks other than 0 leave the run's files and store rows to rank 0 (docs/distributed.md).
bool NotRankZero() {
  auto e = engine::dist::LaunchEnvFromEnv();
  return e.ok() && e->rank != 0;
}

int RunRlSources(Context& ctx, const rl::RlConfig& cfg, const RlRunConfig& rc) {
  if (rc.init.empty() || rc.tokenizer.empty())
    return Fail(InvalidArgument("rl: rl_run.init and rl_run.tokenizer are required (or --init/--tokenizer)"));
  auto set = LoadSources(ctx, args.pipe);
  if (!set.ok()) return Fail(set.status());
  auto su = config::Get<agents::ScriptedUserConfig>(ctx.config, "scripted_user");
  if (!su.ok()) return Fail(su.status());
  auto actors = MakeActors(ctx, "scripted", "", *su);
  if (!actors.ok()) return Fail(actors.status());
  auto pipe = pipeline::Pipeline::Create(*set, ActorOptions(**actors));
  if (!pipe.ok()) return Fail(pipe.status());
  const std::string split = args.pipe.split.empty() ? "train" : args.pipe.split;
  auto idx = SplitIndices(**set, split);
  if (idx.empty()) return Fail(InvalidArgument("rl: no task in split " + json(split).dump() + " (--split)"));
  TaskList train;
  std::map<std::string, std::vector<size_t>> by_source;
  for (size_t i : idx) {
    const pipeline::Task& task = (*set)->tasks[i];
    if (task.reward.is_object() && task.reward.value("type", "") == "scrr" && args.critic.empty())
      return Fail(InvalidArgument("rl: task " + task.id + " (source " + task.source +
                                  ") has reward scrr, scored by a critic comparing a group's responses: give --critic "
                                  "policy (the model being trained) or --critic openai:URL"));
    if (task.reward.is_object() && task.reward.value("type", "") == "scrr" && cfg.rollouts_per_task < 2)
      return Fail(InvalidArgument("rl: task " + task.id + " has reward scrr, which compares the responses of a group: "
                                  "rl.rollouts_per_task must be >= 2"));
    by_source[(*set)->tasks[i].source].push_back(train.size());
    train.push_back((*set)->tasks[i].episode);
  }
  std::vector<std::pair<double, const std::vector<size_t>*>> weighted;
  double total = 0;
  for (const auto& s : (*set)->sources)
    if (by_source.count(s.name)) {
      weighted.push_back({s.weight, &by_source[s.name]});
      total += s.weight;
    }
  auto mc = engine::LoadModelConfig(rc.init + "/config.json");
  if (!mc.ok()) return Fail(mc.status());
  auto model = engine::Model<float>::Create(*mc, ctx.g.seed);
  if (!model.ok()) return Fail(model.status());
  if (Status s = (*model)->LoadSafetensors(rc.init + "/model.safetensors"); !s.ok()) return Fail(s);
  auto tok = text::Tokenizer::Load(rc.tokenizer);
  if (!tok.ok()) return Fail(tok.status());
  auto engine = rl::EngineRollouts::Create(model->get(), &*tok, (*pipe)->Hooks(), rc.rollout);
  if (!engine.ok()) return Fail(engine.status());
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  rl::RlRun run;
  run.out_dir = rc.out;
  run.resume = args.resume;
  run.overwrite = args.overwrite;
  run.seed = ctx.g.seed;
  run.db = db->get();
  run.stop_after = args.stop_after;
  run.run_config = json{{"rl", config::ToJson(cfg)}, {"rl_run", config::ToJson(rc)}, {"seed", ctx.g.seed},
                        {"source", args.pipe.sources}, {"critic", args.critic}}.dump();
  run.sample_task = [&weighted, total](Rng& rng) -> size_t {
    double u = rng.Uniform() * total;
    const std::vector<size_t>* pick = weighted.back().second;
    for (const auto& [w, v] : weighted) {
      if (u < w) {
        pick = v;
        break;
      }
      u -= w;
    }
    return (*pick)[rng.Below(pick->size())];
  };
  std::unique_ptr<agents::Policy> critic_llm;  // --critic openai:URL (endpoint: config critic_llm)
  if (args.critic.rfind("openai:", 0) == 0) {
    auto hc = pipeline::EndpointFor(ctx.config, "critic", args.critic.substr(7));
    if (!hc.ok()) return Fail(hc.status());
    auto h = agents::HttpPolicy::Create(*hc);
    if (!h.ok()) return Fail(h.status());
    critic_llm = std::move(*h);
  }
  if (!args.critic.empty()) {
    rl::EngineRollouts* eng = engine->get();
    agents::Policy* external = critic_llm.get();
    const std::string out = rc.out;
    const int64_t mt = args.critic_max_tokens;
    const pipeline::Pipeline* p = pipe->get();
    run.after_collect = [eng, external, out, mt, p](int64_t it, std::vector<agents::Trajectory>& trajs,
                                                    const std::vector<int64_t>& groups) {
      return CriticStep(external ? *external : eng->policy(), mt, out, it, trajs, groups, *p);
    };
  }
  Progress progress("rl", cfg.iterations, ctx.g.quiet ? nullptr : stderr);
  run.on_iteration = [&](int64_t it, const std::map<std::string, double>& m) {
    char note[200];
    std::snprintf(note, sizeof note, "reward %.3f success %.2f T %.2f", m.at("reward_mean"), m.at("success_rate"),
                  m.at("temperature"));
    progress.SetNote(note);
    progress.Set(it + 1);
  };
  rl::EngineRollouts* eng = engine->get();
  rl::CollectFn collect = [eng](const std::vector<agents::EpisodeJob>& jobs, double temperature,
                                uint64_t seed) -> Expected<std::vector<agents::Trajectory>> {
    return eng->Run(jobs, temperature, seed);
  };
  run.partial_collect = [eng](const std::vector<rl::PartialJob>& jobs, int64_t iteration, int64_t budget) {
    return eng->Advance(jobs, iteration, budget);
  };
  InstallInterruptHandlers();  // SIGINT/SIGTERM: stop after the iteration in flight with a checkpoint
  auto res = rl::RunRl(model->get(), *tok, cfg, train, collect, run);
  progress.Finish();
  if (!res.ok()) return Fail(res.status());
  if (NotRankZero()) return kExitOk;  // data parallel: rank 0 writes the run's files
  if (res->iterations_done >= cfg.iterations) (void)FinishRun(db->get(), res->run, "done");
  if (Status ts = tok->Save(rc.out + "/checkpoint/tokenizer"); !ts.ok()) return Fail(ts);
  if (res->interrupted) return TrainingInterrupted(ctx, res->run, res->iterations_done, cfg.iterations, "iterations");
  json per_source = json::object();
  if (!res->history.empty())
    for (const auto& [k, v] : res->history.back())
      if (k.rfind("source.", 0) == 0) per_source[k] = v;
  json out = {{"run", res->run}, {"iterations_done", res->iterations_done}, {"train_tasks", train.size()},
              {"sources", (*set)->Summary()}, {"checkpoint", rc.out + "/checkpoint"},
              {"metrics_csv", rc.out + "/metrics.csv"}};
  json hist = json::array();
  for (const auto& h : res->history) {
    json row = json::object();
    for (const auto& [k, v] : h) row[k] = v;
    hist.push_back(row);
  }
  out["history"] = hist;
  if (ctx.g.json) ctx.PrintJson(out);
  else if (!ctx.g.quiet && !res->history.empty())
    std::printf("rl: %lld iterations, reward %.3f -> %.3f, checkpoint %s/checkpoint\n",
                static_cast<long long>(res->iterations_done), res->history.front().at("reward_mean"),
                res->history.back().at("reward_mean"), rc.out.c_str());
  return kExitOk;
}

int RunRlCommand(Context& ctx) {
  auto cfg = config::Get<rl::RlConfig>(ctx.config, "rl");
  if (!cfg.ok()) return Fail(cfg.status());
  auto rc = config::Get<RlRunConfig>(ctx.config, "rl_run");
  if (!rc.ok()) return Fail(rc.status());
  ApplyOverrides(&*rc);
  if (!args.critic.empty() && args.critic != "policy" && args.critic.rfind("openai:", 0) != 0)
    return Fail(InvalidArgument("--critic: expected policy (the model being trained) or openai:URL, got " + json(args.critic).dump()));
  if (!args.pipe.sources.empty()) return RunRlSources(ctx, *cfg, *rc);
  if (!args.critic.empty()) return Fail(InvalidArgument("--critic needs --source (tasks with verifiable rewards)"));
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
  run.overwrite = args.overwrite;
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
  InstallInterruptHandlers();  // SIGINT/SIGTERM: stop after the iteration in flight with a checkpoint
  auto res = rl::RunRl(ro.model.get(), *ro.tok, *cfg, train, collect, run);
  progress.Finish();
  if (!res.ok()) {
    return Fail(res.status());
  }
  if (NotRankZero()) return kExitOk;  // data parallel: rank 0 writes the run's files
  if (res->iterations_done >= cfg->iterations) (void)FinishRun(db->get(), res->run, "done");
  Status ts = ro.tok->Save(rc->out + "/checkpoint/tokenizer");
  if (!ts.ok()) return Fail(ts);
  if (res->interrupted) return TrainingInterrupted(ctx, res->run, res->iterations_done, cfg->iterations, "iterations");
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

}  // namespace

K2_COMMAND("rl", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("rl", "RL on synthetic tool tasks: engine policy, K2/GRPO, PTX, schedules (docs/training.md)");
  c->add_option("--init", args.init, "model dir (overrides rl_run.init)")->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  c->add_option("--tokenizer", args.tokenizer, "tokenizer dir (overrides rl_run.tokenizer)")->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  c->add_option("--tasks", args.tasks, "tau2 task array (overrides rl_run.tasks)")->option_text("FILE")
      ->check(CLI::ExistingFile);
  c->add_option("--out", args.out, "run directory (overrides rl_run.out)")->option_text("DIR");
  c->add_flag("--resume", args.resume, "continue from OUT/checkpoint");
  c->add_flag("--overwrite", args.overwrite, "start afresh in an OUT that holds another run (its checkpoint and metrics are discarded)");
  c->add_flag("--include-heldout", args.include_heldout, "also train on tasks of held-out domains (eval's built-in suites)");
  c->add_option("--stop-after", args.stop_after, "leave after this many iterations (then --resume)");
  AddSourceFlags(c, &args.pipe);
  c->add_option("--split", args.pipe.split, "with --source: the split trained on (default train)");
  c->add_option("--critic", args.critic,
                "policy | openai:URL: SCRR closed loop each iteration, the policy being trained (or an endpoint, "
                "model/key from config critic_llm) judging pairs of responses; logs critic_agreement with the "
                "verifiable rewards");
  c->add_option("--critic-max-tokens", args.critic_max_tokens, "tokens of one critic verdict")->check(CLI::Range(1, 4096));
  c->callback([action] { *action = RunRlCommand; });
});

}  // namespace k2::app
