// Schema compilation and validation: our structural check + 2020-12 -> draft-07 translation in front of
// valijson (which implements draft-07 only), and JSON-pointer error reporting behind it.
//
// Why a front end before valijson: (1) valijson reports a malformed schema with a message but without the
// schema pointer, and aborts or throws on some shapes; our walk names the pointer first. (2) valijson 1.0
// knows draft-07 only; real MCP tools also send prefixItems, $defs, dependentRequired/dependentSchemas and
// the draft-04 boolean exclusiveMinimum/Maximum, which we rewrite to their exact draft-07 equivalents.
// (3) valijson compiles `pattern` with std::regex lazily at validation time and throws on a bad regex; we
// compile every pattern at Compile so a bad one is a registration error.
#define VALIJSON_USE_EXCEPTIONS 1

#include "toolgen/schema.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace k2::toolgen {

namespace detail {
struct SchemaImpl {
  json source;
  json translated;  // what valijson parsed (draft-07 form)
  valijson::Schema vschema;
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
          if (k == "patternProperties") K2_RETURN_IF_ERROR(CheckRegex(name, kp + "/" + Escape(name)));
          K2_ASSIGN_OR_RETURN(m[name], Walk(sub, kp + "/" + Escape(name)));
        }
        out[k] = std::move(m);
      } else if (k == "additionalProperties" || k == "additionalItems" || k == "contains" || k == "propertyNames" ||
                 k == "not" || k == "if" || k == "then" || k == "else" || k == "unevaluatedProperties") {
        K2_ASSIGN_OR_RETURN(out[k], Walk(v, kp));
      } else if (k == "allOf" || k == "anyOf" || k == "oneOf" || k == "prefixItems") {
        if (!v.is_array() || v.empty()) return Err(kp, "expected a non-empty array of schemas");
        json a = json::array();
        for (size_t i = 0; i < v.size(); ++i) {
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
        K2_RETURN_IF_ERROR(CheckRegex(v.get<std::string>(), kp));
        out[k] = v;
      } else if (k == "format") {
        if (!v.is_string()) return Err(kp, std::string("expected a string, got ") + JsonTypeName(v));
        out[k] = v;
      } else if (k == "$ref") {
        if (!v.is_string()) return Err(kp, std::string("expected a string, got ") + JsonTypeName(v));
        K2_RETURN_IF_ERROR(CheckRef(v.get<std::string>(), kp));
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
            K2_ASSIGN_OR_RETURN(m[name], Walk(dep, dp));
          } else {
            return Err(dp, "expected an array of property names");
          }
        }
        out[k] = std::move(m);
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

  static Status CheckRegex(const std::string& re, const std::string& p) {
    try {
      std::regex r(re);
    } catch (const std::exception& e) {
      return Err(p, "pattern " + json(re).dump() + " is not an ECMAScript regex std::regex accepts (" + e.what() + ")");
    }
    return Status::Ok();
  }

  Status CheckRef(const std::string& ref, const std::string& p) const {
    if (ref.empty() || ref[0] != '#')
      return Err(p, "only local $ref (\"#...\") is supported, got " + json(ref).dump());
    if (ref == "#") return Status::Ok();
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
    return Status::Ok();
  }

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
  Translator tr(schema);
  auto translated = tr.Walk(schema, "");
  if (!translated.ok()) return InvalidArgument(where + translated.status().message());
  std::shared_ptr<Schema> out(new Schema());
  out->impl_->source = schema;
  out->impl_->translated = std::move(*translated);
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(out->impl_->translated);
    parser.populateSchema(adapter, out->impl_->vschema);
  } catch (const std::exception& e) {
    return InvalidArgument(where + ": schema rejected by the draft-07 parser: " + e.what());
  }
  return std::shared_ptr<const Schema>(std::move(out));
}

Status Schema::Validate(const json& given) const {
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
