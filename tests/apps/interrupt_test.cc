// Interrupting long commands loses no finished work: simulate and eval store each item as it ends, an
// interrupt (SIGINT/SIGTERM) marks the run `interrupted` with the command that resumes it, a SIGKILL leaves
// a run `runs list` marks dead, and --resume completes either to exactly what an uninterrupted run gives.
// Interrupt points come from core/fault.h (K2GYM_CRASH_AT=NAME@N, K2GYM_CRASH_SIGNAL), not timing luck.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/json.h"
#include "tests/cli_util.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;

class InterruptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("k2gym_interrupt_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // k2gym ARGS in the test folder; `at`: "NAME@N" to interrupt at, `sig`: "" (SIGKILL), "INT" or "TERM".
  test::ShellResult Run(const std::string& args, const std::string& at = "", const std::string& sig = "") {
    std::string env = at.empty() ? "" : "K2GYM_CRASH_AT=" + at + " ";
    if (!sig.empty()) env += "K2GYM_CRASH_SIGNAL=" + sig + " ";
    return test::RunShell("cd " + dir_.string() + " && " + env + test::K2gymBin() + " " + args + " 2>&1");
  }
  json Runs(const std::string& db) {
    auto r = Run("--db " + db + " --json runs list");
    auto j = ParseJson(r.out.substr(r.out.find('{')), "runs list");
    return j.ok() ? (*j)["runs"] : json();
  }
  std::string Read(const std::string& name) {
    auto t = ReadFile((dir_ / name).string());
    return t.ok() ? *t : std::string("<missing " + name + ">");
  }
  fs::path dir_;
};

int64_t Lines(const std::string& s) { return static_cast<int64_t>(std::count(s.begin(), s.end(), '\n')); }

// Both simulate paths: the store's synthetic world (dual-control tasks) and a task source; SIGINT at a
// random episode, then SIGKILL at another, each resumed to the uninterrupted run's output.
TEST_F(InterruptTest, SimulateResumesToTheUninterruptedOutputAfterSigintAndSigkill) {
  std::mt19937 rng(20261207);
  const std::string math = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/math.jsonl";
  const std::vector<std::string> workloads = {"simulate --dual-control 120", "simulate --source math:" + math +
                                                                                  " --policy gold --episodes 120"};
  for (const auto& w : workloads) {
    SCOPED_TRACE(w);
    fs::remove(dir_ / "ref.db");
    auto ref = Run("--db ref.db --quiet " + w + " --threads 2 --out ref.jsonl");
    ASSERT_EQ(ref.rc, 0) << ref.out;
    ASSERT_EQ(Lines(Read("ref.jsonl")), 120);
    for (const std::string sig : {"INT", ""}) {
      SCOPED_TRACE("signal " + (sig.empty() ? std::string("KILL") : sig));
      fs::remove(dir_ / "k.db");
      fs::remove(dir_ / "k.jsonl");
      const int at = std::uniform_int_distribution<int>(5, 110)(rng);
      auto cut = Run("--db k.db --quiet " + w + " --threads 2 --out k.jsonl", "simulate.episode_stored@" + std::to_string(at), sig);
      json runs = Runs("k.db");
      ASSERT_EQ(runs.size(), 1u) << cut.out;
      if (sig == "INT") {
        EXPECT_EQ(cut.rc, 130) << cut.out;
        EXPECT_EQ(runs[0]["status"], "interrupted");
        EXPECT_NE(cut.out.find("resume with: k2gym --db k.db --quiet simulate"), std::string::npos) << cut.out;
        EXPECT_NE(cut.out.find("--resume 1"), std::string::npos) << cut.out;
      } else {
        EXPECT_EQ(cut.rc, 137) << cut.out;
        EXPECT_EQ(runs[0]["status"], "dead") << "a killed run is detected and marked";
      }
      // Every finished episode is in the output already (at least the `at` stored before the signal).
      const int64_t kept_lines = Lines(Read("k.jsonl"));
      EXPECT_GE(kept_lines, at);
      EXPECT_LT(kept_lines, 120);
      auto res = Run("--db k.db --quiet " + w + " --threads 2 --out k.jsonl --resume 1");
      ASSERT_EQ(res.rc, 0) << res.out;
      EXPECT_EQ(Read("k.jsonl"), Read("ref.jsonl")) << "the resumed output equals an uninterrupted run's";
      runs = Runs("k.db");
      ASSERT_EQ(runs.size(), 1u) << "one run id";
      EXPECT_EQ(runs[0]["status"], "done");
      auto info = Run("--db k.db --json runs show 1");
      auto j = ParseJson(info.out, "runs show");
      ASSERT_TRUE(j.ok()) << info.out;
      EXPECT_EQ((*j)["rows"]["agent_trajectories"], 120) << info.out;
    }
  }
}

// eval: every kind of evaluation (a task source, a τ² suite file / builtin suite, τ²-bench's own mock
// domain, ACEBench's folder), each interrupted by SIGTERM mid-run and resumed to the uninterrupted run's
// pass^k table (and benchmark leaderboard), in one run.
TEST_F(InterruptTest, EvalResumesToTheUninterruptedTable) {
  const std::string math = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/math.jsonl";
  const std::string data = std::string(K2GYM_SOURCE_DIR) + "/../shared/data";
  const std::vector<std::pair<std::string, int>> cmds = {
      {"--json eval --source math:" + math + " --policy gold --trials 30 --k 1,2 --threads 2", 90},
      {"--json eval --suite builtin:heldout-small --policy random --trials 3 --k 1,2 --threads 2", 48},
      {"--json eval --suite tau2:mock --tau2-data " + data + "/tau2 --policy random --trials 4 --k 1,2 --threads 2", 40},
      {"--json eval --suite acebench:" + data + "/acebench --policy oracle --trials 1 --k 1 --threads 2", 1023}};
  for (const auto& [cmd, planned] : cmds) {
    SCOPED_TRACE(cmd);
    fs::remove(dir_ / "ref.db");
    fs::remove(dir_ / "k.db");
    auto ref = Run("--db ref.db " + cmd);
    ASSERT_EQ(ref.rc, 0) << ref.out;
    auto cut = Run("--db k.db " + cmd, "eval.trial_stored@17", "TERM");
    EXPECT_EQ(cut.rc, 143) << cut.out;
    EXPECT_EQ(Runs("k.db")[0]["status"], "interrupted");
    auto res = Run("--db k.db " + cmd + " --resume 1");
    ASSERT_EQ(res.rc, 0) << res.out;
    auto a = ParseJson(ref.out.substr(ref.out.find('{')), "ref");
    auto b = ParseJson(res.out.substr(res.out.find('{')), "resumed");
    ASSERT_TRUE(a.ok() && b.ok()) << ref.out << res.out;
    EXPECT_EQ((*a)["rows"], (*b)["rows"]) << "the same pass^k table";
    EXPECT_EQ((*a).value("leaderboard", json()), (*b).value("leaderboard", json())) << "the same leaderboard";
    EXPECT_EQ((*a)["trials_detail"], (*b)["trials_detail"]) << "every trial, in the same order";
    EXPECT_EQ((*b)["planned_trials"], planned);
    EXPECT_GE((*b)["resumed_trials"].get<int64_t>(), 17);
    EXPECT_LT((*b)["resumed_trials"].get<int64_t>(), planned);
    EXPECT_EQ(static_cast<int>((*b)["trials_detail"].size()), planned);
    EXPECT_EQ(Runs("k.db").size(), 1u);
    EXPECT_EQ(Runs("k.db")[0]["status"], "done");
  }
}

TEST_F(InterruptTest, ResumeRefusesFinishedRunsOtherSettingsAndOtherKinds) {
  // One thread: the SIGINT at the third stored episode always finds episodes left to stop (with several
  // threads the other episodes could all finish first and the run end complete, rc 0).
  const std::string w = "simulate --dual-control 20 --quiet --threads 1";
  ASSERT_EQ(Run("--db k.db " + w).rc, 0);
  auto done = Run("--db k.db " + w + " --resume 1");
  EXPECT_EQ(done.rc, 2) << done.out;
  EXPECT_NE(done.out.find("--resume 1: run 1 is complete (status done); nothing to resume"), std::string::npos) << done.out;
  ASSERT_EQ(Run("--db k.db " + w, "simulate.episode_stored@3", "INT").rc, 130);
  auto other = Run("--db k.db simulate --dual-control 30 --quiet --resume 2");
  EXPECT_EQ(other.rc, 2) << other.out;
  EXPECT_NE(other.out.find("(dual_control: the run has 20, this command gives 30)"), std::string::npos) << other.out;
  auto seed = Run("--db k.db --seed 5 " + w + " --resume 2");
  EXPECT_EQ(seed.rc, 2) << seed.out;
  EXPECT_NE(seed.out.find("seed"), std::string::npos) << seed.out;
  const std::string math = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/math.jsonl";
  auto kind = Run("--db k.db eval --source math:" + math + " --policy gold --resume 2");
  EXPECT_EQ(kind.rc, 2) << kind.out;
  EXPECT_NE(kind.out.find("run 2 is a simulate run, not eval"), std::string::npos) << kind.out;
  auto none = Run("--db k.db " + w + " --resume nosuch");
  EXPECT_EQ(none.rc, 2) << none.out;
  EXPECT_NE(none.out.find("no run named \"nosuch\""), std::string::npos) << none.out;
  EXPECT_EQ(Run("--db k.db " + w + " --resume 2").rc, 0);
}

// A disk that fills up mid-run (a 400 KiB tmpfs mounted in a private mount namespace, gone with it): the
// command fails naming the cause and printing the resume command, every episode stored before the failure
// stays readable, and the run copied to a disk with room resumes to the uninterrupted run's output.
TEST_F(InterruptTest, DiskFullLosesNoFinishedEpisodeAndTheRunResumesElsewhere) {
  if (test::RunShell("unshare -m true 2>/dev/null").rc != 0)
    GTEST_SKIP() << "needs a private mount namespace (unshare -m, root or user namespaces) for a small tmpfs";
  const std::string math = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/math.jsonl";
  const std::string w = "simulate --source math:" + math + " --policy gold --episodes 400 --threads 2";
  auto ref = Run("--db ref.db --quiet " + w + " --out ref.jsonl");
  ASSERT_EQ(ref.rc, 0) << ref.out;
  fs::create_directories(dir_ / "small");
  fs::create_directories(dir_ / "copy");
  auto full = test::RunShell("cd " + dir_.string() +
                             " && unshare -m sh -c 'mount -t tmpfs -o size=400k tmpfs small && cd small && " +
                             test::K2gymBin() + " --db k.db --quiet " + w + " --out k.jsonl; echo \"rc=$?\"; cp -a . ../copy/' 2>&1");
  ASSERT_NE(full.out.find("rc="), std::string::npos) << full.out;
  EXPECT_NE(full.out.find("rc=1\n"), std::string::npos) << "a failure, not a crash or a success: " << full.out;
  EXPECT_NE(full.out.find("database or disk is full"), std::string::npos) << "the first failure is named: " << full.out;
  EXPECT_NE(full.out.find("resume with: "), std::string::npos) << full.out;
  EXPECT_EQ(full.out.find("wrote "), std::string::npos) << "no claim of outputs that were not written: " << full.out;
  const int64_t streamed = Lines(Read("copy/k.jsonl"));
  EXPECT_GT(streamed, 0) << full.out;
  EXPECT_LT(streamed, 400) << "the disk must fill before the end for this test to mean anything";

  // Every episode written to the JSONL was stored first; the resumed run finds them all.
  auto res = Run("--db copy/k.db --json " + w + " --out copy/k.jsonl --resume 1");
  ASSERT_EQ(res.rc, 0) << res.out;
  auto j = ParseJson(res.out.substr(res.out.find('{')), "resumed simulate");
  ASSERT_TRUE(j.ok()) << res.out;
  EXPECT_GE((*j)["resumed_episodes"].get<int64_t>(), streamed);
  EXPECT_EQ((*j)["episodes"], 400);
  EXPECT_EQ(Read("copy/k.jsonl"), Read("ref.jsonl")) << "the resumed output equals an uninterrupted run's";
  json runs = Runs("copy/k.db");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["status"], "done");
}

// Training commands (pretrain here; sft and rl open their run directory through the same TrainingRun):
// a directory holding a run is never replaced without --overwrite, and --resume needs a run to continue.
TEST_F(InterruptTest, TrainingRunDirectoriesAreNeverOverwrittenSilently) {
  auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["vocab_size"] = 256;
  std::ofstream(dir_ / "m.json") << cfg->dump();
  std::ofstream(dir_ / "run.json") << R"({"pretrain": {"batch_size": 2, "seq_len": 16, "steps": 2, "checkpoint_every": 1,
    "threads": 1, "optimizer": {"total_steps": 2}}})";
  ASSERT_EQ(Run("corpus gen --out corpus.txt --bytes 4000 --seed 3").rc, 0);
  const std::string pre = "--config run.json --db k.db --quiet pretrain --model m.json --data corpus.txt --out ";
  ASSERT_EQ(Run(pre + "x").rc, 0);
  const std::string before = Read("x/metrics.csv");
  auto again = Run(pre + "x");
  EXPECT_EQ(again.rc, 2) << again.out;
  EXPECT_NE(again.out.find("x: holds a previous run (a checkpoint); continue it with --resume or replace it with --overwrite"),
            std::string::npos) << again.out;
  EXPECT_EQ(Read("x/metrics.csv"), before) << "the refused run touched nothing";
  auto none = Run(pre + "y --resume");
  EXPECT_EQ(none.rc, 2) << none.out;
  EXPECT_NE(none.out.find("y: --resume: there is no run to continue here"), std::string::npos) << none.out;
  EXPECT_EQ(Run(pre + "x --overwrite").rc, 0);
  EXPECT_EQ(Runs("k.db").size(), 2u) << "the overwrite is a new run";
}

}  // namespace
}  // namespace k2
