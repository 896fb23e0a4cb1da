// `k2gym simulate` end to end through the built binary: toolgen synth/tasks -> simulate -> store + JSONL;
// the same seed gives byte-identical exports; usage errors are clear. The binary is a build dependency.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "agents/export.h"
#include "agents/trajectory.h"
#include "core/json.h"
#include "tests/cli_util.h"
#include "core/store.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;
const std::string kBin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";

using Run = test::ShellResult;
Run Sh(const std::string& args) { return test::RunK2gym(args); }

class CliSimulate : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kBin)) << kBin << " not built (agents_tests depends on the k2gym target)";
    dir_ = fs::temp_directory_path() / ("k2gym_cli_simulate_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = "--db " + (dir_ / "k.db").string() + " ";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
  std::string db_;
};

TEST_F(CliSimulate, OracleEpisodesAreKeptStoredAndExportedIdentically) {
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen synth --count 120").rc, 0);
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen tasks --count 24 --out " + P("tasks.json")).rc, 0);
  auto a = Sh(db_ + "--json --seed 9 simulate --tasks " + P("tasks.json") + " --episodes 48 --threads 2 --out " + P("a.jsonl"));
  ASSERT_EQ(a.rc, 0) << a.out;
  auto j = ParseJson(a.out, "simulate output");
  ASSERT_TRUE(j.ok()) << a.out;
  EXPECT_EQ((*j)["episodes"], 48);
  EXPECT_EQ((*j)["judge"]["kept"], 48) << a.out;
  EXPECT_EQ((*j)["exported"], 48);
  auto b = Sh(db_ + "--json --seed 9 simulate --tasks " + P("tasks.json") + " --episodes 48 --threads 1 --no-store --out " +
              P("b.jsonl"));
  ASSERT_EQ(b.rc, 0) << b.out;
  auto ta = ReadFile(P("a.jsonl")), tb = ReadFile(P("b.jsonl"));
  ASSERT_TRUE(ta.ok() && tb.ok());
  EXPECT_EQ(*ta, *tb) << "same seed, different thread count: exports must be byte-identical";
  auto lines = ReadJsonLines(P("a.jsonl"));
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 48u);
  for (const auto& l : *lines) EXPECT_TRUE(agents::ValidateOpenAIChatLine(l).ok());
  // The store holds the first run's trajectories (the second ran with --no-store).
  auto info = Sh(db_ + "--json db info");
  ASSERT_EQ(info.rc, 0);
  auto ij = ParseJson(info.out, "db info");
  ASSERT_TRUE(ij.ok()) << info.out;
  EXPECT_EQ((*ij)["tables"]["agent_trajectories"], 48) << info.out;
}


TEST_F(CliSimulate, TaskToolsOnlyDeclaresExactlyTheToolsTheGoldPlansCall) {
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen synth --count 14").rc, 0);
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen tasks --count 12 --out " + P("tasks.json") +
               " --set toolgen_synth.task_max_goals=1 --set 'toolgen_synth.task_kinds=[\"profile\",\"transfer\"]'")
                .rc,
            0);
  auto tasks = ReadJsonFile(P("tasks.json"));
  ASSERT_TRUE(tasks.ok());
  std::set<std::string> gold;
  for (const auto& t : *tasks)
    for (const auto& a : t["evaluation_criteria"]["actions"]) gold.insert(a["name"].get<std::string>());
  ASSERT_FALSE(gold.empty());
  auto all = Sh(db_ + "--seed 9 simulate --tasks " + P("tasks.json") + " --no-store --out " + P("all.jsonl"));
  ASSERT_EQ(all.rc, 0) << all.out;
  auto cut = Sh(db_ + "--json --seed 9 simulate --task-tools-only --tasks " + P("tasks.json") + " --no-store --out " +
                P("cut.jsonl"));
  ASSERT_EQ(cut.rc, 0) << cut.out;
  auto j = ParseJson(cut.out, "simulate output");
  ASSERT_TRUE(j.ok()) << cut.out;
  EXPECT_EQ((*j)["judge"]["kept"], 12) << cut.out;  // the oracle still solves every task
  auto a = ReadJsonLines(P("all.jsonl")), c = ReadJsonLines(P("cut.jsonl"));
  ASSERT_TRUE(a.ok() && c.ok());
  ASSERT_EQ(c->size(), 12u);
  for (size_t i = 0; i < c->size(); ++i) {
    std::set<std::string> declared;
    for (const auto& t : (*c)[i]["tools"]) declared.insert(t["function"]["name"].get<std::string>());
    EXPECT_EQ(declared, gold) << "line " << i;
    EXPECT_GT((*a)[i]["tools"].size(), declared.size()) << "line " << i;
    for (const auto& m : (*c)[i]["messages"]) {
      if (!m.contains("tool_calls")) continue;
      for (const auto& call : m["tool_calls"]) EXPECT_TRUE(declared.count(call["function"]["name"].get<std::string>()));
    }
  }
}
TEST_F(CliSimulate, InjectedViolationsAreDiscardedWithTheirReason) {
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen synth --count 120").rc, 0);
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen tasks --count 40").rc, 0);
  auto r = Sh(db_ + "--json --seed 2 --set oracle.violation_rate=1 simulate --no-store");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = ParseJson(r.out, "simulate output");
  ASSERT_TRUE(j.ok()) << r.out;
  const int64_t discarded = (*j)["judge"]["discarded"];
  EXPECT_GT(discarded, 0) << r.out;
  EXPECT_EQ((*j)["judge"]["discarded_by_reason"]["forbidden_action"], discarded) << r.out;
}

TEST_F(CliSimulate, BadArgumentsAreUsageErrorsWithAClearMessage) {
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen synth --count 120").rc, 0);
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen tasks --count 4").rc, 0);
  auto r = Sh(db_ + "simulate --policy magic");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("--policy: expected oracle|random|openai:URL|engine:CKPT"), std::string::npos) << r.out;
  r = Sh(db_ + "simulate --tasks " + P("missing.json"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("missing.json"), std::string::npos) << r.out;
  r = Sh(db_ + "simulate --policy engine:" + P("nockpt"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("--tokenizer"), std::string::npos) << r.out;
}

TEST_F(CliSimulate, AgentToolsetsReplaceTheDomainDefaults) {
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen synth --count 120").rc, 0);
  // Five agents per domain: every role, so the full-service agent covers every task's plan.
  auto ag = Sh(db_ + "--seed 4 toolgen agents --per-domain 5 --out " + P("agents.jsonl"));
  ASSERT_EQ(ag.rc, 0) << ag.out;
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen tasks --count 24 --out " + P("tasks.json")).rc, 0);
  auto r = Sh(db_ + "--json --seed 3 simulate --no-store --threads 2 --tasks " + P("tasks.json") + " --agents " +
              P("agents.jsonl") + " --out " + P("a.jsonl"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = ParseJson(r.out, "simulate output");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_GT((*j)["agents"]["loaded"].get<int64_t>(), 0);
  EXPECT_EQ((*j)["agents"]["episodes_with_agent"], 24) << r.out;
  EXPECT_EQ((*j)["judge"]["kept"], 24) << r.out;
  auto agents = ReadJsonLines(P("agents.jsonl"));
  ASSERT_TRUE(agents.ok());
  auto lines = ReadJsonLines(P("a.jsonl"));
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 24u);
  int with_foreign = 0;
  for (const auto& l : *lines) {
    EXPECT_TRUE(agents::ValidateOpenAIChatLine(l).ok());
    const std::string system = l["messages"][0]["content"];
    const json* agent = nullptr;
    for (const auto& a : *agents)
      if (system.rfind(a["system_prompt"].get<std::string>(), 0) == 0) agent = &a;
    ASSERT_NE(agent, nullptr) << "the system prompt is not an agent's: " << system.substr(0, 120);
    // The offered tools are exactly the agent's toolset (own share + cross-domain + distractors).
    EXPECT_EQ(l["tools"].size(), (*agent)["tools"].size());
    with_foreign += !(*agent)["cross_domain"].empty() || !(*agent)["distractors"].empty();
  }
  EXPECT_GT(with_foreign, 12);
  // A malformed agents file is a clear error naming the file and entry.
  ASSERT_TRUE(WriteFileAtomic(P("bad.jsonl"), "{\"id\": \"x\"}\n").ok());
  auto bad = Sh(db_ + "simulate --no-store --tasks " + P("tasks.json") + " --agents " + P("bad.jsonl"));
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.out.find("bad.jsonl[0]"), std::string::npos) << bad.out;
}

TEST_F(CliSimulate, DualControlTasksRunWithTheUsersOwnTools) {
  auto r = Sh(db_ + "--json --seed 5 simulate --no-store --dual-control 12 --threads 2 --out " + P("d.jsonl"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = ParseJson(r.out, "simulate output");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["tasks"], 12);
  EXPECT_EQ((*j)["judge"]["kept"], 12) << r.out;
  auto lines = ReadJsonLines(P("d.jsonl"));
  ASSERT_TRUE(lines.ok());
  for (const auto& l : *lines) {
    EXPECT_TRUE(agents::ValidateOpenAIChatLine(l).ok());
    EXPECT_EQ(l["tools"].dump().find("toggle_"), std::string::npos) << "the agent must not see the phone's tools";
  }
}

// engine:CKPT end to end: oracle dialogs -> tokenizer -> a few SFT steps of a small model whose context
// holds the whole rendered dialog -> `simulate --policy engine:CKPT`. Trajectories carry the token
// stream, the loss mask and both logprob streams; malformed model output is a recorded, judged failure.
TEST_F(CliSimulate, EnginePolicyFromATrainedCheckpointProducesScoredTokenTrajectories) {
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen synth --count 120").rc, 0);
  ASSERT_EQ(Sh(db_ + "--seed 4 toolgen tasks --count 2 --out " + P("tasks.json")).rc, 0);
  auto o = Sh(db_ + "--seed 4 simulate --no-store --tasks " + P("tasks.json") + " --out " + P("train.jsonl"));
  ASSERT_EQ(o.rc, 0) << o.out;
  auto tk = Sh("tokenizer train --corpus " + P("train.jsonl") + " --vocab-size 2048 --out " + P("tok") + " --quiet");
  ASSERT_EQ(tk.rc, 0) << tk.out;
  auto model = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  ASSERT_TRUE(model.ok());
  // The rendered dialog (system prompt, tool declarations, turns: ~5k tokens at this vocabulary) must fit.
  (*model)["max_position_embeddings"] = 8192;
  (*model)["rope_scaling"] = nullptr;
  ASSERT_TRUE(WriteFileAtomic(P("model.json"), model->dump()).ok());
  auto sft = Sh(db_ + "--seed 4 --set sft.seq_len=8192 --set sft.batch_size=1 --set sft.eval_fraction=0 sft --model " +
                P("model.json") + " --data " + P("train.jsonl") + " --tokenizer " + P("tok") + " --epochs 1 --out " +
                P("sft"));
  ASSERT_EQ(sft.rc, 0) << sft.out;
  auto r = Sh(db_ + "--json --seed 6 --set episode.max_turns=3 --set episode.max_tokens_per_turn=24 simulate --tasks " +
              P("tasks.json") + " --episodes 4 --threads 2 --keep-all --policy engine:" + P("sft/checkpoint") +
              " --tokenizer " + P("tok") + " --out " + P("e.jsonl"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = ParseJson(r.out, "simulate output");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["episodes"], 4);
  // The stored trajectories: strict JSON form, aligned token arrays, logprobs on generated tokens only.
  auto db = Db::Open((dir_ / "k.db").string());
  ASSERT_TRUE(db.ok());
  auto st = (*db)->Prepare("SELECT data FROM agent_trajectories WHERE policy LIKE 'engine%'");
  ASSERT_TRUE(st.ok());
  int n = 0, generated = 0, failures = 0, judged = 0;
  while (st->Step()) {
    auto row = ParseJson(st->Text(0), "row");
    ASSERT_TRUE(row.ok()) << row.status().ToString();
    auto t = agents::Trajectory::FromJson(*row, "row");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_TRUE(t->Validate().ok()) << t->Validate().ToString();
    ++n;
    ASSERT_FALSE(t->tokens.empty());
    for (size_t i = 0; i < t->tokens.size(); ++i) {
      if (!t->policy_mask[i]) continue;
      ++generated;
      EXPECT_LT(t->logprobs[i], 0.0f + 1e-6f);
      EXPECT_LT(t->policy_logprobs[i], 0.0f + 1e-6f);
    }
    for (const auto& f : t->failures) {
      ++failures;
      EXPECT_EQ(f.rfind("turn ", 0), 0u) << f;
    }
    judged += t->provenance.contains("judge");
  }
  EXPECT_EQ(n, 4);
  EXPECT_GT(generated, 4);
  EXPECT_EQ(judged, 4);
  // A model this small rarely emits a well-formed tool call; whatever it emitted was scored, not fatal.
  EXPECT_EQ((*j)["judge"]["kept"].get<int64_t>() + (*j)["judge"]["discarded"].get<int64_t>(), 4);
  (void)failures;
}

}  // namespace
}  // namespace k2
