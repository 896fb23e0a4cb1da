// `k2gym eval --suite tau2:DOMAIN` end to end: an openai: agent and an LLM user, both a tiny random model
// served by a local `k2gym serve`, on one task of each native domain, bounded by --max-steps. A random
// model scores ~0; what is checked is that every episode reached the served model on both sides and
// was scored (its ending is one of τ²'s), and the flags' errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/json.h"

extern char** environ;

namespace k2 {
namespace {

struct Result {
  int code = -1;
  std::string out, err;
};

class Tau2Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("k2gym_tau2_cli_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Result Run(const std::string& args) {
    std::string out = (dir_ / "out.txt").string(), err = (dir_ / "err.txt").string();
    std::string cmd = "cd " + dir_.string() + " && " + std::string(K2GYM_BINARY_DIR) + "/apps/k2gym --db " + (dir_ / "k2.db").string() +
                      " " + args + " >" + out + " 2>" + err;
    Result r;
    int st = std::system(cmd.c_str());
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    auto o = ReadFile(out), e = ReadFile(err);
    r.out = o.ok() ? *o : "";
    r.err = e.ok() ? *e : "";
    return r;
  }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::filesystem::path dir_;
};

// `k2gym serve` as a child process on an ephemeral loopback port, read from its first line.
class Server {
 public:
  explicit Server(const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::string bin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";
    std::vector<std::string> all = {bin, "serve"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& x : all) argv.push_back(x.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line_ += c;
    close(out[0]);
    if (line_.find("listening on http://127.0.0.1:") != std::string::npos) port_ = std::atoi(line_.c_str() + line_.rfind(':') + 1);
  }
  ~Server() {
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

std::string Data() { return std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2"; }

TEST_F(Tau2Cli, FlagErrorsNameWhatIsMissing) {
  Result r = Run("eval --suite tau2:mock --tau2-data " + Data());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--agent-llm"), std::string::npos) << r.err;
  r = Run("eval --suite tau2:mock --agent-llm openai:http://127.0.0.1:9/v1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--tau2-data"), std::string::npos) << r.err;
  r = Run("eval --suite tau2:nowhere --tau2-data " + Data() + " --agent-llm openai:http://127.0.0.1:9/v1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;
}

// `eval --suite tau2:telecom --policy replay:FILE`: recorded agent turns that play each task's gold
// plan (its own actions as tool calls, the user's as requests by tool name) against the scripted user,
// who runs the phone actions; every episode scores 1.0. The session ids are the native runner's
// ("tau2:<task id>:<episode seed>", seed = --seed * 1000003 + hash(task id) for trial 0).
TEST_F(Tau2Cli, ReplayedGoldPlanScoresOneOnTelecomWithTheScriptedUser) {
  auto tasks = ReadJsonFile(Data() + "/telecom/tasks.json");
  ASSERT_TRUE(tasks.ok());
  const uint64_t seed = 5;
  std::string lines;
  for (int i = 0; i < 3; ++i) {
    const json& t = (*tasks)[static_cast<size_t>(i)];
    std::string id = t["id"];
    json turns = json::array();
    int n = 0;
    for (auto& a : t["evaluation_criteria"]["actions"]) {
      if (a["requestor"] == "user") {
        std::string args;
        for (auto& [k, v] : a["arguments"].items()) args += (args.empty() ? "" : ", ") + k + "=" + v.dump();
        turns.push_back({{"role", "assistant"}, {"content", "Please run " + a["name"].get<std::string>() + "(" + args + ") on your phone."}});
      } else {
        turns.push_back({{"role", "assistant"},
                         {"content", ""},
                         {"tool_calls", json::array({{{"id", "c" + std::to_string(n++)},
                                                      {"type", "function"},
                                                      {"function", {{"name", a["name"]}, {"arguments", a["arguments"].dump()}}}}})}});
      }
    }
    turns.push_back({{"role", "assistant"}, {"content", "Your phone should work now. ###STOP###"}});
    uint64_t episode_seed = seed * 1000003ULL + std::hash<std::string>{}(id);
    lines += json{{"id", "tau2:" + id + ":" + std::to_string(episode_seed)}, {"turns", turns}}.dump() + "\n";
  }
  Write("gold.jsonl", lines);
  Result r = Run("--seed 5 eval --suite tau2:telecom --tau2-data " + Data() + " --policy replay:gold.jsonl --max-tasks 3 --trials 1 --k 1 " +
                 "--threads 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out.substr(0, 300);
  ASSERT_EQ((*j)["trials_detail"].size(), 3u);
  for (auto& tr : (*j)["trials_detail"]) {
    EXPECT_EQ(tr["end_reason"], "agent_stop") << tr.dump().substr(0, 400);
    EXPECT_EQ(tr["reward"], 1.0) << tr.dump().substr(0, 600);
  }
}

// `--source tau2:DIR` (τ²-bench's domain folder) through the episode pipeline: eval with the gold policy
// (the gold actions, the user's asked for by name and run by the τ² scripted user) scores every telecom
// task 1.0 with τ²'s evaluation (reward tau2); the perturbed policy (its last own call dropped) does not;
// simulate keeps every gold episode and exports it.
TEST_F(Tau2Cli, Tau2DomainFolderIsATaskSourceForEvalAndSimulate) {
  Result g = Run("--json eval --source tau2:" + Data() + "/telecom --policy gold --trials 1 --k 1 --threads 2");
  ASSERT_EQ(g.code, 0) << g.err;
  auto j = ParseJson(g.out, "stdout");
  ASSERT_TRUE(j.ok()) << g.out.substr(0, 300);
  EXPECT_EQ((*j)["source"]["tasks"], 114);
  EXPECT_EQ((*j)["score_errors"], 0);
  EXPECT_EQ((*j)["rows"].back()["avg_reward"], 1.0) << g.out.substr(0, 2000);
  EXPECT_EQ((*j)["end_reasons"]["transfer"], 20);
  Result p = Run("--json eval --source tau2:" + Data() + "/telecom --policy perturbed --trials 1 --k 1 --threads 2");
  ASSERT_EQ(p.code, 0) << p.err;
  auto pj = ParseJson(p.out, "stdout");
  ASSERT_TRUE(pj.ok());
  EXPECT_LT((*pj)["rows"].back()["avg_reward"].get<double>(), 0.5);
  Result s = Run("--json simulate --source tau2:" + Data() + "/telecom --policy gold --threads 2 --no-store --out kept.jsonl");
  ASSERT_EQ(s.code, 0) << s.err;
  auto sj = ParseJson(s.out, "stdout");
  ASSERT_TRUE(sj.ok()) << s.out.substr(0, 300);
  EXPECT_EQ((*sj)["episodes"], 114);
  EXPECT_EQ((*sj)["kept"], 114);
  // Airline: split_tasks.json's test tasks are split "test" (two episodes of them: its 3 MB database makes
  // each episode cost ~1 s here).
  Result a = Run("--json simulate --source tau2:" + Data() + "/airline --split test --episodes 2 --policy gold --threads 2 --no-store");
  ASSERT_EQ(a.code, 0) << a.err;
  auto aj = ParseJson(a.out, "stdout");
  ASSERT_TRUE(aj.ok()) << a.out.substr(0, 300);
  EXPECT_EQ((*aj)["episodes"], 2);
  EXPECT_EQ((*aj)["kept"], 2);
  // A folder without τ² tasks is an error naming the file.
  std::filesystem::create_directories(dir_ / "empty");
  Result e = Run("eval --source tau2:" + (dir_ / "empty").string() + " --policy gold");
  EXPECT_NE(e.code, 0);
  EXPECT_NE(e.err.find("tasks.json"), std::string::npos) << e.err;
}

TEST_F(Tau2Cli, OpenAiAgentAndLlmUserThroughServeOnEveryNativeDomain) {
  std::string corpus;
  for (int i = 0; i < 300; ++i) corpus += "Hi! How can I help you today? I want to cancel order #W" + std::to_string(1000 + i) + " please. ";
  Write("corpus.txt", corpus);
  Result t = Run("tokenizer train --corpus corpus.txt --out tok --vocab-size 512");
  ASSERT_EQ(t.code, 0) << t.err;
  auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["vocab_size"] = 512;  // the tokenizer's size: ids the model emits must decode
  (*cfg)["num_hidden_layers"] = 1;
  (*cfg)["max_position_embeddings"] = 32768;  // retail's policy and tool declarations are long
  Write("model.json", cfg->dump());
  Server server({"--model", (dir_ / "model.json").string(), "--tokenizer", (dir_ / "tok").string(), "--port", "0", "--max-tokens", "8",
                 "--db", (dir_ / "serve.db").string()});
  ASSERT_GT(server.port(), 0) << server.line();
  std::string url = "openai:http://127.0.0.1:" + std::to_string(server.port()) + "/v1";
  for (std::string d : {"mock", "airline", "retail", "telecom"}) {
    Result r = Run("eval --suite tau2:" + d + " --tau2-data " + Data() + " --agent-llm " + url + " --user-llm " + url +
                   " --max-tasks 1 --trials 1 --k 1 --threads 1 --max-steps 3 --json");
    ASSERT_EQ(r.code, 0) << d << ": " << r.err;
    auto j = ParseJson(r.out, "stdout");
    ASSERT_TRUE(j.ok()) << r.out.substr(0, 300);
    ASSERT_EQ((*j)["trials_detail"].size(), 1u) << d;
    const json& tr = (*j)["trials_detail"][0];
    std::string end = tr["end_reason"];
    // Both sides reached the model: no agent_error/user_error (connection, refusal).
    EXPECT_TRUE(end == "max_steps" || end == "agent_stop" || end == "user_stop" || end == "transfer" || end == "out_of_scope" ||
                end == "too_many_errors")
        << d << ": " << end << " " << tr["detail"];
    EXPECT_EQ((*j)["rows"].back()["tasks"], 1) << d;
  }
}

}  // namespace
}  // namespace k2
