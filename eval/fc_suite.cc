// BFCL / ACEBench loaders, the per-case response check and the policy runner (see fc_suite.h).
#include "eval/fc_suite.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/thread_pool.h"
#include "eval/fc_backend.h"
#include "rewards/ast_match.h"
#include "rewards/text_util.h"

namespace k2::eval {
namespace {

// One record of a data file: the parsed JSON, or why the line does not parse; with "file:line".
struct Record {
  json j;
  std::string where;
  std::string error;  // non-empty: the line is not JSON
  std::string raw;    // the line's text (JSON-lines files): key order, which `j` does not keep
};

// JSON lines, or one JSON array (some ACEBench dumps are arrays), or one JSON object (BFCL's
// format_sensitivity index: {category: [ids]}). A line that is not JSON is a bad record, not a bad file.
Expected<std::vector<Record>> ReadRecords(const std::string& path, json* index = nullptr) {
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<Record> out;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '[' || text[first] == '{')) {
    auto whole = ParseJson(text, path);
    if (whole.ok() && whole->is_array()) {
      for (size_t i = 0; i < whole->size(); ++i) out.push_back({(*whole)[i], path + "[" + std::to_string(i) + "]", ""});
      return out;
    }
    if (whole.ok() && whole->is_object() && !whole->contains("id") && index) {
      *index = *whole;
      return out;
    }
    if (text[first] == '[') return whole.status();
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
    auto j = ParseJson(l, where);
    if (j.ok()) out.push_back({std::move(*j), where, "", l});
    else out.push_back({json(), where, j.status().message()});
  }
  return out;
}

Expected<std::string> IdOf(const json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": expected a JSON object");
  auto it = j.find("id");
  if (it == j.end() || !it->is_string()) return InvalidArgument(where + ": id: expected string");
  return it->get<std::string>();
}

// The benchmark's category: the id up to its first "_<digit>" ("live_simple_0-0-0" -> "live_simple",
// "memory_0-customer-0" -> "memory", "normal_multi_turn_user_adjust_3_1" -> "normal_multi_turn_user_adjust").
std::string CategoryOf(const std::string& id) {
  for (size_t u = id.find('_'); u != std::string::npos; u = id.find('_', u + 1))
    if (u + 1 < id.size() && id[u + 1] >= '0' && id[u + 1] <= '9') return id.substr(0, u);
  return id;
}

// Answers by id; lines that do not parse or have no id are reported (by line) in `bad`.
using Answers = std::map<std::string, std::pair<json, std::string>>;

Expected<Answers> ReadAnswers(const std::string& path, std::vector<std::string>* bad) {
  Answers out;
  if (path.empty()) return out;
  K2_ASSIGN_OR_RETURN(auto recs, ReadRecords(path));
  for (auto& r : recs) {
    if (!r.error.empty()) {
      bad->push_back(r.error);
      continue;
    }
    auto id = IdOf(r.j, r.where);
    if (!id.ok()) {
      bad->push_back(id.status().message());
      continue;
    }
    if (!r.j.contains("ground_truth")) {
      bad->push_back(r.where + ": ground_truth: missing");
      continue;
    }
    if (!out.emplace(*id, std::make_pair(r.j, r.where)).second) bad->push_back(r.where + ": duplicate answer id \"" + *id + "\"");
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

// A BFCL / ACEBench / Java / JavaScript type name -> a JSON Schema type ("" when none fits: the schema
// then says nothing about the type). Unknown names become "string", as BFCL's converter does.
std::string SchemaType(const std::string& t) {
  static const std::map<std::string, std::string> kMap = {
      {"integer", "integer"}, {"int", "integer"}, {"number", "number"}, {"float", "number"}, {"double", "number"},
      {"string", "string"}, {"boolean", "boolean"}, {"bool", "boolean"}, {"array", "array"}, {"list", "array"},
      {"tuple", "array"}, {"dict", "object"}, {"object", "object"}, {"any", "string"}, {"byte", "integer"},
      {"short", "integer"}, {"long", "integer"}, {"char", "string"}, {"ArrayList", "array"}, {"Array", "array"},
      {"HashMap", "object"}, {"Hashtable", "object"}, {"Queue", "array"}, {"Stack", "array"}, {"Any", "string"},
      {"String", "string"}, {"Bigint", "integer"}, {"Boolean", "boolean"}, {"enum", "string"},
      {"objectArray", "array"}, {"list(string)", "array"}, {"list(enum)", "array"}, {"null", "null"}};
  auto it = kMap.find(t);
  return it == kMap.end() ? "string" : it->second;
}

// A parameter schema as valid JSON Schema: types mapped, "properties" / "items" converted recursively,
// keywords with a shape JSON Schema rejects ("required" that is not a list of names, "enum" that is not
// a list) dropped.
json ConvertSchema(const json& s) {
  if (!s.is_object()) return json::object();
  json out = json::object();
  std::string type;
  for (auto& [k, v] : s.items()) {
    if (k == "type") {
      if (v.is_string()) type = v.get<std::string>();
      continue;
    }
    if (k == "properties") {
      if (!v.is_object()) continue;
      json props = json::object();
      for (auto& [pk, pv] : v.items()) props[pk] = ConvertSchema(pv);
      out[k] = props;
    } else if (k == "items") {
      out[k] = ConvertSchema(v.is_array() && !v.empty() ? v[0] : v);
    } else if (k == "additionalProperties") {
      if (v.is_boolean()) out[k] = v;
      else if (v.is_object()) out[k] = ConvertSchema(v);
    } else if (k == "required") {
      if (!v.is_array()) continue;
      json names = json::array();
      for (auto& n : v)
        if (n.is_string() && std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
      out[k] = names;
    } else if (k == "enum") {
      if (v.is_array() && !v.empty()) out[k] = v;
    } else if (k == "description") {
      if (v.is_string()) out[k] = v;
    } else if (k == "minimum" || k == "maximum" || k == "minItems" || k == "maxItems" || k == "minLength" || k == "maxLength") {
      if (v.is_number()) out[k] = v;
    } else if (k == "default" || k == "format" || k == "pattern" || k == "examples" || k == "title") {
      if (k != "pattern" || v.is_string()) out[k] = v;
    }
  }
  if (!type.empty()) {
    std::string st = SchemaType(type);
    out["type"] = st;
    if ((type == "list(string)" || type == "list(enum)") && !out.contains("items")) out["items"] = {{"type", "string"}};
    if (type == "objectArray" && !out.contains("items")) out["items"] = {{"type", "object"}};
    if (st != "array") out.erase("items");
    if (st != "object") {
      out.erase("properties");
      out.erase("additionalProperties");
      out.erase("required");
    }
    if (out.contains("enum") && st != "string" && st != "integer" && st != "number" && st != "boolean") out.erase("enum");
  }
  return out;
}

// BFCL's Java / JavaScript convention: every parameter is a string of source code; the declared type
// goes into the description.
json SourceStringSchema(const json& s, rewards::CallLanguage lang) {
  const char* what = lang == rewards::CallLanguage::kJava ? "Java" : "JavaScript";
  std::string type = s.is_object() && s.contains("type") && s["type"].is_string() ? s["type"].get<std::string>() : "any";
  std::string d = s.is_object() && s.contains("description") && s["description"].is_string() ? s["description"].get<std::string>() : "";
  if (type == "any") d += std::string(" This parameter can be of any type of ") + what + " object in string representation.";
  else d += std::string(" This is ") + what + " " + type + " type parameter in string representation.";
  if (s.is_object() && s.contains("items") && s["items"].is_object() && s["items"].contains("type"))
    d += " The list elements are of type " + s["items"]["type"].dump() + "; they are not in string representation.";
  if (s.is_object() && s.contains("properties"))
    d += " The dictionary entries have the following schema; they are not in string representation. " + s["properties"].dump();
  return {{"type", "string"}, {"description", d}};
}

std::string ToolName(const std::string& name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '_';
  if (out.empty()) out = "_";
  if (out.size() > 64) out = out.substr(0, 64);
  return out;
}

}  // namespace

json ToOpenAiTools(const json& functions, rewards::CallLanguage language, std::map<std::string, std::string>* names) {
  json out = json::array();
  std::map<std::string, std::string> offered;  // offered -> original
  // Names already valid keep themselves, so rewritten ones never take a real function's name.
  for (auto& f : functions)
    if (f.is_object() && f.contains("name") && f["name"].is_string() && ToolName(f["name"].get<std::string>()) == f["name"])
      offered[f["name"].get<std::string>()] = f["name"].get<std::string>();
  for (auto& f : functions) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string()) continue;
    std::string orig = f["name"].get<std::string>();
    std::string name = ToolName(orig);
    if (name != orig) {
      std::string base = name;
      for (int n = 2; offered.count(name); ++n) {
        std::string suffix = "_" + std::to_string(n);
        name = base.substr(0, 64 - suffix.size()) + suffix;
      }
      offered[name] = orig;
    }
    std::string desc = f.contains("description") && f["description"].is_string() ? f["description"].get<std::string>() : "";
    json params = {{"type", "object"}, {"properties", json::object()}};
    if (f.contains("parameters") && f["parameters"].is_object()) {
      const json& p = f["parameters"];
      if (language == rewards::CallLanguage::kPython) {
        params = ConvertSchema(p);
        params["type"] = "object";
        if (!params.contains("properties")) params["properties"] = json::object();
      } else {
        if (p.contains("properties") && p["properties"].is_object())
          for (auto& [k, v] : p["properties"].items()) params["properties"][k] = SourceStringSchema(v, language);
        if (p.contains("required") && p["required"].is_array()) params["required"] = ConvertSchema({{"type", "object"}, {"required", p["required"]}})["required"];
      }
    }
    out.push_back({{"type", "function"}, {"function", {{"name", name}, {"description", desc}, {"parameters", params}}}});
  }
  if (names) *names = offered;
  return out;
}

json CaseTools(const FcCase& c) { return ToOpenAiTools(c.functions, c.language); }

namespace {

// BFCL's docs of a multi-turn class: multi_turn_func_doc/<file>.json next to the question file.
std::string ClassDocFile(const std::string& cls) {
  static const std::map<std::string, std::string> kFiles = {
      {"GorillaFileSystem", "gorilla_file_system"}, {"MathAPI", "math_api"}, {"MessageAPI", "message_api"},
      {"TwitterAPI", "posting_api"}, {"TicketAPI", "ticket_api"}, {"TradingBot", "trading_bot"},
      {"TravelAPI", "travel_booking"}, {"VehicleControlAPI", "vehicle_control"}, {"WebSearchAPI", "web_search"}};
  auto it = kFiles.find(cls);
  return it == kFiles.end() ? "" : it->second + ".json";
}

// Shared by both loaders: involved_classes + initial_config -> a backend (validated), docs (the case's
// own "function", else BFCL's doc files in `doc_dir`, else the in-tree classes' docs).
Status LoadStateWorld(const json& j, const std::string& where, FcCase& c, const std::string& doc_dir = "") {
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
    // ACEBench documents a function its classes lack (search_reminders): calling it is an execution
    // error there, and here; BFCL's docs all have methods.
    const bool ace = c.source == "acebench";
    for (auto& f : c.functions)
      if (!ace && !b.HasFunction(f["name"].get<std::string>()))
        return InvalidArgument(where + ": function \"" + f["name"].get<std::string>() + "\" is not a method of the involved classes");
  } else if (!doc_dir.empty() && std::filesystem::exists(doc_dir)) {
    c.functions = json::array();
    for (auto& cls : c.classes) {
      std::string file = doc_dir + "/" + ClassDocFile(cls);
      K2_ASSIGN_OR_RETURN(auto recs, ReadRecords(file));
      for (auto& r : recs) {
        if (!r.error.empty()) return InvalidArgument(r.error);
        if (!r.j.is_object() || !r.j.contains("name") || !r.j["name"].is_string()) return InvalidArgument(r.where + ": name: expected string");
        if (!b.HasFunction(r.j["name"].get<std::string>()))
          return InvalidArgument(where + ": " + cls + "." + r.j["name"].get<std::string>() + " (" + r.where + ") has no in-tree implementation");
        c.functions.push_back(r.j);
      }
    }
  } else {
    c.functions = b.Functions();
  }
  c.kind = "state";
  return Status::Ok();
}

// Python call strings -> calls; each must name a function of the case.
Expected<std::vector<rewards::FunctionCall>> ParseCalls(const json& list, const FcCase& c, const std::string& where) {
  K2_ASSIGN_OR_RETURN(FcBackend b, FcBackend::Create(c.classes, c.initial_config, where));
  if (!list.is_array()) return InvalidArgument(where + ": expected an array of call strings");
  std::vector<rewards::FunctionCall> out;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string w = where + "[" + std::to_string(i) + "]";
    if (!list[i].is_string()) return InvalidArgument(w + ": expected a call string such as \"cd(folder='docs')\"");
    K2_ASSIGN_OR_RETURN(rewards::FunctionCall call, ParsePythonCall(list[i].get<std::string>(), w));
    bool known = std::any_of(c.functions.begin(), c.functions.end(), [&](const json& f) { return f["name"] == call.name; });
    if (!known) return InvalidArgument(w + ": function \"" + call.name + "\" is not among the case's functions");
    // Positional arguments ("#0", ...) take the method's parameter names in signature order.
    std::vector<std::string> order = b.ParamOrder(call.name);
    json named = json::object();
    for (auto& [k, v] : call.arguments.items()) {
      if (k.empty() || k[0] != '#') {
        named[k] = v;
        continue;
      }
      size_t idx = static_cast<size_t>(std::stoi(k.substr(1)));
      if (idx >= order.size()) return InvalidArgument(w + ": positional argument " + std::to_string(idx) + " of " + call.name + ": the method has " + std::to_string(order.size()) + " parameters");
      if (call.arguments.contains(order[idx])) return InvalidArgument(w + ": " + order[idx] + " given positionally and by name");
      named[order[idx]] = v;
    }
    call.arguments = std::move(named);
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

Status LoadBfclMultiTurn(const json& j, const std::string& where, const json& gt, const std::string& aw, FcCase& c, const std::string& doc_dir) {
  const json& q = j["question"];
  for (size_t t = 0; t < q.size(); ++t) {
    std::string tw = where + ": question[" + std::to_string(t) + "]";
    if (!q[t].is_array()) return InvalidArgument(tw + ": expected an array of messages (one turn)");
    K2_ASSIGN_OR_RETURN(auto msgs, MessagesFromJson(q[t], tw));
    c.turns.push_back(std::move(msgs));
  }
  K2_RETURN_IF_ERROR(LoadStateWorld(j, where, c, doc_dir));
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

namespace {

// Key order that BFCL's classes see (Python dicts keep file order) and parsed JSON does not (it sorts
// keys), read from the line: GorillaFileSystem's _load_scenario keeps only the first entry of "root" (a
// few scenarios list more); TradingBot lists order ids in insertion order (its scenarios put a stray
// "order_type" key between ids), passed to its loader as "_orders_order"; GorillaFileSystem's directories
// list their entries in file order ("_order", see RecordEntryOrder).
// ls and find list a directory's entries in file order: kept as the directory's private "_order".
void RecordEntryOrder(json& node, const ordered_json& file_node) {
  if (!node.is_object() || !file_node.is_object() || !file_node.contains("contents") || !file_node["contents"].is_object() ||
      !node.contains("contents") || !node["contents"].is_object())
    return;
  json order = json::array();
  for (auto& [k, v] : file_node["contents"].items()) {
    order.push_back(k);
    if (node["contents"].contains(k)) RecordEntryOrder(node["contents"][k], v);
  }
  if (order.size() == node["contents"].size()) node["_order"] = std::move(order);
}

void KeepFileOrder(json& j, const std::string& raw) {
  if (raw.empty() || !j.is_object() || !j.contains("initial_config") || !j["initial_config"].is_object()) return;
  json& ic = j["initial_config"];
  bool fs = ic.contains("GorillaFileSystem") && ic["GorillaFileSystem"].is_object() && ic["GorillaFileSystem"].contains("root") &&
            ic["GorillaFileSystem"]["root"].is_object() && !ic["GorillaFileSystem"]["root"].empty();
  bool orders = ic.contains("TradingBot") && ic["TradingBot"].is_object() && ic["TradingBot"].contains("orders") &&
                ic["TradingBot"]["orders"].is_object() && ic["TradingBot"]["orders"].size() > 1;
  if (!fs && !orders) return;
  ordered_json o = ordered_json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (o.is_discarded() || !o.contains("initial_config")) return;
  const ordered_json& oic = o["initial_config"];
  if (fs) {
    json& root = ic["GorillaFileSystem"]["root"];
    std::string first = oic["GorillaFileSystem"]["root"].begin().key();
    json keep = json::object();
    keep[first] = root[first];
    root = std::move(keep);
    RecordEntryOrder(root[first], oic["GorillaFileSystem"]["root"][first]);
  }
  if (orders) {
    json keys = json::array();
    for (auto& [k, v] : oic["TradingBot"]["orders"].items()) keys.push_back(k);
    ic["TradingBot"]["_orders_order"] = std::move(keys);
  }
}

// Why a BFCL category cannot be evaluated in tree (the whole category), or "".
std::string UnevaluableBfcl(const std::string& category) {
  if (category == "memory" || category.rfind("memory_", 0) == 0)
    return "memory: needs BFCL's MemoryAPI backends (key-value, vector store with embeddings, recursive summarization) "
           "filled by the prerequisite conversations; no in-tree backend";
  if (category == "web_search" || category.rfind("web_search_", 0) == 0)
    return "web_search: needs live web search and page fetching (WebSearchAPI); not evaluable offline";
  return "";
}

rewards::CallLanguage LanguageOf(const std::string& category) {
  if (category.find("javascript") != std::string::npos) return rewards::CallLanguage::kJavaScript;
  if (category.find("java") != std::string::npos) return rewards::CallLanguage::kJava;
  return rewards::CallLanguage::kPython;
}

Status LoadBfclCase(const json& j, const std::string& where, const Answers& ans, const std::string& answers, const std::string& doc_dir, FcCase& c) {
  auto q = j.find("question");
  if (q == j.end() || !q->is_array() || q->empty())
    return InvalidArgument(where + ": question: expected a non-empty array of turns (arrays of messages)");
  if (std::string why = UnevaluableBfcl(c.category); !why.empty()) return InvalidArgument(where + ": " + why);
  if (q->size() > 1 || c.category.find("multi_turn") != std::string::npos || (j.contains("involved_classes") && !j.contains("function"))) {
    auto a = ans.find(c.id);
    if (a == ans.end()) return InvalidArgument(where + ": no answer with id \"" + c.id + "\" in " + answers);
    return LoadBfclMultiTurn(j, where, a->second.first["ground_truth"], a->second.second, c, doc_dir);
  }
  const json& turn = (*q)[0].is_array() ? (*q)[0] : *q;  // older files: one flat list of messages
  K2_ASSIGN_OR_RETURN(c.messages, MessagesFromJson(turn, where + ": question[0]"));
  if (!j.contains("function")) return InvalidArgument(where + ": function: missing");
  c.functions = j["function"].is_object() ? json::array({j["function"]}) : j["function"];
  K2_RETURN_IF_ERROR(CheckFunctions(c.functions, where));
  c.language = LanguageOf(c.category);
  if (c.category.find("irrelevance") != std::string::npos) {
    c.kind = "no_call";
    return Status::Ok();
  }
  auto a = ans.find(c.id);
  if (c.category.find("relevance") != std::string::npos && a == ans.end()) {
    c.kind = "some_call";  // BFCL live_relevance: any call counts; there is no answer to compare with
    return Status::Ok();
  }
  if (a == ans.end()) return InvalidArgument(where + ": no answer with id \"" + c.id + "\" in " + answers);
  c.kind = "calls";
  c.ground_truth = a->second.first["ground_truth"];
  return CheckAllowedLists(c.ground_truth, c.functions, a->second.second);
}

FcLoadError ErrorOf(const std::string& id, const std::string& where, const Status& st) {
  return {id, id.empty() ? "" : CategoryOf(id), where, st.message()};
}

// "BFCL_v4_live_simple.json" -> "live_simple"; "data_normal_atom_bool.json" -> "normal_atom_bool".
std::string FileCategory(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  if (base.size() > 5 && base.substr(base.size() - 5) == ".json") base = base.substr(0, base.size() - 5);
  if (base.size() > 6 && base.substr(base.size() - 6) == ".jsonl") base = base.substr(0, base.size() - 6);
  if (base.rfind("BFCL_v", 0) == 0) {
    size_t u = base.find('_', 5);
    return u == std::string::npos ? base : base.substr(u + 1);
  }
  if (base.rfind("data_", 0) == 0) return base.substr(5);
  return base;
}

}  // namespace

Expected<FcSuite> LoadBfcl(const std::string& questions, const std::string& answers) {
  FcSuite s;
  s.name = "bfcl:" + questions;
  json index;
  K2_ASSIGN_OR_RETURN(auto recs, ReadRecords(questions, &index));
  if (index.is_object()) {
    // format_sensitivity: {category: [ids of cases of other files]}, to be re-run under prompt-format
    // variants (system prompt wording, return format, doc format) that a tools API does not have.
    for (auto& [cat, ids] : index.items())
      for (auto& id : ids.is_array() ? ids : json::array()) {
        ++s.in_file;
        s.errors.push_back({id.is_string() ? id.get<std::string>() : id.dump(), FileCategory(questions), questions + ": " + cat,
                            "format_sensitivity: a prompt-format variant of " + (id.is_string() ? id.get<std::string>() : id.dump()) +
                                " (BFCL's non-scoring category for prompted models: return format, tool-call tags, doc format); "
                                "through a tools API the case is the same as its original, scored in its own category"});
      }
    return s;
  }
  std::vector<std::string> bad_answers;
  K2_ASSIGN_OR_RETURN(auto ans, ReadAnswers(answers, &bad_answers));
  // BFCL keeps the docs of its multi-turn classes in multi_turn_func_doc/ beside the question files.
  const std::string doc_dir = questions.substr(0, questions.find_last_of('/') + 1) + "multi_turn_func_doc";
  for (auto& r : recs) {
    ++s.in_file;
    if (!r.error.empty()) {
      s.errors.push_back({"", FileCategory(questions), r.where, r.error});
      continue;
    }
    auto id = IdOf(r.j, r.where);
    if (!id.ok()) {
      s.errors.push_back({"", FileCategory(questions), r.where, id.status().message()});
      continue;
    }
    FcCase c;
    c.id = *id;
    c.source = "bfcl";
    c.category = CategoryOf(*id);
    KeepFileOrder(r.j, r.raw);
    if (Status st = LoadBfclCase(r.j, r.where, ans, answers, doc_dir, c); !st.ok()) {
      s.errors.push_back(ErrorOf(*id, r.where, st));
      continue;
    }
    s.cases.push_back(std::move(c));
  }
  for (auto& b : bad_answers) s.errors.push_back({"", FileCategory(questions), answers, b});
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

// One ACEBench mile-stone message, "[f(a='x'), g()]": its calls. The text is split at top-level commas
// (outside quotes and brackets) after the outer brackets and blanks are dropped.
Expected<std::vector<std::string>> SplitMessage(const std::string& text, const std::string& where) {
  std::string t = rewards::Trim(text);
  if (!t.empty() && t.front() == '[') t.erase(0, 1);
  if (!t.empty() && t.back() == ']') t.pop_back();
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  char quote = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    char ch = t[i];
    cur += ch;
    if (quote) {
      if (ch == '\\' && i + 1 < t.size()) cur += t[++i];
      else if (ch == quote) quote = 0;
      continue;
    }
    if (ch == '\'' || ch == '"') quote = ch;
    else if (ch == '(' || ch == '[' || ch == '{') ++depth;
    else if (ch == ')' || ch == ']' || ch == '}') --depth;
    else if (ch == ',' && depth == 0) {
      cur.pop_back();
      out.push_back(rewards::Trim(cur));
      cur.clear();
    }
  }
  if (quote || depth != 0) return InvalidArgument(where + ": unbalanced quotes or brackets in \"" + text + "\"");
  if (!rewards::Trim(cur).empty()) out.push_back(rewards::Trim(cur));
  if (out.empty()) return InvalidArgument(where + ": expected calls such as \"[turn_on_wifi()]\", got \"" + text + "\"");
  return out;
}

// The file leaves apostrophes inside quoted values unescaped in a few messages ('Domino's'): an
// apostrophe between a letter and a lower-case letter is taken as text.
std::string EscapeApostrophes(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool inner = s[i] == '\'' && i > 0 && i + 1 < s.size() && std::isalpha(static_cast<unsigned char>(s[i - 1])) &&
                 std::islower(static_cast<unsigned char>(s[i + 1]));
    if (inner) out += '\\';
    out += s[i];
  }
  return out;
}

Expected<std::vector<rewards::FunctionCall>> ParseMileStone(const json& m, const FcCase& c, const std::string& where) {
  if (!m.is_string()) return InvalidArgument(where + ": expected a message string such as \"[turn_on_wifi()]\"");
  const std::string& text = m.get_ref<const std::string&>();
  auto parse = [&](const std::string& t) -> Expected<std::vector<rewards::FunctionCall>> {
    K2_ASSIGN_OR_RETURN(auto parts, SplitMessage(t, where));
    return ParseCalls(json(parts), c, where);
  };
  auto calls = parse(text);
  if (calls.ok()) return calls;
  std::string repaired = EscapeApostrophes(text);
  if (repaired != text)
    if (auto again = parse(repaired); again.ok()) return again;
  return calls.status();
}

Status LoadAceAgent(const json& j, const std::string& where, const json& answer, const std::string& aw, FcCase& c) {
  const json& ans_line_gt = answer["ground_truth"];
  c.turns = SplitTurns(c.messages);
  c.messages.clear();
  K2_RETURN_IF_ERROR(LoadStateWorld(j, where, c));
  // ground_truth: [{class: {...}}, ...] or {class: {...}}
  json entries = ans_line_gt.is_array() ? ans_line_gt : json::array({ans_line_gt});
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string w = aw + ": ground_truth[" + std::to_string(i) + "]";
    if (!entries[i].is_object() || entries[i].size() != 1) return InvalidArgument(w + ": expected {class: {attribute: value}}");
    if (!entries[i].begin().value().is_object()) return InvalidArgument(w + "." + entries[i].begin().key() + ": expected object of attributes");
  }
  c.expected_state = entries;
  if (!answer.contains("mile_stone")) return InvalidArgument(aw + ": mile_stone: missing (the reference call path)");
  const json& ms = answer["mile_stone"];
  if (!ms.is_array() || ms.empty()) return InvalidArgument(aw + ": mile_stone: expected a non-empty array of messages");
  json alternatives = ms[0].is_array() ? ms : json::array({ms});
  for (size_t a = 0; a < alternatives.size(); ++a) {
    std::string w = aw + ": mile_stone" + (ms[0].is_array() ? "[" + std::to_string(a) + "]" : "");
    if (!alternatives[a].is_array()) return InvalidArgument(w + ": expected an array of messages");
    std::vector<std::vector<rewards::FunctionCall>> path;
    for (size_t i = 0; i < alternatives[a].size(); ++i) {
      K2_ASSIGN_OR_RETURN(auto calls, ParseMileStone(alternatives[a][i], c, w + "[" + std::to_string(i) + "]"));
      path.push_back(std::move(calls));
    }
    c.milestones.push_back(std::move(path));
  }
  // A path that does not reach the expected state is the file's (ACEBench's own classes replay it to the
  // same state): the case still loads, since a policy that does the task right reaches that state.
  return Status::Ok();
}

}  // namespace

namespace {

// ACEBench ground truth of a normal case: one {name_N: {param: value}} or a list of them (alternatives).
Expected<json> AceAlternatives(const json& gt, const json& functions, const std::string& aw) {
  json alts = gt.is_array() ? gt : json::array({gt});
  json out = json::array();
  for (size_t a = 0; a < alts.size(); ++a) {
    std::string w = aw + ": ground_truth" + (gt.is_array() ? "[" + std::to_string(a) + "]" : "");
    if (!alts[a].is_object() || alts[a].empty()) return InvalidArgument(w + ": expected {\"func\": {param: value}, ...}");
    json calls = json::array();
    for (auto& [name, params] : alts[a].items()) {
      if (!params.is_object()) return InvalidArgument(w + "." + name + ": expected an object of parameter values");
      std::string base = rewards::AceBaseName(name, functions);
      bool known = std::any_of(functions.begin(), functions.end(), [&](const json& f) { return f["name"] == base; });
      if (!known) return InvalidArgument(w + "." + name + ": function \"" + base + "\" is not among the case's functions");
      calls.push_back({{name, params}});
    }
    out.push_back(calls);
  }
  return out;
}

// ACEBench adds the current time (normal and special prompts) or the user's profile (preference) to its
// system prompt; special cases also get the three reply forms its checker looks for.
void AceSystemMessage(const json& j, FcCase& c) {
  std::string sys;
  if (j.contains("profile") && j["profile"].is_string()) sys += "User profile:\n" + j["profile"].get<std::string>() + "\n";
  if (j.contains("time") && j["time"].is_string() && !j["time"].get<std::string>().empty())
    sys += "Current time: " + j["time"].get<std::string>() + "\n";
  if (c.category.rfind("special", 0) == 0)
    sys +=
        "If a parameter value in the request does not fit the function's definition, reply "
        "\"There is incorrect value (VALUE) for the parameters (KEY) in the conversation history.\" If the request lacks "
        "values the function requires, reply \"Missing necessary parameters (KEY1, KEY2, ...) for the api (FUNCTION)\". If no "
        "function can serve the request, reply \"Due to the limitations of the function, I cannot solve this problem.\" "
        "Otherwise call the functions.\n";
  if (!sys.empty()) c.messages.insert(c.messages.begin(), Message{"system", sys});
}

Status LoadAceCase(const json& j, const std::string& where, const Answers& ans, const std::string& answers, FcCase& c) {
  auto q = j.find("question");
  if (q == j.end() || !q->is_string()) return InvalidArgument(where + ": question: expected string");
  K2_ASSIGN_OR_RETURN(c.messages, ParseAceDialog(q->get<std::string>(), where));
  auto a = ans.find(c.id);
  if (c.category.rfind("agent", 0) == 0) {
    if (a == ans.end()) return InvalidArgument(where + ": no answer with id \"" + c.id + "\" in " + answers);
    return LoadAceAgent(j, where, a->second.first, a->second.second, c);
  }
  if (!j.contains("function")) return InvalidArgument(where + ": function: missing");
  c.functions = j["function"].is_object() ? json::array({j["function"]}) : j["function"];
  K2_RETURN_IF_ERROR(CheckFunctions(c.functions, where));
  AceSystemMessage(j, c);
  if (c.category.find("irrelevant") != std::string::npos) {
    c.kind = "no_call";
    return Status::Ok();
  }
  if (a == ans.end()) return InvalidArgument(where + ": no answer with id \"" + c.id + "\" in " + answers);
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
    return Status::Ok();
  }
  c.kind = "calls";
  K2_ASSIGN_OR_RETURN(c.ground_truth, AceAlternatives(gt, c.functions, aw));
  return Status::Ok();
}

}  // namespace

Expected<FcSuite> LoadAceBench(const std::string& data, const std::string& answers) {
  FcSuite s;
  s.name = "acebench:" + data;
  K2_ASSIGN_OR_RETURN(auto recs, ReadRecords(data));
  std::vector<std::string> bad_answers;
  K2_ASSIGN_OR_RETURN(auto ans, ReadAnswers(answers, &bad_answers));
  for (auto& r : recs) {
    ++s.in_file;
    if (!r.error.empty()) {
      s.errors.push_back({"", FileCategory(data), r.where, r.error});
      continue;
    }
    auto id = IdOf(r.j, r.where);
    if (!id.ok()) {
      s.errors.push_back({"", FileCategory(data), r.where, id.status().message()});
      continue;
    }
    FcCase c;
    c.id = *id;
    c.source = "acebench";
    c.category = CategoryOf(*id);
    if (Status st = LoadAceCase(r.j, r.where, ans, answers, c); !st.ok()) {
      s.errors.push_back(ErrorOf(*id, r.where, st));
      continue;
    }
    s.cases.push_back(std::move(c));
  }
  for (auto& b : bad_answers) s.errors.push_back({"", FileCategory(data), answers, b});
  return s;
}

namespace {

Expected<std::vector<std::string>> JsonFiles(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (it->is_regular_file() && it->path().extension() == ".json") out.push_back(it->path().string());
  if (ec) return InvalidArgument(dir + ": cannot list the folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

void Append(FcSuite& into, FcSuite&& part) {
  into.in_file += part.in_file;
  for (auto& c : part.cases) into.cases.push_back(std::move(c));
  for (auto& e : part.errors) into.errors.push_back(std::move(e));
}

}  // namespace

Expected<FcSuite> LoadBfclDir(const std::string& dir) {
  FcSuite s;
  s.name = "bfcl:" + dir;
  int loaded_files = 0;
  K2_ASSIGN_OR_RETURN(auto files, JsonFiles(dir));
  for (auto& f : files) {
    std::string base = f.substr(f.find_last_of('/') + 1);
    if (base.rfind("BFCL_v", 0) != 0) continue;
    std::string ans = dir + "/possible_answer/" + base;
    K2_ASSIGN_OR_RETURN(FcSuite part, LoadBfcl(f, std::filesystem::exists(ans) ? ans : ""));
    Append(s, std::move(part));
    ++loaded_files;
  }
  if (loaded_files == 0) return InvalidArgument(dir + ": no BFCL question files (BFCL_v*_<category>.json) in the folder");
  return s;
}

Expected<FcSuite> LoadAceBenchDir(const std::string& dir) {
  FcSuite s;
  s.name = "acebench:" + dir;
  int loaded_files = 0;
  K2_ASSIGN_OR_RETURN(auto files, JsonFiles(dir));
  for (auto& f : files) {
    std::string base = f.substr(f.find_last_of('/') + 1);
    if (base.rfind("data_", 0) != 0) continue;
    std::string ans = dir + "/possible_answer/" + base;
    K2_ASSIGN_OR_RETURN(FcSuite part, LoadAceBench(f, std::filesystem::exists(ans) ? ans : ""));
    Append(s, std::move(part));
    ++loaded_files;
  }
  if (loaded_files == 0) return InvalidArgument(dir + ": no ACEBench data files (data_<category>.json) in the folder");
  return s;
}

}  // namespace k2::eval
