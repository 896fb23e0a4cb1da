// Schema compilation and validation: our structural check + 2020-12 -> draft-07 translation in front of
// valijson (which implements draft-07 only), and JSON-pointer error reporting behind it.
//
// Why a front end before valijson: (1) valijson reports a malformed schema with a message but without the
// schema pointer, and aborts or throws on some shapes; our walk names the pointer first. (2) valijson 1.0
// knows draft-07 only; real MCP tools also send prefixItems, $defs, dependentRequired/dependentSchemas and
// the draft-04 boolean exclusiveMinimum/Maximum, which we rewrite to their exact draft-07 equivalents.
// (3) valijson runs `pattern` and `format` on std::regex, which backtracks without bound (`^(a+)+$`
// hangs) and recurses once per character (100 KB overflows the stack); tool schemas come from MCP servers
// and instances from model output, so both are hostile. `pattern` and the regex-checked formats are
// rewritten to our own keywords, validated on PCRE2 under match/depth/heap limits (a limit hit is a
// validation error naming the pointer); every pattern is compiled at Compile, so a bad one is a
// registration error. patternProperties stays on valijson (its interplay with additionalProperties), behind
// a PCRE2 pre-check of every property name of the instance (see Validate).
#define VALIJSON_USE_EXCEPTIONS 1
#define PCRE2_CODE_UNIT_WIDTH 8

#include "toolgen/schema.h"

#include "core/json_limits.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <pcre2.h>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/constraint_builder.hpp>
#include <valijson/constraints/concrete_constraints.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace k2::toolgen {

namespace {

// One ECMA-262-style regex on PCRE2. `$` matches only at the very end (ECMA without the m flag), \uXXXX
// escapes work, and subjects are UTF-8 (invalid sequences fail to match instead of erroring).
class Regex {
 public:
  enum class Result { kMatch, kNoMatch, kLimit };

  static Expected<std::shared_ptr<const Regex>> Compile(const std::string& pattern) {
    if (pattern.size() > kMaxPatternBytes)
      return InvalidArgument("pattern of " + std::to_string(pattern.size()) + " bytes is over the limit of " +
                             std::to_string(kMaxPatternBytes));
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX,
                                     &err, &off, nullptr);
    if (!code) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      return InvalidArgument("pattern " + json(pattern).dump(-1, ' ', false, json::error_handler_t::replace) +
                             " is not a valid regex (" + reinterpret_cast<const char*>(buf) + " at offset " +
                             std::to_string(off) + ")");
    }
    return std::shared_ptr<const Regex>(new Regex(code, pattern));
  }

  // Searches (unanchored, as JSON Schema `pattern` does) under the match limits.
  Result Search(std::string_view subject) const {
    pcre2_match_context* mctx = pcre2_match_context_create(nullptr);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    if (!mctx || !md) {
      pcre2_match_context_free(mctx);
      pcre2_match_data_free(md);
      return Result::kLimit;  // out of memory: refuse rather than pass
    }
    pcre2_set_match_limit(mctx, kMatchLimit);
    pcre2_set_depth_limit(mctx, kDepthLimit);
    pcre2_set_heap_limit(mctx, kHeapLimitKiB);
    int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, md, mctx);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    if (rc >= 0) return Result::kMatch;
    if (rc == PCRE2_ERROR_NOMATCH) return Result::kNoMatch;
    return Result::kLimit;  // match/depth/heap limit, or any other matcher error
  }

  const std::string& pattern() const { return pattern_; }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Bounds of one match: PCRE2 backtracks on the heap (no stack recursion), and these stop catastrophic
  // backtracking in a few milliseconds. Ordinary patterns over kilobyte strings stay far below them.
  static constexpr uint32_t kMatchLimit = 1'000'000;  // calls of PCRE2's internal match()
  static constexpr uint32_t kDepthLimit = 10'000;     // nested backtracking points
  static constexpr uint32_t kHeapLimitKiB = 16 * 1024;
  static constexpr size_t kMaxPatternBytes = 16 * 1024;

 private:
  Regex(pcre2_code* code, std::string pattern) : code_(code), pattern_(std::move(pattern)) {}
  pcre2_code* code_;
  std::string pattern_;
};

std::string LimitMessage(const Regex& re) {
  return "pattern " + json(re.pattern()).dump(-1, ' ', false, json::error_handler_t::replace) +
         " hit the regex match limit (" + std::to_string(Regex::kMatchLimit) + " steps, depth " +
         std::to_string(Regex::kDepthLimit) + "); the value is rejected";
}

// Our keywords in the translated schema; valijson calls the constraints below for them.
constexpr const char* kPatternKeyword = "x-k2-pattern";
constexpr const char* kFormatKeyword = "x-k2-format";

// `pattern` on PCRE2. Non-strings pass (the keyword applies to strings only).
class PatternConstraint : public valijson::constraints::PolyConstraint {
 public:
  explicit PatternConstraint(std::shared_ptr<const Regex> re) : re_(std::move(re)) {}

  bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                valijson::ValidationResults* results) const override {
    if (!target.isString()) return true;
    switch (re_->Search(target.getString())) {
      case Regex::Result::kMatch: return true;
      case Regex::Result::kNoMatch:
        if (results)
          results->pushError(context, "does not match pattern " +
                                          json(re_->pattern()).dump(-1, ' ', false, json::error_handler_t::replace));
        return false;
      case Regex::Result::kLimit:
        if (results) results->pushError(context, LimitMessage(*re_));
        return false;
    }
    return false;
  }

 private:
  valijson::constraints::Constraint* cloneInto(void* mem) const override { return new (mem) PatternConstraint(*this); }
  size_t sizeOf() const override { return sizeof(PatternConstraint); }
  std::shared_ptr<const Regex> re_;
};

// The formats valijson checks by regex (date, time, date-time), with its exact rules, on PCRE2. Other
// formats pass (format is an annotation unless a validator opts in).
class FormatConstraint : public valijson::constraints::PolyConstraint {
 public:
  explicit FormatConstraint(std::string format) : format_(std::move(format)) {}

  bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                valijson::ValidationResults* results) const override {
    if (!target.isString()) return true;
    const Regex* re = format_ == "date" ? Date() : format_ == "time" ? Time() : format_ == "date-time" ? DateTime() : nullptr;
    if (!re) return true;
    const std::string s = target.getString();
    bool ok = re->Search(s) == Regex::Result::kMatch;
    if (ok && format_ != "time") {  // month and day ranges, as valijson checks them
      int month = std::stoi(s.substr(s.find('-') + 1, 2));
      int day = std::stoi(s.substr(s.find('-') + 4, 2));
      int limit = month == 2 ? 29 : ((month <= 7) == (month % 2 == 1) ? 31 : 30);
      ok = day <= limit;
    }
    if (!ok && results) results->pushError(context, "String should be a valid " + format_);
    return ok;
  }

 private:
  static const Regex* Date() {
    static const std::shared_ptr<const Regex> r = *Regex::Compile("^([0-9]+)-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$");
    return r.get();
  }
  static const Regex* Time() {
    static const std::shared_ptr<const Regex> r = *Regex::Compile(
        "^([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9]|60)(\\.[0-9]+)?(([Zz])|([\\+|\\-]([01][0-9]|2[0-3]):[0-5][0-9]))$");
    return r.get();
  }
  static const Regex* DateTime() {
    static const std::shared_ptr<const Regex> r = *Regex::Compile(
        "^([0-9]+)-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9]|60)(\\.[0-9]+)?"
        "(([Zz])|([\\+|\\-]([01][0-9]|2[0-3]):[0-5][0-9]))$");
    return r.get();
  }
  valijson::constraints::Constraint* cloneInto(void* mem) const override { return new (mem) FormatConstraint(*this); }
  size_t sizeOf() const override { return sizeof(FormatConstraint); }
  std::string format_;
};

// Regexes compiled by the Translator, by pattern text; the builders look them up (they were checked there).
using RegexMap = std::map<std::string, std::shared_ptr<const Regex>>;

class PatternBuilder : public valijson::ConstraintBuilder {
 public:
  explicit PatternBuilder(const RegexMap& m) : m_(m) {}
  valijson::constraints::Constraint* make(const valijson::adapters::Adapter& v) const override {
    auto it = m_.find(v.asString());
    if (it == m_.end()) throw std::runtime_error("pattern not compiled: " + v.asString());
    return new PatternConstraint(it->second);
  }

 private:
  const RegexMap& m_;
};

class FormatBuilder : public valijson::ConstraintBuilder {
 public:
  valijson::constraints::Constraint* make(const valijson::adapters::Adapter& v) const override {
    return new FormatConstraint(v.asString());
  }
};

}  // namespace

namespace detail {
struct SchemaImpl {
  json source;
  json translated;  // what valijson parsed (draft-07 form)
  valijson::Schema vschema;
  RegexMap patterns;                                      // `pattern` keywords
  std::vector<std::shared_ptr<const Regex>> prop_patterns;  // patternProperties keys
};
}  // namespace detail

namespace {

std::string Escape(const std::string& t) {
  std::string out;
  for (char c : t) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

const std::set<std::string>& TypeNames() {
  static const std::set<std::string> k = {"null", "boolean", "object", "array", "number", "string", "integer"};
  return k;
}

// Walks one (sub)schema: checks the keywords we know, translates 2020-12 forms, recurses into subschemas.
// `ptr` is the schema pointer of `s` ("" for the root); errors read "<ptr>/<keyword>: <what was expected>".
class Translator {
 public:
  explicit Translator(const json& root) : root_(root) {}

  RegexMap patterns;                                      // compiled `pattern` values
  std::vector<std::shared_ptr<const Regex>> prop_patterns;  // compiled patternProperties keys

  Expected<json> Walk(const json& s, const std::string& ptr) {
    if (s.is_boolean()) return s;
    if (!s.is_object()) return Err(ptr, std::string("expected a schema (object or boolean), got ") + JsonTypeName(s));
    json out = json::object();
    for (auto& [k, v] : s.items()) {
      const std::string kp = ptr + "/" + Escape(k);
      if (k == "properties" || k == "patternProperties" || k == "definitions" || k == "$defs" ||
          k == "dependentSchemas") {
        if (!v.is_object()) return Err(kp, std::string("expected an object of schemas, got ") + JsonTypeName(v));
        json m = json::object();
        for (auto& [name, sub] : v.items()) {
          if (k == "patternProperties") {
            K2_ASSIGN_OR_RETURN(auto re, CheckRegex(name, kp + "/" + Escape(name)));
            prop_patterns.push_back(std::move(re));
          }
          if (k == "dependentSchemas") same_instance_[ptr].push_back(kp + "/" + Escape(name));
          K2_ASSIGN_OR_RETURN(m[name], Walk(sub, kp + "/" + Escape(name)));
        }
        out[k] = std::move(m);
      } else if (k == "additionalProperties" || k == "additionalItems" || k == "contains" || k == "propertyNames" ||
                 k == "not" || k == "if" || k == "then" || k == "else" || k == "unevaluatedProperties") {
        if (k == "not" || k == "if" || k == "then" || k == "else") same_instance_[ptr].push_back(kp);
        K2_ASSIGN_OR_RETURN(out[k], Walk(v, kp));
      } else if (k == "allOf" || k == "anyOf" || k == "oneOf" || k == "prefixItems") {
        if (!v.is_array() || v.empty()) return Err(kp, "expected a non-empty array of schemas");
        json a = json::array();
        for (size_t i = 0; i < v.size(); ++i) {
          if (k != "prefixItems") same_instance_[ptr].push_back(kp + "/" + std::to_string(i));
          K2_ASSIGN_OR_RETURN(json sub, Walk(v[i], kp + "/" + std::to_string(i)));
          a.push_back(std::move(sub));
        }
        out[k] = std::move(a);
      } else if (k == "items") {
        if (v.is_array()) {
          json a = json::array();
          for (size_t i = 0; i < v.size(); ++i) {
            K2_ASSIGN_OR_RETURN(json sub, Walk(v[i], kp + "/" + std::to_string(i)));
            a.push_back(std::move(sub));
          }
          out[k] = std::move(a);
        } else {
          K2_ASSIGN_OR_RETURN(out[k], Walk(v, kp));
        }
      } else if (k == "type") {
        K2_RETURN_IF_ERROR(CheckType(v, kp));
        out[k] = v;
      } else if (k == "required") {
        if (!v.is_array()) return Err(kp, std::string("expected an array of property names, got ") + JsonTypeName(v));
        for (size_t i = 0; i < v.size(); ++i)
          if (!v[i].is_string()) return Err(kp + "/" + std::to_string(i), "expected a property name (string)");
        out[k] = v;
      } else if (k == "enum") {
        if (!v.is_array()) return Err(kp, std::string("expected an array of values, got ") + JsonTypeName(v));
        out[k] = v;
      } else if (k == "minimum" || k == "maximum") {
        if (!v.is_number()) return Err(kp, std::string("expected a number, got ") + JsonTypeName(v));
        out[k] = v;
      } else if (k == "exclusiveMinimum" || k == "exclusiveMaximum") {
        if (v.is_boolean()) continue;  // draft-04 form, rewritten below once `minimum`/`maximum` are known
        if (!v.is_number()) return Err(kp, std::string("expected a number, got ") + JsonTypeName(v));
        out[k] = v;
      } else if (k == "multipleOf") {
        if (!v.is_number() || v.get<double>() <= 0) return Err(kp, "expected a number > 0");
        out[k] = v;
      } else if (k == "minLength" || k == "maxLength" || k == "minItems" || k == "maxItems" ||
                 k == "minProperties" || k == "maxProperties" || k == "minContains" || k == "maxContains") {
        if (!v.is_number() || v.get<double>() < 0 || v.get<double>() != static_cast<double>(static_cast<int64_t>(v.get<double>())))
          return Err(kp, "expected a non-negative integer");
        out[k] = static_cast<int64_t>(v.get<double>());  // 2.0 -> 2: valijson wants an integer node
      } else if (k == "uniqueItems") {
        if (!v.is_boolean()) return Err(kp, std::string("expected a boolean, got ") + JsonTypeName(v));
        out[k] = v;
      } else if (k == "pattern") {
        if (!v.is_string()) return Err(kp, std::string("expected a regex string, got ") + JsonTypeName(v));
        K2_ASSIGN_OR_RETURN(patterns[v.get<std::string>()], CheckRegex(v.get<std::string>(), kp));
        out[kPatternKeyword] = v;
      } else if (k == "format") {
        if (!v.is_string()) return Err(kp, std::string("expected a string, got ") + JsonTypeName(v));
        out[kFormatKeyword] = v;
      } else if (k == "$ref") {
        if (!v.is_string()) return Err(kp, std::string("expected a string, got ") + JsonTypeName(v));
        K2_ASSIGN_OR_RETURN(std::string target, CheckRef(v.get<std::string>(), kp));
        same_instance_[ptr].push_back(target);
        out[k] = v;
      } else if (k == "dependencies" || k == "dependentRequired") {
        if (!v.is_object()) return Err(kp, std::string("expected an object, got ") + JsonTypeName(v));
        json m = json::object();
        for (auto& [name, dep] : v.items()) {
          const std::string dp = kp + "/" + Escape(name);
          if (dep.is_array()) {
            for (size_t i = 0; i < dep.size(); ++i)
              if (!dep[i].is_string()) return Err(dp + "/" + std::to_string(i), "expected a property name (string)");
            m[name] = dep;
          } else if (k == "dependencies") {
            same_instance_[ptr].push_back(dp);
            K2_ASSIGN_OR_RETURN(m[name], Walk(dep, dp));
          } else {
            return Err(dp, "expected an array of property names");
          }
        }
        out[k] = std::move(m);
      } else if (k == kPatternKeyword || k == kFormatKeyword) {
        continue;  // our internal keywords: a schema that spells them is only annotating
      } else {
        out[k] = v;  // annotations (title, description, default, examples, $comment, x-*) and $schema/$id
      }
    }
    K2_RETURN_IF_ERROR(Rewrite(s, ptr, out));
    return out;
  }

 private:
  static Status Err(const std::string& ptr, const std::string& what) { return InvalidArgument(ptr + ": " + what); }

  static Status CheckType(const json& v, const std::string& kp) {
    auto one = [&](const json& t, const std::string& p) -> Status {
      if (!t.is_string() || !TypeNames().count(t.get<std::string>()))
        return Err(p, "expected one of null, boolean, object, array, number, string, integer, got " + t.dump());
      return Status::Ok();
    };
    if (v.is_string()) return one(v, kp);
    if (!v.is_array() || v.empty()) return Err(kp, "expected a type name or a non-empty array of them");
    for (size_t i = 0; i < v.size(); ++i) K2_RETURN_IF_ERROR(one(v[i], kp + "/" + std::to_string(i)));
    return Status::Ok();
  }

  static Expected<std::shared_ptr<const Regex>> CheckRegex(const std::string& re, const std::string& p) {
    auto r = Regex::Compile(re);
    if (!r.ok()) return Err(p, r.status().message());
    return r;
  }

  // The JSON pointer (as Walk spells schema pointers) that a local $ref resolves to.
  Expected<std::string> CheckRef(const std::string& ref, const std::string& p) const {
    if (ref.empty() || ref[0] != '#')
      return Err(p, "only local $ref (\"#...\") is supported, got " + json(ref).dump());
    if (ref == "#") return std::string();
    if (ref.size() < 2 || ref[1] != '/')
      return Err(p, "only JSON-pointer $ref (\"#/...\") is supported, got " + json(ref).dump());
    std::string pointer;
    for (size_t i = 1; i < ref.size(); ++i) {  // URI fragments percent-encode; decode %XX
      if (ref[i] == '%' && i + 2 < ref.size() && std::isxdigit(static_cast<unsigned char>(ref[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(ref[i + 2]))) {
        pointer += static_cast<char>(std::stoi(ref.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        pointer += ref[i];
      }
    }
    try {
      json::json_pointer jp(pointer);
      if (!root_.contains(jp)) return Err(p, "$ref " + json(ref).dump() + " does not resolve inside this schema");
    } catch (const std::exception& e) {
      return Err(p, "$ref " + json(ref).dump() + " is not a valid JSON pointer (" + e.what() + ")");
    }
    return pointer;
  }

 public:
  // A cycle of $ref/allOf/anyOf/oneOf/not/if/then/else/dependencies that never steps into a child of the
  // instance makes valijson recurse forever (at Compile for a pure $ref loop, at Validate otherwise):
  // refuse it, naming one schema on the cycle. Iterative DFS over the recorded same-instance edges.
  Status CheckNoSameInstanceCycle() const {
    std::map<std::string, int> state;  // 1 = on the DFS stack, 2 = done
    for (const auto& [start, unused] : same_instance_) {
      if (state[start]) continue;
      std::vector<std::pair<std::string, size_t>> stack = {{start, 0}};
      state[start] = 1;
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        auto it = same_instance_.find(node);
        if (it == same_instance_.end() || next >= it->second.size()) {
          state[node] = 2;
          stack.pop_back();
          continue;
        }
        const std::string child = it->second[next++];
        int& st = state[child];
        if (st == 1)
          return Err(child.empty() ? "" : child,
                     "$ref cycle that never descends into the instance (the schema would recurse forever)");
        if (st == 0) {
          st = 1;
          stack.emplace_back(child, 0);
        }
      }
    }
    return Status::Ok();
  }

 private:
  // Schema pointer -> schemas applied to the same instance value (combinators, $ref targets).
  std::map<std::string, std::vector<std::string>> same_instance_;

  // 2020-12 / draft-04 forms -> their exact draft-07 equivalents.
  static Status Rewrite(const json& s, const std::string& ptr, json& out) {
    for (const char* kw : {"exclusiveMinimum", "exclusiveMaximum"}) {
      auto it = s.find(kw);
      if (it == s.end() || !it->is_boolean()) continue;
      const char* bound = std::string(kw) == "exclusiveMinimum" ? "minimum" : "maximum";
      if (*it && out.contains(bound)) {  // {"minimum": 3, "exclusiveMinimum": true} -> {"exclusiveMinimum": 3}
        out[kw] = out[bound];
        out.erase(bound);
      }
    }
    if (out.contains("prefixItems")) {  // items after prefixItems means "the rest"
      if (out.contains("items")) {
        if (out["items"].is_array()) return Err(ptr + "/items", "expected a schema when prefixItems is present");
        out["additionalItems"] = std::move(out["items"]);
      }
      out["items"] = std::move(out["prefixItems"]);
      out.erase("prefixItems");
    }
    if (out.contains("dependentRequired") || out.contains("dependentSchemas")) {
      json deps = out.value("dependencies", json::object());
      for (const char* kw : {"dependentRequired", "dependentSchemas"}) {
        if (!out.contains(kw)) continue;
        for (auto& [name, d] : out[kw].items()) {
          if (deps.contains(name)) return Err(ptr + "/" + kw + "/" + Escape(name), "conflicts with another dependency on the same property");
          deps[name] = d;
        }
        out.erase(kw);
      }
      out["dependencies"] = std::move(deps);
    }
    if (out.contains("unevaluatedProperties")) {
      // Exactly additionalProperties when nothing else (combinators, $ref, if) can evaluate properties.
      for (const char* kw : {"allOf", "anyOf", "oneOf", "$ref", "if", "dependencies"})
        if (out.contains(kw))
          return Err(ptr + "/unevaluatedProperties", std::string("not supported together with ") + kw);
      if (out.contains("additionalProperties"))
        return Err(ptr + "/unevaluatedProperties", "not supported together with additionalProperties");
      out["additionalProperties"] = std::move(out["unevaluatedProperties"]);
      out.erase("unevaluatedProperties");
    }
    for (const char* kw : {"unevaluatedItems", "$dynamicRef", "$recursiveRef"})
      if (out.contains(kw)) return Err(ptr + "/" + kw, "keyword not supported");
    return Status::Ok();
  }

  const json& root_;
};

// valijson context {"<root>", "[items]", "[0]"} -> JSON pointer, walking the instance so that "[0]" is
// an index in an array and a key in an object.
std::string ContextToPointer(const std::vector<std::string>& ctx, const json& instance, const json** at) {
  std::vector<std::string> tokens;
  const json* cur = &instance;
  for (size_t i = 1; i < ctx.size(); ++i) {
    std::string t = ctx[i];
    if (t.size() >= 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
    tokens.push_back(t);
    if (cur && cur->is_object() && cur->contains(t)) {
      cur = &(*cur)[t];
    } else if (cur && cur->is_array() && !t.empty() && t.find_first_not_of("0123456789") == std::string::npos &&
               std::stoull(t) < cur->size()) {
      cur = &(*cur)[std::stoull(t)];
    } else {
      cur = nullptr;
    }
  }
  *at = cur;
  return JsonPointer(tokens);
}

// The schema that governs the value at `tokens`, following properties/items only (no combinators);
// null when the path leaves that simple shape. Used to phrase type errors as "expected X, got Y".
const json* SimpleSubschema(const json& schema, const std::vector<std::string>& tokens) {
  const json* s = &schema;
  for (const auto& t : tokens) {
    if (!s->is_object()) return nullptr;
    if (s->contains("properties") && (*s)["properties"].contains(t)) {
      s = &(*s)["properties"][t];
    } else if (s->contains("items") && (*s)["items"].is_object()) {
      s = &(*s)["items"];
    } else {
      return nullptr;
    }
  }
  return s;
}

// JSON Schema counts 3.0 as an integer; valijson (strong types) does not. Rewriting integral floats to
// integers first gives the standard answer; only instances that contain such a float are copied.
bool HasIntegralFloat(const json& j) {
  if (j.is_number_float()) {
    double d = j.get<double>();
    return std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15;
  }
  if (j.is_structured())
    for (const auto& v : j) if (HasIntegralFloat(v)) return true;
  return false;
}
void NormalizeIntegralFloats(json& j) {
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) j = static_cast<int64_t>(d);
  } else if (j.is_structured()) {
    for (auto& v : j) NormalizeIntegralFloats(v);
  }
}

// valijson matches patternProperties on std::regex, which recurses per character and backtracks without
// bound. Before it runs, every property name of the instance is bounded in length and run through each
// patternProperties regex on PCRE2: a name that hits the limits there is a validation error naming it.
constexpr size_t kMaxPatternSubject = 1024;
Status CheckPropertyNames(const json& instance, const std::vector<std::shared_ptr<const Regex>>& res) {
  std::vector<std::pair<const json*, std::string>> pending = {{&instance, ""}};
  while (!pending.empty()) {
    auto [v, ptr] = std::move(pending.back());
    pending.pop_back();
    if (v->is_object()) {
      for (auto it = v->begin(); it != v->end(); ++it) {
        const std::string& k = it.key();
        std::string kp = ptr + "/" + Escape(k);
        if (k.size() > kMaxPatternSubject)
          return InvalidArgument(kp.substr(0, 120) + ": property name of " + std::to_string(k.size()) +
                                 " bytes is longer than the " + std::to_string(kMaxPatternSubject) +
                                 " bytes matched against patternProperties");
        for (const auto& re : res)
          if (re->Search(k) == Regex::Result::kLimit) return InvalidArgument(kp + ": property name: " + LimitMessage(*re));
        if (it->is_structured()) pending.emplace_back(&*it, std::move(kp));
      }
    } else if (v->is_array()) {
      for (size_t i = 0; i < v->size(); ++i)
        if ((*v)[i].is_structured()) pending.emplace_back(&(*v)[i], ptr + "/" + std::to_string(i));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string JsonPointer(const std::vector<std::string>& tokens) {
  if (tokens.empty()) return "/";
  std::string out;
  for (const auto& t : tokens) out += "/" + Escape(t);
  return out;
}

Schema::Schema() : impl_(std::make_unique<detail::SchemaImpl>()) {}
Schema::~Schema() = default;
const json& Schema::source() const { return impl_->source; }

Expected<std::shared_ptr<const Schema>> Schema::Compile(const json& schema, const std::string& where) {
  // The walk, valijson's parser and its validator recurse per level: bound the depth first.
  K2_RETURN_IF_ERROR(CheckJsonDepth(schema, JsonLimits{}.max_depth, where));
  Translator tr(schema);
  auto translated = tr.Walk(schema, "");
  if (!translated.ok()) return InvalidArgument(where + translated.status().message());
  if (Status c = tr.CheckNoSameInstanceCycle(); !c.ok()) return InvalidArgument(where + c.message());
  std::shared_ptr<Schema> out(new Schema());
  out->impl_->source = schema;
  out->impl_->translated = std::move(*translated);
  out->impl_->patterns = std::move(tr.patterns);
  out->impl_->prop_patterns = std::move(tr.prop_patterns);
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    parser.addConstraintBuilder(kPatternKeyword, new PatternBuilder(out->impl_->patterns));
    parser.addConstraintBuilder(kFormatKeyword, new FormatBuilder());
    valijson::adapters::NlohmannJsonAdapter adapter(out->impl_->translated);
    parser.populateSchema(adapter, out->impl_->vschema);
  } catch (const std::exception& e) {
    return InvalidArgument(where + ": schema rejected by the draft-07 parser: " + e.what());
  }
  return std::shared_ptr<const Schema>(std::move(out));
}

Status Schema::Validate(const json& given) const {
  K2_RETURN_IF_ERROR(CheckJsonDepth(given, JsonLimits{}.max_depth, "/: instance"));
  if (!impl_->prop_patterns.empty()) K2_RETURN_IF_ERROR(CheckPropertyNames(given, impl_->prop_patterns));
  json normalized;
  const json* inst = &given;
  if (HasIntegralFloat(given)) {
    normalized = given;
    NormalizeIntegralFloats(normalized);
    inst = &normalized;
  }
  const json& instance = *inst;
  valijson::ValidationResults results;
  bool ok = false;
  try {
    // A Validator per call: it caches compiled regexes in a member, so sharing one is not thread-safe.
    valijson::Validator validator(valijson::Validator::kStrongTypes);
    valijson::adapters::NlohmannJsonAdapter target(instance);
    ok = validator.validate(impl_->vschema, target, &results);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("/: validation failed: ") + e.what());
  }
  if (ok) return Status::Ok();
  // The deepest error is the most specific one; valijson also reports every enclosing level.
  std::vector<valijson::ValidationResults::Error> errors;
  valijson::ValidationResults::Error err, best;
  bool have = false;
  while (results.popError(err)) {
    if (!have || err.context.size() > best.context.size()) {
      best = err;
      have = true;
    }
    errors.push_back(err);
  }
  // valijson also reports every enclosing level of a failure ("failed to validate property x"); only
  // errors outside the chosen one's ancestry are other problems worth counting.
  size_t others = 0;
  for (const auto& e : errors) {
    bool ancestor = e.context.size() <= best.context.size() &&
                    std::equal(e.context.begin(), e.context.end(), best.context.begin());
    if (!ancestor) ++others;
  }
  if (!have) return InvalidArgument("/: does not match the schema");
  const json* at = nullptr;
  std::string ptr = ContextToPointer(best.context, instance, &at);
  std::string what = best.description;
  if (what.find("'type'") != std::string::npos && at) {
    std::vector<std::string> tokens;
    for (size_t i = 1; i < best.context.size(); ++i) {
      const auto& t = best.context[i];
      tokens.push_back(t.size() >= 2 ? t.substr(1, t.size() - 2) : t);
    }
    const json* sub = SimpleSubschema(impl_->source, tokens);
    if (sub && sub->is_object() && sub->contains("type")) {
      const json& ty = (*sub)["type"];
      std::string expected;
      if (ty.is_string()) {
        expected = ty.get<std::string>();
      } else {
        for (size_t i = 0; i < ty.size(); ++i) expected += (i ? " or " : "") + ty[i].get<std::string>();
      }
      what = "expected " + expected + ", got " + JsonTypeName(*at);
    } else {
      what += std::string(" (got ") + JsonTypeName(*at) + ")";
    }
  }
  std::string msg = ptr + ": " + what;
  if (others > 0) msg += " (and " + std::to_string(others) + " more error(s) elsewhere)";
  return InvalidArgument(msg);
}

}  // namespace k2::toolgen
