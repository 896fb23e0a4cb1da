// The judge over agents' records: a Trajectory and its EpisodeTask scored by the "judge" reward
// (rewards/judge_reward.h), with an optional LLM grader behind the agents Policy interface; simulate's
// keep/discard filter and the RL reward of synthetic tasks. Part of k2gym_rewards_agents (the seam).
//
// Thread safety: Evaluate is const and may run concurrently (the grader policy must be thread-safe, as
// every Policy is).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "agents/episode.h"
#include "agents/policy.h"
#include "agents/trajectory.h"
#include "rewards/judge_reward.h"

namespace k2::rewards {

// The judge's evaluation spec of a task: from its synthetic scenario (expected state hash,
// communicate_info, forbidden actions with compare_args, the grader's rubric); {} for other tasks
// (only the task-independent checks then apply).
json JudgeSpec(const agents::EpisodeTask& task);

// Kept/discarded counts by reason (a trajectory may count under several reasons).
struct JudgeSummary {
  int64_t kept = 0, discarded = 0;
  std::map<std::string, int64_t> by_reason;
  void Add(const Verdict& v);
  json ToJson() const;
};

class Judge {
 public:
  explicit Judge(JudgeConfig config = {}, agents::Policy* llm = nullptr) : config_(config), llm_(llm) {}
  Verdict Evaluate(const agents::Trajectory& t, const agents::EpisodeTask& task) const;
  // Evaluate, then store the components in t.reward_components ("judge/<name>"), t.reward = keep ? 1 : 0,
  // and the verdict in t.provenance["judge"].
  Verdict Apply(agents::Trajectory& t, const agents::EpisodeTask& task) const;

 private:
  JudgeConfig config_;
  agents::Policy* llm_;
};

// Records a verdict on a trajectory as Judge::Apply does (components "judge/<name>", reward, provenance).
void RecordVerdict(agents::Trajectory& t, const Verdict& v);

}  // namespace k2::rewards
