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

// The exit-code table of docs/guide.md: a missing input file or folder given on the command line is a
// usage error (2) naming the option and the path, whichever command gets it.
TEST_F(CliTest, MissingInputsAreUsageErrorsInEveryCommand) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"simulate --tasks nope.json", "--tasks"},
      {"simulate --dual-control 2 --tokens-out t.jsonl --tokenizer nope_dir", "--tokenizer"},
      {"eval --suite nope.json", "nope.json"},
      {"eval --source math:nope.jsonl", "nope.jsonl"},
      {"simulate --source math:nope.jsonl", "nope.jsonl"},
      {"sft --model nope.json --data nope.jsonl --tokenizer nope_dir --out s", "--model"},
      {"pretrain --data nope.txt --out p", "--data"},
      {"rl --init nope_dir", "--init"},
      {"tokenizer train --corpus nope.txt --out t", "--corpus"},
      {"tokenizer encode --tokenizer nope_dir --text hi", "--tokenizer"},
      {"tools import nope.jsonl", "nope.jsonl"},
      {"generate --model nope.json --prompt hi", "--model"},
      {"serve --ckpt nope_dir", "--ckpt"},
      {"sandbox run nope.py", "nope.py"},
      {"--config nope.json config show", "nope.json"},
      {"rl --config nope.json", "nope.json"},
  };
  for (const auto& [args, names] : cases) {
    Result r = Run("--db k.db " + args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(names), std::string::npos) << args << ": " << r.err;
    EXPECT_NE(r.err.find("k2gym: error: "), std::string::npos) << args << ": " << r.err;
  }
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

// Runs are managed by name or id without sqlite3: --name names the run, list/show find it, rm removes it
// with every row that belongs to it (here the eval tables' rows).
TEST_F(CliTest, RunsAreListedShownAndRemovedByName) {
  const std::string math = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/math.jsonl";
  for (const char* name : {"first", "second"}) {
    Result r = Run(std::string("--db k.db --name ") + name + " eval --source math:" + math +
                   " --policy gold --trials 1 --k 1 --threads 2");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  Result l = Run("--db k.db --json runs list");
  ASSERT_EQ(l.code, 0) << l.err;
  auto lj = ParseJson(l.out, "runs list");
  ASSERT_TRUE(lj.ok()) << l.out;
  ASSERT_EQ((*lj)["runs"].size(), 2u) << l.out;
  EXPECT_EQ((*lj)["runs"][0]["name"], "second");  // newest first
  EXPECT_EQ((*lj)["runs"][1]["name"], "first");
  EXPECT_EQ((*lj)["runs"][1]["status"], "done");
  EXPECT_EQ((*lj)["runs"][1]["kind"], "eval");

  Result sh = Run("--db k.db --json runs show first");
  ASSERT_EQ(sh.code, 0) << sh.err;
  auto sj = ParseJson(sh.out, "runs show");
  ASSERT_TRUE(sj.ok()) << sh.out;
  EXPECT_EQ((*sj)["id"], (*lj)["runs"][1]["id"]);
  ASSERT_TRUE((*sj)["rows"].is_object()) << sh.out;
  EXPECT_FALSE((*sj)["rows"].empty()) << "the eval run owns rows: " << sh.out;
  EXPECT_EQ((*sj)["config"]["policy"], "gold") << sh.out;
  Result text = Run("--db k.db runs list");
  EXPECT_NE(text.out.find("first"), std::string::npos) << text.out;

  Result missing = Run("--db k.db runs show nosuchrun");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("no run named \"nosuchrun\""), std::string::npos) << missing.err;

  Result rm = Run("--db k.db --json runs rm first");
  ASSERT_EQ(rm.code, 0) << rm.err;
  auto rj = ParseJson(rm.out, "runs rm");
  ASSERT_TRUE(rj.ok()) << rm.out;
  EXPECT_GT((*rj)["removed"][0]["rows"].get<int64_t>(), 0) << rm.out;
  auto after = ParseJson(Run("--db k.db --json runs list").out, "runs list");
  ASSERT_TRUE(after.ok());
  ASSERT_EQ((*after)["runs"].size(), 1u);
  EXPECT_EQ((*after)["runs"][0]["name"], "second");
  // The second run keeps its rows.
  auto kept = ParseJson(Run("--db k.db --json runs show second").out, "runs show");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ((*kept)["rows"], (*sj)["rows"]);
}

// τ²-bench's real domains are an environment kind like any other: listed, inspected, called after a reset
// with one of the domain's own tasks; a bad config names its key.
TEST_F(CliTest, Tau2DomainIsAnEnvironmentKind) {
  const std::string dir = std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2/airline";
  if (!std::filesystem::exists(dir + "/db.json")) GTEST_SKIP() << "no τ² data beside the checkout";
  Result l = Run("--json env list");
  ASSERT_EQ(l.code, 0) << l.err;
  EXPECT_NE(l.out.find("\"tau2\""), std::string::npos) << l.out;
  const std::string cfg = "'{\"domain\":\"airline\",\"data_dir\":\"" + dir + "\"}'";
  Result ins = Run("env inspect tau2 --env-config " + cfg);
  ASSERT_EQ(ins.code, 0) << ins.err;
  EXPECT_NE(ins.out.find("get_user_details"), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find("book_reservation"), std::string::npos) << ins.out;
  auto tasks = ReadJsonFile(dir + "/tasks.json");
  ASSERT_TRUE(tasks.ok());
  Write("task.json", (*tasks)[0].dump());
  Result call = Run("env call tau2 get_user_details '{\"user_id\":\"mia_li_3668\"}' --task \"$(cat task.json)\" --env-config " + cfg);
  ASSERT_EQ(call.code, 0) << call.err << call.out;
  EXPECT_NE(call.out.find("mia_li_3668"), std::string::npos) << call.out;
  EXPECT_NE(call.out.find("Mia"), std::string::npos) << call.out;
  Result unknown = Run("env call tau2 get_user_details '{\"user_id\":\"nobody\"}' --task \"$(cat task.json)\" --env-config " + cfg);
  EXPECT_NE(unknown.out.find("not found"), std::string::npos) << "τ²'s own tool error: " << unknown.out << unknown.err;
  Result bad = Run("env inspect tau2 --env-config '{\"domain\":\"airline\"}'");
  EXPECT_EQ(bad.code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("tau2: config.data_dir: expected a string"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace k2
