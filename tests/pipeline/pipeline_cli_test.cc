// simulate, eval and rl on every environment kind through the built binary: the gold path of each task
// scores 1 and a perturbed one 0 under the task's own reward (math, code in the sandbox, instruction
// following, an MCP server's final knowledge graph, the ledger plugin's target, the synthetic judge);
// malformed rows are skipped with file:line or stop --strict runs; rl runs on each source and on a
// weighted mixture with per-source metrics and the SCRR closed loop.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "core/json.h"
#include "engine/engine.h"
#include "engine/text/tokenizer.h"
#include "tests/cli_util.h"
#include "tests/tiny_model.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;
const std::string kData = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/";
const std::string kMemoryServer =
    std::string(K2GYM_SOURCE_DIR) + "/third_party/mcp/node_modules/@modelcontextprotocol/server-memory/dist/index.js";

test::ShellResult Sh(const std::string& args) { return test::RunK2gym(args, /*stderr_to_null=*/true); }

json JsonOut(const test::ShellResult& r) {
  auto p = r.out.find('{');
  if (p == std::string::npos) return nullptr;
  auto j = ParseJson(r.out.substr(p), "output");
  return j.ok() ? *j : json(nullptr);
}

class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(test::K2gymBin())) << "k2gym not built";
    dir_ = fs::temp_directory_path() /
           ("k2gym_pipeline_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }
  std::string P(const std::string& n) const { return (dir_ / n).string(); }
  std::string G() const { return "--db " + P("k.db") + " --seed 3 "; }
  void Write(const std::string& name, const json& j) { std::ofstream(P(name)) << j.dump(2); }

  // eval --source with the gold and the perturbed policy: every trial 1, then every trial 0.
  void ExpectGoldOneAndPerturbedZero(const std::string& source, const std::string& extra, size_t tasks) {
    for (const char* policy : {"gold", "perturbed"}) {
      auto r = Sh(G() + "--json eval --source " + source + " --policy " + policy + " --trials 1 --k 1 --threads 2 " + extra);
      ASSERT_EQ(r.rc, 0) << policy << ": " << r.out;
      json j = JsonOut(r);
      ASSERT_TRUE(j.is_object()) << r.out;
      ASSERT_EQ(j["trials_detail"].size(), tasks) << r.out;
      for (const auto& t : j["trials_detail"])
        EXPECT_EQ(t["reward"].get<double>(), std::string(policy) == "gold" ? 1.0 : 0.0)
            << policy << " " << t["case"] << ": " << t["detail"];
      EXPECT_EQ(j["score_errors"], 0) << r.out;
    }
    // simulate: the same tasks, kept by reward >= 1; rewards equal eval's (one scorer).
    auto g = Sh(G() + "--json simulate --source " + source + " --policy gold --threads 2 --no-store --out " + P("kept.jsonl") + " " + extra);
    ASSERT_EQ(g.rc, 0) << g.out;
    json jg = JsonOut(g);
    EXPECT_EQ(jg["kept"].get<size_t>(), tasks) << g.out;
    for (const auto& v : jg["rewards"]) EXPECT_EQ(v.get<double>(), 1.0);
    auto b = Sh(G() + "--json simulate --source " + source + " --policy perturbed --threads 2 --no-store " + extra);
    ASSERT_EQ(b.rc, 0) << b.out;
    EXPECT_EQ(JsonOut(b)["kept"], 0) << b.out;
  }

  fs::path dir_;
};

TEST_F(Pipeline, MathJsonlGoldScoresOnePerturbedZero) { ExpectGoldOneAndPerturbedZero("math:" + kData + "math.jsonl", "", 3); }

TEST_F(Pipeline, InstructionFollowingJsonlGoldScoresOnePerturbedZero) {
  ExpectGoldOneAndPerturbedZero("if:" + kData + "if.jsonl", "", 2);
}

TEST_F(Pipeline, CodeJsonlRunsInTheSandboxGoldScoresOnePerturbedZero) {
  ExpectGoldOneAndPerturbedZero("code:" + kData + "code.jsonl", "", 2);
}

TEST_F(Pipeline, McpMemoryServerTasksAreScoredOnTheFinalKnowledgeGraph) {
  ASSERT_TRUE(fs::exists(kMemoryServer)) << kMemoryServer << " missing: run scripts/setup.sh";
  Write("memory.json", {{"kind", "mcp"},
                        {"name", "memory"},
                        {"path", kData + "memory_tasks.jsonl"},
                        {"server",
                         {{"command", {"node", kMemoryServer}},
                          {"env", {{"MEMORY_FILE_PATH", "${EPISODE_TMP}/memory.json"}}},
                          {"state_tool", "read_graph"}}}});
  ExpectGoldOneAndPerturbedZero(P("memory.json"), "", 2);
}

// Rubric instead of a final state: the judge reward checks what the agent told the user and the calls
// it must not make; gold (looks the facts up, states them) 1, perturbed (no lookup, no answer) 0.
TEST_F(Pipeline, McpRubricTasksAreScoredByTheJudgeReward) {
  ASSERT_TRUE(fs::exists(kMemoryServer)) << kMemoryServer << " missing: run scripts/setup.sh";
  Write("memory_rubric.json", {{"kind", "mcp"},
                               {"name", "memory_rubric"},
                               {"path", kData + "memory_rubric_tasks.jsonl"},
                               {"server",
                                {{"command", {"node", kMemoryServer}},
                                 {"env", {{"MEMORY_FILE_PATH", "${EPISODE_TMP}/memory.json"}}}}}});
  ExpectGoldOneAndPerturbedZero(P("memory_rubric.json"), "", 2);
  // The reward is the judge's: its components name the rubric's checks.
  auto r = Sh(G() + "--json eval --source " + P("memory_rubric.json") + " --policy perturbed --trials 1 --k 1");
  ASSERT_EQ(r.rc, 0) << r.out;
  const json rj = JsonOut(r);  // a named value: a range-for over a temporary's member dangles
  for (const auto& t : rj["trials_detail"])
    EXPECT_NE(t["detail"].get<std::string>().find("info_not_communicated"), std::string::npos) << t.dump();
  // A rubric whose text needs the LLM grade is refused without a judge model (never a free pass).
  std::ofstream(P("text.jsonl")) << R"({"id": "t", "prompt": "hi", "rubric": {"text": "Greets back politely."}})" << "\n";
  Write("text.json", {{"kind", "mcp"}, {"path", P("text.jsonl")}, {"server", {{"command", {"node", kMemoryServer}}}}});
  auto t = test::RunK2gym(G() + "eval --source " + P("text.json") + " --policy gold");
  EXPECT_EQ(t.rc, 2) << t.out;
  EXPECT_NE(t.out.find("grade: true needs a judge model"), std::string::npos) << t.out;
  // A rubric that checks nothing is refused with the row's file:line.
  std::ofstream(P("bad.jsonl")) << R"({"id": "x", "prompt": "hi", "rubric": {"colour": "red"}})" << "\n";
  Write("bad.json", {{"kind", "mcp"}, {"path", P("bad.jsonl")}, {"server", {{"command", {"node", kMemoryServer}}}}});
  auto b = test::RunK2gym(G() + "eval --source " + P("bad.json") + " --policy gold --strict");
  EXPECT_EQ(b.rc, 2) << b.out;
  EXPECT_NE(b.out.find("bad.jsonl:1: rubric.colour: unknown key"), std::string::npos) << b.out;
}

TEST_F(Pipeline, LedgerPluginEnvironmentAndRewardRunWithoutCoreChanges) {
  Write("ledger.json", {{"kind", "jsonl"},
                        {"path", kData + "ledger.jsonl"},
                        {"task_type", "ledger"},
                        {"env", {{"kind", "ledger"}}},
                        {"reward", {{"type", "ledger_target"}}}});
  // Without the plugin the kind is unknown: a clear error, not a crash.
  auto no = Sh(G() + "eval --source " + P("ledger.json") + " --policy gold");
  EXPECT_NE(no.rc, 0);
  ExpectGoldOneAndPerturbedZero(P("ledger.json"), std::string("--plugin ") + LEDGER_PLUGIN, 2);
}

TEST_F(Pipeline, SyntheticCatalogTasksAreJudgedByTheJudgeReward) {
  ASSERT_EQ(Sh(G() + "--quiet toolgen synth --count 20").rc, 0);
  ASSERT_EQ(Sh(G() + "--quiet toolgen tasks --count 4 --out " + P("tasks.json")).rc, 0);
  auto r = Sh(G() + "--json eval --source synthetic:" + P("tasks.json") + " --policy gold --trials 1 --threads 2");
  ASSERT_EQ(r.rc, 0) << r.out;
  json j = JsonOut(r);
  ASSERT_FALSE(j["trials_detail"].empty()) << r.out;
  for (const auto& t : j["trials_detail"]) EXPECT_EQ(t["reward"].get<double>(), 1.0) << t["case"] << ": " << t["detail"];
  auto s = Sh(G() + "--json simulate --source synthetic:" + P("tasks.json") + " --policy perturbed --no-store");
  ASSERT_EQ(s.rc, 0) << s.out;
  const json sj = JsonOut(s);
  for (const auto& v : sj["rewards"]) EXPECT_EQ(v.get<double>(), 0.0) << s.out;
}

TEST_F(Pipeline, MalformedRowsAreSkippedWithFileLineOrStopAStrictRun) {
  auto r = test::RunK2gym(G() + "--json eval --source math:" + kData + "math_bad.jsonl --policy gold --trials 1");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("math_bad.jsonl:2: reference:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("math_bad.jsonl:3: not a JSON object"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 malformed task row(s) skipped"), std::string::npos) << r.out;
  json j = JsonOut(r);
  EXPECT_EQ(j["skipped_rows"], 2);
  EXPECT_EQ(j["trials_detail"].size(), 2u);
  auto strict = test::RunK2gym(G() + "eval --source math:" + kData + "math_bad.jsonl --policy gold --strict");
  EXPECT_EQ(strict.rc, 2) << strict.out;
  EXPECT_NE(strict.out.find("math_bad.jsonl:2: reference:"), std::string::npos) << strict.out;
  // A mixture stores one eval run; eval compare reads two of them.
  Write("mix.json", {{"kind", "mixture"},
                     {"sources", {{{"weight", 2}, {"source", "math:" + kData + "math.jsonl"}},
                                  {{"weight", 1}, {"source", "if:" + kData + "if.jsonl"}}}}});
  auto a = Sh(G() + "--json eval --source " + P("mix.json") + " --policy gold --trials 1");
  auto b = Sh(G() + "--json eval --source " + P("mix.json") + " --policy perturbed --trials 1");
  ASSERT_EQ(a.rc, 0) << a.out;
  ASSERT_EQ(b.rc, 0) << b.out;
  auto cmp = Sh(G() + "eval compare " + std::to_string(JsonOut(a)["run"].get<int64_t>()) + " " +
                std::to_string(JsonOut(b)["run"].get<int64_t>()));
  ASSERT_EQ(cmp.rc, 0) << cmp.out;
  EXPECT_NE(cmp.out.find("math"), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("if"), std::string::npos) << cmp.out;
}

TEST_F(Pipeline, RlRunsOnEverySourceKindAndOnAWeightedMixtureWithPerSourceMetricsAndTheCritic) {
  ASSERT_TRUE(fs::exists(kMemoryServer)) << kMemoryServer << " missing: run scripts/setup.sh";
  const std::string plugin = std::string(" --plugin ") + LEDGER_PLUGIN;
  ASSERT_EQ(Sh(G() + "--quiet toolgen synth --count 20").rc, 0);
  ASSERT_EQ(Sh(G() + "--quiet toolgen tasks --count 3 --out " + P("tasks.json")).rc, 0);
  Write("memory.json", {{"kind", "mcp"},
                        {"name", "memory"},
                        {"path", kData + "memory_tasks.jsonl"},
                        {"server",
                         {{"command", {"node", kMemoryServer}},
                          {"env", {{"MEMORY_FILE_PATH", "${EPISODE_TMP}/memory.json"}}},
                          {"state_tool", "read_graph"}}}});
  Write("ledger.json", {{"kind", "jsonl"}, {"path", kData + "ledger.jsonl"}, {"task_type", "ledger"},
                        {"env", {{"kind", "ledger"}}}, {"reward", {{"type", "ledger_target"}}}});
  const std::vector<std::pair<std::string, std::string>> sources = {
      {"tasks", "synthetic:" + P("tasks.json")}, {"memory", P("memory.json")}, {"ledger", P("ledger.json")},
      {"math", "math:" + kData + "math.jsonl"},  {"code", "code:" + kData + "code.jsonl"},
      {"if", "if:" + kData + "if.jsonl"},
      {"mock", "tau2:" + std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2/mock"}};  // named after its domain
  // The tokenizer learns from the gold dialogs of every source (simulate exports them).
  std::string corpus;
  for (const auto& [name, src] : sources) {
    auto r = Sh(G() + "--quiet simulate --source " + src + " --policy gold --no-store --out " + P(name + ".jsonl") + plugin);
    ASSERT_EQ(r.rc, 0) << name << ": " << r.out;
    std::ifstream in(P(name + ".jsonl"));
    corpus += std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(P("corpus.jsonl")) << corpus;
  ASSERT_EQ(Sh("--quiet tokenizer train --corpus " + P("corpus.jsonl") + " --vocab-size 1024 --threads 1 --out " + P("tok")).rc, 0);
  auto tok = text::Tokenizer::Load(P("tok"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  {
    auto model = engine::Model<float>::Create(test::TinyModelConfig(tok->vocab_size()), 11);
    ASSERT_TRUE(model.ok());
    fs::create_directories(P("init"));
    ASSERT_TRUE((*model)->SaveSafetensors(P("init") + "/model.safetensors").ok());
  }
  auto config = [&](int iters, int tasks) {
    return json{{"rl",
                 {{"iterations", iters},
                  {"tasks_per_iteration", tasks},
                  {"rollouts_per_task", 2},
                  {"temperature", {{"kind", "constant"}, {"start", 1.0}, {"end", 1.0}, {"steps", 1}}},
                  {"update", {{"seq_len", 4096}, {"micro_batch", 1}}},
                  {"threads", 1},
                  {"checkpoint_every", 1}}},
                {"rl_run",
                 {{"init", P("init")},
                  {"tokenizer", P("tok")},
                  {"rollout",
                   {{"episode_threads", 2}, {"episode", {{"max_turns", 2}, {"max_tokens_per_turn", 8}, {"max_tokens", 0}}}}}}}};
  };
  Write("rl2.json", config(2, 1));
  for (const auto& [name, src] : sources) {
    auto r = Sh(G() + "--json rl --config " + P("rl2.json") + " --source " + src + " --out " + P("rl_" + name) + plugin);
    ASSERT_EQ(r.rc, 0) << name << ": " << r.out;
    json j = JsonOut(r);
    EXPECT_EQ(j["iterations_done"], 2) << r.out;
    ASSERT_EQ(j["history"].size(), 2u);
    for (const auto& h : j["history"]) {
      EXPECT_TRUE(h.contains("source." + name + ".reward_mean")) << name << ": " << h.dump();
      EXPECT_EQ(h["source." + name + ".episodes"], 2.0);
    }
  }
  // A weighted mixture of three sources, three iterations, the policy as its own SCRR critic.
  Write("mix.json", {{"kind", "mixture"},
                     {"sources", {{{"weight", 2}, {"source", "math:" + kData + "math.jsonl"}},
                                  {{"weight", 1}, {"source", "if:" + kData + "if.jsonl"}},
                                  {{"weight", 1}, {"source", P("ledger.json")}}}}});
  Write("rl3.json", config(3, 4));
  auto r = Sh(G() + "--json rl --config " + P("rl3.json") + " --source " + P("mix.json") + " --critic policy --out " +
              P("rl_mix") + plugin);
  ASSERT_EQ(r.rc, 0) << r.out;
  json j = JsonOut(r);
  ASSERT_EQ(j["history"].size(), 3u) << r.out;
  std::set<std::string> seen;
  double episodes = 0;
  for (const auto& h : j["history"]) {
    EXPECT_TRUE(h.contains("critic_agreement")) << h.dump();
    EXPECT_TRUE(h.contains("critic_decisive_pairs")) << h.dump();
    for (const char* s : {"math", "if", "ledger"})
      if (h.contains(std::string("source.") + s + ".episodes")) {
        seen.insert(s);
        episodes += h[std::string("source.") + s + ".episodes"].get<double>();
      }
  }
  EXPECT_EQ(episodes, 3 * 4 * 2);
  EXPECT_GE(seen.size(), 2u) << "a 2:1:1 mixture over 12 draws";
  std::ifstream csv(P("rl_mix") + "/metrics.csv");
  std::string text((std::istreambuf_iterator<char>(csv)), {});
  EXPECT_NE(text.find("source.math.reward_mean"), std::string::npos);
  EXPECT_NE(text.find("critic_agreement"), std::string::npos);
  auto rep = Sh(G() + "report " + std::to_string(j["run"].get<int64_t>()) + " --out " + P("report.html"));
  ASSERT_EQ(rep.rc, 0) << rep.out;
  std::ifstream html(P("report.html"));
  std::string page((std::istreambuf_iterator<char>(html)), {});
  EXPECT_NE(page.find("Per task source"), std::string::npos);
  EXPECT_NE(page.find(">math<"), std::string::npos);
}

}  // namespace
}  // namespace k2
