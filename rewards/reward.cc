// Reward registry, composition (weighted sum, product, gate) and budget control.
// Composition rewards own their children; the registry maps a config "type" to a factory.
#include "rewards/reward.h"

#include <algorithm>
#include <mutex>

#include "rewards/ast_match.h"
#include "rewards/budget.h"
#include "rewards/code_verifier.h"
#include "rewards/instruction.h"
#include "rewards/judge_reward.h"
#include "rewards/math_verifier.h"
#include "rewards/tool_verifier.h"

namespace k2::rewards {

std::string LastAssistantText(const ScoreInput& in) {
  for (auto it = in.messages.rbegin(); it != in.messages.rend(); ++it)
    if (it->role == "assistant") return it->content;
  return "";
}

json RewardResult::ToJson() const {
  json c = json::object();
  for (auto& [k, v] : components) c[k] = v;
  return {{"value", value}, {"components", c}, {"explanation", explanation}};
}

Expected<RewardResult> Reward::Score(const ScoreInput& in) const {
  try {
    return DoScore(in);
  } catch (const json::exception& e) {
    // A verifier read a spec field with the wrong JSON type; the spec is at fault, not the response.
    return InvalidArgument(name() + ": task spec: " + e.what());
  } catch (const std::exception& e) {
    return Internal(name() + ": " + e.what());
  }
}

Expected<std::string> GetString(const json& obj, const std::string& key, const std::string& where) {
  if (!obj.is_object()) return InvalidArgument(where + ": expected object, got " + JsonTypeName(obj));
  auto it = obj.find(key);
  if (it == obj.end()) return InvalidArgument(where + "." + key + ": missing (expected string)");
  if (!it->is_string()) return InvalidArgument(where + "." + key + ": expected string, got " + JsonTypeName(*it));
  return it->get<std::string>();
}

Expected<double> GetNumber(const json& obj, const std::string& key, const std::string& where) {
  if (!obj.is_object()) return InvalidArgument(where + ": expected object, got " + JsonTypeName(obj));
  auto it = obj.find(key);
  if (it == obj.end()) return InvalidArgument(where + "." + key + ": missing (expected number)");
  if (!it->is_number()) return InvalidArgument(where + "." + key + ": expected number, got " + JsonTypeName(*it));
  return it->get<double>();
}

namespace {

void AppendExplanation(std::string& out, const std::string& prefix, const std::string& text) {
  if (text.empty()) return;
  if (!out.empty()) out += "\n";
  out += prefix + text;
}

// Child components are namespaced "<child name>.<component>" so sums of two verifiers never collide.
void MergeComponents(RewardResult& out, const std::string& prefix, const RewardResult& child) {
  out.components[prefix] = child.value;
  for (auto& [k, v] : child.components) out.components[prefix + "." + k] = v;
}

class WeightedSum : public Reward {
 public:
  WeightedSum(std::vector<double> w, std::vector<std::unique_ptr<Reward>> r) : w_(std::move(w)), r_(std::move(r)) {}
  std::string name() const override { return "weighted_sum"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    RewardResult out;
    for (size_t i = 0; i < r_.size(); ++i) {
      K2_ASSIGN_OR_RETURN(RewardResult c, r_[i]->Score(in));
      out.value += w_[i] * c.value;
      std::string p = std::to_string(i) + ":" + r_[i]->name();
      MergeComponents(out, p, c);
      AppendExplanation(out.explanation, p + ": ", c.explanation);
    }
    return out;
  }

 private:
  std::vector<double> w_;
  std::vector<std::unique_ptr<Reward>> r_;
};

class Product : public Reward {
 public:
  explicit Product(std::vector<std::unique_ptr<Reward>> r) : r_(std::move(r)) {}
  std::string name() const override { return "product"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    RewardResult out;
    out.value = 1;
    for (size_t i = 0; i < r_.size(); ++i) {
      K2_ASSIGN_OR_RETURN(RewardResult c, r_[i]->Score(in));
      out.value *= c.value;
      std::string p = std::to_string(i) + ":" + r_[i]->name();
      MergeComponents(out, p, c);
      AppendExplanation(out.explanation, p + ": ", c.explanation);
    }
    return out;
  }

 private:
  std::vector<std::unique_ptr<Reward>> r_;
};

class Gate : public Reward {
 public:
  Gate(std::unique_ptr<Reward> gate, std::unique_ptr<Reward> r, double threshold)
      : gate_(std::move(gate)), r_(std::move(r)), threshold_(threshold) {}
  std::string name() const override { return "gate"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    K2_ASSIGN_OR_RETURN(RewardResult g, gate_->Score(in));
    RewardResult out;
    MergeComponents(out, "gate:" + gate_->name(), g);
    if (g.value < threshold_) {
      // The gated reward is not evaluated at all: a failed gate (e.g. a format check) must not pay for
      // an expensive verifier (a sandbox run).
      out.value = 0;
      out.components["gate_open"] = 0;
      out.explanation = "gate " + gate_->name() + " closed (" + std::to_string(g.value) + " < " +
                        std::to_string(threshold_) + ")";
      AppendExplanation(out.explanation, "gate: ", g.explanation);
      return out;
    }
    K2_ASSIGN_OR_RETURN(RewardResult c, r_->Score(in));
    out.value = c.value;
    out.components["gate_open"] = 1;
    MergeComponents(out, r_->name(), c);
    out.explanation = c.explanation;
    return out;
  }

 private:
  std::unique_ptr<Reward> gate_, r_;
  double threshold_;
};

class BudgetReward : public Reward {
 public:
  BudgetReward(std::unique_ptr<Reward> r, BudgetConfig cfg) : r_(std::move(r)), cfg_(std::move(cfg)) {}
  std::string name() const override { return r_->name(); }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    K2_ASSIGN_OR_RETURN(RewardResult out, r_->Score(in));
    BudgetDecision d = CheckBudget(cfg_, in.task_type, in.response_tokens);
    out.components["budget_penalty"] = -d.penalty;
    out.components["over_budget"] = d.over ? 1 : 0;
    if (d.over) {
      out.value = (cfg_.over_budget == "zero" ? 0.0 : out.value) - d.penalty;
      AppendExplanation(out.explanation, "",
                        "over budget: " + std::to_string(in.response_tokens) + " tokens > " +
                            std::to_string(d.budget) + " for task type \"" + in.task_type +
                            "\"; truncated to " + std::to_string(d.kept_tokens) + ", penalty " +
                            std::to_string(d.penalty));
    }
    return out;
  }

 private:
  std::unique_ptr<Reward> r_;
  BudgetConfig cfg_;
};

std::mutex& RegistryMu() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, RewardFactory>& Registry() {
  static std::map<std::string, RewardFactory> r;
  return r;
}

Expected<std::vector<std::unique_ptr<Reward>>> MakeList(const json& config, const char* key, const std::string& where) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_array() || it->empty())
    return InvalidArgument(where + "." + key + ": expected a non-empty array of reward configs");
  std::vector<std::unique_ptr<Reward>> out;
  for (size_t i = 0; i < it->size(); ++i) {
    K2_ASSIGN_OR_RETURN(auto r, MakeReward((*it)[i], where + "." + key + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(r));
  }
  return out;
}

Status CheckKeys(const json& config, const std::vector<std::string>& allowed, const std::string& where) {
  for (auto& [k, v] : config.items()) {
    bool ok = k == "type";
    for (auto& a : allowed) ok |= a == k;
    if (!ok) {
      std::string near = config::Nearest(k, allowed);
      return InvalidArgument(where + ": unknown key \"" + k + "\"" +
                             (near.empty() ? "" : " (did you mean \"" + near + "\"?)"));
    }
  }
  return Status::Ok();
}

}  // namespace

Status BudgetConfig::Validate(const std::string& where) const {
  if (!budgets.is_object()) return InvalidArgument(where + ".budgets: expected object task type -> tokens");
  for (auto& [k, v] : budgets.items()) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1)
      return InvalidArgument(where + ".budgets." + k + ": expected integer >= 1, got " + v.dump());
  }
  return Status::Ok();
}

Expected<BudgetConfig> BudgetConfigFromJson(const json& j, const std::string& where) {
  BudgetConfig cfg;
  K2_RETURN_IF_ERROR(config::Reader::Read(j, cfg, where, "reward config"));
  K2_RETURN_IF_ERROR(cfg.Validate(where));
  return cfg;
}

BudgetDecision CheckBudget(const BudgetConfig& cfg, const std::string& task_type, int64_t tokens) {
  BudgetDecision d;
  d.budget = cfg.default_budget;
  if (cfg.budgets.is_object()) {
    auto it = cfg.budgets.find(task_type);
    if (it != cfg.budgets.end() && it->is_number_integer()) d.budget = it->get<int64_t>();
  }
  d.kept_tokens = tokens;
  if (d.budget > 0 && tokens > d.budget) {
    d.over = true;
    d.kept_tokens = d.budget;
    d.penalty = cfg.penalty;
  }
  return d;
}

Expected<std::unique_ptr<Reward>> MakeBudgetReward(std::unique_ptr<Reward> inner, BudgetConfig cfg) {
  K2_RETURN_IF_ERROR(cfg.Validate("budget"));
  return std::unique_ptr<Reward>(new BudgetReward(std::move(inner), std::move(cfg)));
}

bool RegisterReward(const std::string& type, RewardFactory factory) {
  std::lock_guard<std::mutex> l(RegistryMu());
  return Registry().emplace(type, std::move(factory)).second;
}

std::vector<std::string> RewardTypes() {
  std::vector<std::string> out = {"ast",  "budget", "code", "gate", "if",          "judge",
                                  "math", "product", "scrr", "tool", "weighted_sum"};
  std::lock_guard<std::mutex> l(RegistryMu());
  for (auto& [k, v] : Registry()) out.push_back(k);
  std::sort(out.begin(), out.end());
  return out;
}

Expected<std::unique_ptr<Reward>> MakeReward(const json& config, const std::string& where) {
  if (!config.is_object()) return InvalidArgument(where + ": expected object {\"type\": ...}, got " + JsonTypeName(config));
  K2_ASSIGN_OR_RETURN(std::string type, GetString(config, "type", where));
  try {
    if (type == "math") return MakeMathReward(config, where);
    if (type == "if") return MakeInstructionReward(config, where);
    if (type == "tool") return MakeToolReward(config, where);
    if (type == "ast") return MakeAstReward(config, where);
    if (type == "code") return MakeCodeReward(config, where);
    if (type == "judge") return MakeJudgeReward(config, where);
    if (type == "scrr") return MakeScrrReward(config, where);
    if (type == "weighted_sum") {
      K2_RETURN_IF_ERROR(CheckKeys(config, {"terms"}, where));
      auto it = config.find("terms");
      if (it == config.end() || !it->is_array() || it->empty())
        return InvalidArgument(where + ".terms: expected a non-empty array of {\"weight\", \"reward\"}");
      std::vector<double> w;
      std::vector<std::unique_ptr<Reward>> r;
      for (size_t i = 0; i < it->size(); ++i) {
        std::string wi = where + ".terms[" + std::to_string(i) + "]";
        K2_RETURN_IF_ERROR(CheckKeys((*it)[i], {"weight", "reward"}, wi));
        K2_ASSIGN_OR_RETURN(double weight, GetNumber((*it)[i], "weight", wi));
        auto rc = (*it)[i].find("reward");
        if (rc == (*it)[i].end()) return InvalidArgument(wi + ".reward: missing");
        K2_ASSIGN_OR_RETURN(auto child, MakeReward(*rc, wi + ".reward"));
        w.push_back(weight);
        r.push_back(std::move(child));
      }
      return std::unique_ptr<Reward>(new WeightedSum(std::move(w), std::move(r)));
    }
    if (type == "product") {
      K2_RETURN_IF_ERROR(CheckKeys(config, {"factors"}, where));
      K2_ASSIGN_OR_RETURN(auto list, MakeList(config, "factors", where));
      return std::unique_ptr<Reward>(new Product(std::move(list)));
    }
    if (type == "gate") {
      K2_RETURN_IF_ERROR(CheckKeys(config, {"gate", "reward", "threshold"}, where));
      if (!config.contains("gate") || !config.contains("reward"))
        return InvalidArgument(where + ": gate needs \"gate\" and \"reward\" configs");
      K2_ASSIGN_OR_RETURN(auto g, MakeReward(config["gate"], where + ".gate"));
      K2_ASSIGN_OR_RETURN(auto r, MakeReward(config["reward"], where + ".reward"));
      double t = 1.0;
      if (config.contains("threshold")) {
        K2_ASSIGN_OR_RETURN(t, GetNumber(config, "threshold", where));
      }
      return std::unique_ptr<Reward>(new Gate(std::move(g), std::move(r), t));
    }
    if (type == "budget") {
      if (!config.contains("reward")) return InvalidArgument(where + ".reward: missing (the budgeted reward)");
      K2_ASSIGN_OR_RETURN(auto r, MakeReward(config["reward"], where + ".reward"));
      json rest = config;
      rest.erase("type");
      rest.erase("reward");
      K2_ASSIGN_OR_RETURN(BudgetConfig cfg, BudgetConfigFromJson(rest, where));
      return MakeBudgetReward(std::move(r), std::move(cfg));
    }
  } catch (const json::exception& e) {
    return InvalidArgument(where + ": " + e.what());
  }
  RewardFactory f;
  {
    std::lock_guard<std::mutex> l(RegistryMu());
    auto it = Registry().find(type);
    if (it != Registry().end()) f = it->second;
  }
  if (f) return f(config, where);
  auto types = RewardTypes();
  std::string near = config::Nearest(type, types);
  std::string all;
  for (auto& t : types) all += (all.empty() ? "" : ", ") + t;
  return InvalidArgument(where + ".type: unknown reward type \"" + type + "\"" +
                         (near.empty() ? "" : " (did you mean \"" + near + "\"?)") + "; known: " + all);
}

}  // namespace k2::rewards
