// `k2gym reward check|types` as a user runs them: per-case output, exit codes (0 all expectations hold,
// 1 a mismatch, 2 bad input naming file:line), --json that parses.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/json.h"

namespace k2 {
namespace {

struct Result {
  int code;
  std::string out, err;
};

class RewardCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("k2gym_reward_cli_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Result Run(const std::string& args) {
    std::string out = (dir_ / "out").string(), err = (dir_ / "err").string();
    std::string cmd = "cd " + dir_.string() + " && " + K2GYM_BINARY_DIR + "/apps/k2gym " + args + " >" + out + " 2>" + err;
    int st = std::system(cmd.c_str());
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, *ReadFile(out), *ReadFile(err)};
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream((dir_ / name).string()) << text;
    return (dir_ / name).string();
  }
  std::filesystem::path dir_;
};

std::string Data(const std::string& f) { return std::string(K2GYM_SOURCE_DIR) + "/tests/rewards/data/" + f; }

TEST_F(RewardCli, ChecksTheShippedTablesAsJson) {
  for (const char* kind : {"math", "if", "tool", "ast"}) {
    Result r = Run(std::string("reward check --kind ") + kind + " --input " + Data(std::string(kind) + ".jsonl") + " --json");
    ASSERT_EQ(r.code, 0) << kind << ": " << r.err << r.out.substr(0, 2000);
    auto j = ParseJson(r.out, "stdout");
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    EXPECT_GE((*j)["summary"]["cases"].get<int>(), 50);
    EXPECT_EQ((*j)["summary"]["mismatches"].get<int>(), 0);
    EXPECT_TRUE((*j)["cases"][0].contains("explanation"));
  }
}

TEST_F(RewardCli, PrintsScoresAndFlagsMismatches) {
  std::string f = Write("mine.jsonl",
                        "{\"id\": \"right\", \"response\": \"\\\\boxed{4}\", \"reference\": \"4\", \"expected\": 1}\n"
                        "{\"id\": \"wrong\", \"response\": \"\\\\boxed{5}\", \"reference\": \"4\", \"expected\": 1}\n"
                        "{\"id\": \"plain\", \"response\": \"so 4\", \"reference\": \"4\"}\n");
  Result r = Run("reward check --kind math --input " + f);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.out.find("right"), std::string::npos);
  EXPECT_NE(r.out.find("MISMATCH"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 case(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 mismatch(es)"), std::string::npos) << r.out;
}

TEST_F(RewardCli, BadInputIsAUsageErrorNamingTheLine) {
  std::string f = Write("bad.jsonl", "{\"response\": \"x\", \"reference\": \"1\"}\n{\"response\": [1]}\n");
  Result r = Run("reward check --kind math --input " + f);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bad.jsonl:2: response: expected string"), std::string::npos) << r.err;
  Result k = Run("reward check --kind maths --input " + f);
  EXPECT_EQ(k.code, 2);
  EXPECT_NE(k.err.find("did you mean \"math\""), std::string::npos) << k.err;
  Result m = Run("reward check --kind math --input " + (dir_ / "missing.jsonl").string());
  EXPECT_EQ(m.code, 2);
  Result s = Run("reward check --kind if --input " + Write("spec.jsonl", "{\"response\": \"x\", \"constraints\": [{\"type\": \"title\"}, {\"type\": \"word_count\"}]}\n"));
  EXPECT_EQ(s.code, 2);
  EXPECT_NE(s.err.find("task.constraints[1].relation"), std::string::npos) << s.err;
}

TEST_F(RewardCli, ListsTypes) {
  Result r = Run("reward types --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok());
  EXPECT_NE((*j)["rewards"].dump().find("\"code\""), std::string::npos);
  EXPECT_GE((*j)["if_constraints"].size(), 15u);
}

}  // namespace
}  // namespace k2
