// `k2gym eval` and `k2gym eval compare` as a user runs them: the builtin held-out suite with the oracle
// (every pass^k = 1) and the random policy (near 0), the sample BFCL/ACEBench suites through replayed
// replies (exact scores), stored runs compared, --json that parses, exit code 2 with a located message.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
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

class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("k2gym_eval_cli_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Result Run(const std::string& args) {
    std::string out = (dir_ / "out").string(), err = (dir_ / "err").string();
    std::string cmd = "cd " + dir_.string() + " && " + K2GYM_BINARY_DIR + "/apps/k2gym --db eval.db " + args + " >" + out +
                      " 2>" + err;
    int st = std::system(cmd.c_str());
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, *ReadFile(out), *ReadFile(err)};
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream((dir_ / name).string()) << text;
    return (dir_ / name).string();
  }
  std::filesystem::path dir_;
};

std::string Data(const std::string& f) { return std::string(K2GYM_SOURCE_DIR) + "/tests/eval/data/" + f; }

TEST_F(EvalCli, BuiltinSuiteOracleVersusRandomAndCompare) {
  Result a = Run("eval --suite builtin:heldout-small --policy oracle --trials 2 --k 1,2 --threads 2 --json");
  ASSERT_EQ(a.code, 0) << a.err;
  auto ja = ParseJson(a.out, "stdout");
  ASSERT_TRUE(ja.ok()) << ja.status().ToString() << a.out.substr(0, 500);
  const json& all = (*ja)["rows"].back();
  EXPECT_EQ(all["group"], "all");
  EXPECT_EQ(all["tasks"], 16);
  EXPECT_EQ(all["trials"], 32);
  EXPECT_EQ(all["pass_hat"]["1"].get<double>(), 1.0);
  EXPECT_EQ(all["pass_hat"]["2"].get<double>(), 1.0);
  int64_t run_a = (*ja)["run"].get<int64_t>();

  Result b = Run("eval --suite builtin:heldout-small --policy random --trials 2 --k 1,2 --threads 2");
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.out.find("pass^1"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("stored as run"), std::string::npos);
  int64_t run_b = run_a + 1;
  Result c = Run("eval compare " + std::to_string(run_a) + " " + std::to_string(run_b));
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("/ oracle"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("random"), std::string::npos);
  EXPECT_NE(c.out.find("   1.000"), std::string::npos);
  Result cj = Run("eval compare " + std::to_string(run_a) + " " + std::to_string(run_b) + " --json");
  ASSERT_EQ(cj.code, 0);
  auto jc = ParseJson(cj.out, "stdout");
  ASSERT_TRUE(jc.ok());
  EXPECT_LE((*jc)["b"]["rows"].back()["avg_reward"].get<double>(), 0.1);
  Result missing = Run("eval compare " + std::to_string(run_a) + " 999");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("run 999 has no eval results"), std::string::npos) << missing.err;
}

TEST_F(EvalCli, FunctionCallingSuitesThroughReplayedReplies) {
  std::string bfcl = Write("bfcl.json", json{{"kind", "bfcl"}, {"questions", Data("bfcl_questions.jsonl")},
                                             {"answers", Data("bfcl_answers.jsonl")}}.dump());
  Result r = Run("eval --suite " + bfcl + " --policy replay:" + Data("bfcl_responses.jsonl") + " --trials 1 --k 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok());
  auto want = ReadJsonLines(Data("bfcl_responses.jsonl"));
  ASSERT_TRUE(want.ok());
  double expected_mean = 0;
  for (auto& w : *want) expected_mean += w["expected"].get<double>();
  expected_mean /= static_cast<double>(want->size());
  EXPECT_DOUBLE_EQ((*j)["rows"].back()["pass_hat"]["1"].get<double>(), expected_mean);
  EXPECT_EQ((*j)["skipped"].size(), 1u);
  std::string ace = Write("ace.json", json{{"kind", "acebench"}, {"data", Data("acebench_data.jsonl")},
                                           {"answers", Data("acebench_answers.jsonl")}}.dump());
  Result r2 = Run("eval --suite " + ace + " --policy replay:" + Data("acebench_responses.jsonl") + " --trials 1 --k 1");
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_NE(r2.out.find("special_incomplete"), std::string::npos) << r2.out;
  EXPECT_NE(r2.out.find("skipped 1 case"), std::string::npos);
}

TEST_F(EvalCli, BadInputIsAUsageErrorNamingTheProblem) {
  Result r = Run("eval --suite builtin:nope");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown builtin suite \"nope\""), std::string::npos) << r.err;
  r = Run("eval --suite builtin:heldout-small --policy magic");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown policy \"magic\""), std::string::npos) << r.err;
  r = Run("eval --suite builtin:heldout-small --k 1,x");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--k"), std::string::npos) << r.err;
  std::string bad = Write("bad.json", R"({"kind": "tau3"})");
  r = Run("eval --suite " + bad);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("kind: expected"), std::string::npos) << r.err;
}

// The OpenAI-compatible path end to end: `k2gym serve` with a tiny random-init model and a tokenizer
// trained here, and `k2gym eval --policy openai:URL` running the builtin suite through it. A random
// model scores ~0; what is checked is that every trial ran and was scored.
TEST_F(EvalCli, OpenAiPolicyThroughServeRunsASuite) {
  std::string corpus;
  for (int i = 0; i < 200; ++i) corpus += "I would like to cancel my booking number " + std::to_string(i) + " please. ";
  Write("corpus.txt", corpus);
  Result t = Run("tokenizer train --corpus corpus.txt --out tok --vocab-size 576");
  ASSERT_EQ(t.code, 0) << t.err;
  auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["vocab_size"] = 576;
  Write("model.json", cfg->dump());
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::string bin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";
  std::vector<std::string> args = {bin, "serve", "--model", (dir_ / "model.json").string(), "--tokenizer", (dir_ / "tok").string(),
                                   "--port", "0", "--max-tokens", "12", "--db", (dir_ / "serve.db").string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  close(out[0]);
  int port = 0;
  if (line.find("listening on http://127.0.0.1:") != std::string::npos) port = std::atoi(line.c_str() + line.rfind(':') + 1);
  Result r;
  if (port > 0)
    r = Run("eval --suite builtin:heldout-small --policy openai:http://127.0.0.1:" + std::to_string(port) +
            "/v1 --trials 1 --k 1 --threads 2 --set eval.episode.max_turns=3 --json");
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_GT(port, 0) << line;
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out.substr(0, 300);
  const json& all = (*j)["rows"].back();
  EXPECT_EQ(all["tasks"], 16);
  EXPECT_EQ(all["trials"], 16);
  EXPECT_EQ((*j)["trials_detail"].size(), 16u);
  // Every trial reached the server: either a scored reply, or the server's own refusal (a tiny model's
  // 64-token context is smaller than the suite's prompts: http_400 context_length_exceeded), never a
  // connection failure.
  for (auto& t : (*j)["trials_detail"]) {
    std::string d = t["detail"].get<std::string>();
    EXPECT_EQ(d.find("connect"), std::string::npos) << d;
    if (t["end_reason"] == "policy_error") {
      EXPECT_NE(d.find("http_400"), std::string::npos) << d;
    }
  }
}

}  // namespace
}  // namespace k2
