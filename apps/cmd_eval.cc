// `k2gym eval`: runs a τ²-style suite (suite file or builtin held-out suite) or a BFCL/ACEBench-style
// function-calling suite against a policy, prints the pass^k tables and stores the run; `k2gym eval
// compare RUN_A RUN_B` shows two stored runs side by side. Registers the "eval" run-config section.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "agents/engine_policy.h"
#include "agents/http_policy.h"
#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "apps/cli.h"
#include "apps/pipeline_cli.h"
#include "apps/streamed_run.h"
#include "core/fault.h"
#include "pipeline/endpoints.h"
#include "core/thread_pool.h"
#include "engine/gen/generator.h"
#include "eval/fc_suite.h"
#include "eval/replay_policy.h"
#include "eval/results.h"
#include "eval/tau2_suite.h"
#include "rewards/policy_bridge.h"

namespace k2::app {
namespace {

struct EvalConfig {
  int trials = 4;
  std::vector<int64_t> ks = {1, 2, 4};
  int threads = 0;
  int fc_max_steps_per_turn = 20;
  std::string on_missing_judge = "skip";
  bool keep_trajectories = true;
  agents::EpisodeLimits episode;
  agents::OracleConfig oracle;
  agents::ScriptedUserConfig scripted_user;
  agents::SyntheticEnvConfig env;
  template <class V>
  void Visit(V& v) {
    v("trials", trials, "trials per task (τ² suites) or per case (function-calling suites)", {.min = 1, .max = 10000});
    v("ks", ks, "k values of the pass^k columns (each <= trials to be reported)");
    v("threads", threads, "concurrent episodes / cases (0 = hardware threads)", {.min = 0, .max = 4096});
    v("fc_max_steps_per_turn", fc_max_steps_per_turn,
      "multi-turn function-calling cases (BFCL multi_turn, ACEBench agent): assistant messages with calls "
      "allowed in one user turn before the case fails",
      {.min = 1, .max = 1000});
    v("on_missing_judge", on_missing_judge,
      "NL_ASSERTION without --judge: skip it (counted as nl_assertion_unjudged) or fail the run",
      {.choices = {"skip", "error"}});
    v("keep_trajectories", keep_trajectories, "store each τ² trial's trajectory JSON in eval_trials");
    v("episode", episode, "episode limits of τ² trials");
    v("oracle", oracle, "the oracle policy's imperfections (--policy oracle)");
    v("scripted_user", scripted_user, "the scripted simulated user of τ² trials");
    v("env", env, "the synthetic environment of τ² trials (fault rates; 0 by default so scores are exact)");
  }
};
K2_CONFIG_SECTION("eval", EvalConfig, "Evaluation: trials, pass^k, episode limits of `k2gym eval` (docs/eval.md).");

struct Options {
  std::string suite, policy = "oracle", judge, tokenizer, user = "scripted";
  PipelineFlags pipe;
  int trials = 0;
  std::string ks;
  int threads = -1;
  int64_t run_a = 0, run_b = 0;
  std::string resume;  // --resume RUN (with --source)
  std::string out;     // --out DIR (with --source): eval.json + eval_trajectories.jsonl
  // τ²-bench's own domains (--suite tau2:DOMAIN): eval/tau2_suite.h RunNativeTau2.
  std::string tau2_data, split, agent_llm, user_llm;
  int max_tasks = 0, max_steps = 100;
};
Options g_opts;

Expected<std::vector<int64_t>> ParseKs(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    try {
      size_t used = 0;
      long long k = std::stoll(part, &used);
      if (used != part.size() || k < 1) throw std::invalid_argument(part);
      out.push_back(k);
    } catch (const std::exception&) {
      return InvalidArgument("--k: expected comma-separated integers >= 1, got \"" + s + "\"");
    }
  }
  if (out.empty()) return InvalidArgument("--k: expected comma-separated integers >= 1, got \"" + s + "\"");
  return out;
}

// engine:CKPT: the checkpoint's model (config.json + model.safetensors) behind a continuous-batching
// Generator and the Kimi-K2 chat template. Owns everything the EnginePolicy points into; members are
// destroyed in reverse order (policy, generator, tokenizer, model).
class EngineBundle : public agents::Policy {
 public:
  static Expected<std::unique_ptr<agents::Policy>> Load(const std::string& ckpt, const std::string& tokenizer, uint64_t seed) {
    auto b = std::unique_ptr<EngineBundle>(new EngineBundle());
    b->name_ = "engine:" + ckpt;
    K2_ASSIGN_OR_RETURN(engine::ModelConfig cfg, engine::LoadModelConfig(ckpt + "/config.json"));
    K2_ASSIGN_OR_RETURN(b->model_, engine::Model<float>::Create(cfg, seed));
    K2_RETURN_IF_ERROR(b->model_->LoadSafetensors(ckpt + "/model.safetensors"));
    std::string tdir = tokenizer.empty() ? ckpt : tokenizer;
    auto tok = text::Tokenizer::Load(tdir);
    if (!tok.ok())
      return tok.status().Context("engine policy: tokenizer (--tokenizer DIR, default the checkpoint folder)");
    b->tok_.emplace(std::move(*tok));
    gen::GeneratorOptions go;
    go.tokenizer = &*b->tok_;
    K2_ASSIGN_OR_RETURN(b->gen_, gen::Generator::Create(b->model_.get(), go));
    agents::EnginePolicyOptions po;
    po.name = b->name_;
    K2_ASSIGN_OR_RETURN(b->policy_, agents::EnginePolicy::Create(b->gen_.get(), &*b->tok_, po));
    return std::unique_ptr<agents::Policy>(std::move(b));
  }
  std::string name() const override { return name_; }
  Expected<agents::PolicyTurn> Act(const agents::PolicyRequest& r) override { return policy_->Act(r); }
  void EndSession(const std::string& s) override { policy_->EndSession(s); }

 private:
  EngineBundle() = default;
  std::string name_;
  std::unique_ptr<engine::Model<float>> model_;
  std::optional<text::Tokenizer> tok_;
  std::unique_ptr<gen::Generator> gen_;
  std::unique_ptr<agents::EnginePolicy> policy_;
};

// oracle | random | replay:FILE | openai:URL | engine:CKPT
Expected<std::unique_ptr<agents::Policy>> MakePolicy(const std::string& spec, const Context& ctx, const EvalConfig& cfg,
                                                     const char* flag) {
  if (spec == "oracle") return std::unique_ptr<agents::Policy>(new agents::OracleTaskPolicy(cfg.oracle));
  if (spec == "random") return std::unique_ptr<agents::Policy>(new agents::RandomPolicy());
  if (spec.rfind("replay:", 0) == 0) {
    K2_ASSIGN_OR_RETURN(auto p, eval::ReplayPolicy::Load(spec.substr(7)));
    return std::unique_ptr<agents::Policy>(std::move(p));
  }
  if (spec.rfind("openai:", 0) == 0) {
    K2_ASSIGN_OR_RETURN(auto hc, pipeline::EndpointFor(ctx.config, std::string(flag) == "--judge" ? "judge" : "agent", spec.substr(7)));
    K2_ASSIGN_OR_RETURN(auto p, agents::HttpPolicy::Create(hc));
    return std::unique_ptr<agents::Policy>(std::move(p));
  }
  if (spec.rfind("engine:", 0) == 0) return EngineBundle::Load(spec.substr(7), g_opts.tokenizer, ctx.g.seed);
  return InvalidArgument(std::string(flag) + ": unknown policy \"" + spec +
                         "\" (expected oracle, random, replay:FILE, openai:URL, engine:CKPT)");
}

std::string Resolve(const std::string& base, const json& j, const char* key, const std::string& where) {
  (void)where;
  std::filesystem::path p = j.value(key, std::string());
  if (p.empty() || p.is_absolute()) return p.string();
  return (std::filesystem::path(base).parent_path() / p).string();
}

// Records of scored pipeline trajectories (group = the task's source).
std::vector<eval::TrialRecord> PipelineRecords(const std::vector<agents::Trajectory>& trajs, bool keep) {
  std::vector<eval::TrialRecord> records;
  for (const auto& t : trajs) {
    eval::TrialRecord r;
    r.case_id = t.task_id;
    r.group = t.provenance.value("source", std::string("?"));
    r.trial = t.trial;
    r.reward = t.reward;
    r.success = t.reward_components.count("task_success") && t.reward_components.at("task_success") >= 1;
    r.end_reason = t.end_reason;
    r.detail = t.provenance.contains("score_error") ? "score_error: " + t.provenance["score_error"].get<std::string>()
               : t.provenance.contains("reward") ? t.provenance["reward"].value("explanation", std::string())
                                                 : t.error;
    json c = json::object();
    for (const auto& [k, v] : t.reward_components) c[k] = v;
    r.components = c;
    if (keep) r.trajectory = t.ToJson();
    records.push_back(std::move(r));
  }
  return records;
}

// (end reason, error text) per trial, for the loud-failure check (apps/pipeline_cli.h EpisodeErrors).
std::vector<std::pair<std::string, std::string>> RecordEnds(const std::vector<eval::TrialRecord>& records) {
  std::vector<std::pair<std::string, std::string>> ends;
  for (const auto& r : records) {
    std::string why = r.detail;
    if (r.trajectory.is_object() && r.trajectory.contains("error") && r.trajectory["error"].is_string() &&
        !r.trajectory["error"].get<std::string>().empty())
      why = r.trajectory["error"].get<std::string>();
    ends.emplace_back(r.end_reason, why);
  }
  return ends;
}

// The end of every eval: the run stored (summary + trials), marked done or, when most episodes hit
// endpoint/environment errors (`errors`), failed; the table (or --json) printed; the exit code.
// `streamed`: the run its records were stored in as they finished (the summary is added and the run
// ended here); null: a new run is stored with every record now.
int StoreAndReport(Context& ctx, const std::string& name, const json& run_cfg, json summary,
                   const std::vector<eval::TrialRecord>& records, const Status& errors, int64_t score_errors,
                   StreamedRun* streamed = nullptr, int64_t planned = 0) {
  int64_t run_id = 0;
  int end_code = kExitOk;
  if (streamed) {
    run_id = streamed->id();
    summary["run"] = run_id;
    summary["planned_trials"] = planned;
    streamed->Store([&](Db* db) { return eval::SaveEvalSummary(db, run_id, summary); });
    end_code = streamed->End(errors.ok(), static_cast<int64_t>(records.size()), planned, "trials");
    if (end_code != kExitOk && !streamed->interrupted()) return end_code;  // storing failed
  } else {
    auto db = ctx.OpenDb();
    if (!db.ok()) return Fail(db.status());
    auto run = CreateRun(db->get(), "eval", name, run_cfg.dump());
    if (!run.ok()) return Fail(run.status());
    run_id = *run;
    summary["run"] = run_id;
    if (Status s = eval::SaveEvalRun(db->get(), run_id, summary, records); !s.ok()) {
      (void)FinishRun(db->get(), run_id, "failed");
      return Fail(s);
    }
    if (Status s = FinishRun(db->get(), run_id, errors.ok() ? "done" : "failed"); !s.ok()) return Fail(s);
  }
  if (ctx.g.json) {
    json rows = json::array();
    for (auto& r : records)
      rows.push_back({{"case", r.case_id}, {"group", r.group}, {"trial", r.trial}, {"reward", r.reward},
                      {"success", r.success}, {"end_reason", r.end_reason}, {"detail", r.detail}});
    summary["trials_detail"] = rows;
    ctx.PrintJson(summary);
  } else {
    std::printf("%s", eval::FormatSummary(summary).c_str());
    if (score_errors) std::printf("%lld trial(s) could not be scored (score_error)\n", static_cast<long long>(score_errors));
    int64_t unjudged = 0;  // components "[reward/]nl_assertion_skipped|unjudged" (τ² suites, tool reward)
    for (const auto& r : records) {
      if (!r.components.is_object()) continue;
      for (const auto& [k, v] : r.components.items())
        if (k.ends_with("nl_assertion_skipped") || k.ends_with("nl_assertion_unjudged")) {
          ++unjudged;
          break;
        }
    }
    if (unjudged)
      std::fprintf(stderr, "warning: %lld trial(s) were scored without their NL assertions (no --judge): their "
                   "scores leave those checks out\n", static_cast<long long>(unjudged));
    std::printf("stored as run %lld in %s\n", static_cast<long long>(run_id), ctx.g.db_path.c_str());
  }
  if (end_code != kExitOk) return end_code;  // interrupted: 128 + signal, the resume command printed
  return errors.ok() ? kExitOk : Fail(errors);
}

// A streamed eval run (apps/streamed_run.h): created, or with --resume claimed together with the trials
// it already holds; each finished trial is stored at once.
struct StreamedEval {
  std::unique_ptr<StreamedRun> run;
  std::map<std::pair<std::string, int>, eval::TrialRecord> before;  // (case, trial) -> stored record

  static Expected<StreamedEval> Start(const Context& ctx, const std::string& name, const json& run_cfg, json fp,
                                      int trials) {
    fp["seed"] = std::to_string(ctx.g.seed);
    fp["trials"] = trials;
    StreamedEval s;
    K2_ASSIGN_OR_RETURN(s.run, StreamedRun::Start(ctx, "eval", name, run_cfg, fp, g_opts.resume));
    if (s.run->resumed()) {
      K2_ASSIGN_OR_RETURN(auto old, eval::LoadEvalTrials(s.run->db(), s.run->id()));
      for (auto& r : old) s.before[{r.case_id, r.trial}] = std::move(r);
    }
    return s;
  }
  bool Done(const std::string& case_id, int trial) const { return before.count({case_id, trial}) > 0; }
  void Store(const std::vector<eval::TrialRecord>& rec) {  // on the worker that finished the trial
    run->Store([&](Db* db) { return eval::SaveEvalTrials(db, run->id(), rec); });
    CrashPoint("eval.trial_stored");
  }
};

int RunEval(Context& ctx);

// eval --source: any task source through the one episode pipeline, scored by each task's reward.
int RunSourceEval(Context& ctx, const EvalConfig& cfg) {
  if (!g_opts.agent_llm.empty()) g_opts.policy = g_opts.agent_llm;
  auto set = LoadSources(ctx, g_opts.pipe);
  if (!set.ok()) return Fail(set.status());
  std::unique_ptr<agents::Policy> policy;
  if (g_opts.policy == "gold" || g_opts.policy == "perturbed") {
    policy = pipeline::MakeGoldPolicy(*set, g_opts.policy == "perturbed");
  } else {
    auto p = MakePolicy(g_opts.policy, ctx, cfg, "--policy");
    if (!p.ok()) return Fail(p.status());
    policy = std::move(*p);
  }
  auto actors = MakeActors(ctx, g_opts.user_llm.empty() ? g_opts.user : g_opts.user_llm, "", cfg.scripted_user);
  if (!actors.ok()) return Fail(actors.status());
  if (!g_opts.judge.empty()) {  // any policy spec may judge (replay:FILE in tests, openai:URL)
    auto j = MakePolicy(g_opts.judge, ctx, cfg, "--judge");
    if (!j.ok()) return Fail(j.status());
    (*actors)->judge_llm = std::move(*j);
    (*actors)->judge = rewards::PolicyChat(*(*actors)->judge_llm);
  }
  auto pipe = pipeline::Pipeline::Create(*set, ActorOptions(**actors));
  if (!pipe.ok()) return Fail(pipe.status());
  auto idx = SplitIndices(**set, g_opts.split);
  if (idx.empty()) return Fail(InvalidArgument("eval: no task in split " + json(g_opts.split).dump()));
  if (g_opts.max_tasks > 0 && static_cast<int64_t>(idx.size()) > g_opts.max_tasks) idx.resize(g_opts.max_tasks);
  if (!g_opts.out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(g_opts.out, ec);
    if (Status s = CheckOutputPath("--out", g_opts.out + "/eval.json"); !s.ok()) return Fail(s);
  }
  std::string label;
  for (const auto& s : g_opts.pipe.sources) label += (label.empty() ? "" : "+") + s;
  json run_cfg = {{"source", g_opts.pipe.sources}, {"policy", g_opts.policy}, {"judge", g_opts.judge},
                  {"user", g_opts.user}, {"eval", ctx.config.value("eval", json())}};
  if (g_opts.max_tasks > 0) run_cfg["max_tasks"] = g_opts.max_tasks;
  // Streamed: each trial is stored as it ends; --resume RUN runs only the trials that run lacks.
  json fp = run_cfg;
  fp["split"] = g_opts.split;
  auto se = StreamedEval::Start(ctx, label, run_cfg, fp, cfg.trials);
  if (!se.ok()) return Fail(se.status());
  const auto& before = se->before;
  const auto jobs = (*pipe)->Jobs(idx, cfg.trials);
  pipeline::RunJobsOptions ro;
  ro.threads = cfg.threads;
  ro.seed = ctx.g.seed;
  ro.limits = cfg.episode;
  if (!ctx.g.quiet && !ctx.g.json) ro.progress_label = "eval";
  ro.skip = [&](size_t i) { return se->Done(jobs[i].task->id, jobs[i].trial); };
  ro.stop = [&] { return se->run->stop(); };
  ro.on_done = [&](agents::Trajectory& t) { se->Store(PipelineRecords({t}, cfg.keep_trajectories)); };
  auto ran = pipeline::RunJobs(jobs, (*pipe)->Hooks(), *policy, ro);
  std::vector<agents::Trajectory> trajs;  // this process's, in job order
  std::vector<eval::TrialRecord> records;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!ran[i].end_reason.empty()) {
      auto rec = PipelineRecords({ran[i]}, cfg.keep_trajectories);
      records.push_back(std::move(rec[0]));
      trajs.push_back(std::move(ran[i]));
    } else if (auto it = before.find({jobs[i].task->id, jobs[i].trial}); it != before.end()) {
      records.push_back(it->second);
    }
  }
  json meta = {{"suite", label}, {"kind", "source"}, {"policy", policy->name()}, {"trials", cfg.trials},
               {"seed", ctx.g.seed}, {"tasks", idx.size()}, {"split", g_opts.split},
               {"source", (*set)->Summary()}};
  auto summary = eval::Summarize(records, cfg.ks, meta);
  if (!summary.ok()) return Fail(summary.status());
  int64_t score_errors = 0;
  for (const auto& r : records) score_errors += r.components.contains("score_error") ? 1 : 0;
  (*summary)["score_errors"] = score_errors;
  (*summary)["skipped_rows"] = (*set)->skipped;
  (*summary)["resumed_trials"] = before.size();
  if (!g_opts.out.empty()) {  // the table and every trial's trajectory, beside the store (report, scripts)
    json file = *summary;
    file["run"] = se->run->id();
    if (cfg.episode.temperature) file["temperature"] = *cfg.episode.temperature;
    int64_t ok = 0;
    std::string lines;
    for (const auto& r : records) {
      ok += r.success ? 1 : 0;
      if (r.trajectory.is_object()) lines += r.trajectory.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    }
    file["success"] = records.empty() ? 0.0 : static_cast<double>(ok) / static_cast<double>(records.size());
    if (Status s = WriteFileAtomic(g_opts.out + "/eval_trajectories.jsonl", lines); !s.ok()) return Fail(s);
    if (Status s = WriteFileAtomic(g_opts.out + "/eval.json", file.dump(2) + "\n"); !s.ok()) return Fail(s);
  }
  return StoreAndReport(ctx, label, run_cfg, *summary, records, EpisodeErrors("eval", RecordEnds(records)), score_errors,
                        se->run.get(), static_cast<int64_t>(jobs.size()));
}

int RunEval(Context& ctx) {
  auto cfgr = config::Get<EvalConfig>(ctx.config, "eval");
  if (!cfgr.ok()) return Fail(cfgr.status());
  EvalConfig cfg = *cfgr;
  if (g_opts.trials > 0) cfg.trials = g_opts.trials;
  if (g_opts.threads >= 0) cfg.threads = g_opts.threads;
  if (!g_opts.ks.empty()) {
    auto ks = ParseKs(g_opts.ks);
    if (!ks.ok()) return Fail(ks.status());
    cfg.ks = *ks;
  }
  if (!g_opts.pipe.sources.empty()) {
    if (!g_opts.suite.empty()) return Fail(InvalidArgument("eval: give --suite or --source, not both"));
    return RunSourceEval(ctx, cfg);
  }
  if (g_opts.suite.empty())
    return Fail(InvalidArgument("eval: --suite FILE|builtin:NAME|tau2:DOMAIN|bfcl:DIR|acebench:DIR or --source SPEC is required"));
  const bool tau2_native = g_opts.suite.rfind("tau2:", 0) == 0;
  if (!g_opts.agent_llm.empty()) g_opts.policy = g_opts.agent_llm;
  if (tau2_native && g_opts.policy == "oracle")
    return Fail(InvalidArgument("eval --suite tau2:DOMAIN: give the agent with --agent-llm openai:URL (or --policy)"));
  auto policy = MakePolicy(g_opts.policy, ctx, cfg, "--policy");
  if (!policy.ok()) return Fail(policy.status());
  std::unique_ptr<agents::Policy> judge;
  if (!g_opts.judge.empty()) {
    auto j = MakePolicy(g_opts.judge, ctx, cfg, "--judge");
    if (!j.ok()) return Fail(j.status());
    judge = std::move(*j);
  }
  ThreadPool pool(cfg.threads);

  // Which suite: builtin:NAME or a suite file {"kind": "tau2"|"bfcl"|"acebench", ...}.
  std::string kind = "tau2";
  json file_spec;
  std::string fc_dir;  // bfcl:DIR / acebench:DIR, or a suite file's "dir": a whole benchmark folder
  if (tau2_native) {
    kind = "tau2-native";
  } else if (g_opts.suite.rfind("bfcl:", 0) == 0 || g_opts.suite.rfind("acebench:", 0) == 0) {
    kind = g_opts.suite.substr(0, g_opts.suite.find(':'));
    fc_dir = g_opts.suite.substr(kind.size() + 1);
    if (fc_dir.empty()) return Fail(InvalidArgument("eval --suite " + kind + ":DIR: the benchmark folder is missing"));
  } else if (g_opts.suite.rfind("builtin:", 0) != 0) {
    auto spec = ReadJsonFile(g_opts.suite);
    if (!spec.ok()) return Fail(InvalidArgument(spec.status().message()));
    file_spec = *spec;
    if (!file_spec.is_object()) return Fail(InvalidArgument(g_opts.suite + ": expected a JSON object"));
    kind = file_spec.value("kind", std::string("tau2"));
    if (kind != "tau2" && kind != "bfcl" && kind != "acebench")
      return Fail(InvalidArgument(g_opts.suite + ": kind: expected \"tau2\", \"bfcl\" or \"acebench\", got \"" + kind + "\""));
    if (kind != "tau2" && file_spec.contains("dir")) fc_dir = Resolve(g_opts.suite, file_spec, "dir", g_opts.suite);
  }
  json meta = {{"suite", g_opts.suite}, {"kind", kind}, {"policy", (*policy)->name()}, {"trials", cfg.trials},
               {"seed", ctx.g.seed}};
  std::vector<eval::TrialRecord> records;
  if (kind == "tau2-native") {
    eval::NativeTau2Options o;
    o.domain = g_opts.suite.substr(5);
    auto dir = eval::Tau2DomainDir(g_opts.tau2_data, o.domain);
    if (!dir.ok()) return Fail(dir.status());
    o.data_dir = *dir;
    o.split = g_opts.split;
    o.max_tasks = g_opts.max_tasks;
    o.limits.max_steps = g_opts.max_steps;
    o.trials = cfg.trials;
    o.threads = cfg.threads;
    o.seed = ctx.g.seed;
    o.keep_trajectories = cfg.keep_trajectories;
    std::unique_ptr<agents::Policy> user;
    if (!g_opts.user_llm.empty()) {
      auto u = MakePolicy(g_opts.user_llm, ctx, cfg, "--user-llm");
      if (!u.ok()) return Fail(u.status());
      user = std::move(*u);
      auto g = eval::ReadSimulationGuidelines(g_opts.tau2_data);
      if (!g.ok()) return Fail(g.status());
      o.guidelines = *g;
    }
    // NL_ASSERTION is judged by --judge, else by the user LLM (τ² judges with an LLM by default).
    if (judge) o.judge = rewards::PolicyChat(*judge);
    else if (user) o.judge = rewards::PolicyChat(*user);
    meta["tau2_data"] = o.data_dir;
    meta["split"] = o.split;
    meta["user"] = user ? user->name() : "scripted";
    auto selected = eval::SelectNativeTau2Tasks(o);
    if (!selected.ok()) return Fail(selected.status());
    // Streamed: each trial is stored as it ends; --resume RUN runs only the trials that run lacks.
    json run_cfg = {{"suite", g_opts.suite},       {"policy", g_opts.policy},   {"judge", g_opts.judge},
                    {"user_llm", g_opts.user_llm}, {"tau2_data", o.data_dir},   {"split", o.split},
                    {"max_tasks", o.max_tasks},    {"max_steps", o.limits.max_steps},
                    {"eval", ctx.config.value("eval", json())}};
    auto se = StreamedEval::Start(ctx, g_opts.suite, run_cfg, run_cfg, cfg.trials);
    if (!se.ok()) return Fail(se.status());
    o.skip = [&](const std::string& id, int trial) { return se->Done(id, trial); };
    o.stop = [&] { return se->run->stop(); };
    o.on_trial = [&](const eval::TrialRecord& r) { se->Store({r}); };
    auto recs = eval::RunNativeTau2(o, **policy, user.get());
    if (!recs.ok()) {
      (void)se->run->End(false, 0, 1, "trials");
      return Fail(recs.status());
    }
    std::map<std::pair<std::string, int>, eval::TrialRecord> mine;
    for (auto& r : *recs) mine[{r.case_id, r.trial}] = std::move(r);
    for (const auto& task : *selected)  // task order, then trial: what an uninterrupted run gives
      for (int k = 0; k < cfg.trials; ++k) {
        if (auto it = mine.find({task.id, k}); it != mine.end()) records.push_back(std::move(it->second));
        else if (auto b = se->before.find({task.id, k}); b != se->before.end()) records.push_back(b->second);
      }
    meta["tasks"] = selected->size();
    meta["resumed_trials"] = se->before.size();
    auto summary = eval::Summarize(records, cfg.ks, meta);
    if (!summary.ok()) return Fail(summary.status());
    return StoreAndReport(ctx, g_opts.suite, run_cfg, *summary, records, EpisodeErrors("eval", RecordEnds(records)), 0,
                          se->run.get(), static_cast<int64_t>(selected->size()) * cfg.trials);
  } else if (kind == "tau2") {
    Expected<eval::Tau2Suite> suite = g_opts.suite.rfind("builtin:", 0) == 0
                                          ? eval::BuiltinTau2Suite(g_opts.suite.substr(8), &pool)
                                          : eval::LoadTau2Suite(file_spec, g_opts.suite, &pool);
    if (!suite.ok()) return Fail(suite.status());
    meta["source"] = suite->source;
    meta["tasks"] = suite->tasks.size();
    agents::ScriptedUser user(cfg.scripted_user);
    eval::Tau2Options o;
    o.trials = cfg.trials;
    o.seed = ctx.g.seed;
    o.threads = cfg.threads;
    o.limits = cfg.episode;
    o.env = cfg.env;
    o.on_missing_judge = cfg.on_missing_judge;
    if (judge) o.judge = rewards::PolicyChat(*judge);
    if (!ctx.g.quiet && !ctx.g.json) o.progress_label = "eval";
    // Streamed: each trial is stored as it ends; --resume RUN runs only the trials that run lacks.
    json run_cfg = {{"suite", g_opts.suite}, {"policy", g_opts.policy}, {"judge", g_opts.judge},
                    {"eval", ctx.config.value("eval", json())}};
    auto se = StreamedEval::Start(ctx, g_opts.suite, run_cfg, run_cfg, cfg.trials);
    if (!se.ok()) return Fail(se.status());
    const auto& before = se->before;
    auto record_of = [&](const eval::TrialResult& t) {
      eval::TrialRecord r;
      r.case_id = t.task_id;
      r.group = t.domain;
      r.trial = t.trial;
      r.reward = t.reward;
      r.success = t.success;
      r.end_reason = t.end_reason;
      r.detail = t.explanation;
      r.components = t.components;
      if (cfg.keep_trajectories) r.trajectory = t.trajectory.ToJson();
      return r;
    };
    o.skip = [&](const std::string& id, int trial) { return se->Done(id, trial); };
    o.stop = [&] { return se->run->stop(); };
    o.on_trial = [&](const eval::TrialResult& t) { se->Store({record_of(t)}); };
    auto res = eval::RunTau2Suite(*suite, **policy, user, o);
    if (!res.ok()) {
      (void)se->run->End(false, 0, 1, "trials");
      return Fail(res.status());
    }
    std::map<std::pair<std::string, int>, eval::TrialRecord> mine;
    for (auto& t : *res) mine[{t.task_id, t.trial}] = record_of(t);
    for (const auto& task : suite->tasks)  // suite order, then trial: what an uninterrupted run gives
      for (int k = 0; k < cfg.trials; ++k) {
        if (auto it = mine.find({task.id, k}); it != mine.end()) records.push_back(std::move(it->second));
        else if (auto b = before.find({task.id, k}); b != before.end()) records.push_back(b->second);
      }
    meta["resumed_trials"] = before.size();
    auto summary = eval::Summarize(records, cfg.ks, meta);
    if (!summary.ok()) return Fail(summary.status());
    return StoreAndReport(ctx, g_opts.suite, run_cfg, *summary, records, EpisodeErrors("eval", RecordEnds(records)), 0,
                          se->run.get(), static_cast<int64_t>(suite->tasks.size()) * cfg.trials);
  } else {
    Expected<eval::FcSuite> suite =
        !fc_dir.empty() ? (kind == "bfcl" ? eval::LoadBfclDir(fc_dir) : eval::LoadAceBenchDir(fc_dir))
        : kind == "bfcl" ? eval::LoadBfcl(Resolve(g_opts.suite, file_spec, "questions", g_opts.suite),
                                          Resolve(g_opts.suite, file_spec, "answers", g_opts.suite))
                         : eval::LoadAceBench(Resolve(g_opts.suite, file_spec, "data", g_opts.suite),
                                              Resolve(g_opts.suite, file_spec, "answers", g_opts.suite));
    if (!suite.ok()) return Fail(suite.status());
    meta["tasks"] = suite->cases.size();
    meta["load_errors"] = suite->errors.size();
    for (auto& e : suite->errors)
      if (!ctx.g.quiet) std::fprintf(stderr, "case %s not loaded: %s: %s\n", e.id.c_str(), e.where.c_str(), e.reason.c_str());
    // --policy oracle on a function-calling suite: the suite's own reference answers (FcOraclePolicy).
    std::unique_ptr<agents::Policy> fc_oracle;
    if (g_opts.policy == "oracle") {
      fc_oracle = std::make_unique<eval::FcOraclePolicy>(*suite);
      meta["policy"] = fc_oracle->name();
    }
    agents::Policy& fc_policy = fc_oracle ? *fc_oracle : **policy;
    // Streamed: each case is stored as it is scored; --resume RUN runs only the cases that run lacks.
    json run_cfg = {{"suite", g_opts.suite}, {"policy", g_opts.policy}, {"judge", g_opts.judge},
                    {"eval", ctx.config.value("eval", json())}};
    auto se = StreamedEval::Start(ctx, g_opts.suite, run_cfg, run_cfg, cfg.trials);
    if (!se.ok()) return Fail(se.status());
    auto record_of = [](const eval::FcOutcome& out, int t) {
      eval::TrialRecord r;
      r.case_id = out.id;
      r.group = out.category;
      r.trial = t;
      r.reward = out.score;
      r.success = out.score >= 1;
      r.end_reason = out.failure.empty() ? "answered" : out.failure.substr(0, out.failure.find(':'));
      r.detail = out.detail;
      r.components = out.components;
      r.components["kind"] = out.kind;
      r.trajectory = out.response;
      return r;
    };
    for (int t = 0; t < cfg.trials && !se->run->stop(); ++t) {
      eval::FcRunOptions o;
      o.seed = ctx.g.seed + static_cast<uint64_t>(t) * 1000003ULL;
      o.threads = cfg.threads == 0 ? static_cast<int>(std::thread::hardware_concurrency()) : cfg.threads;
      o.max_steps_per_turn = cfg.fc_max_steps_per_turn;
      o.skip = [&](int64_t i) { return se->Done(suite->cases[static_cast<size_t>(i)].id, t); };
      o.stop = [&] { return se->run->stop(); };
      o.on_case = [&](int64_t, const eval::FcOutcome& out) { se->Store({record_of(out, t)}); };
      auto outs = eval::RunFcSuite(*suite, fc_policy, o);
      for (size_t i = 0; i < outs.size(); ++i) {
        const eval::FcCase& c = suite->cases[i];
        if (outs[i].id.empty()) {  // not run here: the resumed run's record, as an outcome for the leaderboard
          auto b = se->before.find({c.id, t});
          if (b == se->before.end()) continue;  // interrupted before it started
          const eval::TrialRecord& r = b->second;
          outs[i].id = r.case_id;
          outs[i].category = r.group;
          outs[i].source = c.source;
          outs[i].kind = c.kind;
          outs[i].score = r.reward;
          outs[i].detail = r.detail;
          outs[i].response = r.trajectory;
          outs[i].components = r.components;
          outs[i].components.erase("kind");
          records.push_back(r);
          continue;
        }
        records.push_back(record_of(outs[i], t));
      }
      if (t == 0) {  // each benchmark's own aggregate (docs/eval.md), over the cases of the first trial
        std::vector<eval::FcOutcome> first;
        for (auto& out : outs)
          if (!out.id.empty()) first.push_back(std::move(out));
        meta["leaderboard"] = eval::FcLeaderboard(first);
      }
    }
    meta["resumed_trials"] = se->before.size();
    auto summary = eval::Summarize(records, cfg.ks, meta);
    if (!summary.ok()) return Fail(summary.status());
    return StoreAndReport(ctx, g_opts.suite, run_cfg, *summary, records, EpisodeErrors("eval", RecordEnds(records)), 0,
                          se->run.get(), static_cast<int64_t>(suite->cases.size()) * cfg.trials);
  }
}

int Compare(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  auto a = eval::LoadEvalSummary(db->get(), g_opts.run_a);
  if (!a.ok()) return Fail(InvalidArgument(a.status().message()));
  auto b = eval::LoadEvalSummary(db->get(), g_opts.run_b);
  if (!b.ok()) return Fail(InvalidArgument(b.status().message()));
  // Paired by case: bootstrap intervals and the cases that flipped (eval/results.h PairedCompare).
  auto ta = eval::LoadEvalTrials(db->get(), g_opts.run_a);
  if (!ta.ok()) return Fail(ta.status());
  auto tb = eval::LoadEvalTrials(db->get(), g_opts.run_b);
  if (!tb.ok()) return Fail(tb.status());
  auto paired = eval::PairedCompare(*ta, *tb, ctx.g.seed);
  if (ctx.g.json) {
    ctx.PrintJson({{"a", *a}, {"b", *b}, {"paired", paired.ok() ? *paired : json(paired.status().message())}});
  } else {
    std::printf("%s", eval::FormatCompare(*a, *b, g_opts.run_a, g_opts.run_b).c_str());
    if (paired.ok()) std::printf("%s", eval::FormatPaired(*paired).c_str());
    else std::printf("\n%s\n", paired.status().message().c_str());
  }
  return kExitOk;
}

K2_COMMAND("eval", [](CLI::App& app, Context& ctx, Action* action) {
  (void)ctx;
  auto* c = app.add_subcommand("eval", "Evaluate a policy on a τ²-style or BFCL/ACEBench-style suite (pass^k tables)");
  c->require_subcommand(0, 1);
  c->add_option("--suite", g_opts.suite,
                "suite file (JSON: kind tau2|bfcl|acebench), builtin:heldout-small|builtin:heldout, tau2:DOMAIN, or a whole "
                "benchmark folder bfcl:DIR|acebench:DIR");
  c->add_option("--policy", g_opts.policy,
                "oracle | random | replay:FILE | openai:URL | engine:CKPT, or with --source: gold | perturbed "
                "(the tasks' reference turns, intact or broken) (default oracle)");
  AddSourceFlags(c, &g_opts.pipe);
  c->add_option("--user", g_opts.user, "with --source: simulated user of tasks that have one: scripted | openai:URL "
                "(model/key: config user_llm)");
  c->add_option("--tokenizer", g_opts.tokenizer, "tokenizer folder of an engine:CKPT policy (default: the checkpoint folder)")
      ->check(CLI::ExistingDirectory);
  c->add_option("--judge", g_opts.judge, "NL_ASSERTION judge policy (openai:URL, replay:FILE; model/key: config "
                "judge_llm); default: none");
  c->add_option("--trials", g_opts.trials, "trials per task (default eval.trials)")->check(CLI::Range(1, 10000));
  c->add_option("--k", g_opts.ks, "pass^k columns, e.g. 1,2,4 (default eval.ks)");
  c->add_option("--threads", g_opts.threads, "concurrent episodes (default eval.threads)")->check(CLI::Range(0, 4096));
  c->add_option("--tau2-data", g_opts.tau2_data, "tau2:DOMAIN suites: τ²-bench's data/tau2/domains folder (docs/tau2.md)");
  c->add_option("--split", g_opts.split, "tau2:DOMAIN suites: a split of split_tasks.json (test, train, ...); with "
                "--source: only tasks of this split; default all");
  c->add_option("--resume", g_opts.resume,
                "continue the eval run RUN (id or name; interrupted, failed or dead) of --source or a τ² suite "
                "(file or builtin): its finished trials are kept, the rest run; give the same command and settings");
  c->add_option("--agent-llm", g_opts.agent_llm, "the agent policy (same forms as --policy; overrides it)");
  c->add_option("--user-llm", g_opts.user_llm, "tau2:DOMAIN suites: the LLM user (openai:URL); default the scripted user");
  c->add_option("--max-tasks", g_opts.max_tasks, "tau2:DOMAIN suites and --source: only the first N selected tasks")
      ->check(CLI::Range(0, 100000));
  c->add_option("--out", g_opts.out, "with --source: also write DIR/eval.json (the table, success) and "
                "DIR/eval_trajectories.jsonl (every trial; `k2gym report` shows them)")->option_text("DIR");
  c->add_option("--max-steps", g_opts.max_steps, "tau2:DOMAIN suites: messages per episode before it is cut (τ²'s max_steps, default 100)")
      ->check(CLI::Range(1, 100000));
  c->callback([action, c] {
    if (c->get_subcommands().empty()) *action = RunEval;
  });
  auto* cmp = c->add_subcommand("compare", "Show two stored eval runs side by side");
  cmp->add_option("RUN_A", g_opts.run_a, "run id")->required();
  cmp->add_option("RUN_B", g_opts.run_b, "run id")->required();
  cmp->callback([action] { *action = Compare; });
});

}  // namespace
}  // namespace k2::app
