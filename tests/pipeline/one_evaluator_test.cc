// One checkpoint, one answer: at temperature 0 the same checkpoint gives the same trajectories through
// `eval --policy engine:CKPT`, `k2gym serve` + `eval --policy openai:URL`, `simulate --policy engine:CKPT`
// and the rollouts of `k2gym rl`, and each consumer scores them with the same reward (simulate's keep
// filter included), on a mixture of synthetic tasks, τ²-bench's mock domain and math prompts.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "core/json.h"
#include "engine/engine.h"
#include "engine/text/tokenizer.h"
#include "tests/cli_util.h"
#include "tests/tiny_model.h"

extern char** environ;

namespace k2 {
namespace {

namespace fs = std::filesystem;
const std::string kData = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/";
const std::string kMock = std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2/mock";

test::ShellResult Sh(const std::string& args) { return test::RunK2gym(args, /*stderr_to_null=*/true); }

json JsonOut(const test::ShellResult& r) {
  auto p = r.out.find('{');
  if (p == std::string::npos) return nullptr;
  auto j = ParseJson(r.out.substr(p), "output");
  return j.ok() ? *j : json(nullptr);
}

std::vector<json> ReadLines(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) {
      auto j = ParseJson(line, path);
      EXPECT_TRUE(j.ok()) << path << ": " << line.substr(0, 200);
      if (j.ok()) out.push_back(*j);
    }
  return out;
}

// `k2gym serve` as a child process on an ephemeral loopback port (read from its first line); SIGTERM
// and reaped when the test scope ends.
class Served {
 public:
  explicit Served(std::vector<std::string> args) {
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    args.insert(args.begin(), {test::K2gymBin(), "serve"});
    std::vector<char*> argv;
    for (auto& x : args) argv.push_back(x.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, args[0].c_str(), &fa, nullptr, argv.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line_ += c;
    close(out[0]);
    const auto at = line_.find("http://127.0.0.1:");
    if (at != std::string::npos) port_ = std::atoi(line_.c_str() + at + 17);
  }
  ~Served() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  int port() const { return port_; }
  const std::string& line() const { return line_; }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
  std::string line_;
};

// What two paths must agree on: every message's role, text and tool calls (name + arguments; call ids
// are each path's own), the end, the reward and its components.
json Messages(const json& messages) {
  json ms = json::array();
  for (const auto& m : messages) {
    json c = {{"role", m.value("role", "")}, {"content", m.value("content", "")}};
    if (m.contains("tool_calls"))
      for (const auto& call : m["tool_calls"])
        c["calls"].push_back({call["function"].value("name", ""), call["function"].value("arguments", "")});
    ms.push_back(c);
  }
  return ms;
}
// (rl adds "rl_reward", the reward after rl.budget: none is set here, so it equals the task's reward.)
json Comparable(const json& t) {
  json components = t.at("reward_components");
  if (components.contains("rl_reward")) {
    EXPECT_EQ(components["rl_reward"], t.at("reward")) << t.at("task_id");
    components.erase("rl_reward");
  }
  return {{"task", t.at("task_id")}, {"messages", Messages(t.at("messages"))}, {"end_reason", t.at("end_reason")},
          {"failures", t.value("failures", json::array())}, {"reward", t.at("reward")}, {"components", components}};
}

class OneEvaluator : public ::testing::Test {
 protected:
  // Built once: a catalog and its tasks, a tokenizer, a tiny fresh model, the mixture and the runs of
  // every path (each test below checks one property of them).
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("k2gym_one_eval_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ok_ = Build();
  }
  static void TearDownTestSuite() {
    if (ok_ && !failed_) fs::remove_all(dir_);
  }
  void TearDown() override { failed_ = failed_ || HasFailure(); }

  static std::string P(const std::string& n) { return (dir_ / n).string(); }
  static std::string G() { return "--db " + P("k.db") + " --seed 5 "; }
  static void Write(const std::string& name, const json& j) { std::ofstream(P(name)) << j.dump(2); }
  static void Fail(const std::string& what) {
    ADD_FAILURE() << what;
    ok_ = false;
  }

  static bool Build() {
    if (Sh(G() + "--quiet toolgen synth --count 20").rc != 0) return Fail("toolgen synth"), false;
    if (Sh(G() + "--quiet toolgen tasks --count 4 --out " + P("tasks.json")).rc != 0) return Fail("toolgen tasks"), false;
    // τ²-bench's mock domain, its first two tasks (a task file of the run's own, beside the domain's data).
    auto mock = ReadJsonFile(kMock + "/tasks.json");
    if (!mock.ok() || mock->size() < 2) return Fail("mock tasks: " + mock.status().ToString()), false;
    Write("mock2.json", json::array({(*mock)[0], (*mock)[1]}));
    // Rewards that a fresh model's replies score differently: the synthetic judge's mean of its checks,
    // the τ² evaluation, math with a 4-token budget (longer replies lose 0.25).
    const json mix = {
        {"kind", "mixture"},
        {"sources",
         {{{"weight", 1},
           {"source",
            {{"kind", "jsonl"}, {"name", "math"}, {"path", kData + "math.jsonl"}, {"task_type", "math"},
             {"split", "heldout"},
             {"reward", {{"type", "budget"}, {"reward", {{"type", "math"}}}, {"default_budget", 4}, {"penalty", 0.25}}}}}},
          {{"weight", 1},
           {"source",
            {{"kind", "synthetic"}, {"name", "syn"}, {"tasks", P("tasks.json")}, {"heldout_fraction", 0.5},
             {"task_tools_only", true}, {"reward", {{"type", "judge"}, {"mode", "mean"}}}}}},
          {{"weight", 1},
           {"source", {{"kind", "tau2"}, {"name", "mock"}, {"dir", kMock}, {"tasks", P("mock2.json")}, {"split", "heldout"}}}}}}};
    Write("mix.json", mix);
    // The tokenizer learns from the gold dialogs (simulate exports them).
    if (Sh(G() + "--quiet simulate --source " + P("mix.json") + " --policy gold --no-store --keep-all --out " + P("gold.jsonl")).rc != 0)
      return Fail("simulate gold"), false;
    if (Sh("--quiet tokenizer train --corpus " + P("gold.jsonl") + " --dialogs --vocab-size 1024 --threads 1 --out " + P("tok")).rc != 0)
      return Fail("tokenizer train"), false;
    auto tok = text::Tokenizer::Load(P("tok"));
    if (!tok.ok()) return Fail(tok.status().ToString()), false;
    auto model = engine::Model<float>::Create(test::TinyModelConfig(tok->vocab_size(), 8192), 17);
    if (!model.ok()) return Fail(model.status().ToString()), false;
    fs::create_directories(P("ckpt"));
    if (!(*model)->SaveSafetensors(P("ckpt") + "/model.safetensors").ok()) return Fail("save"), false;
    // The RL loop's rollouts at iteration 0 (before any update): 8 groups of one rollout; group g's
    // rollout is trial g of its task under the iteration's seed (the scripted user's phrasing follows
    // the episode seed, so the other paths run the same (seed, task, trial) episodes).
    Write("rl.json", {{"rl",
                       {{"iterations", 1},
                        {"tasks_per_iteration", 8},
                        {"rollouts_per_task", 1},
                        {"temperature", {{"kind", "constant"}, {"start", 0.0}, {"end", 0.0}, {"steps", 1}}},
                        {"update", {{"seq_len", 8192}, {"micro_batch", 1}}},
                        {"threads", 1},
                        {"checkpoint_every", 1}}},
                      {"rl_run",
                       {{"init", P("ckpt")},
                        {"tokenizer", P("tok")},
                        {"rollout",
                         {{"episode_threads", 1},
                          {"episode", {{"max_turns", 3}, {"max_tokens_per_turn", 12}, {"max_tokens", 0}}}}}}}});
    auto r = Sh(G() + "--json rl --config " + P("rl.json") + " --source " + P("mix.json") + " --split heldout --out " + P("rl"));
    if (r.rc != 0) return Fail("rl: " + r.out), false;
    const auto rollouts = ReadLines(P("rl/trajectories/iter_0.jsonl"));
    if (rollouts.empty()) return Fail("rl wrote no trajectories"), false;
    const std::string seed = std::to_string(rollouts[0]["seed"].get<uint64_t>());
    // eval --policy engine:CKPT; k2gym serve + eval --policy openai:URL (loopback; every request
    // carries the episode's max_tokens, so the server's default is not used); simulate --policy
    // engine:CKPT with its keep filter. Trials 0..7 of every task, seeded as the rl iteration.
    const std::string eval = "--db " + P("k.db") + " --seed " + seed + " --json eval --source " + P("mix.json") +
                             " --split heldout --trials 8 --k 1 --threads 1" + Limits("eval.episode");
    const std::string engine = " --policy engine:" + P("ckpt") + " --tokenizer " + P("tok");
    if (auto e = Sh(eval + engine + " --out " + P("eval_engine")); e.rc != 0) return Fail("eval engine: " + e.out), false;
    {
      Served s({"--ckpt", P("ckpt"), "--tokenizer", P("tok"), "--port", "0", "--max-tokens", "512"});
      if (s.port() <= 0) return Fail("serve: " + s.line()), false;
      auto o = Sh(eval + " --policy openai:http://127.0.0.1:" + std::to_string(s.port()) + "/v1 --out " + P("eval_served"));
      if (o.rc != 0) return Fail("eval served: " + o.out), false;
    }
    sim_ = Sh("--db " + P("k.db") + " --seed " + seed + " --json simulate --source " + P("mix.json") +
              " --split heldout --episodes 56 --threads 1" + engine + " --threshold 0.3 --keep-all --no-store --out " +
              P("sim.jsonl") + Limits("episode"));
    if (sim_.rc != 0) return Fail("simulate: " + sim_.out), false;
    return true;
  }

  // Greedy, the same limits everywhere: eval.episode (eval, served eval), episode (simulate),
  // rl_run.rollout.episode (rl).
  static std::string Limits(const std::string& section) {
    return " --set " + section + ".temperature=0 --set " + section + ".max_turns=3 --set " + section +
           ".max_tokens_per_turn=12 --set " + section + ".max_tokens=0";
  }


  static fs::path dir_;
  static bool ok_, failed_;
  static test::ShellResult sim_;
};
fs::path OneEvaluator::dir_;
test::ShellResult OneEvaluator::sim_;
bool OneEvaluator::ok_ = false;
bool OneEvaluator::failed_ = false;

// Trajectories by "task#trial".
std::string Key(const json& t) { return t.at("task_id").get<std::string>() + "#" + std::to_string(t.at("trial").get<int>()); }
std::map<std::string, json> ByEpisode(const std::vector<json>& trajs) {
  std::map<std::string, json> out;
  for (const auto& t : trajs) out[Key(t)] = t;
  return out;
}

// One TEST (the paths' runs are its setup, built once): at temperature 0 the trajectories through
// engine:, served openai: and rl's rollouts are identical, and simulate, eval and rl score each the same.
TEST_F(OneEvaluator, OneCheckpointGivesOneTrajectoryAndOneRewardThroughEveryPath) {
  ASSERT_TRUE(ok_);
  const auto evald = ReadLines(P("eval_engine/eval_trajectories.jsonl"));
  const auto engine = ByEpisode(evald);
  ASSERT_EQ(engine.size(), 7u * 8) << "(3 math + 2 synthetic held-out + 2 mock) x 8 trials";
  const auto served = ByEpisode(ReadLines(P("eval_served/eval_trajectories.jsonl")));
  ASSERT_EQ(served.size(), engine.size());
  for (const auto& [key, t] : engine) {
    ASSERT_TRUE(served.count(key)) << key;
    EXPECT_EQ(Comparable(served.at(key)), Comparable(t)) << key;
  }
  const auto rollouts = ReadLines(P("rl/trajectories/iter_0.jsonl"));
  ASSERT_EQ(rollouts.size(), 8u);
  std::set<std::string> sources;
  for (const auto& t : rollouts) {
    const std::string key = Key(t);
    ASSERT_TRUE(engine.count(key)) << key;
    sources.insert(key.substr(0, key.find('/')));
    // The same messages, tool calls, failures, end and reward (rl's reward path: the rollouts' scorer).
    EXPECT_EQ(Comparable(t), Comparable(engine.at(key))) << key;
    // Token for token: the same context and generated ids, the same policy mask.
    EXPECT_EQ(t["tokens"], engine.at(key)["tokens"]) << key;
    EXPECT_EQ(t["policy_mask"], engine.at(key)["policy_mask"]) << key;
  }
  EXPECT_EQ(sources.size(), 3u) << "8 draws over three equal-weight sources";

  // One scorer: simulate's keep filter scores the same episodes with the same rewards.
  std::set<double> distinct;
  for (const auto& t : evald) distinct.insert(t["reward"].get<double>());
  EXPECT_GE(distinct.size(), 2u) << "rewards that do not tell trajectories apart test nothing";
  std::vector<std::string> order;  // eval's task order (task-major); simulate's jobs are trial-major
  for (const auto& t : evald)
    if (order.empty() || order.back() != t["task_id"]) order.push_back(t["task_id"]);
  ASSERT_EQ(order.size(), 7u);
  json js = JsonOut(sim_);
  ASSERT_EQ(js["rewards"].size(), evald.size()) << sim_.out;
  const auto sim = ReadLines(P("sim.jsonl"));
  ASSERT_EQ(sim.size(), evald.size());
  int64_t keep = 0;
  for (size_t i = 0; i < sim.size(); ++i) {
    const std::string key = order[i % order.size()] + "#" + std::to_string(i / order.size());
    ASSERT_TRUE(engine.count(key)) << key;
    const double reward = engine.at(key)["reward"].get<double>();
    EXPECT_EQ(js["rewards"][i].get<double>(), reward) << key;
    keep += reward >= 0.3 ? 1 : 0;
    EXPECT_EQ(Messages(sim[i].at("messages")), Messages(engine.at(key).at("messages"))) << key;  // the exported dialog
  }
  EXPECT_EQ(js["kept"].get<int64_t>(), keep);
  EXPECT_GT(keep, 0);
  EXPECT_LT(keep, static_cast<int64_t>(sim.size()));
}

}  // namespace
}  // namespace k2
