// `k2gym pretrain` and `k2gym sft` killed with SIGKILL at every step of the checkpoint swap and at
// seeded random points (fault injection, core/fault.h), each time resumed with --resume: the final
// weights, optimizer and trainer state are byte-identical to an uninterrupted run's, metrics.csv and the
// store hold exactly one row per (step, key) of it, the run keeps one id and ends `done`; a killed
// run is detected as dead.
#include <signal.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/json.h"
#include "core/store.h"
#include "engine/engine.h"
#include "engine/text/tokenizer.h"
#include "tests/crash_util.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;

class CrashResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("k2gym_crash_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }

  // Runs `args + --out OUT` uninterrupted into a/, then into b/ killed at every point of `plan` in turn
  // (the first start fresh, then --resume; an "INT:" point interrupts instead: exit 130, the run marked
  // `interrupted` with its resume command), then resumed to the end; compares b with a.
  void KillAndCompare(const std::vector<std::string>& args, const std::vector<std::string>& plan, size_t must_kill) {
    const std::string a = P("a"), b = P("b"), db_path = P("k.db");
    auto with = [&](const std::string& out, bool resume) {
      std::vector<std::string> v = {"--db", db_path, "--seed", "5", "--quiet"};
      v.insert(v.end(), args.begin(), args.end());
      v.push_back("--out");
      v.push_back(out);
      if (resume) v.push_back("--resume");
      return v;
    };
    test::Exit ea = test::RunK2gymCrashing(with(a, false), "", P("a.err"));
    ASSERT_EQ(ea.code, 0) << ea.err;

    size_t kills = 0, interrupts = 0;
    bool finished = false;
    for (size_t i = 0; i < plan.size() && !finished; ++i) {
      test::Exit e = test::RunK2gymCrashing(with(b, i > 0), plan[i], P("b.err"));
      if (plan[i].rfind("INT:", 0) == 0 && e.code == 130) {
        ++interrupts;
        EXPECT_NE(e.err.find("k2gym: interrupted: "), std::string::npos) << e.err;
        EXPECT_NE(e.err.find(" --out " + b + " --resume"), std::string::npos) << "the resume command: " << e.err;
        auto db = Db::Open(db_path);
        ASSERT_TRUE(db.ok());
        auto rf = ReadJsonFile(b + "/store_run.json");
        ASSERT_TRUE(rf.ok()) << rf.status().ToString();
        EXPECT_EQ(GetRun(db->get(), (*rf)["run"].get<int64_t>())->status, "interrupted");
      } else if (e.signal == SIGKILL) {
        ++kills;
      } else {
        ASSERT_EQ(e.code, 0) << "crash at " << plan[i] << ": " << e.err;
        finished = true;  // the point lay past the end of the run
      }
      if (i == 0) {
        ASSERT_EQ(e.signal, SIGKILL) << plan[0] << " was never reached";
        // The killed run is still `running` in the store until its dead process is noticed.
        auto db = Db::Open(db_path);
        ASSERT_TRUE(db.ok());
        auto rf = ReadJsonFile(b + "/store_run.json");
        ASSERT_TRUE(rf.ok()) << rf.status().ToString();
        const int64_t id = (*rf)["run"].get<int64_t>();
        auto dead = MarkDeadRuns(db->get());
        ASSERT_TRUE(dead.ok()) << dead.status().ToString();
        ASSERT_EQ(dead->size(), 1u);
        EXPECT_EQ((*dead)[0], id);
        EXPECT_EQ(GetRun(db->get(), id)->status, "dead");
      }
    }
    EXPECT_GE(kills, must_kill) << "every swap point must have killed a process";
    size_t planned_interrupts = 0;
    for (const auto& p : plan) planned_interrupts += p.rfind("INT:", 0) == 0 ? 1 : 0;
    EXPECT_EQ(interrupts, planned_interrupts) << "every SIGINT stopped the run cleanly";
    test::Exit eb = test::RunK2gymCrashing(with(b, true), "", P("b.err"));
    ASSERT_EQ(eb.code, 0) << eb.err;

    test::ExpectSameCheckpoint(a + "/checkpoint", b + "/checkpoint");
    auto db = Db::Open(db_path);
    ASSERT_TRUE(db.ok());
    const int64_t run_a = test::ExpectOneDoneRun(db->get(), a), run_b = test::ExpectOneDoneRun(db->get(), b);
    const test::MetricRows csv_a = test::CsvMetricRows(a + "/metrics.csv");
    ASSERT_GT(csv_a.size(), 20u);
    test::ExpectSameMetricRows(csv_a, test::CsvMetricRows(b + "/metrics.csv"), "metrics.csv");
    const test::MetricRows store_a = test::StoreMetricRows(db->get(), run_a);
    EXPECT_EQ(store_a.size(), csv_a.size());
    test::ExpectSameMetricRows(store_a, test::StoreMetricRows(db->get(), run_b), "store");
    std::printf("%zu kills, %zu (step, key) rows\n", kills, csv_a.size());
  }

  fs::path dir_;
};

const std::string kModels = std::string(K2GYM_SOURCE_DIR) + "/configs/models/";

TEST_F(CrashResume, PretrainKilledAtEverySwapStepAndRandomPointsEndsAsTheUninterruptedRun) {
  auto cfg = ReadJsonFile(kModels + "tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["vocab_size"] = 256;
  std::ofstream(P("m.json")) << cfg->dump();
  test::Exit g = test::RunK2gymCrashing({"corpus", "gen", "--out", P("corpus.txt"), "--bytes", "20000", "--seed", "3"},
                                        "", P("gen.err"));
  ASSERT_EQ(g.code, 0) << g.err;
  // 24 steps, a checkpoint every 2: each swap point at its first save, then 6 seeded random points.
  KillAndCompare({"pretrain", "--model", P("m.json"), "--data", P("corpus.txt"), "--steps", "24", "--set",
                  "pretrain.batch_size=2", "--set", "pretrain.seq_len=16", "--set", "pretrain.checkpoint_every=2"},
                 test::CrashPlan(1, 6, 4, 20261207), test::SwapCrashPoints().size());
}

TEST_F(CrashResume, SftKilledAtEverySwapStepAndRandomPointsEndsAsTheUninterruptedRun) {
  // A byte-level Kimi tokenizer, tool-call dialogs in OpenAI form and the tiny model.
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  auto tok = text::Tokenizer::CreateKimi(bytes);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  ASSERT_TRUE(tok->Save(P("tok")).ok());
  {
    std::ofstream d(P("d.jsonl"));
    for (int i = 0; i < 30; ++i) {
      const int a = i % 7, c = (i * 3) % 5;
      json line = {{"messages", json::array({{{"role", "user"}, {"content", "add " + std::to_string(a) + " " + std::to_string(c)}},
                                             {{"role", "assistant"}, {"content", "it is " + std::to_string(a + c)}}})}};
      d << line.dump() << "\n";
    }
  }
  auto cfg = ReadJsonFile(kModels + "tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["max_position_embeddings"] = 128;
  std::ofstream(P("m.json")) << cfg->dump();
  // 2 epochs of ~13 steps, held-out loss every 3 steps, a checkpoint every 2; two SIGINTs (one between
  // checkpoints, so the interrupt saves its own) among the kills.
  std::vector<std::string> plan = test::CrashPlan(1, 6, 4, 7);
  plan.insert(plan.begin() + 3, "INT:train.step@3");
  plan.insert(plan.begin() + 9, "INT:train.step@2");
  KillAndCompare({"sft", "--model", P("m.json"), "--tokenizer", P("tok"), "--data", P("d.jsonl"), "--epochs", "2",
                  "--set", "sft.seq_len=96", "--set", "sft.batch_size=2", "--set", "sft.pack=false", "--set",
                  "sft.checkpoint_every=2", "--set", "sft.eval_every=3", "--set", "sft.eval_fraction=0.2"},
                 plan, test::SwapCrashPoints().size());
}

}  // namespace
}  // namespace k2
