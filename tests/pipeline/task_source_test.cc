// Task sources and the episode pipeline in process: row parsing (defaults per task type, located
// errors), mixtures and their sampling, and the runner scoring every trajectory with the task's reward.
#include "pipeline/task_source.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "pipeline/runner.h"

namespace k2::pipeline {
namespace {

namespace fs = std::filesystem;
const std::string kData = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/";

TEST(TaskFromRow, MathRowGetsTheAnswerEnvAndTheMathReward) {
  auto t = TaskFromRow(json::parse(R"({"id": "q", "prompt": "1+1?", "answer": 2, "gold": "\\boxed{2}"})"),
                       json::object(), "m", "f.jsonl:1");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->id, "m/q");
  EXPECT_EQ(t->task_type, "math");
  EXPECT_EQ(t->env_kind, "answer");
  EXPECT_EQ(t->reward, json({{"type", "math"}}));
  EXPECT_EQ(t->spec, json({{"reference", 2}}));
  ASSERT_EQ(t->gold.size(), 1u);
  EXPECT_EQ(t->episode->env_task["prompt"], "1+1?");
}

TEST(TaskFromRow, ErrorsNameFileLineAndField) {
  auto t = TaskFromRow(json::parse(R"({"id": "q", "prompt": "x", "task_type": "code"})"), json::object(), "s", "f.jsonl:7");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message().rfind("f.jsonl:7: io_cases:", 0), 0u) << t.status().message();
  t = TaskFromRow(json::parse(R"({"prompt": "x", "reference": "1"})"), json::object(), "s", "f.jsonl:8");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message().rfind("f.jsonl:8: id:", 0), 0u) << t.status().message();
  t = TaskFromRow(json::parse(R"({"id": 1, "prompt": "x", "constraints": []})"), json::object(), "s", "f.jsonl:9");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("constraints"), std::string::npos);
}

TEST(TaskSource, MixtureWeightsDrawSourcesInProportion) {
  LoadOptions o;
  json mix = {{"kind", "mixture"},
              {"sources", {{{"weight", 3}, {"source", "math:" + kData + "math.jsonl"}},
                           {{"weight", 1}, {"source", "if:" + kData + "if.jsonl"}}}}};
  auto set = LoadTaskSourceJson(mix, "", o);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->tasks.size(), 5u);
  ASSERT_EQ(set->sources.size(), 2u);
  auto draws = SampleMixture(*set, 4000, 7);
  int math = 0;
  for (size_t i : draws) math += set->tasks[i].source == "math";
  EXPECT_NEAR(math / 4000.0, 0.75, 0.03);
  EXPECT_EQ(SampleMixture(*set, 50, 7), SampleMixture(*set, 50, 7));
}

TEST(TaskSource, MalformedRowsAreCountedOrFatalWhenStrict) {
  LoadOptions o;
  auto set = LoadTaskSource("math:" + kData + "math_bad.jsonl", o);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->tasks.size(), 2u);
  EXPECT_EQ(set->skipped, 2);
  ASSERT_EQ(set->problems.size(), 2u);
  EXPECT_NE(set->problems[0].find("math_bad.jsonl:2: reference:"), std::string::npos) << set->problems[0];
  o.strict = true;
  auto strict = LoadTaskSource("math:" + kData + "math_bad.jsonl", o);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find("math_bad.jsonl:2"), std::string::npos);
}

TEST(Pipeline, EveryTrajectoryIsScoredByTheTasksRewardGoldOnePerturbedZero) {
  LoadOptions o;
  auto loaded = LoadTaskSourceJson({{"kind", "mixture"},
                                    {"sources", {{{"source", "math:" + kData + "math.jsonl"}},
                                                 {{"source", "if:" + kData + "if.jsonl"}}}}},
                                   "", o);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto set = std::make_shared<const TaskSet>(std::move(*loaded));
  auto pipe = Pipeline::Create(set, {});
  ASSERT_TRUE(pipe.ok()) << pipe.status().ToString();
  std::vector<size_t> all(set->tasks.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  for (bool perturbed : {false, true}) {
    auto policy = MakeGoldPolicy(set, perturbed);
    RunJobsOptions ro;
    ro.threads = 2;
    ro.seed = 5;
    auto trajs = RunJobs((*pipe)->Jobs(all, 2), (*pipe)->Hooks(), *policy, ro);
    ASSERT_EQ(trajs.size(), 2 * all.size());
    for (size_t i = 0; i < trajs.size(); ++i) {
      const auto& t = trajs[i];
      EXPECT_EQ(t.task_id, set->tasks[all[i / 2]].id);
      EXPECT_EQ(t.end_reason, "agent_stop") << t.task_id;
      EXPECT_EQ(t.reward, perturbed ? 0.0 : 1.0) << t.task_id << " " << t.provenance.dump();
      EXPECT_EQ(t.reward_components.at("task_success"), perturbed ? 0.0 : 1.0);
      // The reward is the task's reward on the trajectory, nothing else.
      auto r = (*(*pipe)->RewardOf(set->tasks[all[i / 2]]))->Score((*pipe)->Input(t, set->tasks[all[i / 2]]));
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->value, t.reward);
    }
  }
}

TEST(Pipeline, UnknownEnvKindOrBadRewardFailsAtCreateNamingTheTask) {
  TaskSet set;
  Task t;
  t.id = "s/x";
  t.env_kind = "no_such_kind";
  t.reward = {{"type", "math"}};
  set.tasks.push_back(t);
  auto p = Pipeline::Create(std::make_shared<const TaskSet>(set), {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("s/x"), std::string::npos);
  set.tasks[0].env_kind = "answer";
  set.tasks[0].reward = {{"type", "nope"}};
  p = Pipeline::Create(std::make_shared<const TaskSet>(set), {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("unknown reward type"), std::string::npos) << p.status().message();
}

}  // namespace
}  // namespace k2::pipeline
