// BFCL/ACEBench-style AST checker: per-call name/param/type/value checks and an order-insensitive
// matching of parallel calls (backtracking over a small bipartite graph).
#include "rewards/ast_match.h"

#include <cmath>

#include "rewards/text_util.h"

namespace k2::rewards {

std::string StandardizeString(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' || c == ',' || c == '.' || c == '/' || c == '-' || c == '_' || c == '*' || c == '^') continue;
    out.push_back(c == '\'' ? '"' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

namespace {

const json* FindFunction(const json& functions, const std::string& name) {
  if (!functions.is_array()) return nullptr;
  for (auto& f : functions)
    if (f.is_object() && f.value("name", std::string()) == name) return &f;
  return nullptr;
}

// BFCL types (Python names) and JSON Schema names.
bool TypeMatches(const json& v, const json& schema, std::string* why) {
  if (!schema.is_object() || !schema.contains("type") || !schema["type"].is_string()) return true;
  std::string t = schema["type"].get<std::string>();
  bool ok = true;
  if (t == "string") ok = v.is_string();
  else if (t == "integer") ok = v.is_number_integer();
  else if (t == "float" || t == "number") ok = v.is_number();  // an int is a valid float (BFCL does the same)
  else if (t == "boolean") ok = v.is_boolean();
  else if (t == "array" || t == "list" || t == "tuple") {
    ok = v.is_array();
    if (ok && schema.contains("items"))
      for (auto& e : v)
        if (!TypeMatches(e, schema["items"], why)) return false;
  } else if (t == "dict" || t == "object") ok = v.is_object();
  if (!ok && why) *why = "expected " + t + ", got " + JsonTypeName(v) + " " + v.dump();
  return ok;
}

bool ValueEquals(const json& model, const json& allowed) {
  if (model.is_string() && allowed.is_string())
    return StandardizeString(model.get<std::string>()) == StandardizeString(allowed.get<std::string>());
  if (model.is_number() && allowed.is_number() && !model.is_boolean() && !allowed.is_boolean()) {
    if (model.is_number_integer() && allowed.is_number_integer()) return model.get<int64_t>() == allowed.get<int64_t>();
    return model.get<double>() == allowed.get<double>();
  }
  if (model.is_array() && allowed.is_array()) {
    if (model.size() != allowed.size()) return false;
    for (size_t i = 0; i < model.size(); ++i)
      if (!ValueEquals(model[i], allowed[i])) return false;
    return true;
  }
  if (model.is_object() && allowed.is_object()) {
    // Ground-truth dicts give allowed lists per key (BFCL); a key may be omitted when "" is allowed.
    for (auto& [k, v] : model.items())
      if (!allowed.contains(k)) return false;
    for (auto& [k, av] : allowed.items()) {
      bool omit_ok = av.is_array() && std::any_of(av.begin(), av.end(), [](const json& x) { return x == ""; });
      if (!model.contains(k)) {
        if (!omit_ok) return false;
        continue;
      }
      if (av.is_array() && !(model[k].is_array() && !av.empty() && !av[0].is_array() && av == model[k])) {
        bool any = false;
        for (auto& a : av) any |= ValueEquals(model[k], a);
        if (!any && !ValueEquals(model[k], av)) return false;
      } else if (!ValueEquals(model[k], av)) {
        return false;
      }
    }
    return true;
  }
  return model == allowed;
}

}  // namespace

json ExactToAllowedLists(const json& gt) {
  json out = json::array();
  if (!gt.is_array()) return out;
  for (auto& entry : gt) {
    json e = json::object();
    if (entry.is_object()) {
      for (auto& [fname, params] : entry.items()) {
        json p = json::object();
        if (params.is_object())
          for (auto& [k, v] : params.items()) p[k] = json::array({v});
        e[fname] = p;
      }
    }
    out.push_back(e);
  }
  return out;
}

AstResult MatchCall(const FunctionCall& call, const json& functions, const json& gt_entry) {
  if (!gt_entry.is_object() || gt_entry.size() != 1) return {false, "ground truth entry: expected {name: {params}}"};
  const std::string& want = gt_entry.begin().key();
  const json& allowed = gt_entry.begin().value();
  if (call.name != want) return {false, "function name " + call.name + " != " + want};
  if (!call.arguments.is_object()) return {false, want + ": arguments are not a JSON object"};
  const json* doc = FindFunction(functions, want);
  if (!doc) return {false, want + ": no function doc with this name"};
  json params = doc->value("parameters", json::object());
  json props = params.value("properties", json::object());
  json required = params.value("required", json::array());
  for (auto& r : required)
    if (r.is_string() && !call.arguments.contains(r.get<std::string>()))
      return {false, want + ": required parameter \"" + r.get<std::string>() + "\" missing"};
  for (auto& [k, v] : call.arguments.items()) {
    if (!props.contains(k)) return {false, want + ": unexpected parameter \"" + k + "\" (not in the function doc)"};
    if (!allowed.is_object() || !allowed.contains(k))
      return {false, want + ": unexpected parameter \"" + k + "\" (not in the ground truth)"};
    std::string why;
    if (!TypeMatches(v, props[k], &why)) return {false, want + "." + k + ": " + why};
    const json& ok_values = allowed[k];
    bool any = false;
    if (ok_values.is_array()) {
      for (auto& a : ok_values) any |= ValueEquals(v, a);
    } else {
      any = ValueEquals(v, ok_values);
    }
    if (!any) return {false, want + "." + k + ": value " + v.dump() + " not in allowed " + ok_values.dump()};
  }
  if (allowed.is_object()) {
    for (auto& [k, av] : allowed.items()) {
      if (call.arguments.contains(k)) continue;
      bool omit_ok = av.is_array() && std::any_of(av.begin(), av.end(), [](const json& x) { return x == ""; });
      if (!omit_ok) return {false, want + ": parameter \"" + k + "\" missing (ground truth requires one of " + av.dump() + ")"};
    }
  }
  return {true, want + ": match"};
}

namespace {

bool Assign(size_t i, const std::vector<std::vector<bool>>& ok, std::vector<bool>& used) {
  if (i == ok.size()) return true;
  for (size_t j = 0; j < ok[i].size(); ++j) {
    if (used[j] || !ok[i][j]) continue;
    used[j] = true;
    if (Assign(i + 1, ok, used)) return true;
    used[j] = false;
  }
  return false;
}

}  // namespace

AstResult MatchCalls(const std::vector<FunctionCall>& calls, const json& functions, const json& gt) {
  if (!gt.is_array()) return {false, "ground truth: expected array"};
  if (calls.size() != gt.size())
    return {false, std::to_string(calls.size()) + " call(s), expected " + std::to_string(gt.size())};
  if (gt.empty()) return {true, "no call expected, none made"};
  std::vector<std::vector<bool>> ok(gt.size(), std::vector<bool>(calls.size()));
  std::string first_fail;
  for (size_t i = 0; i < gt.size(); ++i) {
    bool any = false;
    std::string fail;
    for (size_t j = 0; j < calls.size(); ++j) {
      AstResult r = MatchCall(calls[j], functions, gt[i]);
      ok[i][j] = r.ok;
      any |= r.ok;
      // The most informative failure is the one against the call with the same name.
      if (!r.ok && (fail.empty() || calls[j].name == (gt[i].is_object() && !gt[i].empty() ? gt[i].begin().key() : "")))
        fail = r.detail;
    }
    if (!any && first_fail.empty()) first_fail = "expected call #" + std::to_string(i) + " unmatched: " + fail;
  }
  if (!first_fail.empty()) return {false, first_fail};
  std::vector<bool> used(calls.size());
  if (!Assign(0, ok, used)) return {false, "calls match individually but not one-to-one"};
  return {true, std::to_string(calls.size()) + " call(s) match"};
}

namespace {

class AstReward : public Reward {
 public:
  explicit AstReward(bool exact) : exact_(exact) {}
  std::string name() const override { return "ast"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    const json& t = in.task;
    if (!t.contains("functions") || !t["functions"].is_array())
      return InvalidArgument("ast: task.functions: expected array of function docs");
    if (!t.contains("ground_truth") || !t["ground_truth"].is_array())
      return InvalidArgument("ast: task.ground_truth: expected array of {name: {param: allowed}}");
    bool exact = exact_;
    if (auto f = t.find("format"); f != t.end()) {
      if (!f->is_string() || (*f != "bfcl" && *f != "exact")) return InvalidArgument("ast: task.format: expected \"bfcl\" or \"exact\"");
      exact = *f == "exact";
    }
    json gt = exact ? ExactToAllowedLists(t["ground_truth"]) : t["ground_truth"];
    std::vector<FunctionCall> calls;
    const Message* last = nullptr;
    for (auto it = in.messages.rbegin(); it != in.messages.rend(); ++it)
      if (it->role == "assistant") {
        last = &*it;
        break;
      }
    RewardResult r;
    if (last && !last->tool_calls.empty()) {
      for (auto& c : last->tool_calls) {
        auto a = c.ParsedArguments();
        calls.push_back({c.name, a ? *a : json()});
      }
    } else if (last) {
      // Calls written as JSON text in the content (prompted function calling).
      auto j = ParseJson(Trim(last->content), "response");
      if (j.ok()) {
        json arr = j->is_array() ? *j : json::array({*j});
        for (auto& c : arr) {
          if (c.is_object() && c.contains("name") && c["name"].is_string())
            calls.push_back({c["name"].get<std::string>(), c.value("arguments", json())});
        }
      }
    }
    AstResult m = MatchCalls(calls, t["functions"], gt);
    r.value = m.ok ? 1 : 0;
    r.components["calls"] = static_cast<double>(calls.size());
    r.explanation = m.detail;
    return r;
  }

 private:
  bool exact_;
};

}  // namespace

Expected<std::unique_ptr<Reward>> MakeAstReward(const json& config, const std::string& where) {
  bool exact = false;
  for (auto& [k, v] : config.items()) {
    if (k == "type") continue;
    if (k == "format" && v.is_string() && (v == "bfcl" || v == "exact")) exact = v == "exact";
    else return InvalidArgument(where + "." + k + ": unknown key or wrong type (expected format: \"bfcl\"|\"exact\")");
  }
  return std::unique_ptr<Reward>(new AstReward(exact));
}

}  // namespace k2::rewards
