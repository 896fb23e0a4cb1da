// The k2gym binary as a user runs it: exit codes, one-line errors, --json output that parses.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/json.h"

namespace k2 {
namespace {

struct Result {
  int code;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string Bin() { return std::string(K2GYM_BINARY_DIR) + "/apps/k2gym"; }

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("k2gym_cli_" + std::to_string(getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result Run(const std::string& args) {
    std::string out = (dir_ / "out").string(), err = (dir_ / "err").string();
    std::string cmd = "cd " + dir_.string() + " && " + Bin() + " " + args + " >" + out + " 2>" + err;
    int st = std::system(cmd.c_str());
    Result r{WIFEXITED(st) ? WEXITSTATUS(st) : -1, *ReadFile(out), *ReadFile(err)};
    return r;
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(CliTest, VersionJsonParses) {
  Result r = Run("version --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["name"], "k2gym");
  EXPECT_TRUE((*j)["cuda_built"].is_boolean());
}

TEST_F(CliTest, HelpOnEveryLevelExitsZero) {
  for (const char* a : {"--help", "version --help", "config --help", "config show --help", "db info --help"}) {
    Result r = Run(a);
    EXPECT_EQ(r.code, 0) << a;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << a << ": " << r.out;
  }
}

TEST_F(CliTest, UnknownCommandIsUsageError) {
  Result r = Run("frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("k2gym: error: ", 0), 0u) << r.err;
  EXPECT_EQ(Run("").code, 2);  // a command is required
}

TEST_F(CliTest, ConfigShowResolvesFileAndSet) {
  std::string cfg = Write("run.json", R"({"progress": {"period_s": 2}})");
  Result r = Run("config show --config " + cfg + " --set store.busy_timeout_ms=5");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["progress"]["period_s"], 2.0);
  EXPECT_EQ((*j)["store"]["busy_timeout_ms"], 5);
}

TEST_F(CliTest, BadConfigExitsTwoWithOneActionableLine) {
  std::string cfg = Write("bad.json", R"({"progress": {"period": 2}})");
  Result r = Run("config show --config " + cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "k2gym: error: " + cfg + ": unknown key \"progress.period\" (did you mean \"progress.period_s\"?)\n");
  Result r2 = Run("config show --set progress.period_s=0");
  EXPECT_EQ(r2.code, 2);
  EXPECT_EQ(r2.err, "k2gym: error: --set: progress.period_s: expected number in [0.1, 3600], got 0.0\n");
  Result r3 = Run("config show --config " + Write("broken.json", "{"));
  EXPECT_EQ(r3.code, 2);
  EXPECT_NE(r3.err.find("broken.json:1:2: invalid JSON"), std::string::npos) << r3.err;
  Result r4 = Run("config show --config /nonexistent/x.json");
  EXPECT_EQ(r4.code, 2);
  EXPECT_NE(r4.err.find("/nonexistent/x.json: cannot open"), std::string::npos) << r4.err;
}

TEST_F(CliTest, DbInfoJsonListsTablesAndVersions) {
  Result r = Run("db info --json --db k.db");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_GE((*j)["schema_versions"]["core"].get<int>(), 1);
  EXPECT_EQ((*j)["tables"]["runs"], 0);
  // Options also work before the subcommand.
  EXPECT_EQ(Run("--json --db k.db db info").code, 0);
}

TEST_F(CliTest, DbOnUnwritablePathIsRuntimeError) {
  Result r = Run("db info --db /nonexistent-dir/k.db");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--db /nonexistent-dir/k.db"), std::string::npos) << r.err;
}

TEST_F(CliTest, ConfigDocMatchesCommittedReference) {
  const char* src = K2GYM_SOURCE_DIR;
  Result r = Run("config doc");
  ASSERT_EQ(r.code, 0);
  auto committed = ReadFile(std::string(src) + "/docs/config.md");
  ASSERT_TRUE(committed.ok()) << "docs/config.md missing";
  EXPECT_EQ(r.out, *committed) << "docs/config.md is stale: regenerate with `build/default/apps/k2gym config doc > docs/config.md`";
}

// Loud failures (docs/guide.md): nothing a user gets wrong runs to the end and exits 0.
TEST_F(CliTest, NegativeSeedIsAUsageError) {
  Result r = Run("--seed -1 config show");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--seed"), std::string::npos) << r.err;
  EXPECT_EQ(Run("--seed 18446744073709551615 config show").code, 0);
}

TEST_F(CliTest, OutputInAMissingDirectoryFailsBeforeTheRun) {
  const std::string math = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/math.jsonl";
  Result r = Run("--db k.db simulate --source math:" + math + " --policy gold --out missing/dir/kept.jsonl");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--out missing/dir/kept.jsonl: directory missing/dir does not exist"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("simulated"), std::string::npos) << "the run started: " << r.out;
}

// An endpoint nobody listens on: every episode ends in policy_error. simulate and eval keep what they ran
// (the store has the run, marked failed) but exit 1 with the first error, not 0 with a zero score.
TEST_F(CliTest, UnreachableEndpointFailsTheRunWithTheFirstError) {
  const std::string math = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/math.jsonl";
  const std::string dead = "openai:http://127.0.0.1:9/v1";
  for (const std::string cmd : {"simulate", "eval"}) {
    std::string extra = cmd == "eval" ? " --trials 1 --k 1" : "";
    Result r = Run("--db k.db " + cmd + " --source math:" + math + " --policy " + dead + " --threads 2" + extra);
    EXPECT_EQ(r.code, 1) << cmd << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("k2gym: error: " + cmd + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("episodes ended in an error (policy_error"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("127.0.0.1:9"), std::string::npos) << "the first error names the endpoint: " << r.err;
  }
  Result info = Run("--db k.db --json db info");
  ASSERT_EQ(info.code, 0) << info.err;
  auto j = ParseJson(info.out, "db info");
  ASSERT_TRUE(j.ok()) << info.out;
  EXPECT_EQ((*j)["tables"]["runs"], 2) << "both runs are kept in the store: " << info.out;
}

}  // namespace
}  // namespace k2
