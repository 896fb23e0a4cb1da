// τ²-style suites: suite files, built-in held-out suites, task specs with replayed DB hashes, and the
// trial runner (agents episode runner + rewards tool verifier).
#include "eval/tau2_suite.h"

#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>

#include "core/store.h"
#include "core/thread_pool.h"
#include "rewards/tool_verifier.h"

namespace k2::eval {

namespace synth = toolgen::synth;

bool IsHeldOutDomain(const std::string& path) { return synth::IsHeldOutDomain(path); }

namespace {

Expected<std::vector<synth::Task>> ReadTasks(const std::string& path) {
  K2_ASSIGN_OR_RETURN(json arr, ReadJsonFile(path));
  if (!arr.is_array()) return InvalidArgument(path + ": expected a JSON array of tau2 tasks");
  std::vector<synth::Task> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    K2_ASSIGN_OR_RETURN(synth::Task t, synth::TaskFromTau2(arr[i], path + ":/" + std::to_string(i)));
    out.push_back(std::move(t));
  }
  if (out.empty()) return InvalidArgument(path + ": no tasks");
  return out;
}

}  // namespace

Expected<Tau2Suite> LoadTau2Suite(const json& spec, const std::string& suite_path, ThreadPool* pool) {
  const std::string& w = suite_path;
  if (!spec.is_object()) return InvalidArgument(w + ": expected a JSON object");
  for (auto& [k, v] : spec.items())
    if (k != "name" && k != "kind" && k != "tasks" && k != "world" && k != "task_tools_only")
      return InvalidArgument(w + ": unknown key \"" + k + "\" (expected name, kind, tasks, world, task_tools_only)");
  Tau2Suite s;
  s.name = spec.value("name", std::filesystem::path(suite_path).stem().string());
  if (!spec.contains("tasks") || !spec["tasks"].is_string()) return InvalidArgument(w + ": tasks: expected a path (string) to a tau2 task array");
  std::filesystem::path tp = spec["tasks"].get<std::string>();
  if (tp.is_relative()) tp = std::filesystem::path(suite_path).parent_path() / tp;
  K2_ASSIGN_OR_RETURN(s.tasks, ReadTasks(tp.string()));
  if (!spec.contains("world") || !spec["world"].is_object()) return InvalidArgument(w + ": world: expected {\"db\": STORE} or {\"seed\", \"count\"}");
  const json& world = spec["world"];
  if (world.contains("db")) {
    if (!world["db"].is_string()) return InvalidArgument(w + ": world.db: expected a store path");
    std::filesystem::path dp = world["db"].get<std::string>();
    if (dp.is_relative()) dp = std::filesystem::path(suite_path).parent_path() / dp;
    K2_ASSIGN_OR_RETURN(auto db, Db::Open(dp.string()));
    K2_ASSIGN_OR_RETURN(s.world, agents::SyntheticWorld::FromStore(db.get(), pool));
  } else {
    if (!world.contains("seed") || !world["seed"].is_number_integer() || world["seed"].get<int64_t>() < 0 || !world.contains("count") ||
        !world["count"].is_number_integer() || world["count"].get<int64_t>() < 1)
      return InvalidArgument(w + ": world: expected {\"db\": STORE} or {\"seed\": uint, \"count\": int >= 1}");
    s.world = agents::SyntheticWorld::Generate(world["seed"].get<uint64_t>(), world["count"].get<int64_t>(), pool);
  }
  if (spec.contains("task_tools_only")) {
    if (!spec["task_tools_only"].is_boolean()) return InvalidArgument(w + ": task_tools_only: expected true or false");
    // As rl_run.task_tools_only / simulate --task-tools-only: a policy trained on such prompts is
    // evaluated on the same ones.
    if (spec["task_tools_only"].get<bool>()) s.world = agents::TaskToolsOnly(*s.world, s.tasks);
  }
  for (size_t i = 0; i < s.tasks.size(); ++i)
    if (!s.world->Find(s.tasks[i].domain))
      return InvalidArgument(tp.string() + ":/" + std::to_string(i) + ": task " + s.tasks[i].id + ": domain \"" + s.tasks[i].domain +
                             "\" is not in the suite's world");
  s.source = {{"file", suite_path}, {"tasks", tp.string()}, {"world", world}};
  return s;
}

namespace {
struct Builtin {
  const char* name;
  uint64_t seed;
  int64_t tools, tasks;
};
constexpr Builtin kBuiltins[] = {{"heldout-small", 2027, 1500, 16}, {"heldout", 2027, 6000, 80}};
}  // namespace

std::vector<std::string> BuiltinSuiteNames() {
  std::vector<std::string> out;
  for (auto& b : kBuiltins) out.push_back(b.name);
  return out;
}

Expected<Tau2Suite> BuiltinTau2Suite(const std::string& name, ThreadPool* pool) {
  for (auto& b : kBuiltins) {
    if (name != b.name) continue;
    Tau2Suite s;
    s.name = "builtin:" + name;
    s.world = agents::SyntheticWorld::Generate(b.seed, b.tools, pool);
    std::vector<synth::Domain> held;
    for (auto& d : s.world->domains())
      if (IsHeldOutDomain(d->path)) held.push_back(*d);
    if (held.empty()) return Internal("builtin suite " + name + ": the catalog has no held-out domain");
    s.tasks = synth::GenerateTasks(held, b.seed, b.tasks, pool);
    if (s.tasks.empty()) return Internal("builtin suite " + name + ": no task could be generated");
    s.source = {{"builtin", name}, {"seed", b.seed}, {"min_tools", b.tools}, {"tasks", b.tasks},
                {"heldout_domains", held.size()}, {"domains", s.world->domains().size()}};
    return s;
  }
  std::string all;
  for (auto& n : BuiltinSuiteNames()) all += (all.empty() ? "" : ", ") + n;
  return InvalidArgument("unknown builtin suite \"" + name + "\" (known: " + all + ")");
}

Expected<json> TaskSpec(const synth::Domain& d, const synth::Task& t) {
  K2_ASSIGN_OR_RETURN(std::string replayed, synth::ReplayHash(d, t));
  json tau2 = synth::ToTau2(t);
  json forbidden = json::array();
  for (auto& f : t.forbidden) forbidden.push_back({{"name", f.name}, {"arguments", f.arguments}});
  return json{{"evaluation_criteria", tau2["evaluation_criteria"]},
              {"expected_state_hash", replayed},
              {"forbidden_actions", forbidden}};
}

Expected<std::vector<TrialResult>> RunTau2Suite(const Tau2Suite& suite, agents::Policy& policy,
                                                agents::UserSimulator& user, const Tau2Options& o) {
  if (o.trials < 1) return InvalidArgument("eval: trials must be >= 1, got " + std::to_string(o.trials));
  // Specs first: a broken task fails the run before any episode is spent on it.
  std::vector<json> specs;
  std::vector<std::shared_ptr<const agents::EpisodeTask>> etasks;
  for (auto& t : suite.tasks) {
    auto d = suite.world->Find(t.domain);
    if (!d) return InvalidArgument("eval: task " + t.id + ": domain " + t.domain + " is not in the world");
    K2_ASSIGN_OR_RETURN(json spec, TaskSpec(*d, t));
    specs.push_back(std::move(spec));
    etasks.push_back(agents::EpisodeTask::FromSynth(t));
  }
  rewards::ToolRewardOptions ro;
  ro.judge = o.judge;
  ro.on_missing_judge = o.on_missing_judge;
  K2_ASSIGN_OR_RETURN(auto reward, rewards::MakeToolReward(ro));

  std::vector<agents::EpisodeJob> jobs;
  for (auto& et : etasks)
    for (int k = 0; k < o.trials; ++k) jobs.push_back({et, k});
  auto world = suite.world;
  agents::EnvMaker make_env = [world, cfg = o.env]() -> Expected<std::unique_ptr<agents::Env>> {
    return std::unique_ptr<agents::Env>(new agents::SyntheticEnv(world, cfg));
  };
  // Each trial is scored on the worker that ran it; a scoring failure stops the run and is its error.
  std::vector<std::optional<TrialResult>> results(jobs.size());
  std::mutex mu;
  Status first_error;
  std::atomic<bool> failed{false};
  std::map<std::string, size_t> task_index;  // task id -> its index in the suite
  for (size_t t = 0; t < suite.tasks.size(); ++t) task_index.emplace(suite.tasks[t].id, t);
  agents::RunOptions ropt;
  ropt.threads = o.threads;
  ropt.seed = o.seed;
  ropt.limits = o.limits;
  ropt.progress_label = o.progress_label;
  ropt.skip = [&](size_t i) { return o.skip && o.skip(suite.tasks[i / static_cast<size_t>(o.trials)].id, jobs[i].trial); };
  ropt.stop = [&] { return failed.load() || (o.stop && o.stop()); };
  ropt.on_done = [&](agents::Trajectory& tr) {
    // The job this trajectory ran: its task and trial.
    const size_t ti = task_index.at(tr.task_id);
    const size_t i = ti * static_cast<size_t>(o.trials) + static_cast<size_t>(tr.trial);
    rewards::ScoreInput in;
    in.messages = tr.messages;
    in.task = specs[ti];
    in.final_state = tr.final_state;
    in.termination = tr.end_reason;
    in.response_tokens = tr.completion_tokens;
    in.task_type = "tool";
    in.seed = tr.seed;
    auto r = reward->Score(in);
    if (!r.ok()) {
      std::lock_guard<std::mutex> lk(mu);
      if (first_error.ok()) first_error = r.status().Context("eval: task " + suite.tasks[ti].id + " trial " + std::to_string(tr.trial));
      failed.store(true);
      return;
    }
    TrialResult res;
    res.task_id = suite.tasks[ti].id;
    res.domain = suite.tasks[ti].domain;
    res.trial = tr.trial;
    res.reward = r->value;
    res.success = r->value >= 1.0;
    res.end_reason = tr.end_reason;
    res.components = r->components;
    res.explanation = r->explanation;
    if (!tr.error.empty()) res.explanation += "\n" + tr.end_reason + ": " + tr.error;
    res.turns = tr.turns;
    res.tool_calls = static_cast<int>(tr.tool_calls.size());
    tr.reward = r->value;
    tr.reward_components = r->components;
    res.trajectory = tr;
    if (o.on_trial) o.on_trial(res);
    results[i] = std::move(res);
  };
  agents::RunEpisodes(jobs, make_env, policy, &user, ropt);
  if (!first_error.ok()) return first_error;
  std::vector<TrialResult> out;
  for (auto& r : results)
    if (r) out.push_back(std::move(*r));
  return out;
}

}  // namespace k2::eval

namespace k2::eval {

Expected<rewards::tau2::Tau2Evaluation> ScoreTau2Episode(const std::shared_ptr<const agents::tau2::Domain>& domain,
                                                         const agents::tau2::Task& task, const json& trajectory,
                                                         const std::string& termination, const rewards::ChatFn& judge,
                                                         const agents::tau2::State* live, const json* live_db,
                                                         const json* live_user_db) {
  rewards::tau2::Tau2EnvOutcome env;
  if (rewards::tau2::IsScoredTermination(termination)) {
    auto checked = live_db && live_user_db ? agents::tau2::CheckEnvironment(domain, task, trajectory, *live_db, *live_user_db)
                                           : agents::tau2::CheckEnvironment(domain, task, trajectory, live);
    K2_ASSIGN_OR_RETURN(agents::tau2::EnvCheck c, std::move(checked));
    env.db_match = c.db_match;
    env.assertions_met = c.all_assertions_met;
    env.detail = {{"note", c.note}, {"assertions", c.assertions}, {"gold_log", c.gold_log}, {"replay_log", c.replay_log}};
  }
  return rewards::tau2::Evaluate(task.data, trajectory, termination, env, judge);
}

Expected<std::vector<agents::tau2::Task>> SelectNativeTau2Tasks(const NativeTau2Options& o) {
  std::string path = (std::filesystem::path(o.data_dir) / o.tasks_file).string();
  K2_ASSIGN_OR_RETURN(std::vector<agents::tau2::Task> tasks, agents::tau2::LoadTasks(path, o.domain));
  if (!o.split.empty()) {
    K2_ASSIGN_OR_RETURN(auto splits, agents::tau2::LoadSplits(path));
    K2_ASSIGN_OR_RETURN(tasks, agents::tau2::SelectSplit(tasks, splits, o.split));
  }
  if (o.max_tasks > 0 && static_cast<size_t>(o.max_tasks) < tasks.size()) tasks.resize(static_cast<size_t>(o.max_tasks));
  if (tasks.empty()) return InvalidArgument(path + ": no task selected");
  return tasks;
}

Expected<std::vector<TrialRecord>> RunNativeTau2(const NativeTau2Options& o, agents::Policy& agent, agents::Policy* user_llm) {
  if (o.trials < 1) return InvalidArgument("eval: trials must be >= 1, got " + std::to_string(o.trials));
  K2_ASSIGN_OR_RETURN(auto domain, agents::tau2::LoadDomain(o.domain, o.data_dir));
  K2_ASSIGN_OR_RETURN(std::vector<agents::tau2::Task> tasks, SelectNativeTau2Tasks(o));
  // A task the judge must grade fails the run up front when no judge is given.
  for (auto& t : tasks) {
    const json& ec = t.evaluation_criteria();
    bool needs = false;
    for (auto& b : t.reward_basis()) needs = needs || b == "NL_ASSERTION";
    if (needs && ec["nl_assertions"].is_array() && !ec["nl_assertions"].empty() && !o.judge)
      return FailedPrecondition("eval: task " + t.id + " of " + o.domain +
                                " has NL_ASSERTION in its reward basis: give a judge (--judge openai:URL, or --user-llm, which judges by default)");
    std::vector<std::string> log;
    auto st = agents::tau2::InitialState(domain, t, &log);
    if (!st.ok()) return st.status().Context("eval: " + o.domain);
  }
  if (o.guidelines.empty() && user_llm) return InvalidArgument("eval: the LLM user needs τ²'s simulation guidelines text");
  json user_tools = json::array();
  for (auto& s : domain->ToolSpecs(true)) user_tools.push_back(toolgen::ToOpenAITool(s));

  struct Job {
    size_t task;
    int trial;
  };
  std::vector<Job> jobs;
  for (size_t i = 0; i < tasks.size(); ++i)
    for (int k = 0; k < o.trials; ++k) jobs.push_back({i, k});
  std::vector<std::optional<Expected<TrialRecord>>> out(jobs.size());
  {
    ThreadPool pool(o.threads);
    std::vector<std::future<void>> fs;
    for (size_t j = 0; j < jobs.size(); ++j)
      fs.push_back(pool.Submit([&, j]() {
        const agents::tau2::Task& t = tasks[jobs[j].task];
        if ((o.skip && o.skip(t.id, jobs[j].trial)) || (o.stop && o.stop())) return;
        uint64_t seed = o.seed * 1000003ULL + std::hash<std::string>{}(t.id) + static_cast<uint64_t>(jobs[j].trial) * 7919ULL;
        std::unique_ptr<agents::tau2::UserSim> user = user_llm ? agents::tau2::MakeLlmUser(user_llm, t, o.guidelines, user_tools, seed)
                                                               : agents::tau2::MakeScriptedUser(t, domain->ToolSpecs(true));
        auto run = agents::tau2::Run(domain, t, agent, *user, o.limits, seed);
        if (!run.ok()) {
          out[j] = run.status();
          return;
        }
        auto ev = ScoreTau2Episode(domain, t, run->trajectory, run->termination, o.judge, run->final_state.get());
        if (!ev.ok()) {
          out[j] = ev.status().Context("eval: task " + t.id + " trial " + std::to_string(jobs[j].trial));
          return;
        }
        TrialRecord r;
        r.case_id = t.id;
        r.group = o.domain;
        r.trial = jobs[j].trial;
        r.reward = ev->reward;
        r.success = ev->reward >= 1.0;
        r.end_reason = run->termination == "user_stop" && run->stop_detail != "stop" ? run->stop_detail : run->termination;
        r.detail = run->error.empty() ? ev->info.dump() : run->error + "\n" + ev->info.dump();
        r.components = ev->breakdown;
        if (o.keep_trajectories) r.trajectory = run->trajectory;
        if (o.on_trial) o.on_trial(r);
        out[j] = std::move(r);
      }));
    for (auto& f : fs) f.get();
  }
  std::vector<TrialRecord> records;
  for (auto& r : out) {
    if (!r) continue;  // skipped, or not started after stop
    if (!r->ok()) return r->status();
    records.push_back(std::move(**r));
  }
  return records;
}

}  // namespace k2::eval

namespace k2::eval {

Expected<std::string> Tau2DomainDir(const std::string& tau2_data, const std::string& domain) {
  if (tau2_data.empty()) return InvalidArgument("--tau2-data: required for tau2:DOMAIN suites (τ²-bench's data/tau2/domains folder)");
  std::filesystem::path p = std::filesystem::path(tau2_data) / domain;
  std::error_code ec;
  if (!std::filesystem::is_directory(p, ec))
    return InvalidArgument("--tau2-data: " + p.string() + " is not a folder (expected " + tau2_data + "/<domain> with τ²'s files)");
  return p.string();
}

Expected<std::string> ReadSimulationGuidelines(const std::string& tau2_data) {
  namespace fs = std::filesystem;
  for (fs::path p : {fs::path(tau2_data) / "simulation_guidelines.md", fs::path(tau2_data) / ".." / "user_simulator" / "simulation_guidelines.md"}) {
    std::error_code ec;
    if (fs::exists(p, ec)) return ReadFile(p.string());
  }
  return NotFound("--tau2-data " + tau2_data + ": no simulation_guidelines.md (looked in the folder and in ../user_simulator/)");
}

}  // namespace k2::eval

namespace k2::eval {

namespace {

// The "tau2" reward: τ²-bench's evaluation of a pipeline episode on a native domain. The spec carries the
// task ({"tau2_task": τ² task, "tau2": {"domain", "data_dir"}}); the final state carries every tool
// call of both requestors in order (Tau2Env::State), which becomes the τ² trajectory replayed for DB
// and ENV_ASSERTION, pooled for ACTION; COMMUNICATE reads the agent's messages.
class Tau2NativeReward : public rewards::Reward {
 public:
  explicit Tau2NativeReward(bool skip_nl) : skip_nl_(skip_nl) {}
  std::string name() const override { return "tau2"; }

 protected:
  Expected<rewards::RewardResult> DoScore(const rewards::ScoreInput& in) const override {
    const json& where = in.task.contains("tau2") ? in.task["tau2"] : json(nullptr);
    if (!where.is_object() || !where.contains("domain") || !where.contains("data_dir") || !in.task.contains("tau2_task"))
      return InvalidArgument("tau2 reward: spec: expected {\"tau2\": {\"domain\", \"data_dir\"}, \"tau2_task\": task}");
    K2_ASSIGN_OR_RETURN(auto domain, agents::tau2::SharedDomain(where["domain"], where["data_dir"]));
    K2_ASSIGN_OR_RETURN(json norm, agents::tau2::NormalizeTask(in.task["tau2_task"], "tau2 reward: spec.tau2_task"));
    agents::tau2::Task task;
    task.id = norm["id"];
    task.domain = domain->name;
    task.data = std::move(norm);
    rewards::RewardResult out;
    json& ec = task.data["evaluation_criteria"];
    if (ec.is_object() && ec["reward_basis"].is_array() && ec["nl_assertions"].is_array() && !ec["nl_assertions"].empty()) {
      json basis = json::array();
      for (auto& b : ec["reward_basis"])
        if (b != "NL_ASSERTION") basis.push_back(b);
      if (basis.size() != ec["reward_basis"].size()) {
        if (!skip_nl_) return FailedPrecondition("tau2 reward: task " + task.id + " needs NL_ASSERTION and no judge is configured");
        // Only NL assertions: nothing left to score it by (an empty product would be a free 1.0).
        if (basis.empty())
          return FailedPrecondition("tau2 reward: task " + task.id +
                                    " is scored only by NL_ASSERTION and no judge is configured (--judge)");
        ec["reward_basis"] = basis;
        out.components["nl_assertion_skipped"] = 1;
      }
    }
    json traj = json::array();
    const json& is = task.initial_state();
    if (is.is_object() && is["message_history"].is_array())
      for (auto& m : is["message_history"]) traj.push_back(m);
    for (auto& m : in.messages)
      if (m.role == "assistant" && !m.content.empty()) traj.push_back({{"role", "assistant"}, {"content", m.content}});
    const json& calls = in.final_state.is_object() && in.final_state.contains("calls") ? in.final_state["calls"] : json::array();
    for (size_t i = 0; i < calls.size(); ++i) {
      const json& c = calls[i];
      std::string id = "call_" + std::to_string(i), req = c.value("requestor", "assistant");
      traj.push_back({{"role", req}, {"content", nullptr},
                      {"tool_calls", json::array({{{"id", id}, {"name", c["name"]}, {"arguments", c["arguments"]}, {"requestor", req}}})}});
      traj.push_back({{"role", "tool"}, {"id", id}, {"content", c["content"]}, {"requestor", req}, {"error", c["error"]}});
    }
    // The environment's final databases are the episode's own end state: no replay needed (the call log
    // still makes the trajectory ACTION pools). Without them (an episode that broke), replay.
    const json& fs = in.final_state;
    const bool have_state = fs.is_object() && fs.contains("db") && fs.contains("user_db");
    K2_ASSIGN_OR_RETURN(rewards::tau2::Tau2Evaluation ev,
                        ScoreTau2Episode(domain, task, traj, in.termination, nullptr, nullptr, have_state ? &fs["db"] : nullptr,
                                         have_state ? &fs["user_db"] : nullptr));
    out.value = ev.reward;
    for (auto& [k, v] : ev.breakdown.items()) out.components[Lower(k)] = v.get<double>();
    out.explanation = ev.info.dump().substr(0, 2000);
    return out;
  }

 private:
  static std::string Lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  bool skip_nl_;
};

}  // namespace

void RegisterTau2Reward() {
  static std::once_flag once;
  std::call_once(once, [] {
    rewards::RegisterReward("tau2", [](const json& cfg, const std::string& where) -> Expected<std::unique_ptr<rewards::Reward>> {
      for (auto& [k, v] : cfg.items())
        if (k != "type" && k != "on_missing_judge") return InvalidArgument(where + ": unknown key " + json(k).dump() + " (tau2: on_missing_judge)");
      std::string m = cfg.value("on_missing_judge", std::string("skip"));
      if (m != "skip" && m != "error") return InvalidArgument(where + ".on_missing_judge: expected \"skip\" or \"error\"");
      return std::unique_ptr<rewards::Reward>(std::make_unique<Tau2NativeReward>(m == "skip"));
    });
  });
}

}  // namespace k2::eval
