// `k2gym simulate` end to end through the built binary: toolgen synth/tasks -> simulate -> store + JSONL;
// the same seed gives byte-identical exports; usage errors are clear. The binary is a build dependency.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "agents/export.h"
#include "core/json.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;
const std::string kBin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";

struct Run {
  int rc;
  std::string out;
};

Run Sh(const std::string& args) {
  std::string cmd = kBin + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

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

}  // namespace
}  // namespace k2
