// SCRR: rubric prompts, verdict parsing, pairwise comparison in both orders, Bradley–Terry (MM) and win
// rates, and the critic/verifier agreement loop.
#include "rewards/scrr.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace k2::rewards {

std::vector<Rubric> CoreRubrics() {
  return {
      {"clarity_relevance", "core",
       "Clarity and relevance: the response is clear, directly addresses the request, and contains no "
       "irrelevant material."},
      {"fluency_engagement", "core",
       "Conversational fluency and engagement: natural, coherent, appropriately engaging dialogue."},
      {"objective_grounded", "core",
       "Objective and grounded interaction: factual, balanced, grounded in the given context; no flattery or "
       "unfounded claims."},
  };
}

std::vector<Rubric> PrescriptiveRubrics() {
  return {
      {"no_initial_praise", "prescriptive",
       "No initial praise: the response does not open by complimenting the user or the question."},
      {"no_self_justification", "prescriptive",
       "No explicit justification: the response does not explain why it is good or how well it follows the "
       "instructions."},
  };
}

Expected<std::vector<Rubric>> TaskRubrics(const json& task, const std::string& where) {
  std::vector<Rubric> out;
  auto it = task.find("rubrics");
  if (it == task.end()) return out;
  if (!it->is_array()) return InvalidArgument(where + ".rubrics: expected array of strings or {name, text}");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& r = (*it)[i];
    std::string w = where + ".rubrics[" + std::to_string(i) + "]";
    if (r.is_string()) {
      out.push_back({"task_" + std::to_string(i), "task", r.get<std::string>()});
    } else if (r.is_object() && r.contains("text") && r["text"].is_string()) {
      out.push_back({r.value("name", "task_" + std::to_string(i)), "task", r["text"].get<std::string>()});
    } else {
      return InvalidArgument(w + ": expected string or {\"name\", \"text\"}");
    }
  }
  return out;
}

std::vector<Message> CriticPrompt(const std::string& prompt, const std::string& first, const std::string& second,
                                  const std::vector<Rubric>& rubrics) {
  std::string sys =
      "You are a critic comparing two responses to the same prompt. Judge them only against these rubrics:\n";
  for (auto& r : rubrics) sys += "- [" + r.kind + "] " + r.name + ": " + r.text + "\n";
  sys += "Reason briefly, then end with exactly one verdict: [[A]] if response A is better, [[B]] if response B "
         "is better, [[TIE]] if they are equally good.";
  std::string user = "## Prompt\n" + prompt + "\n\n## Response A\n" + first + "\n\n## Response B\n" + second;
  Message s, u;
  s.role = "system";
  s.content = sys;
  u.role = "user";
  u.content = user;
  return {s, u};
}

Expected<double> ParseVerdict(const std::string& reply) {
  size_t a = reply.rfind("[[A]]"), b = reply.rfind("[[B]]"), t = reply.rfind("[[TIE]]");
  size_t best = std::string::npos;
  double v = 0;
  for (auto [pos, val] : {std::pair{a, 1.0}, std::pair{b, 0.0}, std::pair{t, 0.5}}) {
    if (pos != std::string::npos && (best == std::string::npos || pos > best)) {
      best = pos;
      v = val;
    }
  }
  if (best == std::string::npos)
    return InvalidArgument("critic reply has no verdict [[A]], [[B]] or [[TIE]]: \"" + reply.substr(0, 80) + "\"");
  return v;
}

Expected<double> ChatCritic::Compare(const std::string& prompt, const std::string& first, const std::string& second,
                                     const std::vector<Rubric>& rubrics) {
  K2_ASSIGN_OR_RETURN(std::string reply, chat_(CriticPrompt(prompt, first, second, rubrics)));
  return ParseVerdict(reply);
}

namespace {

// Order-averaged P(a > b): (P(a first) + 1 - P(b first)) / 2; a failed call counts as a tie.
double ComparePair(Critic& c, const std::string& prompt, const std::string& a, const std::string& b,
                   const std::vector<Rubric>& rubrics, bool both, int* calls, int* failures) {
  auto one = [&](const std::string& x, const std::string& y) {
    ++*calls;
    auto p = c.Compare(prompt, x, y, rubrics);
    if (!p.ok() || !std::isfinite(*p)) {
      ++*failures;
      return 0.5;
    }
    return std::clamp(*p, 0.0, 1.0);
  };
  double ab = one(a, b);
  if (!both) return ab;
  double ba = one(b, a);
  return 0.5 * (ab + (1.0 - ba));
}

}  // namespace

Expected<std::vector<double>> FitBradleyTerry(const std::vector<std::vector<double>>& wins, double prior,
                                              int max_iters, double tol) {
  size_t n = wins.size();
  if (n == 0) return InvalidArgument("bradley_terry: empty win matrix");
  for (auto& row : wins) {
    if (row.size() != n) return InvalidArgument("bradley_terry: win matrix is not square");
    for (double w : row)
      if (!(w >= 0) || !std::isfinite(w)) return InvalidArgument("bradley_terry: wins must be finite and >= 0");
  }
  if (prior < 0) return InvalidArgument("bradley_terry: prior must be >= 0");
  std::vector<std::vector<double>> w(n, std::vector<double>(n, 0));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j) w[i][j] = wins[i][j] + prior;
  std::vector<double> p(n, 1.0 / static_cast<double>(n)), next(n);
  for (int it = 0; it < max_iters; ++it) {
    for (size_t i = 0; i < n; ++i) {
      double wi = 0, denom = 0;
      for (size_t j = 0; j < n; ++j) {
        if (i == j) continue;
        wi += w[i][j];
        double nij = w[i][j] + w[j][i];
        if (nij > 0 && p[i] + p[j] > 0) denom += nij / (p[i] + p[j]);
      }
      next[i] = denom > 0 ? wi / denom : p[i];
    }
    double s = 0;
    for (double x : next) s += x;
    if (!(s > 0)) return InvalidArgument("bradley_terry: no wins at all");
    double delta = 0;
    for (size_t i = 0; i < n; ++i) {
      next[i] /= s;
      if (p[i] > 0 && next[i] > 0) delta = std::max(delta, std::fabs(std::log(next[i] / p[i])));
      else if ((p[i] > 0) != (next[i] > 0)) delta = std::max(delta, 1.0);
    }
    p.swap(next);
    if (delta < tol) break;
  }
  return p;
}

std::vector<double> WinRates(const std::vector<std::vector<double>>& wins) {
  size_t n = wins.size();
  std::vector<double> out(n, 0.5);
  for (size_t i = 0; i < n; ++i) {
    double w = 0, g = 0;
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      w += wins[i][j];
      g += wins[i][j] + wins[j][i];
    }
    if (g > 0) out[i] = w / g;
  }
  return out;
}

Expected<ScrrResult> ScoreGroup(Critic& critic, const std::string& prompt, const std::vector<std::string>& responses,
                                const std::vector<Rubric>& rubrics, const ScrrConfig& cfg) {
  size_t n = responses.size();
  if (n < 2) return InvalidArgument("scrr: need at least 2 responses to compare, got " + std::to_string(n));
  if (cfg.method != "bradley_terry" && cfg.method != "win_rate")
    return InvalidArgument("scrr.method: expected \"bradley_terry\" or \"win_rate\", got \"" + cfg.method + "\"");
  ScrrResult r;
  r.pref.assign(n, std::vector<double>(n, 0.5));
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      double p = ComparePair(critic, prompt, responses[i], responses[j], rubrics, cfg.both_orders, &r.comparisons,
                             &r.critic_failures);
      r.pref[i][j] = p;
      r.pref[j][i] = 1 - p;
    }
  }
  std::vector<std::vector<double>> wins = r.pref;
  for (size_t i = 0; i < n; ++i) wins[i][i] = 0;
  if (cfg.method == "win_rate") {
    r.strength = WinRates(wins);
    r.scores = r.strength;
    return r;
  }
  K2_ASSIGN_OR_RETURN(r.strength, FitBradleyTerry(wins, cfg.prior, cfg.max_iters, cfg.tol));
  r.scores.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      double d = r.strength[i] + r.strength[j];
      s += d > 0 ? r.strength[i] / d : 0.5;
    }
    r.scores[i] = s / static_cast<double>(n - 1);
  }
  return r;
}

Agreement MeasureAgreement(const std::vector<VerifiedPair>& pairs) {
  Agreement a;
  for (auto& p : pairs) {
    if (p.reward_a == p.reward_b) continue;
    ++a.decisive;
    if (p.critic_pref_a == 0.5) {
      ++a.critic_ties;
      continue;
    }
    bool critic_a = p.critic_pref_a > 0.5, verified_a = p.reward_a > p.reward_b;
    a.agree += critic_a == verified_a;
  }
  a.rate = a.decisive ? static_cast<double>(a.agree) / a.decisive : 0;
  return a;
}

Expected<std::vector<VerifiedPair>> CollectVerifiedPairs(Critic& critic, const std::string& prompt,
                                                         const std::vector<std::string>& responses,
                                                         const std::vector<double>& verifiable,
                                                         const std::vector<Rubric>& rubrics) {
  if (responses.size() != verifiable.size())
    return InvalidArgument("scrr: " + std::to_string(responses.size()) + " responses but " +
                           std::to_string(verifiable.size()) + " verifiable rewards");
  std::vector<VerifiedPair> out;
  int calls = 0, failures = 0;
  for (size_t i = 0; i < responses.size(); ++i) {
    for (size_t j = i + 1; j < responses.size(); ++j) {
      if (verifiable[i] == verifiable[j]) continue;
      VerifiedPair p{prompt, responses[i], responses[j], verifiable[i], verifiable[j], 0.5};
      p.critic_pref_a = ComparePair(critic, prompt, responses[i], responses[j], rubrics, true, &calls, &failures);
      out.push_back(std::move(p));
    }
  }
  return out;
}

json CriticTrainingRecords(const VerifiedPair& p, const std::vector<Rubric>& rubrics) {
  json out = json::array();
  if (p.reward_a == p.reward_b) return out;
  bool a_better = p.reward_a > p.reward_b;
  bool agreed = p.critic_pref_a != 0.5 && (p.critic_pref_a > 0.5) == a_better;
  // Both orders, so the critic learns the verdict and not the position.
  out.push_back({{"messages", ToJson(CriticPrompt(p.prompt, p.a, p.b, rubrics))},
                 {"label", a_better ? "A" : "B"},
                 {"critic_agreed", agreed}});
  out.push_back({{"messages", ToJson(CriticPrompt(p.prompt, p.b, p.a, rubrics))},
                 {"label", a_better ? "B" : "A"},
                 {"critic_agreed", agreed}});
  return out;
}

Expected<CriticLoopResult> RunCriticLoop(Critic& critic, const std::vector<VerifiedGroup>& groups,
                                         const std::vector<Rubric>& base_rubrics, const std::string& jsonl_out) {
  CriticLoopResult out;
  std::string lines;
  for (size_t g = 0; g < groups.size(); ++g) {
    const VerifiedGroup& grp = groups[g];
    std::vector<Rubric> rubrics = base_rubrics;
    rubrics.insert(rubrics.end(), grp.rubrics.begin(), grp.rubrics.end());
    auto pairs = CollectVerifiedPairs(critic, grp.prompt, grp.responses, grp.verifiable, rubrics);
    if (!pairs.ok()) return pairs.status().Context("critic loop: group " + std::to_string(g));
    for (auto& p : *pairs) {
      for (auto& rec : CriticTrainingRecords(p, rubrics)) {
        lines += rec.dump() + "\n";
        ++out.records;
      }
      out.pairs.push_back(std::move(p));
    }
  }
  out.agreement = MeasureAgreement(out.pairs);
  if (!jsonl_out.empty()) K2_RETURN_IF_ERROR(WriteFileAtomic(jsonl_out, lines));
  return out;
}

Expected<ScrrTaskSpec> ScrrSpecFromConfig(const json& config, const std::string& where) {
  if (!config.is_object()) return InvalidArgument(where + ": expected an object");
  static const std::set<std::string> kKeys = {"type", "rubrics", "core", "prescriptive", "method", "success_threshold"};
  for (const auto& [k, v] : config.items())
    if (!kKeys.count(k))
      return InvalidArgument(where + ": unknown key " + json(k).dump() +
                             " (expected rubrics, core, prescriptive, method, success_threshold)");
  ScrrTaskSpec s;
  auto flag = [&](const char* key, bool dflt) -> Expected<bool> {
    if (!config.contains(key)) return dflt;
    if (!config[key].is_boolean()) return InvalidArgument(where + "." + key + ": expected true or false");
    return config[key].get<bool>();
  };
  K2_ASSIGN_OR_RETURN(bool core, flag("core", true));
  K2_ASSIGN_OR_RETURN(bool prescriptive, flag("prescriptive", false));
  if (core) s.rubrics = CoreRubrics();
  if (prescriptive)
    for (auto& r : PrescriptiveRubrics()) s.rubrics.push_back(r);
  K2_ASSIGN_OR_RETURN(std::vector<Rubric> task, TaskRubrics(config, where));
  for (auto& r : task) s.rubrics.push_back(r);
  if (s.rubrics.empty()) return InvalidArgument(where + ": no rubric (core is false and rubrics is empty)");
  if (config.contains("method")) {
    const json& m = config["method"];
    if (!m.is_string() || (m != "bradley_terry" && m != "win_rate"))
      return InvalidArgument(where + ".method: expected \"bradley_terry\" or \"win_rate\"");
    s.config.method = m.get<std::string>();
  }
  if (config.contains("success_threshold")) {
    const json& t = config["success_threshold"];
    if (!t.is_number() || t.get<double>() < 0 || t.get<double>() > 1)
      return InvalidArgument(where + ".success_threshold: expected a number in [0, 1]");
    s.success_threshold = t.get<double>();
  }
  return s;
}

namespace {
class ScrrReward : public Reward {
 public:
  std::string name() const override { return "scrr"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput&) const override {
    return FailedPrecondition(
        "scrr: an open-ended task is scored by comparing the responses of a group to one prompt (k2gym rl "
        "--critic policy|openai:URL), not one trajectory alone");
  }
};
}  // namespace

Expected<std::unique_ptr<Reward>> MakeScrrReward(const json& config, const std::string& where) {
  K2_RETURN_IF_ERROR(ScrrSpecFromConfig(config, where).status());
  return std::unique_ptr<Reward>(new ScrrReward());
}

}  // namespace k2::rewards
