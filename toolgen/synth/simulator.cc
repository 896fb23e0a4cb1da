// Schema-driven simulation of real tools (see simulator.h): a value generator for JSON Schema, a
// pattern sampler, and the stateful simulator that remembers created objects.
#include "toolgen/synth/simulator.h"

#include <algorithm>
#include <cctype>

#include "toolgen/schema.h"
#include "toolgen/synth/model.h"

namespace k2::toolgen::synth {
namespace {

// ---- pattern sampler: a tiny recursive-descent generator over the regex syntax it supports ----
struct PatGen {
  const std::string& p;
  Rng& r;
  size_t i = 0;
  std::string Alt() {
    std::vector<std::string> branches{Seq()};
    while (i < p.size() && p[i] == '|') {
      ++i;
      branches.push_back(Seq());
    }
    return branches[r.Below(branches.size())];
  }
  std::string Seq() {
    std::string out;
    while (i < p.size() && p[i] != '|' && p[i] != ')') {
      if (p[i] == '^' || p[i] == '$') {
        ++i;
        continue;
      }
      size_t start = i;
      std::string (PatGen::*atom_fn)() = &PatGen::Atom;
      (void)atom_fn;
      // Parse the atom once, then repeat by re-parsing from `start` (atoms are cheap and regenerating
      // each repetition gives varied characters).
      std::string first = Atom();
      size_t after = i;
      auto [lo, hi] = Quant();
      size_t end = i;
      int n = lo + static_cast<int>(r.Below(static_cast<uint64_t>(hi - lo + 1)));
      for (int k = 0; k < n; ++k) {
        if (k == 0) {
          out += first;
        } else {
          i = start;
          out += Atom();
        }
      }
      i = end;
      (void)after;
    }
    return out;
  }
  std::pair<int, int> Quant() {
    if (i >= p.size()) return {1, 1};
    char c = p[i];
    if (c == '?') return ++i, std::pair{0, 1};
    if (c == '*') return ++i, std::pair{0, 3};
    if (c == '+') return ++i, std::pair{1, 4};
    if (c == '{') {
      size_t close = p.find('}', i);
      if (close == std::string::npos) return {1, 1};
      std::string body = p.substr(i + 1, close - i - 1);
      i = close + 1;
      size_t comma = body.find(',');
      int lo = std::atoi(body.substr(0, comma).c_str());
      int hi = comma == std::string::npos ? lo : (comma + 1 < body.size() ? std::atoi(body.substr(comma + 1).c_str()) : lo + 3);
      return {lo, std::max(lo, std::min(hi, lo + 8))};
    }
    return {1, 1};
  }
  std::string Class(const std::string& esc) {
    static const std::string kDigits = "0123456789", kWord = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    if (esc == "d") return kDigits;
    if (esc == "w") return kWord;
    if (esc == "s") return " ";
    return esc;
  }
  std::string Atom() {
    if (i >= p.size()) return "";
    char c = p[i++];
    if (c == '(') {
      if (i + 1 < p.size() && p[i] == '?' && p[i + 1] == ':') i += 2;
      std::string s = Alt();
      if (i < p.size() && p[i] == ')') ++i;
      return s;
    }
    if (c == '\\' && i < p.size()) {
      std::string set = Class(std::string(1, p[i++]));
      return std::string(1, set[r.Below(set.size())]);
    }
    if (c == '.') return std::string(1, static_cast<char>('a' + r.Below(26)));
    if (c == '[') {
      bool negate = i < p.size() && p[i] == '^';
      if (negate) ++i;
      std::string set;
      while (i < p.size() && p[i] != ']') {
        char a = p[i++];
        if (a == '\\' && i < p.size()) {
          set += Class(std::string(1, p[i++]));
          continue;
        }
        if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
          char b = p[i + 1];
          for (char x = a; x <= b && x >= a; ++x) set += x;
          i += 2;
        } else {
          set += a;
        }
      }
      if (i < p.size()) ++i;
      if (negate || set.empty()) return "x";  // a negated class: any letter outside it is likely fine
      return std::string(1, set[r.Below(set.size())]);
    }
    return std::string(1, c);
  }
};

const json* Resolve(const json& s, const json& root) {
  if (!s.is_object() || !s.contains("$ref") || !s["$ref"].is_string()) return &s;
  std::string ref = s["$ref"];
  if (ref.rfind("#", 0) != 0) return &s;
  try {
    // json_pointer parsing can throw on malformed pointers: contained here, never escapes.
    const json* t = &root.at(json::json_pointer(ref.substr(1)));
    return t;
  } catch (...) {
    return &s;
  }
}

std::string FormatValue(const std::string& f, Rng& r) {
  if (f == "date") return DateString(20000 + static_cast<int64_t>(r.Below(2000)));
  if (f == "date-time") return DateString(20000 + static_cast<int64_t>(r.Below(2000))) + "T12:00:00Z";
  if (f == "time") return "12:00:00Z";
  if (f == "email") return "user" + std::to_string(r.Below(1000)) + "@example.com";
  if (f == "uri" || f == "url") return "https://example.com/item/" + std::to_string(r.Below(10000));
  if (f == "uuid") {
    static const char* kHex = "0123456789abcdef";
    std::string s;
    for (int k = 0; k < 32; ++k) {
      if (k == 8 || k == 12 || k == 16 || k == 20) s += '-';
      s += kHex[r.Below(16)];
    }
    return s;
  }
  if (f == "ipv4") return "10.0." + std::to_string(r.Below(256)) + "." + std::to_string(r.Below(256));
  if (f == "hostname") return "host" + std::to_string(r.Below(100)) + ".example.com";
  return "";
}

}  // namespace

std::string StringFromPattern(const std::string& pattern, Rng& r) {
  PatGen g{pattern, r};
  return g.Alt();
}

json ValueFromSchema(const json& schema_in, const json& root, Rng& r, int depth) {
  const json& schema = *Resolve(schema_in, root);
  if (schema.is_boolean()) return schema.get<bool>() ? json("value") : json(nullptr);
  if (!schema.is_object()) return nullptr;
  if (schema.contains("const")) return schema["const"];
  if (schema.contains("enum") && schema["enum"].is_array() && !schema["enum"].empty())
    return schema["enum"][r.Below(schema["enum"].size())];
  if (schema.contains("default") && r.Bernoulli(0.3)) return schema["default"];
  for (const char* k : {"anyOf", "oneOf"})
    if (schema.contains(k) && schema[k].is_array() && !schema[k].empty()) return ValueFromSchema(schema[k][0], root, r, depth + 1);
  if (schema.contains("allOf") && schema["allOf"].is_array()) {
    json merged = json::object();
    for (auto& sub : schema["allOf"]) {
      json v = ValueFromSchema(sub, root, r, depth + 1);
      if (v.is_object()) merged.update(v);
      else return v;
    }
    return merged;
  }
  std::string type = "object";
  if (schema.contains("type")) {
    const json& t = schema["type"];
    if (t.is_string()) type = t;
    else if (t.is_array() && !t.empty()) type = t[0].is_string() && t[0] != "null" ? t[0] : (t.size() > 1 ? t[1] : t[0]);
  } else if (schema.contains("items")) {
    type = "array";
  } else if (!schema.contains("properties")) {
    type = "string";
  }
  auto num = [&](const char* k, double dflt) { return schema.contains(k) && schema[k].is_number() ? schema[k].get<double>() : dflt; };
  if (type == "string") {
    if (schema.contains("format") && schema["format"].is_string()) {
      std::string v = FormatValue(schema["format"], r);
      if (!v.empty()) return v;
    }
    std::string s = schema.contains("pattern") && schema["pattern"].is_string() ? StringFromPattern(schema["pattern"], r)
                                                                                : "sample-" + std::to_string(r.Below(1000));
    size_t minl = static_cast<size_t>(num("minLength", 0)), maxl = static_cast<size_t>(num("maxLength", 1e9));
    while (s.size() < minl) s += 'x';
    if (s.size() > maxl) s.resize(maxl);
    return s;
  }
  if (type == "integer" || type == "number") {
    double lo = num("minimum", 0), hi = num("maximum", lo + 100);
    if (schema.contains("exclusiveMinimum") && schema["exclusiveMinimum"].is_number()) lo = schema["exclusiveMinimum"].get<double>() + 1;
    if (schema.contains("exclusiveMaximum") && schema["exclusiveMaximum"].is_number()) hi = schema["exclusiveMaximum"].get<double>() - 1;
    if (hi < lo) hi = lo;
    if (type == "integer") return static_cast<int64_t>(std::ceil(lo)) + static_cast<int64_t>(r.Below(static_cast<uint64_t>(std::floor(hi) - std::ceil(lo) + 1)));
    return std::round(r.Uniform(lo, hi) * 100) / 100;
  }
  if (type == "boolean") return r.Bernoulli(0.5);
  if (type == "null") return nullptr;
  if (type == "array") {
    size_t lo = static_cast<size_t>(num("minItems", 1)), hi = static_cast<size_t>(num("maxItems", lo + 2));
    size_t n = depth > 4 ? lo : lo + r.Below(hi - lo + 1);
    json a = json::array();
    const json items = schema.contains("items") ? schema["items"] : json::object();
    for (size_t k = 0; k < n; ++k) a.push_back(ValueFromSchema(items.is_array() ? (k < items.size() ? items[k] : json::object()) : items, root, r, depth + 1));
    return a;
  }
  // object
  json o = json::object();
  if (schema.contains("properties") && schema["properties"].is_object()) {
    std::vector<std::string> req;
    if (schema.contains("required") && schema["required"].is_array())
      for (auto& k : schema["required"])
        if (k.is_string()) req.push_back(k);
    for (auto& [k, sub] : schema["properties"].items()) {
      bool required = std::find(req.begin(), req.end(), k) != req.end();
      if (required || (depth < 3 && r.Bernoulli(0.5))) o[k] = ValueFromSchema(sub, root, r, depth + 1);
    }
  }
  return o;
}

ToolIntent GuessIntent(const std::string& name) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto has = [&](std::initializer_list<const char*> words) {
    for (auto* w : words)
      if (n.find(w) != std::string::npos) return true;
    return false;
  };
  if (has({"delete", "remove", "cancel", "destroy", "drop"})) return ToolIntent::kDelete;
  if (has({"create", "add", "insert", "new", "post", "upload", "register", "book", "schedule", "save", "write"}))
    return ToolIntent::kCreate;
  if (has({"update", "edit", "modify", "set", "patch", "rename", "move"})) return ToolIntent::kUpdate;
  if (has({"list", "search", "find", "query", "browse", "filter"})) return ToolIntent::kList;
  if (has({"get", "read", "fetch", "retrieve", "show", "describe", "view", "load", "open"})) return ToolIntent::kRead;
  return ToolIntent::kOther;
}

SchemaSimulator::SchemaSimulator(std::vector<CompiledTool> tools, uint64_t seed, FaultConfig faults)
    : rng_(Rng(seed).Fork("schema-simulator")), faults_(faults) {
  for (auto& t : tools) tools_.emplace(t.spec.name, std::move(t));
}

json SchemaSimulator::State() const {
  json objs = json::object();
  for (auto& [id, o] : objects_) objs[id] = o;
  return {{"objects", objs}, {"calls", calls_}};
}

CallResult SchemaSimulator::Call(const std::string& name, const json& args) {
  ++calls_;
  double u = rng_.Uniform();
  auto it = tools_.find(name);
  if (it == tools_.end()) return {"not_found", "unknown tool " + name, nullptr, true};
  const CompiledTool& t = it->second;
  if (Status s = t.input->Validate(args); !s.ok()) return {"invalid_arguments", s.message(), nullptr, true};
  if (u < faults_.timeout_rate) return {"timeout", name + " did not answer in time", nullptr, true};
  if (u < faults_.timeout_rate + faults_.transient_rate) return {"transient", "service temporarily unavailable; retry", nullptr, true};
  // A remembered object referenced by any string argument.
  std::string ref;
  for (auto& [k, v] : args.items())
    if (v.is_string() && objects_.count(v.get<std::string>())) ref = v.get<std::string>();
  ToolIntent intent = GuessIntent(name);
  json value;
  if (t.output) {
    // Generated from outputSchema, remembered fields overlaid where names match, then validated.
    bool ok = false;
    for (int attempt = 0; attempt < 4 && !ok; ++attempt) {
      value = ValueFromSchema(t.spec.output_schema.value(), t.spec.output_schema.value(), rng_);
      if (!ref.empty() && value.is_object())
        for (auto& [k, v] : objects_[ref]["value"].items())
          if (value.contains(k) && value[k].type() == v.type()) value[k] = v;
      ok = t.output->Validate(value).ok();
    }
    if (!ok) ++nonconforming_;
    if (!ok) value = nullptr;  // no structuredContent rather than one that breaks the declared schema
  }
  json summary;
  switch (intent) {
    case ToolIntent::kCreate: {
      std::string id = "sim-" + std::to_string(next_id_++);
      json obj = args;
      obj["id"] = id;
      objects_[id] = {{"tool", name}, {"value", obj}};
      summary = {{"created", obj}};
      break;
    }
    case ToolIntent::kRead:
      if (!ref.empty()) summary = {{"found", objects_[ref]["value"]}};
      else summary = {{"result", ValueFromSchema(json::object({{"type", "string"}}), json::object(), rng_)}};
      break;
    case ToolIntent::kList: {
      json arr = json::array();
      for (auto& [id, o] : objects_) arr.push_back(o["value"]);
      summary = {{"results", arr}, {"count", arr.size()}};
      break;
    }
    case ToolIntent::kUpdate:
      if (!ref.empty()) {
        for (auto& [k, v] : args.items()) objects_[ref]["value"][k] = v;
        objects_[ref]["value"]["id"] = ref;
        summary = {{"updated", objects_[ref]["value"]}};
      } else {
        summary = {{"updated", args}};
      }
      break;
    case ToolIntent::kDelete:
      if (!ref.empty()) {
        objects_.erase(ref);
        summary = {{"deleted", ref}};
      } else {
        summary = {{"deleted", nullptr}};
      }
      break;
    case ToolIntent::kOther: summary = {{"status", "ok"}, {"echo", args}}; break;
  }
  CallResult res;
  if (!value.is_null()) res.value = value;
  else res.value = json{{"simulated", true}, {"tool", name}, {"result", summary}};
  res.simulated = true;
  return res;
}

}  // namespace k2::toolgen::synth
