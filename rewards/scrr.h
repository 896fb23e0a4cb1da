// Self-critique rubric reward (K2's SCRR): a critic compares responses to the same prompt pairwise
// against rubrics, in both presentation orders to cancel position bias; the comparisons become
// per-response scores by Bradley–Terry (MM algorithm) or win rate. Closed loop: on prompts that also have
// a verifiable reward, the critic's preferences are checked against the verifiable outcome (agreement
// rate) and the pairs become critic-training records.
//
// Thread safety: ScoreGroup calls the critic sequentially; a Critic is used by one thread at a time unless
// its implementation says otherwise. The free functions are pure.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/message.h"
#include "core/status.h"
#include "rewards/reward.h"

namespace k2::rewards {

struct Rubric {
  std::string name;  // "clarity_relevance"
  std::string kind;  // "core", "prescriptive" or "task"
  std::string text;  // what the critic checks
};

// K2's core rubrics: clarity and relevance; conversational fluency and engagement; objective, grounded
// interaction.
std::vector<Rubric> CoreRubrics();
// K2's prescriptive rubrics: no initial praise; no explicit self-justification.
std::vector<Rubric> PrescriptiveRubrics();
// Task rubrics from a task spec: "rubrics": ["text", ...] or [{"name", "text"}]; kind "task".
Expected<std::vector<Rubric>> TaskRubrics(const json& task, const std::string& where);

class Critic {
 public:
  virtual ~Critic() = default;
  // P(first is the better response to `prompt` under `rubrics`), in [0, 1]; 0.5 is a tie.
  virtual Expected<double> Compare(const std::string& prompt, const std::string& first, const std::string& second,
                                   const std::vector<Rubric>& rubrics) = 0;
};

// A critic backed by a chat model: the policy being trained (through the agents Policy interface) or any
// OpenAI-compatible endpoint, wrapped as a function from messages to the reply text. The reply must end
// with a verdict [[A]], [[B]] or [[TIE]] (the last one counts).
using ChatFn = std::function<Expected<std::string>(const std::vector<Message>& messages)>;
class ChatCritic : public Critic {
 public:
  explicit ChatCritic(ChatFn chat) : chat_(std::move(chat)) {}
  Expected<double> Compare(const std::string& prompt, const std::string& first, const std::string& second,
                           const std::vector<Rubric>& rubrics) override;

 private:
  ChatFn chat_;
};
std::vector<Message> CriticPrompt(const std::string& prompt, const std::string& first, const std::string& second,
                                  const std::vector<Rubric>& rubrics);
// 1 for [[A]], 0 for [[B]], 0.5 for [[TIE]]; InvalidArgument when the reply has no verdict.
Expected<double> ParseVerdict(const std::string& reply);

struct ScrrConfig {
  std::string method = "bradley_terry";  // or "win_rate"
  bool both_orders = true;               // ask (a, b) and (b, a) and average: cancels position bias
  double prior = 0.1;                    // pseudo-wins added each way per pair (keeps BT finite at 0 wins)
  int max_iters = 10000;                 // MM iterations
  double tol = 1e-12;                    // stop when max |Δ log p| < tol
};

struct ScrrResult {
  std::vector<double> scores;    // per response, in [0, 1]: BT expected win rate vs the others, or win rate
  std::vector<double> strength;  // BT strengths p_i (sum 1); win rates for method win_rate
  std::vector<std::vector<double>> pref;  // pref[i][j] = order-averaged P(i better than j)
  int comparisons = 0;           // critic calls made
  int critic_failures = 0;       // critic calls that failed (counted as ties)
};

// Compares every pair of `responses` (n >= 2) and scores them.
Expected<ScrrResult> ScoreGroup(Critic& critic, const std::string& prompt, const std::vector<std::string>& responses,
                                const std::vector<Rubric>& rubrics, const ScrrConfig& cfg = {});

// Bradley–Terry MLE by Hunter's MM algorithm. wins[i][j] = (fractional) wins of i over j, i != j.
// Returns strengths p (sum 1). Each pair gets `prior` extra wins each way. InvalidArgument for a
// non-square or negative matrix.
Expected<std::vector<double>> FitBradleyTerry(const std::vector<std::vector<double>>& wins, double prior,
                                              int max_iters, double tol);
// Empirical win rate of each i over all its games.
std::vector<double> WinRates(const std::vector<std::vector<double>>& wins);

// Closed loop on prompts with a verifiable reward.
struct VerifiedPair {
  std::string prompt, a, b;
  double reward_a = 0, reward_b = 0;  // verifiable rewards
  double critic_pref_a = 0.5;         // order-averaged P(a better than b) from the critic
};
struct Agreement {
  int decisive = 0;  // pairs whose verifiable rewards differ (the only ones that count)
  int agree = 0;     // critic strictly prefers the one with the higher verifiable reward
  int critic_ties = 0;  // decisive pairs where the critic said exactly 0.5 (counted as disagreement)
  double rate = 0;   // agree / decisive (0 when none is decisive)
};
Agreement MeasureAgreement(const std::vector<VerifiedPair>& pairs);
// Asks the critic about every pair of responses whose verifiable rewards differ (both orders).
Expected<std::vector<VerifiedPair>> CollectVerifiedPairs(Critic& critic, const std::string& prompt,
                                                         const std::vector<std::string>& responses,
                                                         const std::vector<double>& verifiable,
                                                         const std::vector<Rubric>& rubrics);
// Critic-training record for a decisive pair: the critic prompt in both orders with the verdict the
// verifiable outcome implies ({"messages": [...], "label": "A"|"B"} twice), plus whether the critic agreed.
json CriticTrainingRecords(const VerifiedPair& p, const std::vector<Rubric>& rubrics);

// The closed loop over many prompts: each group is one prompt's sampled responses with their verifiable
// rewards (e.g. math or code verifier scores of an RL batch).
struct VerifiedGroup {
  std::string prompt;
  std::vector<std::string> responses;
  std::vector<double> verifiable;
  std::vector<Rubric> rubrics;  // task rubrics added to the loop's base rubrics for this prompt
};
struct CriticLoopResult {
  Agreement agreement;              // over every decisive pair of every group
  std::vector<VerifiedPair> pairs;  // in group order, then (i, j) order
  int64_t records = 0;              // critic-training records written (2 per decisive pair)
};
// Asks the critic about every decisive pair (both orders), measures agreement, and when `jsonl_out` is
// not empty writes the critic-training records there (one JSON object a line, atomically; the RL loop
// mixes them into its updates). Critic failures count as ties (disagreement). Errors: a malformed group
// (sizes differ) names its index; an unwritable path is an IoError.
Expected<CriticLoopResult> RunCriticLoop(Critic& critic, const std::vector<VerifiedGroup>& groups,
                                         const std::vector<Rubric>& base_rubrics, const std::string& jsonl_out);

// The reward of an open-ended task (no verifier): {"type": "scrr", "rubrics"?: [...task rubrics],
// "core"?: true (K2's core rubrics), "prescriptive"?: false, "method"?: "bradley_terry" | "win_rate",
// "success_threshold"?: 0.5}. It is a property of a group of responses to one prompt, not of one
// trajectory: `k2gym rl --critic` scores each group with ScoreGroup (the policy being trained, or an
// endpoint, as critic); scoring one trajectory alone is an error that names this.
struct ScrrTaskSpec {
  std::vector<Rubric> rubrics;  // core (+ prescriptive) + the task's
  ScrrConfig config;
  double success_threshold = 0.5;  // a response whose group score reaches this counts as a success
};
Expected<ScrrTaskSpec> ScrrSpecFromConfig(const json& config, const std::string& where);
// The "scrr" type of the rewards registry (rewards/reward.h MakeReward).
Expected<std::unique_ptr<Reward>> MakeScrrReward(const json& config, const std::string& where);

}  // namespace k2::rewards
