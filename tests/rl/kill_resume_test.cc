// `k2gym rl` killed with SIGKILL in the middle of an iteration, then at every step of the checkpoint
// swap and at seeded random points (fault injection), each time resumed with --resume, logs the
// identical metric sequence (metrics.csv and the store) as an uninterrupted run, in one store run that
// ends `done`, with byte-identical final weights, optimizer and trainer state: no iteration lost or
// repeated. Real pipeline through the binary: toolgen synth/tasks -> oracle simulate -> tokenizer train
// -> a tiny model -> rl, deterministic settings (one episode thread, seeded sampling).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/cli_util.h"
#include "tests/crash_util.h"
#include "core/store.h"
#include "engine/engine.h"
#include "engine/text/tokenizer.h"
#include "tests/rl/rl_fixture.h"

extern char** environ;

namespace k2 {
namespace {

namespace fs = std::filesystem;
const std::string kBin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";

using Out = test::ShellResult;
Out Sh(const std::string& args) { return test::RunK2gym(args); }

using Row = std::tuple<int64_t, std::string, double>;

// logp_mismatch measures the sampler's float noise itself (the generator's log-probs are not bitwise
// reproducible from run to run, ~1e-7): it compares to 1e-6; every other metric exactly.
bool FloatNoise(const std::string& key) {
  return key == "logp_mismatch";
}

void ExpectSameRows(const std::vector<Row>& a, const std::vector<Row>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& [sa, ka, va] = a[i];
    const auto& [sb, kb, vb] = b[i];
    ASSERT_EQ(sa, sb) << what << " row " << i;
    ASSERT_EQ(ka, kb) << what << " row " << i;
    if (FloatNoise(ka)) {
      EXPECT_NEAR(va, vb, 1e-6) << what << " step " << sa << " " << ka;
    } else {
      EXPECT_EQ(va, vb) << what << " step " << sa << " " << ka;
    }
  }
}

bool Deterministic(const std::string& key) {
  return key.rfind("time_", 0) != 0 && key.find("tokens_per_s") == std::string::npos;
}

// (step, key, value) of metrics.csv in file order, wall-clock metrics left out.
std::vector<Row> CsvRows(const std::string& path) {
  std::vector<Row> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const size_t a = line.find(','), b = line.find(',', a + 1), c = line.find(',', b + 1);
    if (c == std::string::npos) continue;
    std::string key = line.substr(a + 1, b - a - 1);
    if (!Deterministic(key)) continue;
    rows.emplace_back(std::stoll(line.substr(0, a)), key, std::stod(line.substr(b + 1, c - b - 1)));
  }
  return rows;
}

std::vector<Row> StoreRows(const std::string& db_path, int64_t run) {
  auto db = Db::Open(db_path);
  K2_CHECK(db.ok()) << db.status().ToString();
  auto st = (*db)->Prepare("SELECT step, key, value FROM metrics WHERE run = ?1 ORDER BY step, key");
  K2_CHECK(st.ok()) << st.status().ToString();
  st->Bind(1, run);
  std::vector<Row> rows;
  while (st->Step()) {
    if (Deterministic(st->Text(1))) rows.emplace_back(st->Int(0), st->Text(1), st->Double(2));
  }
  K2_CHECK(st->status().ok()) << st->status().ToString();
  return rows;
}

class RlKillResume : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kBin)) << kBin << " not built (rl_cli_tests depends on the k2gym target)";
    dir_ = fs::temp_directory_path() / ("k2gym_rl_kill_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = P("k.db");
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  std::string G() const { return "--db " + db_ + " --seed 5 "; }
  fs::path dir_;
  std::string db_;
};

TEST_F(RlKillResume, SigkillMidIterationThenResumeGivesTheUninterruptedMetricSequence) {
  // Inputs: a small catalog and tasks, oracle dialogs, a BPE tokenizer trained on them, a tiny model.
  auto r = Sh(G() + "--quiet toolgen synth --count 20");
  ASSERT_EQ(r.rc, 0) << r.out;
  r = Sh(G() + "--quiet toolgen tasks --count 3 --out " + P("tasks.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = Sh(G() + "--quiet simulate --tasks " + P("tasks.json") + " --policy oracle --user scripted --episodes 9" +
         " --threads 1 --out " + P("oracle.jsonl"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = Sh("--quiet tokenizer train --corpus " + P("oracle.jsonl") + " --vocab-size 1024 --threads 1 --out " + P("tok"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto tok = text::Tokenizer::Load(P("tok"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  {
    auto model = engine::Model<float>::Create(rl::fixture::TinyModel(tok->vocab_size()), 11);
    ASSERT_TRUE(model.ok());
    fs::create_directories(P("init"));
    ASSERT_TRUE((*model)->SaveSafetensors(P("init") + "/model.safetensors").ok());
  }
  const int kIters = 9;
  json cfg = {{"rl",
               {{"iterations", kIters},
                {"tasks_per_iteration", 1},
                {"rollouts_per_task", 2},
                {"temperature", {{"kind", "linear"}, {"start", 1.2}, {"end", 0.8}, {"steps", kIters - 1}}},
                {"budget", {{"default_budget", 16}, {"penalty", 0.25}}},
                {"update", {{"seq_len", 4096}, {"micro_batch", 1}}},
                {"threads", 1},
                {"optimizer", {{"lr", 0.01}}},
                {"checkpoint_every", 1}}},
              {"rl_run",
               {{"init", P("init")},
                {"tokenizer", P("tok")},
                {"tasks", P("tasks.json")},
                {"eval_fraction", 0.0},
                {"task_tools_only", true},
                {"rollout",
                 {{"episode_threads", 1},
                  {"reward", "judge_mean"},
                  {"episode", {{"max_turns", 2}, {"max_tokens_per_turn", 10}, {"max_tokens", 0}}}}}}}};
  {
    std::ofstream(P("rl.json")) << cfg.dump(2);
  }
  const std::string rl = "rl --config " + P("rl.json") + " --out ";

  // A: uninterrupted.
  r = Sh(G() + "--json " + rl + P("a"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto ja = ParseJson(r.out.substr(r.out.find('{')), "rl a");
  ASSERT_TRUE(ja.ok()) << r.out;
  const int64_t run_a = (*ja)["run"].get<int64_t>();

  // B: started, killed with SIGKILL right after iteration 1 was logged (iteration 2 is running).
  std::vector<std::string> argv_s = {kBin, "--db", db_, "--seed", "5", "--quiet", "rl", "--config", P("rl.json"),
                                     "--out", P("b")};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, kBin.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  bool seen = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(4);
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    for (const auto& [step, key, value] : CsvRows(P("b") + "/metrics.csv")) seen = seen || step == 1;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int st = 0;
    if (!seen && waitpid(pid, &st, WNOHANG) == pid) FAIL() << "k2gym rl exited before iteration 1 was logged";
  }
  ASSERT_TRUE(seen) << "iteration 1 never reached metrics.csv";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the run ended before the kill";
  int64_t last_logged = -1;
  for (const auto& [step, key, value] : CsvRows(P("b") + "/metrics.csv")) last_logged = std::max(last_logged, step);
  ASSERT_LT(last_logged, kIters - 1) << "killed too late: the run had finished its iterations";

  // Then killed by fault injection at each step of the checkpoint swap and at seeded random points
  // (core/fault.h), resuming each time.
  const std::vector<std::string> rl_args = {"--db", db_, "--seed", "5", "--quiet", "rl", "--config", P("rl.json"),
                                            "--out", P("b"), "--resume"};
  // A SIGINT first: the iteration in flight ends, its checkpoint is saved, exit 130 with the resume command.
  {
    test::Exit e = test::RunK2gymCrashing(rl_args, "INT:train.step@1", P("b.err"));
    ASSERT_EQ(e.code, 130) << e.err;
    EXPECT_NE(e.err.find("iterations done in run"), std::string::npos) << e.err;
    EXPECT_NE(e.err.find("--out " + P("b") + " --resume"), std::string::npos) << e.err;
    auto st = Sh(G() + "--json runs list");
    EXPECT_NE(st.out.find("\"interrupted\""), std::string::npos) << st.out;
  }
  size_t kills = 0;
  for (const std::string& at : test::CrashPlan(1, 3, 3, 34)) {
    test::Exit e = test::RunK2gymCrashing(rl_args, at, P("b.err"));
    if (e.signal != SIGKILL) {
      ASSERT_EQ(e.code, 0) << "crash at " << at << ": " << e.err;
      break;  // the point lay past the end of the run
    }
    ++kills;
  }
  EXPECT_GE(kills, test::SwapCrashPoints().size());

  r = Sh(G() + "--json " + rl + P("b") + " --resume");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto jb = ParseJson(r.out.substr(r.out.find('{')), "rl b");
  ASSERT_TRUE(jb.ok()) << r.out;
  const int64_t run_b = (*jb)["run"].get<int64_t>();
  EXPECT_NE(run_a, run_b);
  EXPECT_EQ((*jb)["iterations_done"], kIters);

  // The same (step, key, value) sequence in both CSVs and both store runs; every iteration once.
  const auto ca = CsvRows(P("a") + "/metrics.csv"), cb = CsvRows(P("b") + "/metrics.csv");
  ASSERT_FALSE(ca.empty());
  ExpectSameRows(ca, cb, "metrics.csv");
  for (const auto& [step, key, value] : ca) {
    if (key == "truncated_rollouts") {
      EXPECT_EQ(value, 0) << "rollouts longer than update.seq_len at " << step;
    }
    if (key == "policy_tokens") {
      EXPECT_GT(value, 0) << step;
    }
  }
  std::map<int64_t, int> per_step;
  for (const auto& [step, key, value] : cb)
    if (key == "reward_mean") ++per_step[step];
  ASSERT_EQ(per_step.size(), static_cast<size_t>(kIters));
  for (const auto& [step, n] : per_step) EXPECT_EQ(n, 1) << "iteration " << step;
  const auto sa = StoreRows(db_, run_a), sb = StoreRows(db_, run_b);
  EXPECT_EQ(sa.size(), ca.size());
  ExpectSameRows(sa, sb, "store");
  // One row per (step, key) in both sinks, timing keys included; one store run, `done`; the final
  // weights, optimizer and trainer state byte for byte.
  const std::vector<std::string> noise = {"logp_mismatch"};
  test::ExpectSameMetricRows(test::CsvMetricRows(P("a") + "/metrics.csv"), test::CsvMetricRows(P("b") + "/metrics.csv"),
                             "metrics.csv", noise, 1e-6);
  auto db = Db::Open(db_);
  ASSERT_TRUE(db.ok());
  test::ExpectSameMetricRows(test::StoreMetricRows(db->get(), run_a), test::StoreMetricRows(db->get(), run_b), "store",
                             noise, 1e-6);
  EXPECT_EQ(test::ExpectOneDoneRun(db->get(), P("b")), run_b);
  test::ExpectSameCheckpoint(P("a") + "/checkpoint", P("b") + "/checkpoint");
}

}  // namespace
}  // namespace k2
