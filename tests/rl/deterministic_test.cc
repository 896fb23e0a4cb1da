// Deterministic mode (core/determinism.h): sampled rollouts through the continuous-batching generator do
// not depend on how many episodes run at once, bit for bit. This binary runs with K2GYM_DETERMINISTIC=1
// (tests/rl/CMakeLists.txt); without it the same comparison differs in the logprobs' last bits.
#include <gtest/gtest.h>

#include "core/determinism.h"
#include "rl/engine_rollouts.h"
#include "tests/rl/rl_fixture.h"

namespace k2::rl {
namespace {

TEST(EngineRollouts, DeterministicSampledTrajectoriesAreTheSameWhateverTheEpisodeThreads) {
  ASSERT_TRUE(DeterministicMode()) << "run with K2GYM_DETERMINISTIC=1";
  const fixture::SmallWorld w = fixture::MakeSmallWorld();
  const text::Tokenizer tok = fixture::TrainTokenizer(fixture::ChatCorpus(fixture::OracleTrajectories(w)));
  auto model = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 3);
  ASSERT_TRUE(model.ok());
  std::vector<agents::EpisodeJob> jobs;
  for (size_t i = 0; i < w.tasks.size() && jobs.size() < 12; ++i)
    for (int k = 0; k < 3; ++k) jobs.push_back({w.tasks[i], k});
  std::vector<std::vector<agents::Trajectory>> runs;
  for (int threads : {1, 4, 12}) {
    RolloutConfig rc;
    rc.reward = "judge_mean";
    rc.episode.max_turns = 2;
    rc.episode.max_tokens_per_turn = 12;
    rc.episode.max_tokens = 0;
    rc.episode_threads = threads;
    auto ro = EngineRollouts::Create(model->get(), &tok, w.world, w.tasks, rc);
    ASSERT_TRUE(ro.ok()) << ro.status().ToString();
    runs.push_back((*ro)->Run(jobs, 1.0, 99));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t i = 0; i < runs[0].size(); ++i) {
      EXPECT_EQ(runs[r][i].tokens, runs[0][i].tokens) << "run " << r << " episode " << i;
      EXPECT_EQ(runs[r][i].policy_logprobs, runs[0][i].policy_logprobs) << "run " << r << " episode " << i << ": bit for bit";
    }
  }
}

}  // namespace
}  // namespace k2::rl
