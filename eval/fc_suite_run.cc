// Scoring of one response (BFCL / ACEBench rules), the runner over a policy, the reference policy and the
// leaderboard aggregates of function-calling suites (see fc_suite.h).
#include "eval/fc_suite.h"

#include <algorithm>
#include <map>
#include <optional>

#include "core/thread_pool.h"
#include "eval/fc/method.h"
#include "eval/fc_backend.h"
#include "rewards/ast_match.h"
#include "rewards/text_util.h"

namespace k2::eval {
namespace {

// Calls of a message: its tool_calls, or its content parsed as a JSON call list. Offered tool names map
// back to the docs' names ("Class_method" -> "Class.method") through `names`.
std::vector<rewards::FunctionCall> ExtractCalls(const Message& m, const std::map<std::string, std::string>* names = nullptr) {
  std::vector<rewards::FunctionCall> calls;
  auto real = [&](const std::string& n) {
    if (!names) return n;
    auto it = names->find(n);
    return it == names->end() ? n : it->second;
  };
  if (!m.tool_calls.empty()) {
    for (auto& c : m.tool_calls) {
      auto a = c.ParsedArguments();
      calls.push_back({real(c.name), a ? *a : json()});
    }
    return calls;
  }
  auto j = ParseJson(rewards::Trim(m.content), "response");
  if (!j.ok()) return calls;
  json arr = j->is_array() ? *j : json::array({*j});
  for (auto& c : arr)
    if (c.is_object() && c.contains("name") && c["name"].is_string())
      calls.push_back({real(c["name"].get<std::string>()), c.value("arguments", json())});
  return calls;
}

// `word` occurs in `text` with no letter, digit or '_' right before or after it (ACEBench's checker
// finds names by substring; a whole-word match keeps "goals" from matching inside "get_goals").
bool HasWord(const std::string& text, const std::string& word) {
  if (word.empty()) return false;
  auto part = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || (static_cast<unsigned char>(ch) & 0x80); };
  for (size_t p = text.find(word); p != std::string::npos; p = text.find(word, p + 1)) {
    bool left = p == 0 || !part(text[p - 1]);
    bool right = p + word.size() >= text.size() || !part(text[p + word.size()]);
    if (left && right) return true;
  }
  return false;
}

std::string Mentioned(const json& x) { return x.is_string() ? x.get<std::string>() : x.dump(); }

}  // namespace

FcOutcome ScoreFcResponse(const FcCase& c, const agents::PolicyTurn& turn) {
  FcOutcome o;
  o.id = c.id;
  o.category = c.category;
  o.kind = c.kind;
  o.source = c.source;
  o.response = ToJson(turn.message);
  if (turn.failure) {
    o.failure = *turn.failure;
    o.detail = "malformed response: " + *turn.failure;
    return o;
  }
  std::map<std::string, std::string> names;
  (void)ToOpenAiTools(c.functions, c.language, &names);
  std::vector<rewards::FunctionCall> calls = ExtractCalls(turn.message, &names);
  const bool ace = c.source == "acebench";
  if (c.kind == "calls") {
    if (!ace) {
      rewards::AstRules rules;
      rules.language = c.language;
      rewards::AstResult r = rewards::MatchCalls(calls, c.functions, c.ground_truth, rules);
      o.score = r.ok ? 1 : 0;
      o.detail = r.detail;
      return o;
    }
    // ACEBench: any of the alternatives.
    rewards::AstRules rules;
    rules.acebench = true;
    for (size_t a = 0; a < c.ground_truth.size(); ++a) {
      rewards::AstResult r = rewards::MatchCalls(calls, c.functions, c.ground_truth[a], rules);
      if (r.ok) {
        o.score = 1;
        o.detail = r.detail + (c.ground_truth.size() > 1 ? " (alternative " + std::to_string(a) + ")" : "");
        return o;
      }
      if (a == 0) o.detail = r.detail;
    }
    return o;
  }
  if (c.kind == "some_call") {
    o.score = calls.empty() ? 0 : 1;
    o.detail = calls.empty() ? "expected a function call (the request is relevant to the functions), got none" : "made a call";
    return o;
  }
  if (!calls.empty()) {
    o.detail = "called " + calls[0].name + (c.kind == "no_call" ? " on a request no function serves" : " instead of " +
               std::string(c.kind == "missing_params" ? "asking for the missing parameters" : "pointing out the incorrect value"));
    return o;
  }
  const std::string& reply = turn.message.content;
  if (c.kind == "no_call") {
    // ACEBench special_irrelevant: its checker looks for this phrase.
    if (ace && reply.find("the limitations of the function") == std::string::npos) {
      o.detail = "declined without the phrase \"the limitations of the function\" that ACEBench's checker requires";
      return o;
    }
    o.score = 1;
    o.detail = "declined without a call";
    return o;
  }
  // ACEBench special_incomplete / special_error_param: the fixed phrase, then (incomplete) the function
  // name and every missing parameter name, (error_param) every incorrect value.
  const bool incomplete = c.kind == "missing_params";
  const char* phrase = incomplete ? "Missing necessary parameters" : "There is incorrect value";
  if (reply.find(phrase) == std::string::npos) {
    o.detail = std::string("reply lacks the phrase \"") + phrase + "\" that ACEBench's checker requires";
    return o;
  }
  for (auto& [f, items] : c.expect.items()) {
    if (incomplete && !HasWord(reply, f)) {
      o.detail = "reply does not name the function " + f;
      return o;
    }
    for (auto& x : items) {
      std::string want = Mentioned(x);
      bool found = incomplete ? HasWord(reply, want) : reply.find(want) != std::string::npos;
      if (!found) {
        o.detail = std::string(incomplete ? "missing parameter" : "incorrect value") + " \"" + want + "\" of " + f + " not mentioned";
        return o;
      }
    }
  }
  o.score = 1;
  o.detail = incomplete ? "asked for every missing parameter" : "pointed out every incorrect value";
  return o;
}

namespace {

// Tools visible in `turn`: the case's functions minus those missed until a later turn.
// The names hidden before `turn` (BFCL missed_function), as one key.
std::string HiddenKey(const FcCase& c, int turn) {
  std::string key;
  for (auto& [t, names] : c.missed)
    if (t > turn)
      for (auto& n : names) key += n + "\n";
  return key;
}

json VisibleTools(const FcCase& c, int turn) {
  json fs = json::array();
  for (auto& f : c.functions) {
    bool hidden = false;
    for (auto& [t, names] : c.missed)
      if (t > turn && std::find(names.begin(), names.end(), f["name"].get<std::string>()) != names.end()) hidden = true;
    if (!hidden) fs.push_back(f);
  }
  return ToOpenAiTools(fs);
}

bool SameCall(const rewards::FunctionCall& a, const rewards::FunctionCall& b) { return a.name == b.name && a.arguments == b.arguments; }

// Python's == on JSON-loaded values: numbers (and bools, which are ints) compare by value, dicts by keys
// and values, lists element-wise.
bool PyEqual(const json& a, const json& b) {
  auto num = [](const json& v) { return v.is_number() || v.is_boolean(); };
  if (num(a) && num(b)) {
    auto d = [](const json& v) { return v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>(); };
    if (a.is_number_integer() && b.is_number_integer()) return a.get<int64_t>() == b.get<int64_t>();
    return d(a) == d(b);
  }
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!PyEqual(a[i], b[i])) return false;
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto& [k, v] : a.items())
      if (!b.contains(k) || !PyEqual(v, b[k])) return false;
    return true;
  }
  return a == b;
}

// ACEBench's end-state check (agent_eval + agent_checker): one saved entry per involved class, as many as
// the ground truth lists; each ground-truth entry is compared with the class of the same name (an entry
// naming no involved class matches nothing and is not compared); every saved attribute must be in the
// entry; a dict attribute is compared key by key over the entry's keys, anything else as a whole.
// "" when it passes, else the first difference.
std::string AceEndStateDifference(const json& state, const json& expected) {
  if (expected.size() != state.size())
    return "wrong number of class: the ground truth lists " + std::to_string(expected.size()) + ", the case involves " + std::to_string(state.size());
  for (auto& entry : expected) {
    const std::string& cls = entry.begin().key();
    const json& want = entry.begin().value();
    if (!state.contains(cls)) continue;
    for (auto& [attr, got] : state[cls].items()) {
      if (!want.contains(attr)) return "class(" + cls + ") attributes(" + attr + ") missing in the ground truth";
      const json& w = want[attr];
      if (w.is_object()) {
        for (auto& [k, v] : w.items()) {
          if (!got.is_object() || !got.contains(k))
            return "class(" + cls + ") attributes(" + attr + ") wrong: no " + k + " in " + got.dump().substr(0, 200);
          if (!PyEqual(got[k], v))
            return "class(" + cls + ") attributes(" + attr + "." + k + ") wrong: expected " + v.dump().substr(0, 200) + ", real " + got[k].dump().substr(0, 200);
        }
      } else if (!PyEqual(got, w)) {
        return "class(" + cls + ") attributes(" + attr + ") wrong: expected " + w.dump().substr(0, 200) + ", real " + got.dump().substr(0, 200);
      }
    }
  }
  return "";
}

bool SameStep(const std::vector<rewards::FunctionCall>& a, const std::vector<rewards::FunctionCall>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!SameCall(a[i], b[i])) return false;
  return true;
}

// ACEBench process accuracy of a case whose end state is wrong: the share of one path's milestone
// messages found, in order, among the agent's messages of calls (ACEBench compares the messages' text; a
// policy's tool calls are compared as calls). Several paths: the best, each rounded to 3 decimals.
double ProcessAccuracy(const std::vector<std::vector<rewards::FunctionCall>>& steps,
                       const std::vector<std::vector<std::vector<rewards::FunctionCall>>>& paths) {
  double best = -1;
  for (auto& path : paths) {
    size_t found = 0, at = 0;
    for (auto& stone : path) {
      while (at < steps.size() && !SameStep(steps[at], stone)) ++at;
      if (at < steps.size()) {
        ++found;
        ++at;
      }
    }
    double acc = path.empty() ? 1.0 : static_cast<double>(found) / static_cast<double>(path.size());
    if (paths.size() > 1) acc = std::round(acc * 1000) / 1000;
    best = std::max(best, acc);
  }
  return paths.empty() ? 1.0 : best;
}

FcOutcome RunStateCase(const FcCase& c, agents::Policy& policy, const FcRunOptions& opt, uint64_t seed) {
  FcOutcome o;
  o.id = c.id;
  o.category = c.category;
  o.kind = c.kind;
  o.source = c.source;
  const bool bfcl = c.source == "bfcl";
  // Loaders validated the world: Create cannot fail here.
  auto made = FcBackend::Create(c.classes, c.initial_config, c.id);
  auto gt_made = FcBackend::Create(c.classes, c.initial_config, c.id);
  if (!made.ok() || !gt_made.ok()) {
    o.failure = "broken_case: " + (made.ok() ? gt_made.status() : made.status()).ToString();
    o.detail = o.failure;
    return o;
  }
  FcBackend env = std::move(*made), gt_env = std::move(*gt_made);
  gt_env.SharePythonDefaults(env);  // one Python process runs both in BFCL
  std::vector<Message> dialog;
  std::vector<std::vector<rewards::FunctionCall>> steps;  // ACEBench: the calls of each assistant message
  bool ace_recorded = false;  // ACEBench saves the classes' state once a message's calls all ran without an exception
  std::vector<json> all_results;  // BFCL's response check: what the model's calls returned, all turns so far
  int turns_passed = 0, calls_made = 0;
  auto finish = [&](double score, std::string detail) {
    o.score = score;
    o.detail = std::move(detail);
    o.response = ToJson(dialog);
    o.components = {{"turns", c.turns.size()}, {"turns_passed", turns_passed}, {"calls", calls_made}};
    // ACEBench: a case whose end state is right has process accuracy 1.
    if (!bfcl) o.components["process"] = score >= 1 ? 1.0 : ProcessAccuracy(steps, c.milestones);
    policy.EndSession(c.id);
    return o;
  };
  json tools;
  std::string tools_key;
  for (size_t t = 0; t < c.turns.size(); ++t) {
    const std::string tw = "turn " + std::to_string(t) + ": ";
    for (auto& m : c.turns[t]) dialog.push_back(m);
    // The tools change only when a hidden function appears.
    if (std::string key = HiddenKey(c, static_cast<int>(t)); t == 0 || key != tools_key) {
      tools = VisibleTools(c, static_cast<int>(t));
      tools_key = std::move(key);
    }
    int turn_calls = 0;
    bool answered = false;
    for (int step = 0; step < opt.max_steps_per_turn && !answered; ++step) {
      agents::PolicyRequest req;
      req.messages = dialog;
      req.tools = tools;
      req.temperature = opt.temperature;
      req.max_tokens = opt.max_tokens;
      req.seed = seed + 1000ULL * (t * static_cast<uint64_t>(opt.max_steps_per_turn) + static_cast<uint64_t>(step));
      req.session = c.id;
      auto turn = policy.Act(req);
      if (!turn.ok()) {
        o.failure = "policy_error: " + turn.status().ToString();
        return finish(0, tw + o.failure);
      }
      if (turn->failure) {
        o.failure = *turn->failure;
        dialog.push_back(turn->message);
        return finish(0, tw + "malformed response: " + *turn->failure);
      }
      Message said = turn->message;
      std::vector<rewards::FunctionCall> calls = ExtractCalls(said);
      // Prompted calls (JSON in the content) get ids so that each result answers one call.
      if (said.tool_calls.empty() && !calls.empty())
        for (size_t i = 0; i < calls.size(); ++i)
          said.tool_calls.push_back({"call_" + std::to_string(t) + "_" + std::to_string(step) + "_" + std::to_string(i), calls[i].name,
                                     calls[i].arguments.dump()});
      dialog.push_back(said);
      if (calls.empty()) {
        answered = true;
        break;
      }
      if (!bfcl) steps.push_back(calls);
      bool raised = false;  // ACEBench stops a message's calls at the first exception
      for (size_t i = 0; i < calls.size(); ++i) {
        json result;
        // A hidden (missed) function still runs when called, as in BFCL: hiding only changes the docs.
        if (!raised) result = env.Call(calls[i].name, calls[i].arguments.is_null() ? json::object() : calls[i].arguments);
        // ACEBench's executor runs a name no class has as nothing and reports the message's previous
        // result again (a variable left from the loop's last pass); as the first call it raises.
        if (!bfcl && !raised && i > 0 && !env.HasFunction(calls[i].name)) result = all_results.back();
        if (!bfcl) {
          raised = raised || (result.is_object() && result.contains("error") && result["error"] == "Error during execution: {str(e)}");
          if (raised) result = {{"error", "Error during execution: {str(e)}"}};
        }
        Message tool;
        tool.role = "tool";
        // The result as the benchmark's executor prints it: BFCL's json.dumps of a dict and str() of
        // anything else (None for mkdir, touch, echo into a file); ACEBench shows a text as the text.
        if (bfcl) tool.content = result.is_object() ? fc::PyJsonDumps(result) : fc::PyStrValue(result);
        else tool.content = result.is_string() ? result.get<std::string>() : result.is_null() ? "None" : result.dump();
        tool.tool_call_id = said.tool_calls[i].id;
        tool.name = calls[i].name;
        dialog.push_back(std::move(tool));
        all_results.push_back(std::move(result));
        ++turn_calls;
        ++calls_made;
      }
      ace_recorded = ace_recorded || (!bfcl && !raised);
    }
    if (!answered) return finish(0, tw + "still calling functions after " + std::to_string(opt.max_steps_per_turn) + " steps");
    if (bfcl) {
      std::vector<json> gt_results;
      for (auto& g : c.gt_turns[t]) gt_results.push_back(gt_env.Call(g.name, g.arguments));  // validated by the loader
      // BFCL checks nothing on a turn whose ground truth is empty (a missed-function or missing-parameter
      // turn); otherwise the model must have called something, then state and responses are compared.
      if (c.gt_turns[t].empty()) {
        ++turns_passed;
        continue;
      }
      if (turn_calls == 0) return finish(0, tw + "no function call in a turn whose ground truth makes " + std::to_string(c.gt_turns[t].size()));
      std::string d = FirstDifference(env.State(), gt_env.State(), /*subset=*/false);
      if (!d.empty()) return finish(0, tw + "state differs from the ground truth's: " + d);
      // Read-only steps leave no trace in the state: every ground-truth result of this turn must be among
      // the results of the model's calls so far, each used once (BFCL's response check, unordered).
      std::vector<bool> used(all_results.size());
      for (size_t g = 0; g < gt_results.size(); ++g) {
        size_t r = 0;
        while (r < all_results.size() && (used[r] || all_results[r] != gt_results[g])) ++r;
        if (r < all_results.size()) {
          used[r] = true;
          continue;
        }
        return finish(0, tw + "no call so far obtained the result of ground-truth " + c.gt_turns[t][g].name + " (" +
                             gt_results[g].dump().substr(0, 80) + ")");
      }
    }
    ++turns_passed;
  }
  if (!bfcl) {
    if (!ace_recorded) return finish(0, "no message of calls ran without an execution error: ACEBench records no end state");
    std::string d = AceEndStateDifference(env.State(), c.expected_state);
    if (!d.empty()) return finish(0, "final state differs from the ground truth: " + d);
    return finish(1, "final state matches the ground truth");
  }
  return finish(1, "state matched the ground truth after every turn");
}

}  // namespace

std::vector<FcOutcome> RunFcSuite(const FcSuite& suite, agents::Policy& policy, const FcRunOptions& opt) {
  std::vector<FcOutcome> out(suite.cases.size());
  auto scored = [&](int64_t i, FcOutcome o) {
    if (opt.on_case) opt.on_case(i, o);
    out[static_cast<size_t>(i)] = std::move(o);
  };
  auto one = [&](int64_t i) {
    const FcCase& c = suite.cases[static_cast<size_t>(i)];
    if ((opt.skip && opt.skip(i)) || (opt.stop && opt.stop())) return;
    if (c.kind == "state") {
      scored(i, RunStateCase(c, policy, opt, opt.seed + static_cast<uint64_t>(i)));
      return;
    }
    agents::PolicyRequest req;
    req.messages = c.messages;
    req.tools = CaseTools(c);
    req.temperature = opt.temperature;
    req.max_tokens = opt.max_tokens;
    req.seed = opt.seed + static_cast<uint64_t>(i);
    req.session = c.id;
    auto turn = policy.Act(req);
    policy.EndSession(c.id);
    if (!turn.ok()) {
      FcOutcome o;
      o.id = c.id;
      o.category = c.category;
      o.kind = c.kind;
      o.source = c.source;
      o.failure = "policy_error: " + turn.status().ToString();
      o.detail = o.failure;
      scored(i, std::move(o));
      return;
    }
    scored(i, ScoreFcResponse(c, *turn));
  };
  if (opt.threads <= 1) {
    for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) one(i);
  } else {
    ThreadPool pool(opt.threads);
    pool.ParallelFor(static_cast<int64_t>(out.size()), one);
  }
  return out;
}

namespace {

// BFCL writes dict values of a ground truth as allowed lists per key ({"k": [v1, v2]}), one level deep
// (lists of dicts likewise): the reference value takes the first of each ("" = key left out).
json FirstOfDict(const json& d) {
  json out = json::object();
  for (auto& [k, v] : d.items()) {
    if (!v.is_array()) {
      out[k] = v;
    } else if (!v.empty() && v[0] != "") {
      out[k] = v[0];
    }
  }
  return out;
}

json ReferenceValue(const json& v) {
  if (v.is_object()) return FirstOfDict(v);
  if (v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_object(); })) {
    json out = json::array();
    for (auto& x : v) out.push_back(FirstOfDict(x));
    return out;
  }
  return v;
}

}  // namespace

std::vector<rewards::FunctionCall> ReferenceCalls(const FcCase& c) {
  std::vector<rewards::FunctionCall> calls;
  if (c.source == "acebench") {
    if (c.ground_truth.empty()) return calls;
    for (auto& g : c.ground_truth[0])
      calls.push_back({rewards::AceBaseName(g.begin().key(), c.functions), g.begin().value()});
    return calls;
  }
  for (auto& g : c.ground_truth) {
    const std::string name = g.begin().key();
    json schema_props = json::object(), required = json::array();
    for (auto& f : c.functions)
      if (f["name"] == name && f.contains("parameters") && f["parameters"].is_object()) {
        schema_props = f["parameters"].value("properties", json::object());
        required = f["parameters"].value("required", json::array());
      }
    json args = json::object();
    for (auto& [p, allowed] : g.begin().value().items()) {
      // "" first: the optional parameter is left out; a required one takes its first real value.
      const bool req = std::find(required.begin(), required.end(), p) != required.end();
      size_t pick = 0;
      while (req && pick < allowed.size() && allowed[pick] == "") ++pick;
      if (pick >= allowed.size() || allowed[pick] == "") continue;
      const json v = ReferenceValue(allowed[pick]);
      if (c.language == rewards::CallLanguage::kPython) {
        args[p] = v;
      } else {
        auto text = rewards::RenderSourceValue(v, schema_props.value(p, json::object()), c.language);
        args[p] = text ? json(*text) : (v.is_string() ? v : json(v.dump()));
      }
    }
    calls.push_back({name, args});
  }
  return calls;
}

FcOraclePolicy::FcOraclePolicy(const FcSuite& suite, int skip_step) : skip_step_(skip_step) {
  for (auto& c : suite.cases) cases_[c.id] = &c;
}

Expected<agents::PolicyTurn> FcOraclePolicy::Act(const agents::PolicyRequest& r) {
  auto it = cases_.find(r.session);
  if (it == cases_.end()) return NotFound("fc oracle: no case with id \"" + r.session + "\" (session)");
  const FcCase& c = *it->second;
  agents::PolicyTurn out;
  out.message.role = "assistant";
  std::map<std::string, std::string> names;  // offered -> doc name; the oracle calls by offered name
  (void)ToOpenAiTools(c.functions, c.language, &names);
  std::map<std::string, std::string> offered;
  for (auto& [k, v] : names) offered[v] = k;
  auto say_calls = [&](const std::vector<rewards::FunctionCall>& calls) {
    for (size_t i = 0; i < calls.size(); ++i) {
      auto it = offered.find(calls[i].name);
      out.message.tool_calls.push_back({"call_" + std::to_string(i), it == offered.end() ? calls[i].name : it->second, calls[i].arguments.dump()});
    }
  };
  if (c.kind == "calls") {
    say_calls(ReferenceCalls(c));
    return out;
  }
  if (c.kind == "some_call") {
    if (!c.functions.empty()) say_calls({{c.functions[0]["name"].get<std::string>(), json::object()}});
    return out;
  }
  if (c.kind == "no_call") {
    out.message.content = "Due to the limitations of the function, I cannot solve this problem.";
    return out;
  }
  if (c.kind == "missing_params" || c.kind == "error_param") {
    std::string text;
    for (auto& [f, items] : c.expect.items()) {
      std::string list;
      for (auto& x : items) list += (list.empty() ? "" : ", ") + (x.is_string() ? x.get<std::string>() : x.dump());
      text += c.kind == "missing_params" ? "Missing necessary parameters (" + list + ") for the api (" + f + ")\n"
                                         : "There is incorrect value (" + list + ") for the parameters (" + f + ") in the conversation history.\n";
    }
    out.message.content = text;
    return out;
  }
  // State case: where are we? The last user message fixes its turn; each text-only reply after it ended
  // one more turn (the next one being a missed-function turn, which opens without a user message); the
  // tool results since then are the calls already made in the current turn.
  size_t users = 0, ended = 0, calls_this_turn = 0, messages_this_turn = 0;
  for (auto& m : r.messages) {
    if (m.role == "user") {
      ++users;
      ended = 0;
      calls_this_turn = messages_this_turn = 0;
    } else if (m.role == "assistant" && m.tool_calls.empty()) {
      ++ended;
      calls_this_turn = messages_this_turn = 0;
    } else if (m.role == "assistant") {
      ++messages_this_turn;
    } else if (m.role == "tool") {
      ++calls_this_turn;
    }
  }
  size_t turn = 0, seen = 0;
  for (; turn < c.turns.size(); ++turn) {
    for (auto& m : c.turns[turn]) seen += m.role == "user";
    if (seen >= users) break;
  }
  turn += ended;
  if (turn >= c.turns.size()) return InvalidArgument("fc oracle: case " + c.id + ": the dialog has more user turns than the case");
  // The plan of this turn and the global index of its first call (skip_step counts over the whole case).
  if (c.source != "bfcl") {
    // ACEBench: the first mile-stone path, one message per mile stone, all in the first turn.
    std::vector<std::vector<rewards::FunctionCall>> path;
    if (turn == 0 && !c.milestones.empty())
      for (size_t i = 0; i < c.milestones[0].size(); ++i)
        if (static_cast<int>(i) != skip_step_) path.push_back(c.milestones[0][i]);
    if (messages_this_turn < path.size()) {
      say_calls(path[messages_this_turn]);
      return out;
    }
    out.message.content = "Done.";
    return out;
  }
  std::vector<rewards::FunctionCall> plan;
  size_t first = 0;
  for (size_t t = 0; t < turn; ++t) first += c.gt_turns[t].size();
  plan = c.gt_turns[turn];
  std::vector<rewards::FunctionCall> kept;
  for (size_t i = 0; i < plan.size(); ++i)
    if (static_cast<int>(first + i) != skip_step_) kept.push_back(plan[i]);
  if (calls_this_turn < kept.size()) {
    say_calls({kept[calls_this_turn]});
    return out;
  }
  out.message.content = "Done.";
  return out;
}

namespace {

struct Acc {
  double sum = 0;
  int n = 0;
  double mean() const { return n ? sum / n : 0; }
};

// ACEBench normal_multi_turn_*: ids "<category>_<dialog>_<turn>"; a dialog counts when all its turns do.
std::string DialogOf(const std::string& id) { return id.substr(0, id.rfind('_')); }

}  // namespace

json FcLeaderboard(const std::vector<FcOutcome>& outcomes) {
  std::map<std::string, std::map<std::string, Acc>> cats;  // source -> category -> accuracy
  std::map<std::string, std::map<std::string, bool>> dialogs;  // category -> dialog -> all right
  std::map<std::string, Acc> process;  // ACEBench agent category -> process accuracy
  for (auto& o : outcomes) {
    if (o.source == "acebench" && o.category.rfind("normal_multi_turn", 0) == 0) {
      auto [it, fresh] = dialogs[o.category].emplace(DialogOf(o.id), true);
      it->second = it->second && o.score >= 1;
      (void)fresh;
      continue;
    }
    Acc& a = cats[o.source][o.category];
    a.sum += o.score;
    ++a.n;
    // ACEBench's agent tables report process accuracy beside the end-to-end one.
    if (o.source == "acebench" && o.components.contains("process") && o.components["process"].is_number()) {
      Acc& p = process[o.category];
      p.sum += o.components["process"].get<double>();
      ++p.n;
    }
  }
  for (auto& [cat, ds] : dialogs)
    for (auto& [d, ok] : ds) {
      Acc& a = cats["acebench"][cat];
      a.sum += ok ? 1 : 0;
      ++a.n;
    }
  json out = json::object();
  auto acc = [&](const std::string& src, const std::string& cat) -> std::optional<Acc> {
    auto s = cats.find(src);
    if (s == cats.end()) return std::nullopt;
    auto c = s->second.find(cat);
    if (c == s->second.end()) return std::nullopt;
    return c->second;
  };
  // A group's mean over its present members; `missing` lists the absent ones (counted 0, as the
  // leaderboards count a category without results).
  auto unweighted = [&](const std::string& src, const std::vector<std::string>& members, json& missing) {
    double sum = 0;
    for (auto& m : members) {
      if (auto a = acc(src, m)) sum += a->mean();
      else missing.push_back(m);
    }
    return members.empty() ? 0.0 : sum / static_cast<double>(members.size());
  };
  for (auto& [src, cs] : cats) {
    json table = json::object();
    for (auto& [cat, a] : cs) {
      table[cat] = {{"accuracy", a.mean()}, {"count", a.n}};
      if (src == "acebench" && process.count(cat)) table[cat]["process_accuracy"] = process[cat].mean();
    }
    out[src]["categories"] = table;
  }
  if (cats.count("bfcl")) {
    json missing = json::array();
    json m1 = json::array();
    double simple = unweighted("bfcl", {"simple_python", "simple_java", "simple_javascript"}, m1);
    for (auto& x : m1) missing.push_back(x);
    double non_live = (simple + unweighted("bfcl", {"multiple"}, missing) + unweighted("bfcl", {"parallel"}, missing) +
                       unweighted("bfcl", {"parallel_multiple"}, missing)) / 4;
    double live_sum = 0;
    int live_n = 0;
    for (const char* m : {"live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"}) {
      if (auto a = acc("bfcl", m)) {
        live_sum += a->sum;
        live_n += a->n;
      } else {
        missing.push_back(m);
      }
    }
    double live = live_n ? live_sum / live_n : 0;
    double irrelevance = unweighted("bfcl", {"irrelevance", "live_irrelevance"}, missing);
    double multi_turn = unweighted("bfcl", {"multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context"}, missing);
    double web = unweighted("bfcl", {"web_search"}, missing);
    double memory = unweighted("bfcl", {"memory"}, missing);
    double agentic = (web + memory) / 2;
    out["bfcl"]["summary"] = {{"non_live", non_live}, {"live", live}, {"irrelevance", irrelevance}, {"multi_turn", multi_turn},
                              {"agentic", agentic}, {"relevance", acc("bfcl", "live_relevance") ? acc("bfcl", "live_relevance")->mean() : 0.0},
                              {"overall", (10 * non_live + 10 * live + 10 * irrelevance + 30 * multi_turn + 40 * agentic) / 100},
                              {"missing", missing}};
  }
  if (cats.count("acebench")) {
    json missing = json::array();
    double special = unweighted("acebench", {"special_incomplete", "special_error_param", "special_irrelevant"}, missing);
    double normal = unweighted("acebench",
                               {"normal_single_turn_single_function", "normal_single_turn_parallel_function",
                                "normal_multi_turn_user_switch", "normal_multi_turn_user_adjust", "normal_similar_api", "normal_preference",
                                "normal_atom_bool", "normal_atom_enum", "normal_atom_number", "normal_atom_list", "normal_atom_object_deep",
                                "normal_atom_object_short"},
                               missing);
    double agent = unweighted("acebench", {"agent_multi_turn", "agent_multi_step"}, missing);
    out["acebench"]["summary"] = {{"special", special}, {"normal", normal}, {"agent", agent},
                                  {"overall", special * 0.2676 + normal * 0.578 + agent * 0.1545}, {"missing", missing}};
  }
  return out;
}

}  // namespace k2::eval
