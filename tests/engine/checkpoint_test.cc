// The checkpoint protocol (engine/checkpoint.h): a save killed (SIGKILL, in a forked child) at each of
// its steps leaves a state that recovery turns into the newest complete checkpoint without removing a
// complete one; checkpoints written before manifests recover too; damage is an error, not a restart.
#include "engine/checkpoint.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "core/rng.h"
#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

namespace fs = std::filesystem;

std::string TmpDir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("k2gym_ckpt_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

struct Trainer {
  std::unique_ptr<Model<float>> model;
  std::unique_ptr<Optimizer<float>> opt;
  explicit Trainer(uint64_t seed) {
    auto m = Model<float>::Create(testing::TinyConfig(), seed);
    K2_CHECK(m.ok());
    model = std::move(*m);
    opt = std::make_unique<Optimizer<float>>(model.get(), OptimizerConfig{});
    Rng rng(seed);  // distinct optimizer moments per seed
    for (auto& [name, vec] : opt->StateTensors())
      for (auto& x : *vec) x = static_cast<float>(rng.Uniform());
  }
  Status Save(const std::string& dir, int64_t step) {
    TrainerState st;
    st.step = step;
    st.data_position = 10 * step;
    return SaveCheckpointWithMeta(dir, *model, *opt, st, {{"step_was", step}});
  }
};

// Saves `step` with `seed`'s state in a forked child that SIGKILLs itself at `point` (the state is
// built before the fork: the child only writes files).
void SaveKilledAt(const std::string& dir, uint64_t seed, int64_t step, const std::string& point) {
  Trainer t(seed);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("K2GYM_CRASH_AT", point.c_str(), 1);
    Status s = t.Save(dir, step);
    _exit(s.ok() ? 0 : 1);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << point << " was not reached";
}

// The checkpoint at `dir` holds `seed`'s weights and step.
void ExpectHolds(const std::string& dir, uint64_t seed, int64_t step) {
  Trainer want(seed), got(99);
  TrainerState st;
  ASSERT_TRUE(LoadCheckpoint(dir, got.model.get(), got.opt.get(), &st).ok());
  EXPECT_EQ(st.step, step);
  EXPECT_EQ(st.data_position, 10 * step);
  const auto& a = want.model->params();
  const auto& b = got.model->params();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_TRUE(a[i].w == b[i].w) << "param " << i;
  auto sa = want.opt->StateTensors(), sb = got.opt->StateTensors();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) ASSERT_TRUE(*sa[i].second == *sb[i].second) << sa[i].first;
}

TEST(CheckpointProtocol, SaveKilledAtEachStepRecoversTheNewestCompleteCheckpoint) {
  // point -> the step recovery must find (1 = the previous checkpoint, 2 = the one being saved)
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"ckpt.tmp_files", 1}, {"ckpt.tmp_complete", 2}, {"ckpt.moved_aside", 2},
      {"ckpt.published", 2}, {"ckpt.retiring", 2},     {"ckpt.saved", 2}};
  for (const auto& [point, want] : cases) {
    SCOPED_TRACE(point);
    const std::string root = TmpDir("kill"), dir = root + "/checkpoint";
    Trainer first(1);
    ASSERT_TRUE(first.Save(dir, 1).ok());
    SaveKilledAt(dir, 2, 2, point);
    // What the crash left, before recovery: never a state without a complete checkpoint somewhere.
    const bool old_left = fs::exists(dir + ".old"), tmp_left = fs::exists(dir + ".tmp");
    if (point == "ckpt.moved_aside") {
      EXPECT_FALSE(fs::exists(dir));
      EXPECT_TRUE(old_left && tmp_left);
    }
    auto rec = RecoverCheckpoint(dir);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    ASSERT_TRUE(rec->has_value());
    EXPECT_EQ((*rec)->step, want);
    EXPECT_EQ((*rec)->meta.value("step_was", -1), want);
    ExpectHolds(dir, want == 1 ? 1 : 2, want);
    EXPECT_FALSE(fs::exists(dir + ".tmp"));
    // The previous complete checkpoint is not removed by recovery: still there until the next save
    // retires it (unless the killed save had already started retiring it).
    if (want == 2 && (point == "ckpt.tmp_complete" || point == "ckpt.moved_aside" || point == "ckpt.published"))
      ExpectHolds(dir + ".old", 1, 1);
    // Recovery is idempotent and the next save goes on from there.
    auto again = RecoverCheckpoint(dir);
    ASSERT_TRUE(again.ok() && again->has_value());
    EXPECT_EQ((*again)->step, want);
    Trainer third(3);
    ASSERT_TRUE(third.Save(dir, 3).ok());
    ExpectHolds(dir, 3, 3);
    EXPECT_FALSE(fs::exists(dir + ".old"));
    EXPECT_FALSE(fs::exists(dir + ".tmp"));
    fs::remove_all(root);
  }
}

TEST(CheckpointProtocol, FirstSaveKilledLeavesNothingOrTheNewCheckpoint) {
  for (const std::string point : {"ckpt.tmp_files", "ckpt.tmp_complete", "ckpt.published"}) {
    SCOPED_TRACE(point);
    const std::string root = TmpDir("first"), dir = root + "/checkpoint";
    SaveKilledAt(dir, 4, 1, point);
    auto rec = RecoverCheckpoint(dir);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    if (point == "ckpt.tmp_files") {
      EXPECT_FALSE(rec->has_value());  // the incomplete DIR.tmp is gone, training starts at 0
      EXPECT_FALSE(fs::exists(dir + ".tmp"));
    } else {
      ASSERT_TRUE(rec->has_value());
      ExpectHolds(dir, 4, 1);
    }
    fs::remove_all(root);
  }
}

TEST(CheckpointProtocol, CheckpointsWithoutManifestFromAKillBetweenTheRenamesRecover) {
  // The layout a kill between the two renames of the previous protocol left: DIR.old (step 1) and a
  // complete DIR.tmp (step 2), no DIR, no manifests. DIR.old is complete (it was DIR), DIR.tmp cannot
  // be told from a half-written one without a manifest, so the older complete checkpoint is used.
  const std::string root = TmpDir("legacy"), dir = root + "/checkpoint";
  Trainer a(1), b(2);
  ASSERT_TRUE(a.Save(dir + ".old", 1).ok());
  ASSERT_TRUE(b.Save(dir + ".tmp", 2).ok());
  fs::remove(dir + ".old/manifest.json");
  fs::remove(dir + ".tmp/manifest.json");
  auto rec = RecoverCheckpoint(dir);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_TRUE(rec->has_value());
  EXPECT_EQ((*rec)->step, 1);
  ExpectHolds(dir, 1, 1);
  // A DIR without a manifest but with trainer_state.json (every checkpoint of the previous protocol).
  auto again = RecoverCheckpoint(dir);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->step, 1);
  fs::remove_all(root);
}

TEST(CheckpointProtocol, DamageIsAnErrorNamingTheFileNotAFreshStart) {
  const std::string root = TmpDir("damage"), dir = root + "/checkpoint";
  Trainer a(1);
  ASSERT_TRUE(a.Save(dir, 1).ok());
  // A truncated weights file no longer matches the manifest.
  fs::resize_file(dir + "/model.safetensors", 100);
  Trainer got(5);
  TrainerState st;
  Status s = LoadCheckpoint(dir, got.model.get(), got.opt.get(), &st);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("manifest"), std::string::npos) << s.ToString();
  auto rec = RecoverCheckpoint(dir);
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), Code::kCorruption);
  EXPECT_NE(rec.status().message().find(dir), std::string::npos) << rec.status().ToString();
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors")) << "recovery must not delete what it cannot read";
  fs::remove_all(root);
}

}  // namespace
}  // namespace k2::engine
