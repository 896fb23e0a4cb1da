// τ²-style tool-use reward: DB hash, ENV_ASSERTION (on the final state), COMMUNICATE, ACTION,
// NL_ASSERTION (LLM judge), forbidden actions, termination rule.
#include "rewards/tool_verifier.h"

#include <algorithm>
#include <set>

#include "core/hash.h"
#include "rewards/text_util.h"
#include "toolgen/synth/tasks.h"

namespace k2::rewards {

std::string StateHash(const json& state) { return Sha256Hex(CanonicalJson(state)); }

bool ActionMatches(const ToolCall& call, const json& gold) {
  if (!gold.is_object() || !gold.contains("name") || !gold["name"].is_string()) return false;
  if (call.name != gold["name"].get<std::string>()) return false;
  json gargs = gold.value("arguments", json::object());
  if (!gargs.is_object()) return false;
  std::vector<std::string> keys;
  auto ca = gold.find("compare_args");
  if (ca != gold.end() && ca->is_array()) {
    for (auto& k : *ca)
      if (k.is_string()) keys.push_back(k.get<std::string>());
  } else {
    for (auto& [k, v] : gargs.items()) keys.push_back(k);
  }
  if (keys.empty()) return true;
  auto args = call.ParsedArguments();
  if (!args) return false;
  for (auto& k : keys) {
    bool in_call = args->contains(k), in_gold = gargs.contains(k);
    if (in_call != in_gold) return false;
    if (in_call && (*args)[k] != gargs[k]) return false;
  }
  return true;
}

bool InformationCommunicated(const std::vector<Message>& messages, const std::string& info) {
  std::string want = AsciiLower(info);
  for (auto& m : messages) {
    if (m.role != "assistant") continue;
    std::string c = AsciiLower(m.content);
    c.erase(std::remove(c.begin(), c.end(), ','), c.end());
    if (c.find(want) != std::string::npos) return true;
  }
  return false;
}

std::vector<Message> NlJudgePrompt(const std::vector<Message>& dialog, const std::string& assertion) {
  std::string transcript;
  for (auto& m : dialog) {
    if (m.role == "system") continue;  // the agent's policy document is not what is judged
    transcript += "[" + m.role + (m.role == "tool" && !m.name.empty() ? " " + m.name : "") + "] " + m.content + "\n";
    for (auto& c : m.tool_calls) transcript += "[assistant calls " + c.name + "] " + c.arguments + "\n";
  }
  Message s, u;
  s.role = "system";
  s.content =
      "You judge whether a customer-service conversation satisfies one assertion about the agent's "
      "behaviour. Judge only from the transcript. Reason briefly, then end with exactly one verdict: [[YES]] "
      "if the assertion holds, [[NO]] if it does not.";
  u.role = "user";
  u.content = "## Transcript\n" + transcript + "\n## Assertion\n" + assertion;
  return {s, u};
}

Expected<double> ParseJudgeVerdict(const std::string& reply) {
  size_t y = reply.rfind("[[YES]]"), n = reply.rfind("[[NO]]");
  if (y == std::string::npos && n == std::string::npos)
    return InvalidArgument("judge reply has no verdict [[YES]] or [[NO]]: \"" + reply.substr(0, 80) + "\"");
  if (n == std::string::npos) return 1.0;
  if (y == std::string::npos) return 0.0;
  return y > n ? 1.0 : 0.0;
}

namespace {

// A forbidden action matches a call with the same name whose arguments include every given argument.
bool ForbiddenMatches(const ToolCall& call, const json& f) {
  if (call.name != f["name"].get<std::string>()) return false;
  auto it = f.find("arguments");
  if (it == f.end() || it->empty()) return true;
  auto args = call.ParsedArguments();
  if (!args) return false;
  for (auto& [k, v] : it->items())
    if (!args->contains(k) || (*args)[k] != v) return false;
  return true;
}

class ToolReward : public Reward {
 public:
  explicit ToolReward(ToolRewardOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "tool"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    const json& t = in.task;
    if (!t.is_object()) return InvalidArgument("tool: task: expected object");
    json crit = t.value("evaluation_criteria", json::object());
    if (!crit.is_object()) return InvalidArgument("tool: task.evaluation_criteria: expected object");
    std::vector<std::string> basis = {"DB", "COMMUNICATE"};  // τ²'s default
    if (auto it = crit.find("reward_basis"); it != crit.end() && !it->is_null()) {
      if (!it->is_array()) return InvalidArgument("tool: task.evaluation_criteria.reward_basis: expected array");
      basis.clear();
      for (auto& b : *it) {
        if (!b.is_string()) return InvalidArgument("tool: task.evaluation_criteria.reward_basis: expected strings");
        std::string s = b.get<std::string>();
        if (s != "DB" && s != "COMMUNICATE" && s != "ACTION" && s != "ENV_ASSERTION" && s != "NL_ASSERTION")
          return InvalidArgument("tool: task.evaluation_criteria.reward_basis: unknown \"" + s +
                                 "\" (expected DB, ENV_ASSERTION, COMMUNICATE, ACTION, NL_ASSERTION)");
        basis.push_back(s);
      }
    }
    RewardResult r;
    std::string& ex = r.explanation;
    auto note = [&](const std::string& s) { ex += (ex.empty() ? "" : "\n") + s; };

    const auto& stops_ = o_.accepted_terminations;
    bool stopped = std::find(stops_.begin(), stops_.end(), in.termination) != stops_.end();
    r.components["terminated_ok"] = stopped ? 1 : 0;
    if (!stopped) note("episode ended by \"" + in.termination + "\", not by the agent or user stopping: score 0");

    double value = stopped ? 1 : 0;
    for (auto& b : basis) {
      double c = 1;
      if (b == "DB") {
        std::string want;
        if (auto h = t.find("expected_state_hash"); h != t.end() && h->is_string()) want = h->get<std::string>();
        else if (auto s = t.find("expected_state"); s != t.end()) want = StateHash(*s);
        else return InvalidArgument("tool: task: reward_basis has DB but neither expected_state_hash nor expected_state is given");
        std::string got = StateHash(in.final_state);
        c = got == want ? 1 : 0;
        note(std::string(c ? "ok   " : "FAIL ") + "DB: final state hash " + got.substr(0, 12) + (c ? " == " : " != ") +
             "expected " + want.substr(0, 12));
      } else if (b == "COMMUNICATE") {
        json infos = crit.value("communicate_info", json::array());
        if (!infos.is_array()) return InvalidArgument("tool: task.evaluation_criteria.communicate_info: expected array of strings");
        for (auto& i : infos) {
          if (!i.is_string()) return InvalidArgument("tool: task.evaluation_criteria.communicate_info: expected array of strings");
          if (!InformationCommunicated(in.messages, i.get<std::string>())) {
            c = 0;
            note("FAIL COMMUNICATE: \"" + i.get<std::string>() + "\" never told to the user");
          }
        }
        if (c) note("ok   COMMUNICATE: " + std::to_string(infos.size()) + " item(s)");
      } else if (b == "ENV_ASSERTION") {
        json asserts = crit.value("env_assertions", json::array());
        if (!asserts.is_array()) return InvalidArgument("tool: task.evaluation_criteria.env_assertions: expected array");
        for (size_t k = 0; k < asserts.size(); ++k) {
          auto ok = toolgen::synth::CheckEnvAssertion(in.final_state, asserts[k]);
          if (!ok.ok() && ok.status().code() == Code::kNotFound) {
            // A collection the final state lacks is the agent's doing (or the env's), not a bad spec.
            c = 0;
            note("FAIL ENV_ASSERTION[" + std::to_string(k) + "]: " + ok.status().message());
            continue;
          }
          if (!ok.ok())
            return InvalidArgument("tool: task.evaluation_criteria.env_assertions[" + std::to_string(k) +
                                   "]: " + ok.status().message());
          if (!*ok) {
            c = 0;
            note("FAIL ENV_ASSERTION[" + std::to_string(k) + "]: " + asserts[k].value("arguments", json()).dump() +
                 " does not hold on the final state");
          }
        }
        if (c) note("ok   ENV_ASSERTION: " + std::to_string(asserts.size()) + " assertion(s) hold");
      } else if (b == "NL_ASSERTION") {
        json nls = crit.value("nl_assertions", json::array());
        if (!nls.is_array()) return InvalidArgument("tool: task.evaluation_criteria.nl_assertions: expected array of strings");
        for (auto& a : nls)
          if (!a.is_string()) return InvalidArgument("tool: task.evaluation_criteria.nl_assertions: expected array of strings");
        if (!o_.judge) {
          if (o_.on_missing_judge == "error" && !nls.empty())
            return FailedPrecondition("tool: reward_basis has NL_ASSERTION (" + std::to_string(nls.size()) +
                                      " assertion(s)) but no judge is configured: NL_ASSERTION needs a judge "
                                      "policy (or on_missing_judge: \"skip\")");
          if (!nls.empty()) {
            r.components["nl_assertion_unjudged"] = 1;
            note("SKIP NL_ASSERTION: " + std::to_string(nls.size()) + " assertion(s) need a judge; none configured");
          }
          continue;  // not part of the product
        }
        for (size_t k = 0; k < nls.size(); ++k) {
          std::string a = nls[k].get<std::string>();
          auto reply = o_.judge(NlJudgePrompt(in.messages, a));
          if (!reply.ok()) return reply.status().Context("tool: NL_ASSERTION judge on nl_assertions[" + std::to_string(k) + "]");
          K2_ASSIGN_OR_RETURN(double v, ParseJudgeVerdict(*reply));
          if (v < 1) {
            c = 0;
            note("FAIL NL_ASSERTION: judge says no to \"" + a + "\"");
          }
        }
        if (c) note("ok   NL_ASSERTION: judge confirms " + std::to_string(nls.size()) + " assertion(s)");
      } else {  // ACTION
        json actions = crit.value("actions", json::array());
        if (!actions.is_array()) return InvalidArgument("tool: task.evaluation_criteria.actions: expected array");
        for (size_t k = 0; k < actions.size(); ++k) {
          const json& a = actions[k];
          if (!a.is_object() || !a.contains("name") || !a["name"].is_string())
            return InvalidArgument("tool: task.evaluation_criteria.actions[" + std::to_string(k) + "].name: expected string");
          std::string requestor = a.value("requestor", std::string("assistant"));
          bool found = false;
          for (auto& m : in.messages) {
            if (m.role != requestor) continue;
            for (auto& call : m.tool_calls) found |= ActionMatches(call, a);
          }
          if (!found) {
            c = 0;
            note("FAIL ACTION: gold action " + a["name"].get<std::string>() + " " + a.value("arguments", json::object()).dump() + " not performed");
          }
        }
        if (c) note("ok   ACTION: " + std::to_string(actions.size()) + " gold action(s) matched");
      }
      r.components[AsciiLower(b)] = c;
      value *= c;
    }
    json forbidden = t.value("forbidden_actions", json::array());
    if (!forbidden.is_array()) return InvalidArgument("tool: task.forbidden_actions: expected array");
    double fok = 1;
    for (size_t k = 0; k < forbidden.size(); ++k) {
      if (!forbidden[k].is_object() || !forbidden[k].contains("name") || !forbidden[k]["name"].is_string())
        return InvalidArgument("tool: task.forbidden_actions[" + std::to_string(k) + "].name: expected string");
      for (auto& m : in.messages)
        for (auto& call : m.tool_calls)
          if (ForbiddenMatches(call, forbidden[k])) {
            if (fok) note("FAIL forbidden action " + call.name + " " + call.arguments + " was called");
            fok = 0;
          }
    }
    r.components["forbidden_ok"] = fok;
    r.value = value * fok;
    return r;
  }

 private:
  ToolRewardOptions o_;
};

}  // namespace

namespace {

Expected<ToolRewardOptions> OptionsFromConfig(const json& config, const std::string& where) {
  ToolRewardOptions o;
  if (!config.is_object()) return InvalidArgument(where + ": expected object");
  for (auto& [k, v] : config.items()) {
    if (k == "type") continue;
    if (k == "accepted_terminations" && v.is_array() && !v.empty()) {
      o.accepted_terminations.clear();
      for (auto& s : v) {
        if (!s.is_string()) return InvalidArgument(where + ".accepted_terminations: expected array of strings");
        o.accepted_terminations.push_back(s.get<std::string>());
      }
    } else if (k == "on_missing_judge" && v.is_string() && (v == "error" || v == "skip")) {
      o.on_missing_judge = v.get<std::string>();
    } else {
      return InvalidArgument(where + "." + k +
                             ": unknown key or wrong type (expected accepted_terminations: array of strings, "
                             "on_missing_judge: \"error\"|\"skip\")");
    }
  }
  return o;
}

}  // namespace

Expected<std::unique_ptr<Reward>> MakeToolReward(ToolRewardOptions options) {
  if (options.on_missing_judge != "error" && options.on_missing_judge != "skip")
    return InvalidArgument("tool.on_missing_judge: expected \"error\" or \"skip\", got \"" + options.on_missing_judge + "\"");
  return std::unique_ptr<Reward>(new ToolReward(std::move(options)));
}

Expected<std::unique_ptr<Reward>> MakeToolReward(const json& config, const std::string& where) {
  K2_ASSIGN_OR_RETURN(ToolRewardOptions o, OptionsFromConfig(config, where));
  return MakeToolReward(std::move(o));
}

Expected<std::unique_ptr<Reward>> MakeToolRewardWithJudge(const json& config, ChatFn judge, const std::string& where) {
  K2_ASSIGN_OR_RETURN(ToolRewardOptions o, OptionsFromConfig(config, where));
  o.judge = std::move(judge);
  return MakeToolReward(std::move(o));
}

}  // namespace k2::rewards

namespace k2::rewards::tau2 {

bool ActionMatches(const json& gold, const std::string& name, const json& arguments) {
  if (!gold.is_object() || gold.value("name", "") != name) return false;
  const json args = arguments.is_object() ? arguments : json::object();
  const json gargs = gold.contains("arguments") && gold["arguments"].is_object() ? gold["arguments"] : json::object();
  std::vector<std::string> keys;
  if (gold.contains("compare_args") && gold["compare_args"].is_array()) {
    for (auto& k : gold["compare_args"])
      if (k.is_string()) keys.push_back(k);
  } else {
    for (auto& [k, v] : args.items()) keys.push_back(k);  // τ²: the tool call's keys
  }
  if (keys.empty()) return true;
  json a = json::object(), g = json::object();
  for (auto& k : keys) {
    if (args.contains(k)) a[k] = args[k];
    if (gargs.contains(k)) g[k] = gargs[k];
  }
  return a == g;
}

namespace {
uint32_t LowerCp(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c >= 0x100 && c <= 0x137 && c % 2 == 0) return c + 1;
  if (c >= 0x139 && c <= 0x148 && c % 2 == 1) return c + 1;
  if (c >= 0x14A && c <= 0x177 && c % 2 == 0) return c + 1;
  if (c == 0x178) return 0xFF;
  if (c >= 0x179 && c <= 0x17E && c % 2 == 1) return c + 1;
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}
}  // namespace

std::string Lower(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) {  // not UTF-8: keep the byte
      out += s[i++];
      continue;
    }
    uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = true;
    for (int k = 1; k < n; ++k) {
      unsigned char c = static_cast<unsigned char>(s[i + k]);
      if ((c >> 6) != 2) ok = false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (!ok) {
      out += s[i++];
      continue;
    }
    const char32_t lower = static_cast<char32_t>(LowerCp(cp));
    out += EncodeUtf8(std::u32string_view(&lower, 1));
    i += n;
  }
  return out;
}

bool Communicated(const json& trajectory, const std::string& info) {
  if (!trajectory.is_array()) return false;
  std::string want = Lower(info);
  for (auto& m : trajectory) {
    if (!m.is_object() || m.value("role", "") != "assistant") continue;
    if (!m.contains("content") || !m["content"].is_string() || m["content"].get<std::string>().empty()) continue;
    std::string c = Lower(m["content"].get<std::string>());
    c.erase(std::remove(c.begin(), c.end(), ','), c.end());
    if (c.find(want) != std::string::npos) return true;
  }
  return false;
}

std::vector<json> TrajectoryToolCalls(const json& trajectory) {
  std::vector<json> out;
  if (!trajectory.is_array()) return out;
  for (auto& m : trajectory) {
    if (!m.is_object()) continue;
    std::string role = m.value("role", "");
    if ((role == "assistant" || role == "user") && m.contains("tool_calls") && m["tool_calls"].is_array())
      for (auto& tc : m["tool_calls"]) out.push_back(tc);
  }
  return out;
}

std::vector<Message> NlJudgePrompt(const json& trajectory, const std::vector<std::string>& assertions) {
  std::string conv;
  for (auto& m : trajectory) {
    if (!m.is_object()) continue;
    std::string content = m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "None";
    conv += m.value("role", "?") + ": " + content + "\n";
  }
  Message s, u;
  s.role = "system";
  s.content =
      "You grade a recorded conversation between a customer-service agent and a customer against a list of "
      "expected outcomes. Grade each expected outcome on its own: does the agent's behaviour in the "
      "conversation satisfy it?\n"
      "Answer with one JSON object and nothing else:\n"
      "{\"results\": [{\"expectedOutcome\": \"<the outcome, repeated>\", \"reasoning\": \"<short reason>\", "
      "\"metExpectation\": true or false}]}\n"
      "with one entry per expected outcome, in the order given.";
  u.role = "user";
  json list = assertions;
  u.content = "conversation:\n" + conv + "\nexpectedOutcomes:\n" + list.dump();
  return {s, u};
}

Expected<std::vector<json>> ParseNlResults(const std::string& reply) {
  size_t a = reply.find('{'), b = reply.rfind('}');
  if (a == std::string::npos || b == std::string::npos || b < a)
    return InvalidArgument("NL-assertion judge reply is not a JSON object: \"" + reply.substr(0, 120) + "\"");
  json j = json::parse(reply.substr(a, b - a + 1), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("results") || !j["results"].is_array())
    return InvalidArgument("NL-assertion judge reply: expected {\"results\": [...]}, got \"" + reply.substr(0, 120) + "\"");
  std::vector<json> out;
  for (size_t i = 0; i < j["results"].size(); ++i) {
    const json& r = j["results"][i];
    if (!r.is_object() || !r.contains("metExpectation") || !r["metExpectation"].is_boolean())
      return InvalidArgument("NL-assertion judge reply: results/" + std::to_string(i) + "/metExpectation: expected true or false");
    out.push_back(r);
  }
  return out;
}

bool IsScoredTermination(const std::string& t) {
  return t == "agent_stop" || t == "user_stop" || t == "transfer" || t == "out_of_scope";
}

Expected<Tau2Evaluation> Evaluate(const json& task, const json& trajectory, const std::string& termination,
                                  const Tau2EnvOutcome& env, const ChatFn& judge) {
  Tau2Evaluation ev;
  const std::string id = task.value("id", "?");
  if (!IsScoredTermination(termination)) {
    ev.reward = 0;
    ev.info["note"] = "Simulation terminated prematurely. Termination reason: " + termination;
    return ev;
  }
  const json ec = task.contains("evaluation_criteria") ? task["evaluation_criteria"] : json(nullptr);
  if (!ec.is_object()) {
    ev.reward = 1;
    ev.info["note"] = "No evaluation criteria";
    return ev;
  }
  std::set<std::string> basis;
  for (auto& b : ec.value("reward_basis", json::array({"DB", "COMMUNICATE"}))) basis.insert(b.get<std::string>());

  // ACTION: every gold action matched by some call of either requestor.
  double action = 1;
  json action_checks = json::array();
  if (ec.contains("actions") && ec["actions"].is_array()) {
    std::vector<json> calls = TrajectoryToolCalls(trajectory);
    for (auto& g : ec["actions"]) {
      bool found = false;
      for (auto& c : calls)
        if (c.is_object() && ActionMatches(g, c.value("name", ""), c.contains("arguments") ? c["arguments"] : json::object())) {
          found = true;
          break;
        }
      action_checks.push_back({{"action_id", g.value("action_id", "")}, {"name", g.value("name", "")}, {"met", found}});
      if (!found) action = 0;
    }
  }
  // COMMUNICATE.
  double communicate = 1;
  json comm_checks = json::array();
  if (ec.contains("communicate_info") && ec["communicate_info"].is_array())
    for (auto& info : ec["communicate_info"]) {
      bool met = Communicated(trajectory, info.get<std::string>());
      comm_checks.push_back({{"info", info}, {"met", met}});
      if (!met) communicate = 0;
    }
  // NL_ASSERTION: only when the basis asks for it.
  double nl = 1;
  json nl_checks = json::array();
  if (basis.count("NL_ASSERTION") && ec.contains("nl_assertions") && ec["nl_assertions"].is_array() && !ec["nl_assertions"].empty()) {
    if (!judge) return FailedPrecondition("task " + id + ": NL_ASSERTION is in the reward basis and needs an LLM judge");
    std::vector<std::string> as = ec["nl_assertions"].get<std::vector<std::string>>();
    K2_ASSIGN_OR_RETURN(std::string reply, judge(NlJudgePrompt(trajectory, as)));
    K2_ASSIGN_OR_RETURN(std::vector<json> results, ParseNlResults(reply));
    nl_checks = results;
    bool all = true;
    for (auto& r : results) all = all && r["metExpectation"].get<bool>();
    // τ² multiplies over the judge's results; a judge that drops assertions cannot pass them.
    if (results.size() < as.size()) all = false;
    nl = all ? 1 : 0;
  }

  double env_reward = 1;
  double reward = 1;
  if (basis.count("DB")) {
    ev.breakdown["DB"] = env.db_match ? 1.0 : 0.0;
    env_reward *= env.db_match ? 1.0 : 0.0;
  }
  if (basis.count("ENV_ASSERTION")) {
    ev.breakdown["ENV_ASSERTION"] = env.assertions_met ? 1.0 : 0.0;
    env_reward *= env.assertions_met ? 1.0 : 0.0;
  }
  if (basis.count("DB") || basis.count("ENV_ASSERTION")) reward *= env_reward;
  if (basis.count("ACTION")) {
    ev.breakdown["ACTION"] = action;
    reward *= action;
  }
  if (basis.count("NL_ASSERTION")) {
    ev.breakdown["NL_ASSERTION"] = nl;
    reward *= nl;
  }
  if (basis.count("COMMUNICATE")) {
    ev.breakdown["COMMUNICATE"] = communicate;
    reward *= communicate;
  }
  ev.reward = reward;
  ev.info = {{"env", env.detail}, {"action_checks", action_checks}, {"communicate_checks", comm_checks}, {"nl_assertions", nl_checks},
             {"db_match", env.db_match}, {"env_assertions_met", env.assertions_met}};
  return ev;
}

}  // namespace k2::rewards::tau2
