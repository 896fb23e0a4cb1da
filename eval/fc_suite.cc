// BFCL / ACEBench loaders, the per-case response check and the policy runner (see fc_suite.h).
#include "eval/fc_suite.h"

#include <algorithm>
#include <map>

#include "core/thread_pool.h"
#include "eval/fc_backend.h"
#include "rewards/ast_match.h"
#include "rewards/text_util.h"

namespace k2::eval {
namespace {

// JSON lines, or one JSON array (some ACEBench dumps are arrays). Each record comes with "file:line".
Expected<std::vector<std::pair<json, std::string>>> ReadRecords(const std::string& path) {
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<std::pair<json, std::string>> out;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    K2_ASSIGN_OR_RETURN(json arr, ParseJson(text, path));
    for (size_t i = 0; i < arr.size(); ++i) out.emplace_back(arr[i], path + "[" + std::to_string(i) + "]");
    return out;
  }
  size_t line = 0;
  for (size_t b = 0; b < text.size();) {
    size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    ++line;
    std::string l = text.substr(b, e - b);
    b = e + 1;
    if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = path + ":" + std::to_string(line);
    K2_ASSIGN_OR_RETURN(json j, ParseJson(l, where));
    out.emplace_back(std::move(j), where);
  }
  return out;
}

Expected<std::string> IdOf(const json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": expected a JSON object");
  auto it = j.find("id");
  if (it == j.end() || !it->is_string()) return InvalidArgument(where + ": id: expected string");
  return it->get<std::string>();
}

// "parallel_multiple_12" -> "parallel_multiple"
std::string CategoryOf(const std::string& id) {
  size_t u = id.rfind('_');
  if (u == std::string::npos || u + 1 == id.size()) return id;
  bool digits = std::all_of(id.begin() + static_cast<long>(u) + 1, id.end(), [](char c) { return c >= '0' && c <= '9'; });
  return digits ? id.substr(0, u) : id;
}

Expected<std::map<std::string, std::pair<json, std::string>>> ReadAnswers(const std::string& path) {
  std::map<std::string, std::pair<json, std::string>> out;
  if (path.empty()) return out;
  K2_ASSIGN_OR_RETURN(auto recs, ReadRecords(path));
  for (auto& [j, where] : recs) {
    K2_ASSIGN_OR_RETURN(std::string id, IdOf(j, where));
    if (!j.contains("ground_truth")) return InvalidArgument(where + ": ground_truth: missing");
    if (!out.emplace(id, std::make_pair(j, where)).second)
      return InvalidArgument(where + ": duplicate answer id \"" + id + "\"");
  }
  return out;
}

Status CheckFunctions(const json& f, const std::string& where) {
  if (!f.is_array()) return InvalidArgument(where + ": function: expected array of function docs");
  for (size_t i = 0; i < f.size(); ++i)
    if (!f[i].is_object() || !f[i].contains("name") || !f[i]["name"].is_string())
      return InvalidArgument(where + ": function[" + std::to_string(i) + "].name: expected string");
  return Status::Ok();
}

// Every ground-truth entry {"func": {param: [allowed...]}} with a known function name.
Status CheckAllowedLists(const json& gt, const json& functions, const std::string& where) {
  if (!gt.is_array()) return InvalidArgument(where + ": ground_truth: expected array of {\"func\": {param: [allowed]}}");
  for (size_t i = 0; i < gt.size(); ++i) {
    std::string w = where + ": ground_truth[" + std::to_string(i) + "]";
    if (!gt[i].is_object() || gt[i].size() != 1) return InvalidArgument(w + ": expected one {\"func\": {...}}");
    const std::string name = gt[i].begin().key();
    const json& params = gt[i].begin().value();
    bool known = std::any_of(functions.begin(), functions.end(), [&](const json& f) { return f["name"] == name; });
    if (!known) return InvalidArgument(w + ": function \"" + name + "\" is not among the case's functions");
    if (!params.is_object()) return InvalidArgument(w + "." + name + ": expected object of parameters");
    for (auto& [p, allowed] : params.items())
      if (!allowed.is_array()) return InvalidArgument(w + "." + name + "." + p + ": expected array of allowed values");
  }
  return Status::Ok();
}

json ConvertSchema(const json& s) {
  if (s.is_array()) {
    json out = json::array();
    for (auto& e : s) out.push_back(ConvertSchema(e));
    return out;
  }
  if (!s.is_object()) return s;
  json out = json::object();
  for (auto& [k, v] : s.items()) {
    if (k == "type" && v.is_string()) {
      std::string t = v.get<std::string>();
      if (t == "any") continue;
      out[k] = t == "dict" ? "object" : t == "float" ? "number" : t == "tuple" ? "array" : t;
    } else if (k == "properties" && v.is_object()) {
      json props = json::object();
      for (auto& [pk, pv] : v.items()) props[pk] = ConvertSchema(pv);
      out[k] = props;
    } else if (k == "items" || k == "additionalProperties") {
      out[k] = ConvertSchema(v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

}  // namespace

json ToOpenAiTools(const json& functions) {
  json out = json::array();
  for (auto& f : functions) {
    json fn = {{"name", f["name"]}, {"description", f.value("description", std::string())}};
    fn["parameters"] = f.contains("parameters") ? ConvertSchema(f["parameters"]) : json{{"type", "object"}, {"properties", json::object()}};
    out.push_back({{"type", "function"}, {"function", fn}});
  }
  return out;
}

namespace {

// Shared by both loaders: involved_classes + initial_config -> a backend (validated), docs.
Status LoadStateWorld(const json& j, const std::string& where, FcCase& c) {
  auto ic = j.find("involved_classes");
  if (ic == j.end() || !ic->is_array() || ic->empty()) return InvalidArgument(where + ": involved_classes: expected a non-empty array of class names");
  for (auto& x : *ic) {
    if (!x.is_string()) return InvalidArgument(where + ": involved_classes: expected strings");
    c.classes.push_back(x.get<std::string>());
  }
  c.initial_config = j.value("initial_config", json::object());
  K2_ASSIGN_OR_RETURN(FcBackend b, FcBackend::Create(c.classes, c.initial_config, where));
  if (j.contains("function")) {
    c.functions = j["function"].is_object() ? json::array({j["function"]}) : j["function"];
    K2_RETURN_IF_ERROR(CheckFunctions(c.functions, where));
    for (auto& f : c.functions)
      if (!b.HasFunction(f["name"].get<std::string>()))
        return InvalidArgument(where + ": function \"" + f["name"].get<std::string>() + "\" is not a method of the involved classes");
  } else {
    c.functions = b.Functions();
  }
  c.kind = "state";
  return Status::Ok();
}

// Python call strings -> calls; each must name a function of the case.
Expected<std::vector<rewards::FunctionCall>> ParseCalls(const json& list, const FcCase& c, const std::string& where) {
  if (!list.is_array()) return InvalidArgument(where + ": expected an array of call strings");
  std::vector<rewards::FunctionCall> out;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string w = where + "[" + std::to_string(i) + "]";
    if (!list[i].is_string()) return InvalidArgument(w + ": expected a call string such as \"cd(folder='docs')\"");
    K2_ASSIGN_OR_RETURN(rewards::FunctionCall call, ParsePythonCall(list[i].get<std::string>(), w));
    bool known = std::any_of(c.functions.begin(), c.functions.end(), [&](const json& f) { return f["name"] == call.name; });
    if (!known) return InvalidArgument(w + ": function \"" + call.name + "\" is not among the case's functions");
    out.push_back(std::move(call));
  }
  return out;
}

// Runs `calls` on `b`; the first failing call is a broken case.
Status ReplayOrFail(FcBackend& b, const std::vector<rewards::FunctionCall>& calls, const std::string& where) {
  for (size_t i = 0; i < calls.size(); ++i) {
    json r = b.Call(calls[i].name, calls[i].arguments);
    if (r.is_object() && r.contains("error"))
      return InvalidArgument(where + "[" + std::to_string(i) + "]: ground-truth call " + calls[i].name + " fails on the case's backend: " +
                             r["error"].get<std::string>());
  }
  return Status::Ok();
}

Status LoadBfclMultiTurn(const json& j, const std::string& where, const json& gt, const std::string& aw, FcCase& c) {
  const json& q = j["question"];
  for (size_t t = 0; t < q.size(); ++t) {
    std::string tw = where + ": question[" + std::to_string(t) + "]";
    if (!q[t].is_array()) return InvalidArgument(tw + ": expected an array of messages (one turn)");
    K2_ASSIGN_OR_RETURN(auto msgs, MessagesFromJson(q[t], tw));
    c.turns.push_back(std::move(msgs));
  }
  K2_RETURN_IF_ERROR(LoadStateWorld(j, where, c));
  if (j.contains("missed_function")) {
    const json& mf = j["missed_function"];
    if (!mf.is_object()) return InvalidArgument(where + ": missed_function: expected {\"TURN\": [function names]}");
    for (auto& [k, v] : mf.items()) {
      int turn = -1;
      try {
        size_t used = 0;
        turn = std::stoi(k, &used);
        if (used != k.size()) turn = -1;
      } catch (const std::exception&) {
      }
      if (turn < 0 || turn >= static_cast<int>(c.turns.size()))
        return InvalidArgument(where + ": missed_function." + k + ": expected a turn index in [0, " + std::to_string(c.turns.size()) + ")");
      if (!v.is_array()) return InvalidArgument(where + ": missed_function." + k + ": expected array of function names");
      for (auto& n : v) {
        if (!n.is_string() || std::none_of(c.functions.begin(), c.functions.end(), [&](const json& f) { return f["name"] == n; }))
          return InvalidArgument(where + ": missed_function." + k + ": " + n.dump() + " is not among the case's functions");
        c.missed[turn].push_back(n.get<std::string>());
      }
    }
  }
  if (!gt.is_array() || gt.size() != c.turns.size())
    return InvalidArgument(aw + ": ground_truth: expected one list of call strings per turn (" + std::to_string(c.turns.size()) + " turns)");
  K2_ASSIGN_OR_RETURN(FcBackend b, FcBackend::Create(c.classes, c.initial_config, where));
  for (size_t t = 0; t < gt.size(); ++t) {
    std::string tw = aw + ": ground_truth[" + std::to_string(t) + "]";
    K2_ASSIGN_OR_RETURN(auto calls, ParseCalls(gt[t], c, tw));
    K2_RETURN_IF_ERROR(ReplayOrFail(b, calls, tw));
    c.gt_turns.push_back(std::move(calls));
  }
  for (size_t t = 0; t < c.turns.size(); ++t)
    if (c.turns[t].empty() && !c.missed.count(static_cast<int>(t)))
      return InvalidArgument(where + ": question[" + std::to_string(t) + "]: an empty turn must be a missed_function turn");
  return Status::Ok();
}

}  // namespace

Expected<FcSuite> LoadBfcl(const std::string& questions, const std::string& answers) {
  FcSuite s;
  s.name = "bfcl:" + questions;
  K2_ASSIGN_OR_RETURN(auto recs, ReadRecords(questions));
  K2_ASSIGN_OR_RETURN(auto ans, ReadAnswers(answers));
  for (auto& [j, where] : recs) {
    K2_ASSIGN_OR_RETURN(std::string id, IdOf(j, where));
    FcCase c;
    c.id = id;
    c.source = "bfcl";
    c.category = CategoryOf(id);
    auto q = j.find("question");
    if (q == j.end() || !q->is_array() || q->empty())
      return InvalidArgument(where + ": question: expected a non-empty array of turns (arrays of messages)");
    if (q->size() > 1 || c.category.find("multi_turn") != std::string::npos) {
      auto a = ans.find(id);
      if (a == ans.end()) return InvalidArgument(where + ": no answer with id \"" + id + "\" in " + answers);
      K2_RETURN_IF_ERROR(LoadBfclMultiTurn(j, where, a->second.first["ground_truth"], a->second.second, c));
      s.cases.push_back(std::move(c));
      continue;
    }
    const json& turn = (*q)[0].is_array() ? (*q)[0] : *q;  // older files: one flat list of messages
    auto msgs = MessagesFromJson(turn, where + ": question[0]");
    if (!msgs.ok()) return msgs.status();
    c.messages = std::move(*msgs);
    if (!j.contains("function")) return InvalidArgument(where + ": function: missing");
    c.functions = j["function"].is_object() ? json::array({j["function"]}) : j["function"];
    K2_RETURN_IF_ERROR(CheckFunctions(c.functions, where));
    if (c.category.find("irrelevance") != std::string::npos) {
      c.kind = "no_call";
    } else {
      auto a = ans.find(id);
      if (a == ans.end()) return InvalidArgument(where + ": no answer with id \"" + id + "\" in " + answers);
      c.kind = "calls";
      c.ground_truth = a->second.first["ground_truth"];
      K2_RETURN_IF_ERROR(CheckAllowedLists(c.ground_truth, c.functions, a->second.second));
    }
    s.cases.push_back(std::move(c));
  }
  return s;
}

namespace {

// "user: hi\nsystem: hello\nuser: book it" -> messages. Lines without a role prefix continue the
// previous message.
Expected<std::vector<Message>> ParseAceDialog(const std::string& text, const std::string& where) {
  std::vector<Message> out;
  size_t b = 0;
  while (b <= text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    std::string line = text.substr(b, e - b);
    b = e + 1;
    std::string role;
    size_t skip = 0;
    for (auto [prefix, r] : {std::pair{"user:", "user"}, std::pair{"assistant:", "assistant"}, std::pair{"system:", "system"}}) {
      if (line.rfind(prefix, 0) == 0) {
        role = r;
        skip = std::string(prefix).size();
      }
    }
    if (role == "system" && !out.empty()) role = "assistant";  // ACEBench writes the agent side as "system"
    if (!role.empty()) {
      out.push_back(Message{role, rewards::Trim(line.substr(skip))});
    } else if (!out.empty()) {
      out.back().content += "\n" + line;
    } else if (!rewards::Trim(line).empty()) {
      out.push_back(Message{"user", rewards::Trim(line)});  // a bare question
    }
    if (e == text.size()) break;
  }
  if (out.empty() || out.back().role != "user") return InvalidArgument(where + ": question: expected a dialog ending with a user line");
  return out;
}

// {"f": {...}, "g": {...}} or [{"f": {...}}, ...] -> [{"f": {...}}, ...]
json AceEntries(const json& gt) {
  if (gt.is_array()) return gt;
  json out = json::array();
  if (gt.is_object())
    for (auto& [k, v] : gt.items()) out.push_back({{k, v}});
  return out;
}

// Each user message opens a turn; assistant lines before it belong to that turn's opening.
std::vector<std::vector<Message>> SplitTurns(const std::vector<Message>& msgs) {
  std::vector<std::vector<Message>> out;
  std::vector<Message> cur;
  for (auto& m : msgs) {
    cur.push_back(m);
    if (m.role == "user") {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  return out;
}

Status LoadAceAgent(const json& j, const std::string& where, const json& answer, const std::string& aw, FcCase& c) {
  const json& ans_line_gt = answer["ground_truth"];
  c.turns = SplitTurns(c.messages);
  c.messages.clear();
  K2_RETURN_IF_ERROR(LoadStateWorld(j, where, c));
  // ground_truth: [{class: {...}}, ...] or {class: {...}}
  json expected = json::object();
  json entries = ans_line_gt.is_array() ? ans_line_gt : json::array({ans_line_gt});
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string w = aw + ": ground_truth[" + std::to_string(i) + "]";
    if (!entries[i].is_object() || entries[i].empty()) return InvalidArgument(w + ": expected {class: {attribute: value}}");
    for (auto& [cls, st] : entries[i].items()) {
      if (std::find(c.classes.begin(), c.classes.end(), cls) == c.classes.end())
        return InvalidArgument(w + "." + cls + ": class not in involved_classes");
      if (!st.is_object()) return InvalidArgument(w + "." + cls + ": expected object of attributes");
      expected[cls] = st;
    }
  }
  c.expected_state = expected;
  if (!answer.contains("mile_stone")) return InvalidArgument(aw + ": mile_stone: missing (the reference call path)");
  K2_ASSIGN_OR_RETURN(c.milestones, ParseCalls(answer["mile_stone"], c, aw + ": mile_stone"));
  // The reference path must reach the expected state, or the case cannot be passed.
  K2_ASSIGN_OR_RETURN(FcBackend b, FcBackend::Create(c.classes, c.initial_config, where));
  K2_RETURN_IF_ERROR(ReplayOrFail(b, c.milestones, aw + ": mile_stone"));
  std::string d = FirstDifference(b.State(), c.expected_state, /*subset=*/true);
  if (!d.empty()) return InvalidArgument(aw + ": mile_stone does not reach ground_truth: " + d);
  return Status::Ok();
}

}  // namespace

Expected<FcSuite> LoadAceBench(const std::string& data, const std::string& answers) {
  FcSuite s;
  s.name = "acebench:" + data;
  K2_ASSIGN_OR_RETURN(auto recs, ReadRecords(data));
  K2_ASSIGN_OR_RETURN(auto ans, ReadAnswers(answers));
  for (auto& [j, where] : recs) {
    K2_ASSIGN_OR_RETURN(std::string id, IdOf(j, where));
    FcCase c;
    c.id = id;
    c.source = "acebench";
    c.category = CategoryOf(id);
    auto q = j.find("question");
    if (q == j.end() || !q->is_string()) return InvalidArgument(where + ": question: expected string");
    K2_ASSIGN_OR_RETURN(c.messages, ParseAceDialog(q->get<std::string>(), where));
    if (c.category.rfind("agent", 0) == 0) {
      auto a = ans.find(id);
      if (a == ans.end()) return InvalidArgument(where + ": no answer with id \"" + id + "\" in " + answers);
      K2_RETURN_IF_ERROR(LoadAceAgent(j, where, a->second.first, a->second.second, c));
      s.cases.push_back(std::move(c));
      continue;
    }
    if (!j.contains("function")) return InvalidArgument(where + ": function: missing");
    c.functions = j["function"].is_object() ? json::array({j["function"]}) : j["function"];
    K2_RETURN_IF_ERROR(CheckFunctions(c.functions, where));
    if (c.category.find("irrelevant") != std::string::npos) {
      c.kind = "no_call";
      s.cases.push_back(std::move(c));
      continue;
    }
    auto a = ans.find(id);
    if (a == ans.end()) return InvalidArgument(where + ": no answer with id \"" + id + "\" in " + answers);
    const json& gt = a->second.first["ground_truth"];
    const std::string& aw = a->second.second;
    if (c.category.rfind("special_incomplete", 0) == 0 || c.category.rfind("special_error_param", 0) == 0) {
      bool incomplete = c.category.rfind("special_incomplete", 0) == 0;
      c.kind = incomplete ? "missing_params" : "error_param";
      if (!gt.is_object() || gt.empty()) return InvalidArgument(aw + ": ground_truth: expected {\"func\": [...]}");
      for (auto& [f, v] : gt.items()) {
        json items = json::array();
        if (v.is_array()) items = v;
        else if (v.is_object() && !incomplete)
          for (auto& [p, val] : v.items()) items.push_back(val);
        else return InvalidArgument(aw + ": ground_truth." + f + ": expected array" + (incomplete ? " of parameter names" : " of values or {param: value}"));
        if (items.empty()) return InvalidArgument(aw + ": ground_truth." + f + ": expected a non-empty list");
        for (auto& x : items)
          if (incomplete && !x.is_string()) return InvalidArgument(aw + ": ground_truth." + f + ": expected parameter names (strings)");
        c.expect[f] = items;
      }
    } else {
      c.kind = "calls";
      json entries = AceEntries(gt);
      // Exact values as ACEBench writes them; allowed lists of one value for the AST matcher.
      c.ground_truth = rewards::ExactToAllowedLists(entries);
      for (size_t i = 0; i < entries.size(); ++i)
        if (!entries[i].is_object() || entries[i].size() != 1 || !entries[i].begin()->is_object())
          return InvalidArgument(aw + ": ground_truth[" + std::to_string(i) + "]: expected {\"func\": {param: value}}");
      K2_RETURN_IF_ERROR(CheckAllowedLists(c.ground_truth, c.functions, aw));
    }
    s.cases.push_back(std::move(c));
  }
  return s;
}

namespace {

std::vector<rewards::FunctionCall> ExtractCalls(const Message& m) {
  std::vector<rewards::FunctionCall> calls;
  if (!m.tool_calls.empty()) {
    for (auto& c : m.tool_calls) {
      auto a = c.ParsedArguments();
      calls.push_back({c.name, a ? *a : json()});
    }
    return calls;
  }
  auto j = ParseJson(rewards::Trim(m.content), "response");
  if (!j.ok()) return calls;
  json arr = j->is_array() ? *j : json::array({*j});
  for (auto& c : arr)
    if (c.is_object() && c.contains("name") && c["name"].is_string())
      calls.push_back({c["name"].get<std::string>(), c.value("arguments", json())});
  return calls;
}

std::string Mentioned(const json& x) { return x.is_string() ? x.get<std::string>() : x.dump(); }

}  // namespace

FcOutcome ScoreFcResponse(const FcCase& c, const agents::PolicyTurn& turn) {
  FcOutcome o;
  o.id = c.id;
  o.category = c.category;
  o.kind = c.kind;
  o.response = ToJson(turn.message);
  if (turn.failure) {
    o.failure = *turn.failure;
    o.detail = "malformed response: " + *turn.failure;
    return o;
  }
  std::vector<rewards::FunctionCall> calls = ExtractCalls(turn.message);
  if (c.kind == "calls") {
    rewards::AstResult r = rewards::MatchCalls(calls, c.functions, c.ground_truth);
    o.score = r.ok ? 1 : 0;
    o.detail = r.detail;
    return o;
  }
  if (!calls.empty()) {
    o.detail = "called " + calls[0].name + (c.kind == "no_call" ? " on a request no function serves" : " instead of " +
               std::string(c.kind == "missing_params" ? "asking for the missing parameters" : "pointing out the incorrect value"));
    return o;
  }
  if (c.kind == "no_call") {
    o.score = 1;
    o.detail = "declined without a call";
    return o;
  }
  std::string reply = rewards::AsciiLower(turn.message.content);
  for (auto& [f, items] : c.expect.items()) {
    for (auto& x : items) {
      std::string want = rewards::AsciiLower(Mentioned(x));
      if (reply.find(want) == std::string::npos) {
        o.detail = std::string(c.kind == "missing_params" ? "missing parameter" : "incorrect value") + " \"" +
                   Mentioned(x) + "\" of " + f + " not mentioned";
        return o;
      }
    }
  }
  o.score = 1;
  o.detail = c.kind == "missing_params" ? "asked for every missing parameter" : "pointed out every incorrect value";
  return o;
}

namespace {

// Tools visible in `turn`: the case's functions minus those missed until a later turn.
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

// ACEBench process accuracy: the share of milestones found, in order, among the executed calls.
double ProcessAccuracy(const std::vector<rewards::FunctionCall>& executed, const std::vector<rewards::FunctionCall>& milestones) {
  if (milestones.empty()) return 1;
  size_t m = 0;
  for (auto& e : executed)
    if (m < milestones.size() && SameCall(e, milestones[m])) ++m;
  return static_cast<double>(m) / static_cast<double>(milestones.size());
}

FcOutcome RunStateCase(const FcCase& c, agents::Policy& policy, const FcRunOptions& opt, uint64_t seed) {
  FcOutcome o;
  o.id = c.id;
  o.category = c.category;
  o.kind = c.kind;
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
  std::vector<Message> dialog;
  std::vector<rewards::FunctionCall> executed;
  int turns_passed = 0, calls_made = 0;
  auto finish = [&](double score, std::string detail) {
    o.score = score;
    o.detail = std::move(detail);
    o.response = ToJson(dialog);
    o.components = {{"turns", c.turns.size()}, {"turns_passed", turns_passed}, {"calls", calls_made}};
    if (!bfcl) o.components["process"] = ProcessAccuracy(executed, c.milestones);
    policy.EndSession(c.id);
    return o;
  };
  for (size_t t = 0; t < c.turns.size(); ++t) {
    const std::string tw = "turn " + std::to_string(t) + ": ";
    for (auto& m : c.turns[t]) dialog.push_back(m);
    const json tools = VisibleTools(c, static_cast<int>(t));
    int turn_calls = 0;
    bool answered = false;
    std::vector<json> turn_results;  // BFCL's response check: what the model's calls returned this turn
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
      for (size_t i = 0; i < calls.size(); ++i) {
        json result;
        bool visible = std::any_of(tools.begin(), tools.end(), [&](const json& f) { return f["function"]["name"] == calls[i].name; });
        if (!visible) result = {{"error", "no function named " + calls[i].name + " is available"}};
        else result = env.Call(calls[i].name, calls[i].arguments.is_null() ? json::object() : calls[i].arguments);
        Message tool;
        tool.role = "tool";
        tool.content = result.dump();
        tool.tool_call_id = said.tool_calls[i].id;
        tool.name = calls[i].name;
        dialog.push_back(std::move(tool));
        turn_results.push_back(std::move(result));
        executed.push_back(calls[i]);
        ++turn_calls;
        ++calls_made;
      }
    }
    if (!answered) return finish(0, tw + "still calling functions after " + std::to_string(opt.max_steps_per_turn) + " steps");
    if (bfcl) {
      std::vector<json> gt_results;
      for (auto& g : c.gt_turns[t]) gt_results.push_back(gt_env.Call(g.name, g.arguments));  // validated by the loader
      if (c.gt_turns[t].empty() && turn_calls > 0)
        return finish(0, tw + "expected no call (the request cannot be served with the available functions), got " +
                             std::to_string(turn_calls));
      std::string d = FirstDifference(env.State(), gt_env.State(), /*subset=*/false);
      if (!d.empty()) return finish(0, tw + "state differs from the ground truth's: " + d);
      // Read-only steps leave no trace in the state: every ground-truth result must also have been
      // obtained by one of the model's calls this turn (BFCL's response check).
      for (size_t g = 0; g < gt_results.size(); ++g)
        if (std::find(turn_results.begin(), turn_results.end(), gt_results[g]) == turn_results.end())
          return finish(0, tw + "no call of the turn obtained the result of ground-truth " + c.gt_turns[t][g].name + " (" +
                               gt_results[g].dump().substr(0, 80) + ")");
    }
    ++turns_passed;
  }
  if (!bfcl) {
    std::string d = FirstDifference(env.State(), c.expected_state, /*subset=*/true);
    if (!d.empty()) return finish(0, "final state differs from the ground truth: " + d);
    return finish(1, "final state matches the ground truth");
  }
  return finish(1, "state matched the ground truth after every turn");
}

}  // namespace

std::vector<FcOutcome> RunFcSuite(const FcSuite& suite, agents::Policy& policy, const FcRunOptions& opt) {
  std::vector<FcOutcome> out(suite.cases.size());
  auto one = [&](int64_t i) {
    const FcCase& c = suite.cases[static_cast<size_t>(i)];
    if (c.kind == "state") {
      out[static_cast<size_t>(i)] = RunStateCase(c, policy, opt, opt.seed + static_cast<uint64_t>(i));
      return;
    }
    agents::PolicyRequest req;
    req.messages = c.messages;
    req.tools = ToOpenAiTools(c.functions);
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
      o.failure = "policy_error: " + turn.status().ToString();
      o.detail = o.failure;
      out[static_cast<size_t>(i)] = std::move(o);
      return;
    }
    out[static_cast<size_t>(i)] = ScoreFcResponse(c, *turn);
  };
  if (opt.threads <= 1) {
    for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) one(i);
  } else {
    ThreadPool pool(opt.threads);
    pool.ParallelFor(static_cast<int64_t>(out.size()), one);
  }
  return out;
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
  auto say_calls = [&](const std::vector<rewards::FunctionCall>& calls) {
    for (size_t i = 0; i < calls.size(); ++i)
      out.message.tool_calls.push_back({"call_" + std::to_string(i), calls[i].name, calls[i].arguments.dump()});
  };
  if (c.kind == "calls") {
    std::vector<rewards::FunctionCall> calls;
    for (auto& g : c.ground_truth) {
      json args = json::object();
      for (auto& [p, allowed] : g.begin().value().items())
        if (!allowed.empty() && allowed[0] != "") args[p] = allowed[0];  // "" in an allowed list: may be omitted
      calls.push_back({g.begin().key(), args});
    }
    say_calls(calls);
    return out;
  }
  if (c.kind == "no_call") {
    out.message.content = "None of the available functions can serve this request.";
    return out;
  }
  if (c.kind == "missing_params" || c.kind == "error_param") {
    std::string text = c.kind == "missing_params" ? "Please provide the missing parameters:" : "These values are incorrect:";
    for (auto& [f, items] : c.expect.items())
      for (auto& x : items) text += " " + (x.is_string() ? x.get<std::string>() : x.dump());
    out.message.content = text;
    return out;
  }
  // State case: where are we? The last user message fixes its turn; each text-only reply after it ended
  // one more turn (the next one being a missed-function turn, which opens without a user message); the
  // tool results since then are the calls already made in the current turn.
  size_t users = 0, ended = 0, calls_this_turn = 0;
  for (auto& m : r.messages) {
    if (m.role == "user") {
      ++users;
      ended = 0;
      calls_this_turn = 0;
    } else if (m.role == "assistant" && m.tool_calls.empty()) {
      ++ended;
      calls_this_turn = 0;
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
  std::vector<rewards::FunctionCall> plan;
  size_t first = 0;
  if (c.source == "bfcl") {
    for (size_t t = 0; t < turn; ++t) first += c.gt_turns[t].size();
    plan = c.gt_turns[turn];
  } else if (turn == 0) {
    plan = c.milestones;  // ACEBench: the whole reference path on the first request
  }
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

}  // namespace k2::eval
