// BFCL / ACEBench loaders, the per-case response check and the policy runner (see fc_suite.h).
#include "eval/fc_suite.h"

#include <algorithm>
#include <map>

#include "core/thread_pool.h"
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
    if (!out.emplace(id, std::make_pair(j["ground_truth"], where)).second)
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
      s.skipped.emplace_back(id, "BFCL multi-turn cases run against BFCL's Python backends");
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
      c.ground_truth = a->second.first;
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
    if (c.category.rfind("agent", 0) == 0) {
      s.skipped.emplace_back(id, "ACEBench agent cases run against ACEBench's Python sandbox classes");
      continue;
    }
    auto q = j.find("question");
    if (q == j.end() || !q->is_string()) return InvalidArgument(where + ": question: expected string");
    K2_ASSIGN_OR_RETURN(c.messages, ParseAceDialog(q->get<std::string>(), where));
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
    const json& gt = a->second.first;
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

std::vector<FcOutcome> RunFcSuite(const FcSuite& suite, agents::Policy& policy, const FcRunOptions& opt) {
  std::vector<FcOutcome> out(suite.cases.size());
  auto one = [&](int64_t i) {
    const FcCase& c = suite.cases[static_cast<size_t>(i)];
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

}  // namespace k2::eval
