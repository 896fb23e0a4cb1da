// `k2gym simulate`: tasks -> episodes (policy <-> env <-> simulated user) -> a reward (the judge for the
// store's synthetic tasks, each task's own reward with --source) -> keep when reward >= --threshold ->
// store and exports (OpenAI JSONL, Kimi-K2 tokens). Registers the agents' run-config sections.
#include <cstdio>
#include <optional>

#include "agents/dual_control.h"
#include "agents/engine_policy.h"
#include "agents/episode.h"
#include "agents/export.h"
#include "agents/http_policy.h"
#include "agents/llm_user.h"
#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "agents/synthetic_env.h"
#include "apps/cli.h"
#include "apps/pipeline_cli.h"
#include "apps/streamed_run.h"
#include "core/fault.h"
#include "core/interrupt.h"
#include "pipeline/endpoints.h"
#include "rewards/judge.h"
#include "core/store.h"
#include "core/thread_pool.h"
#include "engine/engine.h"
#include "engine/gen/generator.h"
#include "engine/text/tokenizer.h"
#include "toolgen/synth/store.h"
#include "toolgen/synth/tasks.h"

namespace k2::app {

K2_CONFIG_SECTION("episode", agents::EpisodeLimits, "Episode budgets and sampling of `k2gym simulate` (agents/episode.h)");
K2_CONFIG_SECTION("oracle", agents::OracleConfig, "Imperfections of the oracle policy (agents/scripted_policies.h)");
K2_CONFIG_SECTION("scripted_user", agents::ScriptedUserConfig, "The scripted simulated user (agents/scripted_user.h)");
K2_CONFIG_SECTION("judge", rewards::JudgeConfig, "The judge reward filtering simulated trajectories (rewards/judge_reward.h)");
K2_CONFIG_SECTION("agent_llm", pipeline::EndpointConfig, "The agent's endpoint (--policy openai:URL); empty fields: openai's (pipeline/endpoints.h)");
K2_CONFIG_SECTION("user_llm", pipeline::EndpointConfig, "The simulated user's endpoint (--user openai:URL); empty fields: openai's");
K2_CONFIG_SECTION("judge_llm", pipeline::EndpointConfig, "The judge's endpoint (--judge / --judge-llm openai:URL); empty fields: openai's");
K2_CONFIG_SECTION("critic_llm", pipeline::EndpointConfig, "The SCRR critic's endpoint (rl --critic openai:URL); empty fields: openai's");
K2_CONFIG_SECTION("openai", agents::HttpPolicyConfig,
                  "OpenAI-compatible HTTP policy/user/judge (agents/http_policy.h); URL from --policy/--user openai:URL");
K2_CONFIG_SECTION("synthetic_env", agents::SyntheticEnvConfig, "The `synthetic` environment kind (agents/synthetic_env.h)");

namespace {

struct SimArgs {
  std::string agents;
  int64_t dual_control = 0;
  std::string tasks, policy = "oracle", user = "scripted", judge_llm, out, tokens_out, tokenizer;
  int64_t episodes = 0;
  int threads = 0;
  double threshold = 1.0;
  PipelineFlags pipe;
  bool keep_all = false, no_store = false, include_heldout = false, task_tools_only = false;
  std::string resume;  // --resume RUN: continue that simulate run
  // engine:CKPT generator sizing
  int64_t max_batch = 32;
} g_sim;

bool StartsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

Expected<std::unique_ptr<agents::HttpPolicy>> MakeHttp(Context& ctx, const std::string& url, const char* role = "agent") {
  K2_ASSIGN_OR_RETURN(auto cfg, pipeline::EndpointFor(ctx.config, role, url));
  return agents::HttpPolicy::Create(cfg);
}

// What an engine policy needs alive while episodes run.
struct EngineParts {
  std::unique_ptr<engine::Model<float>> model;
  std::optional<text::Tokenizer> tokenizer;
  std::unique_ptr<gen::Generator> generator;
};

Expected<std::unique_ptr<agents::Policy>> MakePolicy(Context& ctx, EngineParts& eng) {
  const std::string& p = g_sim.policy;
  if (p == "oracle") {
    K2_ASSIGN_OR_RETURN(auto cfg, config::Get<agents::OracleConfig>(ctx.config, "oracle"));
    return std::unique_ptr<agents::Policy>(std::make_unique<agents::OracleTaskPolicy>(cfg));
  }
  if (p == "random") return std::unique_ptr<agents::Policy>(std::make_unique<agents::RandomPolicy>());
  if (StartsWith(p, "openai:")) {
    K2_ASSIGN_OR_RETURN(auto h, MakeHttp(ctx, p.substr(7)));
    return std::unique_ptr<agents::Policy>(std::move(h));
  }
  if (StartsWith(p, "engine:")) {
    const std::string ckpt = p.substr(7);
    if (g_sim.tokenizer.empty()) return InvalidArgument("--policy engine:CKPT needs --tokenizer DIR");
    K2_ASSIGN_OR_RETURN(engine::ModelConfig mc, engine::LoadModelConfig(ckpt + "/config.json"));
    K2_ASSIGN_OR_RETURN(eng.model, engine::Model<float>::Create(mc, ctx.g.seed));
    K2_RETURN_IF_ERROR(eng.model->LoadSafetensors(ckpt + "/model.safetensors"));
    K2_ASSIGN_OR_RETURN(text::Tokenizer t, text::Tokenizer::Load(g_sim.tokenizer));
    eng.tokenizer = std::move(t);
    gen::GeneratorOptions o;
    o.tokenizer = &*eng.tokenizer;
    o.max_batch_sequences = g_sim.max_batch;
    o.max_sequences = std::max<int64_t>(64, 2 * g_sim.max_batch);
    o.max_batch_tokens = std::max<int64_t>(512, g_sim.max_batch);
    K2_ASSIGN_OR_RETURN(eng.generator, gen::Generator::Create(eng.model.get(), o));
    K2_ASSIGN_OR_RETURN(auto ep, agents::EnginePolicy::Create(eng.generator.get(), &*eng.tokenizer));
    return std::unique_ptr<agents::Policy>(std::move(ep));
  }
  return InvalidArgument("--policy: expected oracle|random|openai:URL|engine:CKPT, got " + json(p).dump());
}

Expected<std::unique_ptr<agents::UserSimulator>> MakeUser(Context& ctx, std::unique_ptr<agents::Policy>& user_llm) {
  const std::string& u = g_sim.user;
  if (u == "scripted") {
    K2_ASSIGN_OR_RETURN(auto cfg, config::Get<agents::ScriptedUserConfig>(ctx.config, "scripted_user"));
    return std::unique_ptr<agents::UserSimulator>(std::make_unique<agents::ScriptedUser>(cfg));
  }
  if (StartsWith(u, "openai:")) {
    K2_ASSIGN_OR_RETURN(auto h, MakeHttp(ctx, u.substr(7), "user"));
    user_llm = std::move(h);
    return std::unique_ptr<agents::UserSimulator>(std::make_unique<agents::LlmUser>(user_llm.get(), u));
  }
  return InvalidArgument("--user: expected scripted|openai:URL, got " + json(u).dump());
}

// --tokens-out renders with --tokenizer: loaded when the output is asked for.
Status LoadTokensOutTokenizer(std::optional<text::Tokenizer>& tok) {
  if (g_sim.tokens_out.empty()) return Status();
  if (g_sim.tokenizer.empty()) return InvalidArgument("--tokens-out needs --tokenizer DIR");
  K2_ASSIGN_OR_RETURN(text::Tokenizer t, text::Tokenizer::Load(g_sim.tokenizer));
  tok = std::move(t);
  return Status();
}

// What both simulate paths share: the run in the store (created before the first episode, or resumed),
// every finished episode stored and streamed to --out/--tokens-out as it ends, the episodes a resumed run
// already has, and the end: outputs rewritten in job order from every finished episode, run status.
struct SimStream {
  const Context* ctx = nullptr;
  std::unique_ptr<StreamedRun> run;  // null with --no-store
  std::unique_ptr<JsonlStream> out, tokens;
  const text::Tokenizer* tok = nullptr;
  std::map<std::pair<std::string, int>, agents::Trajectory> before;  // (task, trial) -> stored episode

  static bool Pass(const agents::Trajectory& t) {
    return !t.reward_components.count("score_error") && t.reward >= g_sim.threshold;
  }
  static bool Keep(const agents::Trajectory& t) { return g_sim.keep_all || Pass(t); }  // exported

  // `fingerprint`: what decides the jobs and how they run (a resumed run must be given the same).
  Status Open(const Context& c, json fingerprint, const text::Tokenizer* tokenizer) {
    ctx = &c;
    tok = tokenizer;
    if (!g_sim.resume.empty() && g_sim.no_store) return InvalidArgument("simulate: --resume needs the store (drop --no-store)");
    fingerprint["config"] = c.config;
    fingerprint["seed"] = std::to_string(c.g.seed);
    if (!g_sim.no_store) {
      K2_ASSIGN_OR_RETURN(run, StreamedRun::Start(c, "simulate", g_sim.policy, c.config, fingerprint, g_sim.resume));
      if (run->resumed()) {
        K2_ASSIGN_OR_RETURN(auto done, agents::LoadRunTrajectories(run->db(), run->id()));
        for (auto& t : done) before[{t.task_id, t.trial}] = std::move(t);
      }
    } else {
      InstallInterruptHandlers();
    }
    const bool append = run && run->resumed();
    if (!g_sim.out.empty()) {
      K2_ASSIGN_OR_RETURN(out, JsonlStream::Open(g_sim.out, append));
    }
    if (!g_sim.tokens_out.empty()) {
      K2_ASSIGN_OR_RETURN(tokens, JsonlStream::Open(g_sim.tokens_out, append));
    }
    return Status();
  }

  bool Skip(const agents::EpisodeJob& j) const { return before.count({j.task->id, j.trial}) > 0; }
  bool Stop() const { return run ? run->stop() : InterruptRequested(); }

  // On the worker that finished `t` (after it is scored).
  void Done(const agents::Trajectory& t) {
    if (run && !run->Store([&](Db* db) { return agents::SaveTrajectories(db, run->id(), {t}); })) return;
    if (!Keep(t)) return;
    Status s;
    if (out) s = out->Write(CanonicalJson(agents::OpenAIChatLine(t)));
    if (s.ok() && tokens) {
      auto line = agents::KimiTokensLine(t, *tok);
      s = line.ok() ? tokens->Write(CanonicalJson(*line)) : line.status();
    }
    if (!s.ok() && run) run->Fail(s);  // keeps the first failure, stops the run
    CrashPoint("simulate.episode_stored");
  }

  // Every finished episode in job order: this process's, else the resumed run's.
  std::vector<agents::Trajectory> Merge(const std::vector<agents::EpisodeJob>& jobs, std::vector<agents::Trajectory>& trajs) {
    std::vector<agents::Trajectory> all;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!trajs[i].end_reason.empty()) {
        all.push_back(std::move(trajs[i]));
      } else if (auto it = before.find({jobs[i].task->id, jobs[i].trial}); it != before.end()) {
        all.push_back(it->second);
      }
    }
    return all;
  }

  // The outputs rewritten from every finished episode (job order, atomically), then the run's end.
  Status WriteOutputs(const std::vector<agents::Trajectory>& all) {
    out.reset();
    tokens.reset();
    std::vector<agents::Trajectory> kept;
    for (const auto& t : all)
      if (Keep(t)) kept.push_back(t);
    if (!g_sim.out.empty()) K2_RETURN_IF_ERROR(agents::WriteOpenAIJsonl(g_sim.out, kept));
    if (!g_sim.tokens_out.empty()) K2_RETURN_IF_ERROR(agents::WriteKimiTokensJsonl(g_sim.tokens_out, kept, *tok));
    return Status();
  }

  // Exit code of the run: interrupted (128 + signal) before a complete run's ok/failed.
  int End(const Status& errors, int64_t finished, int64_t total) {
    if (run) {
      const int code = run->End(errors.ok(), finished, total, "episodes");
      if (code != kExitOk) return code;
    } else if (InterruptRequested() && finished < total) {
      std::fprintf(stderr, "k2gym: interrupted: %lld of %lld episodes done (not stored: --no-store)\n",
                   static_cast<long long>(finished), static_cast<long long>(total));
      return 128 + (InterruptSignal() > 0 ? InterruptSignal() : 2);
    }
    return errors.ok() ? kExitOk : Fail(errors);
  }
};

// simulate --source: any task source through the one episode pipeline; keep = reward >= --threshold.
int SimulateSources(Context& ctx, const agents::EpisodeLimits& limits) {
  auto set = LoadSources(ctx, g_sim.pipe);
  if (!set.ok()) return Fail(set.status());
  EngineParts eng;
  std::unique_ptr<agents::Policy> policy;
  if (g_sim.policy == "gold" || g_sim.policy == "perturbed") {
    policy = pipeline::MakeGoldPolicy(*set, g_sim.policy == "perturbed");
  } else {
    auto p = MakePolicy(ctx, eng);
    if (!p.ok()) return Fail(p.status());
    policy = std::move(*p);
  }
  auto su = config::Get<agents::ScriptedUserConfig>(ctx.config, "scripted_user");
  if (!su.ok()) return Fail(su.status());
  auto actors = MakeActors(ctx, g_sim.user, g_sim.judge_llm, *su);
  if (!actors.ok()) return Fail(actors.status());
  auto pipe = pipeline::Pipeline::Create(*set, ActorOptions(**actors));
  if (!pipe.ok()) return Fail(pipe.status());
  auto idx = SplitIndices(**set, g_sim.pipe.split);
  if (idx.empty()) return Fail(InvalidArgument("simulate: no task in split " + json(g_sim.pipe.split).dump()));
  std::optional<text::Tokenizer> tok;
  if (Status s = LoadTokensOutTokenizer(tok); !s.ok()) return Fail(s);
  const int64_t n = g_sim.episodes > 0 ? g_sim.episodes : static_cast<int64_t>(idx.size());
  std::vector<agents::EpisodeJob> jobs;
  for (int64_t i = 0; i < n; ++i)
    jobs.push_back({(*set)->tasks[idx[i % idx.size()]].episode, static_cast<int>(i / static_cast<int64_t>(idx.size()))});
  SimStream stream;
  json fp = {{"sources", g_sim.pipe.sources}, {"split", g_sim.pipe.split}, {"policy", g_sim.policy},
             {"user", g_sim.user}, {"judge_llm", g_sim.judge_llm}, {"episodes", n}};
  if (Status s = stream.Open(ctx, fp, tok ? &*tok : nullptr); !s.ok()) return Fail(s);
  pipeline::RunJobsOptions ro;
  ro.threads = g_sim.threads;
  ro.seed = ctx.g.seed;
  ro.limits = limits;
  if (!ctx.g.json && !ctx.g.quiet) ro.progress_label = "simulate";
  ro.skip = [&](size_t i) { return stream.Skip(jobs[i]); };
  ro.stop = [&] { return stream.Stop(); };
  ro.on_done = [&](agents::Trajectory& t) {
    t.provenance["keep"] = SimStream::Pass(t);
    stream.Done(t);
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto ran = pipeline::RunJobs(jobs, (*pipe)->Hooks(), *policy, ro);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto trajs = stream.Merge(jobs, ran);
  const Status written = stream.WriteOutputs(trajs);
  if (!written.ok()) {
    if (!stream.run) return Fail(written);
    stream.run->Fail(written);  // the run ends failed (with its resume command) below
  }
  int64_t score_errors = 0, n_keep = 0, exported = 0;
  std::map<std::string, int64_t> ends;
  std::vector<std::pair<std::string, std::string>> ends_errors;
  for (const auto& t : trajs) {
    ends[t.end_reason]++;
    ends_errors.emplace_back(t.end_reason, t.error);
    score_errors += t.reward_components.count("score_error") ? 1 : 0;
    n_keep += SimStream::Pass(t) ? 1 : 0;
    exported += SimStream::Keep(t) ? 1 : 0;
  }
  const Status errors = EpisodeErrors("simulate", ends_errors);
  json ends_j = json::object();
  for (auto& [k, v] : ends) ends_j[k] = v;
  json result = {{"episodes", trajs.size()}, {"tasks", idx.size()}, {"policy", policy->name()}, {"seconds", secs},
                 {"end_reasons", ends_j}, {"threshold", g_sim.threshold}, {"kept", n_keep},
                 {"discarded", static_cast<int64_t>(trajs.size()) - n_keep}, {"score_errors", score_errors},
                 {"exported", exported}, {"sources", PerSourceStats(trajs)}, {"skipped_rows", (*set)->skipped},
                 {"planned", jobs.size()}, {"resumed_episodes", stream.before.size()}};
  if (stream.run) result["run"] = stream.run->id();
  json rewards_j = json::array();
  for (auto& t : trajs) rewards_j.push_back(t.reward);
  result["rewards"] = rewards_j;
  if (ctx.g.json) {
    ctx.PrintJson(result);
  } else {
    std::printf("simulated %zu episodes over %zu tasks in %.2f s; policy %s; kept %lld (reward >= %g), discarded %lld\n",
                trajs.size(), idx.size(), secs, policy->name().c_str(), static_cast<long long>(n_keep), g_sim.threshold,
                static_cast<long long>(trajs.size()) - static_cast<long long>(n_keep));
    for (auto& [src, st] : result["sources"].items())
      std::printf("  %s: %lld episodes, reward %.3f, success %.2f\n", src.c_str(),
                  static_cast<long long>(st["episodes"].get<int64_t>()), st["reward_mean"].get<double>(),
                  st["success_rate"].get<double>());
    if (!g_sim.out.empty() && written.ok()) std::printf("wrote %lld trajectories to %s\n", static_cast<long long>(exported), g_sim.out.c_str());
  }
  return stream.End(errors, static_cast<int64_t>(trajs.size()), static_cast<int64_t>(jobs.size()));
}

int Simulate(Context& ctx) {
  auto limits = config::Get<agents::EpisodeLimits>(ctx.config, "episode");
  if (!limits.ok()) return Fail(limits.status());
  // Outputs are checked before the run, not after it.
  if (Status s = CheckOutputPath("--out", g_sim.out); !s.ok()) return Fail(s);
  if (Status s = CheckOutputPath("--tokens-out", g_sim.tokens_out); !s.ok()) return Fail(s);
  if (!g_sim.pipe.sources.empty()) {
    if (!g_sim.tasks.empty() || g_sim.dual_control > 0 || !g_sim.agents.empty())
      return Fail(InvalidArgument("simulate: --source runs task sources; --tasks/--dual-control/--agents are for the store's catalog"));
    return SimulateSources(ctx, *limits);
  }
  auto judge_cfg = config::Get<rewards::JudgeConfig>(ctx.config, "judge");
  if (!judge_cfg.ok()) return Fail(judge_cfg.status());
  auto env_cfg = config::Get<agents::SyntheticEnvConfig>(ctx.config, "synthetic_env");
  if (!env_cfg.ok()) return Fail(env_cfg.status());
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());

  // Tasks: a tau2 JSON array (`toolgen tasks --out`), else the store's tasks.
  std::vector<std::shared_ptr<const agents::EpisodeTask>> tasks;
  if (!g_sim.tasks.empty()) {
    auto j = ReadJsonFile(g_sim.tasks);
    if (!j.ok()) return Fail(j.status());
    if (!j->is_array()) return Fail(InvalidArgument(g_sim.tasks + ": expected a JSON array of tau2 tasks"));
    int64_t excluded = 0;
    for (size_t i = 0; i < j->size(); ++i) {
      auto t = toolgen::synth::TaskFromTau2((*j)[i], g_sim.tasks + "[" + std::to_string(i) + "]");
      if (!t.ok()) return Fail(t.status());
      // Simulations make training data: held-out domains (eval's built-in suites) stay out unless asked.
      if (!g_sim.include_heldout && toolgen::synth::IsHeldOutDomain(t->domain)) {
        ++excluded;
        continue;
      }
      tasks.push_back(agents::EpisodeTask::FromSynth(std::move(*t)));
    }
    if (excluded > 0 && !ctx.g.quiet)
      std::fprintf(stderr, "simulate: %lld task(s) on held-out domains excluded (--include-heldout keeps them)\n",
                   static_cast<long long>(excluded));
  } else if (g_sim.dual_control == 0) {
    auto ts = toolgen::synth::LoadTasks(db->get());
    if (!ts.ok()) return Fail(ts.status());
    for (auto& t : *ts) tasks.push_back(agents::EpisodeTask::FromSynth(std::move(t)));
  }
  // Dual-control tasks (agents/dual_control.h): the user owns tools of its own.
  for (auto& t : agents::GenerateDualControlTasks(ctx.g.seed, static_cast<int>(g_sim.dual_control)))
    tasks.push_back(agents::EpisodeTask::FromSynth(std::move(t)));
  if (tasks.empty()) return Fail(InvalidArgument("no tasks: give --tasks FILE or run `k2gym toolgen tasks` first"));
  ThreadPool build_pool(0);
  const bool only_dual = g_sim.tasks.empty() && g_sim.dual_control > 0;
  auto world = only_dual ? Expected<std::shared_ptr<const agents::SyntheticWorld>>(
                               std::make_shared<agents::SyntheticWorld>(std::vector<std::shared_ptr<const toolgen::synth::Domain>>{}))
                         : agents::SyntheticWorld::FromStore(db->get(), &build_pool);
  if (!world.ok()) return Fail(world.status());
  if (g_sim.task_tools_only) *world = agents::TaskToolsOnly(**world, tasks);
  for (const auto& t : tasks)
    if (t->domain != agents::kDualControlDomain && !(*world)->Find(t->domain))
      return Fail(InvalidArgument("task " + t->id + ": domain " + t->domain +
                                  " is not in the store's catalog (tasks generated from another `toolgen synth`?)"));

  EngineParts eng;
  auto policy = MakePolicy(ctx, eng);
  if (!policy.ok()) return Fail(policy.status());
  std::unique_ptr<agents::Policy> user_llm, judge_llm;
  auto user = MakeUser(ctx, user_llm);
  if (!user.ok()) return Fail(user.status());
  if (!g_sim.judge_llm.empty()) {
    if (!StartsWith(g_sim.judge_llm, "openai:")) return Fail(InvalidArgument("--judge-llm: expected openai:URL"));
    auto h = MakeHttp(ctx, g_sim.judge_llm.substr(7), "judge");
    if (!h.ok()) return Fail(h.status());
    judge_llm = std::move(*h);
  }
  std::optional<text::Tokenizer> tok;
  if (Status s = LoadTokensOutTokenizer(tok); !s.ok()) return Fail(s);

  // Synthetic agents: per domain, the compiled toolsets; an episode gets one of the agents whose own tools
  // cover its task's gold plan (drawn from the episode seed), else the domain's default tools.
  std::map<std::string, std::vector<std::shared_ptr<const agents::AgentProfile>>> agents_by_domain;
  int64_t loaded_agents = 0, with_agent = 0, without_agent = 0;
  if (!g_sim.agents.empty()) {
    auto text = ReadFile(g_sim.agents);
    if (!text.ok()) return Fail(text.status());
    std::vector<json> rows;
    auto whole = ParseJson(*text, g_sim.agents);
    if (whole.ok() && whole->is_array()) {
      for (auto& r : *whole) rows.push_back(r);
    } else {
      auto lines = ReadJsonLines(g_sim.agents);
      if (!lines.ok()) return Fail(lines.status().Context("--agents: expected a JSON array or JSON lines of agents"));
      rows = std::move(*lines);
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      auto a = toolgen::synth::AgentFromJson(rows[i], g_sim.agents + "[" + std::to_string(i) + "]");
      if (!a.ok()) return Fail(a.status());
      auto prof = (*world)->Profile(*a);
      if (!prof.ok()) return Fail(prof.status().Context(g_sim.agents + "[" + std::to_string(i) + "]"));
      agents_by_domain[(*prof)->domain].push_back(*prof);
      ++loaded_agents;
    }
    if (loaded_agents == 0) return Fail(InvalidArgument("--agents " + g_sim.agents + ": no agents in the file"));
  }
  // One EpisodeTask per (task, agent): shares nothing mutable; the judge looks tasks up by id.
  std::map<std::pair<const agents::EpisodeTask*, const agents::AgentProfile*>, std::shared_ptr<const agents::EpisodeTask>> with;
  auto WithAgent = [&](const std::shared_ptr<const agents::EpisodeTask>& t, int trial) {
    if (agents_by_domain.empty()) return t;
    std::vector<std::shared_ptr<const agents::AgentProfile>> ok;
    if (auto it = agents_by_domain.find(t->domain); it != agents_by_domain.end())
      for (const auto& a : it->second)
        if (t->synth && a->Covers(*t->synth)) ok.push_back(a);
    if (ok.empty()) {
      ++without_agent;
      return t;
    }
    ++with_agent;
    const auto& a = ok[agents::EpisodeSeed(ctx.g.seed, t->id, trial) % ok.size()];
    auto& slot = with[{t.get(), a.get()}];
    if (!slot) {
      auto copy = std::make_shared<agents::EpisodeTask>(*t);
      copy->agent = a;
      slot = std::move(copy);
    }
    return slot;
  };
  const int64_t n = g_sim.episodes > 0 ? g_sim.episodes : static_cast<int64_t>(tasks.size());
  std::vector<agents::EpisodeJob> jobs;
  for (int64_t i = 0; i < n; ++i) {
    const int trial = static_cast<int>(i / static_cast<int64_t>(tasks.size()));
    jobs.push_back({WithAgent(tasks[i % tasks.size()], trial), trial});
  }
  std::map<std::string, const agents::EpisodeTask*> by_id;
  for (const auto& t : tasks) by_id[t->id] = t.get();

  rewards::Judge judge(*judge_cfg, judge_llm.get());
  SimStream stream;
  json fp = {{"tasks", g_sim.tasks}, {"dual_control", g_sim.dual_control}, {"agents", g_sim.agents},
             {"policy", g_sim.policy}, {"user", g_sim.user}, {"judge_llm", g_sim.judge_llm}, {"episodes", n},
             {"include_heldout", g_sim.include_heldout}, {"task_tools_only", g_sim.task_tools_only}};
  if (Status s = stream.Open(ctx, fp, tok ? &*tok : nullptr); !s.ok()) return Fail(s);
  agents::RunOptions opt{.threads = g_sim.threads, .seed = ctx.g.seed, .limits = *limits,
                         .progress_label = ctx.g.json ? "" : "simulate"};
  opt.on_done = [&](agents::Trajectory& t) {
    judge.Apply(t, *by_id.at(t.task_id));
    stream.Done(t);
  };
  opt.skip = [&](size_t i) { return stream.Skip(jobs[i]); };
  opt.stop = [&] { return stream.Stop(); };
  const agents::SyntheticEnvConfig ec = *env_cfg;
  auto w = *world;
  auto make_env = [w, ec]() -> Expected<std::unique_ptr<agents::Env>> {
    return std::unique_ptr<agents::Env>(std::make_unique<agents::SyntheticEnv>(w, ec));
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto ran = agents::RunEpisodes(jobs, make_env, **policy, user->get(), opt);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto trajs = stream.Merge(jobs, ran);
  const Status written = stream.WriteOutputs(trajs);
  if (!written.ok()) {
    if (!stream.run) return Fail(written);
    stream.run->Fail(written);  // the run ends failed (with its resume command) below
  }

  std::map<std::string, int64_t> ends;
  std::vector<std::pair<std::string, std::string>> ends_errors;
  rewards::JudgeSummary summary;  // from each verdict as stored (a resumed run's episodes included)
  int64_t exported = 0;
  for (const auto& t : trajs) {
    ends[t.end_reason]++;
    ends_errors.emplace_back(t.end_reason, t.error);
    exported += SimStream::Keep(t) ? 1 : 0;
    if (t.provenance.is_object() && t.provenance.contains("judge")) {
      const json& v = t.provenance["judge"];
      rewards::Verdict verdict;
      verdict.keep = v.value("keep", false);
      if (v.contains("reasons") && v["reasons"].is_array())
        for (const auto& r : v["reasons"]) verdict.reasons.push_back(r.get<std::string>());
      summary.Add(verdict);
    }
  }
  const Status errors = EpisodeErrors("simulate", ends_errors);

  json ends_j = json::object();
  for (auto& [k, v] : ends) ends_j[k] = v;
  json result = {{"episodes", trajs.size()}, {"tasks", tasks.size()}, {"policy", (*policy)->name()},
                 {"user", (*user)->name()}, {"seconds", secs}, {"episodes_per_s", secs > 0 ? trajs.size() / secs : 0.0},
                 {"end_reasons", ends_j}, {"judge", summary.ToJson()}, {"exported", exported},
                 {"planned", jobs.size()}, {"resumed_episodes", stream.before.size()}};
  if (stream.run) result["run"] = stream.run->id();
  if (!g_sim.agents.empty())
    result["agents"] = {{"loaded", loaded_agents}, {"episodes_with_agent", with_agent},
                        {"episodes_without_agent", without_agent}};
  if (!g_sim.out.empty()) result["out"] = g_sim.out;
  if (ctx.g.json) {
    ctx.PrintJson(result);
  } else {
    std::printf("simulated %zu episodes over %zu tasks in %.2f s (%.0f episodes/s); policy %s, user %s\n", trajs.size(),
                tasks.size(), secs, result["episodes_per_s"].get<double>(), (*policy)->name().c_str(),
                (*user)->name().c_str());
    std::printf("end reasons:");
    for (auto& [k, v] : ends) std::printf(" %s=%lld", k.c_str(), static_cast<long long>(v));
    std::printf("\njudge: kept %lld, discarded %lld", static_cast<long long>(summary.kept),
                static_cast<long long>(summary.discarded));
    for (auto& [k, v] : summary.by_reason) std::printf(" %s=%lld", k.c_str(), static_cast<long long>(v));
    std::printf("\n");
    if (!g_sim.agents.empty())
      std::printf("agents: %lld loaded; %lld episodes ran with an agent's toolset, %lld with the domain's tools "
                  "(no agent covers the task)\n",
                  static_cast<long long>(loaded_agents), static_cast<long long>(with_agent),
                  static_cast<long long>(without_agent));
    if (!g_sim.out.empty() && written.ok()) std::printf("wrote %lld trajectories to %s\n", static_cast<long long>(exported), g_sim.out.c_str());
  }
  return stream.End(errors, static_cast<int64_t>(trajs.size()), static_cast<int64_t>(jobs.size()));
}

}  // namespace

K2_COMMAND("simulate", [](CLI::App& app, Context& ctx, Action* action) {
  (void)ctx;
  auto* c = app.add_subcommand("simulate", "Simulate agent episodes on synthetic tasks or any task source, score them, keep those above a reward threshold, export SFT data");
  c->add_option("--agents", g_sim.agents,
                 "synthetic agents (`k2gym toolgen agents --out`, JSON lines or array): an episode uses the system "
                 "prompt and toolset of an agent whose own tools cover its task")->check(CLI::ExistingFile);
  c->add_option("--dual-control", g_sim.dual_control,
                "N dual-control tasks (the user owns phone tools; agents/dual_control.h), seeded by --seed: "
                "added to --tasks FILE, or instead of the store's tasks")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  c->add_flag("--include-heldout", g_sim.include_heldout, "also simulate tasks of held-out domains (eval's built-in suites)");
  c->add_flag("--task-tools-only", g_sim.task_tools_only,
              "offer each domain only the tools the gold plans of the tasks call (as rl_run.task_tools_only: "
              "short prompts; SFT data made so must be trained and evaluated the same way)");
  c->add_option("--tasks", g_sim.tasks, "tau2 task JSON array (`k2gym toolgen tasks --out`); default: the store's tasks")
      ->check(CLI::ExistingFile);
  c->add_option("--policy", g_sim.policy, "oracle | random | openai:URL | engine:CKPT_DIR; with --source also gold | perturbed");
  AddSourceFlags(c, &g_sim.pipe);
  c->add_option("--split", g_sim.pipe.split, "with --source: only tasks of this split");
  c->add_option("--threshold", g_sim.threshold, "keep a trajectory when its reward >= this (default 1)")
      ->check(CLI::Range(-1e9, 1e9));
  c->add_option("--user", g_sim.user, "scripted | openai:URL");
  c->add_option("--judge-llm", g_sim.judge_llm, "optional LLM judge: openai:URL");
  c->add_option("--episodes", g_sim.episodes, "episodes (cycles over the tasks; default one per task)")->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  c->add_option("--threads", g_sim.threads, "concurrent episodes (0: hardware threads)")->check(CLI::Range(0, 4096));
  c->add_option("--out", g_sim.out, "OpenAI chat JSONL (messages + tools) of the kept trajectories");
  c->add_option("--tokens-out", g_sim.tokens_out, "Kimi-K2 template tokens + loss masks JSONL (needs --tokenizer)");
  c->add_option("--tokenizer", g_sim.tokenizer, "tokenizer directory (tiktoken.model [+ tokenizer.json])")
      ->check(CLI::ExistingDirectory);
  c->add_option("--max-batch", g_sim.max_batch, "engine policy: sequences decoded per step")->check(CLI::Range(1, 4096));
  c->add_flag("--keep-all", g_sim.keep_all, "export discarded trajectories too");
  c->add_flag("--no-store", g_sim.no_store, "do not save trajectories in the store");
  c->add_option("--resume", g_sim.resume,
                "continue the simulate run RUN (id or name; interrupted, failed or dead): its finished episodes are "
                "kept, the rest run; give the same command and settings");
  c->callback([action] { *action = Simulate; });
});

}  // namespace k2::app
