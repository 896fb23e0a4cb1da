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
#include <map>
#include <set>

#include "core/hash.h"
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
  // The suite's refusal tasks carry NL assertions; without --judge they are left out, and said so.
  EXPECT_NE(b.err.find("trial(s) were scored without their NL assertions (no --judge)"), std::string::npos) << b.err;
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
  // Paired by task: oracle solves every task, random (almost) none, so the difference's interval is far
  // below 0 and the flipped tasks are listed.
  const json& paired = (*jc)["paired"];
  EXPECT_EQ(paired["cases"], 16) << cj.out;
  EXPECT_LT(paired["diff"]["hi"].get<double>(), -0.5) << cj.out;
  EXPECT_GE(paired["flipped"].size(), 12u) << cj.out;
  EXPECT_NE(c.out.find("paired by case over 16 shared cases"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find(" lost"), std::string::npos) << c.out;
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
  EXPECT_FALSE(j->contains("skipped"));
  std::string ace = Write("ace.json", json{{"kind", "acebench"}, {"data", Data("acebench_data.jsonl")},
                                           {"answers", Data("acebench_answers.jsonl")}}.dump());
  Result r2 = Run("eval --suite " + ace + " --policy replay:" + Data("acebench_responses.jsonl") + " --trials 1 --k 1");
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_NE(r2.out.find("special_incomplete"), std::string::npos) << r2.out;
  EXPECT_EQ(r2.out.find("skipped"), std::string::npos) << r2.out;
}

// A whole benchmark folder (--suite bfcl:DIR, or a suite file's "dir"): every BFCL_v*.json question file
// with its possible_answer/ file, single- and multi-turn, run by the FC oracle at 1.0; a folder without
// question files is a usage error naming it.
TEST_F(EvalCli, BfclFolderSuite) {
  std::filesystem::path folder = dir_ / "bfcl";
  std::filesystem::create_directories(folder / "possible_answer");
  for (auto [from, to] : {std::pair{"bfcl_questions.jsonl", "BFCL_v4_sample.json"}, std::pair{"bfcl_multi_turn_questions.jsonl", "BFCL_v4_multi_turn_sample.json"}})
    std::filesystem::copy_file(Data(from), folder / to);
  for (auto [from, to] : {std::pair{"bfcl_answers.jsonl", "BFCL_v4_sample.json"}, std::pair{"bfcl_multi_turn_answers.jsonl", "BFCL_v4_multi_turn_sample.json"}})
    std::filesystem::copy_file(Data(from), folder / "possible_answer" / to);
  auto questions = ReadJsonLines(Data("bfcl_questions.jsonl"));
  auto mt_questions = ReadJsonLines(Data("bfcl_multi_turn_questions.jsonl"));
  ASSERT_TRUE(questions.ok() && mt_questions.ok());
  std::string file_suite = Write("bfcl_dir.json", json{{"kind", "bfcl"}, {"dir", "bfcl"}}.dump());
  for (const std::string& suite : {"bfcl:" + folder.string(), file_suite}) {
    Result r = Run("eval --suite " + suite + " --policy oracle --trials 1 --k 1 --json");
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out, "stdout");
    ASSERT_TRUE(j.ok()) << r.out.substr(0, 300);
    const json& all = (*j)["rows"].back();
    EXPECT_EQ(all["tasks"].get<size_t>() + (*j)["load_errors"].get<size_t>(), questions->size() + mt_questions->size()) << r.out.substr(0, 500);
    EXPECT_EQ(all["pass_hat"]["1"].get<double>(), 1.0) << r.out.substr(0, 500);
    std::set<std::string> groups;
    for (auto& row : (*j)["rows"]) groups.insert(row["group"]);
    EXPECT_TRUE(groups.count("multi_turn_base")) << r.out.substr(0, 500);
    EXPECT_TRUE(groups.count("parallel_multiple")) << r.out.substr(0, 500);
  }
  std::filesystem::create_directories(dir_ / "empty");
  Result bad = Run("eval --suite bfcl:" + (dir_ / "empty").string() + " --policy oracle --trials 1");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find((dir_ / "empty").string() + ": no BFCL question files"), std::string::npos) << bad.err;
  bad = Run("eval --suite bfcl: --policy oracle --trials 1");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("the benchmark folder is missing"), std::string::npos) << bad.err;
}

// Multi-turn state-checked cases from the command line: replayed replies score exactly as recorded
// (and the stored trials carry the per-case components), the FC oracle scores 1.0 on both formats.
TEST_F(EvalCli, MultiTurnStateSuites) {
  std::string bfcl = Write("bfcl_mt.json", json{{"kind", "bfcl"}, {"questions", Data("bfcl_multi_turn_questions.jsonl")},
                                                {"answers", Data("bfcl_multi_turn_answers.jsonl")}}.dump());
  std::string ace = Write("ace_agent.json", json{{"kind", "acebench"}, {"data", Data("acebench_agent_data.jsonl")},
                                                 {"answers", Data("acebench_agent_answers.jsonl")}}.dump());
  for (auto [suite, responses] : {std::pair{bfcl, std::string("bfcl_multi_turn_responses.jsonl")},
                                  std::pair{ace, std::string("acebench_agent_responses.jsonl")}}) {
    Result r = Run("eval --suite " + suite + " --policy replay:" + Data(responses) + " --trials 2 --k 1,2 --json");
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = ParseJson(r.out, "stdout");
    ASSERT_TRUE(j.ok()) << r.out.substr(0, 300);
    auto want = ReadJsonLines(Data(responses));
    ASSERT_TRUE(want.ok());
    std::map<std::string, double> expected;
    double mean = 0;
    for (auto& w : *want) {
      expected[w["id"]] = w["expected"].get<double>();
      mean += w["expected"].get<double>();
    }
    mean /= static_cast<double>(want->size());
    const json& all = (*j)["rows"].back();
    EXPECT_DOUBLE_EQ(all["pass_hat"]["1"].get<double>(), mean) << responses;
    EXPECT_DOUBLE_EQ(all["pass_hat"]["2"].get<double>(), mean) << responses;
    ASSERT_EQ((*j)["trials_detail"].size(), 2 * want->size());
    for (auto& t : (*j)["trials_detail"]) EXPECT_EQ(t["reward"].get<double>(), expected[t["case"]]) << t.dump();
    Result o = Run("eval --suite " + suite + " --policy oracle --trials 1 --k 1 --json");
    ASSERT_EQ(o.code, 0) << o.err;
    auto jo = ParseJson(o.out, "stdout");
    ASSERT_TRUE(jo.ok());
    EXPECT_EQ((*jo)["rows"].back()["pass_hat"]["1"].get<double>(), 1.0) << o.out;
    EXPECT_EQ((*jo)["policy"], "fc-oracle");
  }
  Result text = Run("eval --suite " + bfcl + " --policy replay:" + Data("bfcl_multi_turn_responses.jsonl") + " --trials 1 --k 1");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("multi_turn_miss_func"), std::string::npos) << text.out;
}

// The split rule written out again (SHA-256 of "k2gym/heldout/" + path, first 8 hex digits divisible
// by 8): the reference the CLI's exclusion is checked against.
bool HeldOut(const std::string& path) { return std::stoull(Sha256Hex("k2gym/heldout/" + path).substr(0, 8), nullptr, 16) % 8 == 0; }

// Training data never touches held-out domains: `toolgen tasks` skips them (and says how many), and
// only --include-heldout (for building eval suites) brings them back.
TEST_F(EvalCli, TrainingTasksExcludeHeldOutDomains) {
  Result s = Run("--seed 3 toolgen synth --count 400");
  ASSERT_EQ(s.code, 0) << s.err;
  Result t = Run("--seed 3 toolgen tasks --count 120 --out train.json --json");
  ASSERT_EQ(t.code, 0) << t.err;
  auto jt = ParseJson(t.out, "stdout");
  ASSERT_TRUE(jt.ok()) << t.out;
  EXPECT_GT((*jt)["heldout_domains_excluded"].get<int64_t>(), 0) << t.out;  // the catalog has held-out domains
  EXPECT_EQ((*jt)["heldout_tasks"], 0);
  auto train = ReadJsonFile((dir_ / "train.json").string());
  ASSERT_TRUE(train.ok());
  ASSERT_EQ(train->size(), 120u);
  std::set<std::string> domains;
  for (auto& task : *train) {
    std::string d = task["user_scenario"]["instructions"]["domain"];
    EXPECT_FALSE(HeldOut(d)) << task["id"] << " is on held-out domain " << d;
    domains.insert(d);
  }
  EXPECT_GT(domains.size(), 3u);
  Result text = Run("--seed 3 toolgen tasks --count 10");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("held-out domains: excluded ("), std::string::npos) << text.out;

  Result a = Run("--seed 3 toolgen tasks --count 120 --include-heldout --out all.json --json");
  ASSERT_EQ(a.code, 0) << a.err;
  auto ja = ParseJson(a.out, "stdout");
  ASSERT_TRUE(ja.ok());
  EXPECT_EQ((*ja)["heldout_domains_excluded"], 0);
  EXPECT_EQ((*ja)["stored"], false);  // never where simulate reads its default tasks
  EXPECT_GT((*ja)["heldout_tasks"].get<int64_t>(), 0);
  auto all = ReadJsonFile((dir_ / "all.json").string());
  ASSERT_TRUE(all.ok());
  int64_t held = 0;
  for (auto& task : *all) held += HeldOut(task["user_scenario"]["instructions"]["domain"].get<std::string>());
  EXPECT_EQ(held, (*ja)["heldout_tasks"].get<int64_t>());
  Result no_out = Run("toolgen tasks --count 5 --include-heldout");
  EXPECT_EQ(no_out.code, 2);
  EXPECT_NE(no_out.err.find("--include-heldout needs --out FILE"), std::string::npos) << no_out.err;
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

// `k2gym serve` as a child process on an ephemeral loopback port; the port is read from its first line.
class Server {
 public:
  Server(const std::vector<std::string>& args) {
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

// The OpenAI-compatible path end to end: a small engine checkpoint (random weights after one pretraining
// step; a context of 16,384 positions, enough for the rendered dialogs: system policy, the domain's tool
// declarations, the turns) served by `k2gym serve`, and `k2gym eval --policy openai:URL` on a held-out
// suite (tasks of the catalog's held-out domains only, built with --include-heldout). A random model
// scores ~0; what is checked is that every trial reached the model and was scored (malformed output is
// a 0, never a refusal), and that the stored run holds what the JSON output says. Two tasks keep the
// CPU prefill of the long prompts short.
TEST_F(EvalCli, OpenAiPolicyThroughServeRunsASuite) {
  Result sy = Run("--seed 3 toolgen synth --count 400 --out specs.jsonl");
  ASSERT_EQ(sy.code, 0) << sy.err;
  Result tk = Run("--seed 3 toolgen tasks --count 120 --include-heldout --out all.json");
  ASSERT_EQ(tk.code, 0) << tk.err;
  auto all_tasks = ReadJsonFile((dir_ / "all.json").string());
  ASSERT_TRUE(all_tasks.ok());
  json held = json::array();
  for (auto& task : *all_tasks)
    if (held.size() < 2 && HeldOut(task["user_scenario"]["instructions"]["domain"].get<std::string>())) held.push_back(task);
  ASSERT_EQ(held.size(), 2u);
  Write("heldout.json", held.dump());
  std::string suite = Write("suite.json", json{{"name", "heldout-2"}, {"kind", "tau2"}, {"tasks", "heldout.json"},
                                               {"world", {{"db", "eval.db"}}}}.dump());
  // A tokenizer trained on the catalog's own tool specs compresses the dialogs it will see.
  Result t = Run("tokenizer train --corpus specs.jsonl --out tok --vocab-size 1024");
  ASSERT_EQ(t.code, 0) << t.err;
  auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["vocab_size"] = 1024;
  (*cfg)["num_hidden_layers"] = 2;
  (*cfg)["max_position_embeddings"] = 16384;
  Write("model.json", cfg->dump());
  std::string corpus;
  for (int i = 0; i < 400; ++i) corpus += "Please cancel booking " + std::to_string(i) + " and refund it. ";
  Write("corpus.txt", corpus);
  Result p = Run("pretrain --model model.json --data corpus.txt --steps 1 --out run --set pretrain.batch_size=2 --set pretrain.seq_len=64");
  ASSERT_EQ(p.code, 0) << p.err;
  ASSERT_TRUE(std::filesystem::exists(dir_ / "run/checkpoint/model.safetensors"));

  Result r;
  {
    Server server({"--ckpt", (dir_ / "run/checkpoint").string(), "--tokenizer", (dir_ / "tok").string(), "--port", "0",
                   "--max-tokens", "12", "--db", (dir_ / "serve.db").string()});
    ASSERT_GT(server.port(), 0) << server.line();
    r = Run("eval --suite " + suite + " --policy openai:http://127.0.0.1:" + std::to_string(server.port()) +
            "/v1 --trials 1 --k 1 --threads 2 --set eval.episode.max_turns=2 --json");
  }
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out.substr(0, 300);
  const json& all = (*j)["rows"].back();
  EXPECT_EQ(all["tasks"], 2);
  EXPECT_EQ(all["trials"], 2);
  EXPECT_EQ((*j)["context_exceeded"], 0);
  ASSERT_EQ((*j)["trials_detail"].size(), 2u);
  for (auto& tr : (*j)["trials_detail"]) {
    std::string d = tr["detail"].get<std::string>();
    EXPECT_NE(tr["end_reason"], "policy_error") << d;  // no refusal, no connection failure
    EXPECT_EQ(d.find("http_"), std::string::npos) << d;
    EXPECT_TRUE(HeldOut(tr["group"].get<std::string>())) << tr["group"];
  }
  // The store holds the same run.
  Result c = Run("eval compare " + std::to_string((*j)["run"].get<int64_t>()) + " " + std::to_string((*j)["run"].get<int64_t>()) + " --json");
  ASSERT_EQ(c.code, 0) << c.err;
  auto jc = ParseJson(c.out, "stdout");
  ASSERT_TRUE(jc.ok());
  EXPECT_EQ((*jc)["a"]["rows"], (*j)["rows"]);
  EXPECT_EQ((*jc)["a"]["policy"].get<std::string>().rfind("openai:http://127.0.0.1:", 0), 0u) << (*jc)["a"]["policy"];
}

// A served model whose context is smaller than the dialogs refuses them (HTTP 400
// context_length_exceeded): each trial is a scored 0, and the table says why.
TEST_F(EvalCli, ContextRefusalsAreScoredAndNamed) {
  std::string corpus;
  for (int i = 0; i < 200; ++i) corpus += "I would like to cancel my booking number " + std::to_string(i) + " please. ";
  Write("corpus.txt", corpus);
  Result t = Run("tokenizer train --corpus corpus.txt --out tok --vocab-size 576");
  ASSERT_EQ(t.code, 0) << t.err;
  auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["vocab_size"] = 576;  // max_position_embeddings stays 64
  Write("model.json", cfg->dump());
  Result r;
  {
    Server server({"--model", (dir_ / "model.json").string(), "--tokenizer", (dir_ / "tok").string(), "--port", "0",
                   "--max-tokens", "12", "--db", (dir_ / "serve.db").string()});
    ASSERT_GT(server.port(), 0) << server.line();
    r = Run("eval --suite builtin:heldout-small --policy openai:http://127.0.0.1:" + std::to_string(server.port()) +
            "/v1 --trials 1 --k 1 --threads 2");
  }
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("policy_error=16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16 trial(s) scored 0 because the dialog exceeded the served model's context"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace k2
