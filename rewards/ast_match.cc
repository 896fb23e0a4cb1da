// BFCL / ACEBench AST checkers: per-call name/param/type/value checks with each benchmark's rules, the
// Java/JavaScript source-value converters, and an order-insensitive matching of parallel calls.
#include "rewards/ast_match.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>

#include "rewards/text_util.h"

namespace k2::rewards {

// ---- strings ------------------------------------------------------------------------------------------

namespace {

char32_t LowerCodePoint(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if (c == 0x130) return 'i';  // Python lowers U+0130 to "i̇"; the dot is dropped here
  if (c == 0x178) return 0xFF;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return (c & 1) ? c : c + 1;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;
  if ((c >= 0x1CD && c <= 0x1DC)) return (c & 1) ? c + 1 : c;
  if ((c >= 0x1DE && c <= 0x1EF) || (c >= 0x1F8 && c <= 0x21F) || (c >= 0x222 && c <= 0x233)) return (c & 1) ? c : c + 1;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F)) return (c & 1) ? c : c + 1;
  if (c == 0x4C0) return 0x4CF;
  if (c >= 0x4C1 && c <= 0x4CE) return (c & 1) ? c + 1 : c;
  if (c >= 0x531 && c <= 0x556) return c + 0x30;
  if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF)) return (c & 1) ? c : c + 1;
  if (c == 0x1E9E) return 0xDF;
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 0x20;
  return c;
}

}  // namespace

std::string UnicodeLower(std::string_view s) {
  // Fast path: ASCII only.
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }
  std::u32string cps = DecodeUtf8(s);
  for (char32_t& c : cps) c = LowerCodePoint(c);
  return EncodeUtf8(cps);
}

std::string StandardizeString(const std::string& s) {
  std::string kept;
  for (char c : s) {
    if (c == ' ' || c == ',' || c == '.' || c == '/' || c == '-' || c == '_' || c == '*' || c == '^') continue;
    kept.push_back(c == '\'' ? '"' : c);
  }
  return UnicodeLower(kept);
}

namespace {

const json* FindFunction(const json& functions, const std::string& name) {
  if (!functions.is_array()) return nullptr;
  for (auto& f : functions)
    if (f.is_object() && f.value("name", std::string()) == name) return &f;
  return nullptr;
}

std::string Short(const json& j) {
  std::string s = j.dump();
  return s.size() > 120 ? s.substr(0, 117) + "..." : s;
}

// ---- Python value model -----------------------------------------------------------------------------------

// Python types of JSON values as json.loads makes them.
enum class Py { kStr, kInt, kFloat, kBool, kList, kDict, kNone, kSet, kEnum, kUnknown };

Py PyTypeOf(const json& v) {
  if (v.is_string()) return Py::kStr;
  if (v.is_boolean()) return Py::kBool;
  if (v.is_number_integer()) return Py::kInt;
  if (v.is_number()) return Py::kFloat;
  if (v.is_array()) return Py::kList;
  if (v.is_object()) return Py::kDict;
  return Py::kNone;
}

const char* PyName(Py t) {
  switch (t) {
    case Py::kStr: return "str";
    case Py::kInt: return "int";
    case Py::kFloat: return "float";
    case Py::kBool: return "bool";
    case Py::kList: return "list";
    case Py::kDict: return "dict";
    case Py::kNone: return "NoneType";
    case Py::kSet: return "set";
    case Py::kEnum: return "enum";
    default: return "unknown";
  }
}

// Python ==: numbers (bool included) compare by value across int/float; containers element-wise.
bool PyEq(const json& a, const json& b) {
  bool an = a.is_number() || a.is_boolean(), bn = b.is_number() || b.is_boolean();
  if (an && bn) {
    auto num = [](const json& x) { return x.is_boolean() ? (x.get<bool>() ? 1.0 : 0.0) : x.get<double>(); };
    if (a.is_number_integer() && b.is_number_integer()) return a.get<int64_t>() == b.get<int64_t>();
    return num(a) == num(b);
  }
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!PyEq(a[i], b[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto& [k, v] : a.items()) {
      auto it = b.find(k);
      if (it == b.end() || !PyEq(v, *it)) return false;
    }
    return true;
  }
  return a == b;
}

bool PyIn(const json& v, const json& list) {
  if (!list.is_array()) return PyEq(v, list);
  return std::any_of(list.begin(), list.end(), [&](const json& x) { return PyEq(v, x); });
}

json StdTop(const json& v) { return v.is_string() ? json(StandardizeString(v.get<std::string>())) : v; }
json StdList(const json& l) {
  json out = json::array();
  if (l.is_array())
    for (auto& x : l) out.push_back(StdTop(x));
  return out;
}

// ---- BFCL type tables ---------------------------------------------------------------------------------------

Py PythonType(const std::string& t) {
  if (t == "string" || t == "any") return Py::kStr;
  if (t == "integer") return Py::kInt;
  if (t == "float" || t == "number") return Py::kFloat;  // "number": JSON Schema docs (not in BFCL's files)
  if (t == "boolean") return Py::kBool;
  if (t == "array" || t == "tuple" || t == "list") return Py::kList;
  if (t == "dict" || t == "object") return Py::kDict;
  return Py::kUnknown;
}

Py JavaType(const std::string& t) {
  if (t == "byte" || t == "short" || t == "integer" || t == "long") return Py::kInt;
  if (t == "float" || t == "double") return Py::kFloat;
  if (t == "boolean") return Py::kBool;
  if (t == "char" || t == "String" || t == "any") return Py::kStr;
  if (t == "Array" || t == "ArrayList" || t == "Queue" || t == "Stack") return Py::kList;
  if (t == "HashMap" || t == "Hashtable") return Py::kDict;
  if (t == "Set") return Py::kSet;
  return Py::kUnknown;
}

Py JsType(const std::string& t) {
  if (t == "String" || t == "any") return Py::kStr;
  if (t == "integer" || t == "Bigint") return Py::kInt;
  if (t == "float") return Py::kFloat;
  if (t == "Boolean") return Py::kBool;
  if (t == "dict") return Py::kDict;
  if (t == "array") return Py::kList;
  return Py::kUnknown;
}

bool NestedChecked(const std::string& t, CallLanguage lang) {
  if (lang == CallLanguage::kPython) return t == "array" || t == "tuple";
  return t == "Array" || t == "ArrayList" || t == "array";
}

// ---- Java / JavaScript converters (BFCL's type_convertor) ------------------------------------------------

bool Full(const std::string& s, const char* re) { return std::regex_match(s, std::regex(re)); }

std::string Strip(const std::string& s) { return Trim(s); }

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (true) {
    size_t e = s.find(',', b);
    out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return out;
}

// Python's int() / float() on a stripped literal.
std::optional<json> PyNumber(const std::string& s) {
  if (Full(s, "[+-]?[0-9]+(_[0-9]+)*")) {
    std::string d;
    for (char c : s)
      if (c != '_') d += c;
    try {
      return json(static_cast<int64_t>(std::stoll(d)));
    } catch (const std::exception&) {
      return json(std::stod(d));
    }
  }
  if (Full(s, "[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?")) return json(std::stod(s));
  return std::nullopt;
}

json ParseJavaValue(const std::string& v) {
  if (v == "true") return true;
  if (v == "false") return false;
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  if (Full(v, "-?[0-9]+[lL]")) return static_cast<int64_t>(std::stoll(v.substr(0, v.size() - 1)));
  if (Full(v, "-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?[fF]")) return std::stod(v.substr(0, v.size() - 1));
  if (auto n = PyNumber(Strip(v))) return *n;
  return v;
}

std::optional<json> JavaConvert(const std::string& v, const std::string& t, const std::string& nested);

json JavaElement(const std::string& e, const std::string& nested, bool strip_quotes) {
  if (strip_quotes && (nested == "char" || nested == "String")) return e.size() >= 2 ? e.substr(1, e.size() - 2) : std::string();
  if (!nested.empty()) {
    auto c = JavaConvert(e, nested, "");
    return c ? *c : json(e);
  }
  return ParseJavaValue(e);
}

std::optional<json> JavaConvert(const std::string& v, const std::string& t, const std::string& nested) {
  std::smatch m;
  if (t == "byte" || t == "short" || t == "integer") {
    if (!Full(v, "-?[0-9]+")) return json(v);
    return json(static_cast<int64_t>(std::stoll(v)));
  }
  if (t == "float") {
    if (!Full(v, "-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?[fF]")) return json(v);
    return json(std::stod(v.substr(0, v.size() - 1)));
  }
  if (t == "double") {
    if (!Full(v, "-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?")) return json(v);
    return json(std::stod(v));
  }
  if (t == "long") {
    if (!Full(v, "-?[0-9]+[lL]")) return json(v);
    return json(static_cast<int64_t>(std::stoll(v.substr(0, v.size() - 1))));
  }
  if (t == "boolean") {
    if (v != "true" && v != "false") return json(v);
    return json(v == "true");
  }
  if (t == "char" || t == "String" || t == "any") return json(v);  // BFCL's char pattern never matches
  if (t == "Array") {
    static const std::regex re("new\\s+\\w+\\[\\]\\s*\\{([\\s\\S]*?)\\}");
    if (!std::regex_search(v, m, re)) return json(v);
    json out = json::array();
    for (auto& x : SplitComma(m[1].str())) {
      std::string e = Strip(x);
      if (e.empty()) continue;
      if (!nested.empty()) {
        auto c = JavaConvert(e, nested, "");
        out.push_back(c ? *c : json(e));
      } else {
        out.push_back(ParseJavaValue(e));
      }
    }
    return out;
  }
  if (t == "ArrayList") {
    static const std::regex as_list("new\\s+ArrayList<\\w*>\\(Arrays\\.asList\\(([\\s\\S]+?)\\)\\)");
    static const std::regex adds("new\\s+ArrayList<\\w*>\\(\\)\\s*\\{\\{\\s*([\\s\\S]+?)\\s*\\}\\}");
    static const std::regex empty("new\\s+ArrayList<\\w*>\\(\\)");
    if (std::regex_search(v, m, as_list)) {
      json out = json::array();
      for (auto& x : SplitComma(m[1].str())) out.push_back(JavaElement(Strip(x), nested, true));
      return out;
    }
    if (std::regex_search(v, m, adds)) {
      json out = json::array();
      static const std::regex add("add\\(([\\s\\S]+?)\\)");
      std::string body = m[1].str();
      for (auto it = std::sregex_iterator(body.begin(), body.end(), add); it != std::sregex_iterator(); ++it)
        out.push_back(JavaElement(Strip((*it)[1].str()), nested, true));
      return out;
    }
    if (std::regex_search(v, m, empty)) return json::array();
    return json(v);
  }
  if (t == "HashMap") {
    static const std::regex full("new\\s+HashMap<[\\s\\S]*?>\\s*\\(\\)\\s*\\{\\s*\\{?\\s*([\\s\\S]*?)\\s*\\}?\\s*\\}");
    static const std::regex empty("new\\s+HashMap<[\\s\\S]*?>\\s*\\(\\)");
    if (std::regex_search(v, m, full)) {
      json out = json::object();
      std::string body = m[1].str();
      static const std::regex put("put\\(\"([\\s\\S]*?)\",\\s*([\\s\\S]*?)\\)");
      for (auto it = std::sregex_iterator(body.begin(), body.end(), put); it != std::sregex_iterator(); ++it)
        out[(*it)[1].str()] = ParseJavaValue(Strip((*it)[2].str()));
      return out;
    }
    if (std::regex_search(v, m, empty)) return json::object();
    return json(v);
  }
  return std::nullopt;  // Set, Hashtable, Queue, Stack: BFCL has no converter
}

json ParseJsValue(const std::string& raw) {
  std::string v = Strip(raw);
  if (v == "true") return true;
  if (v == "false") return false;
  if (v.size() >= 2 && ((v.front() == '"' && v.back() == '"') || (v.front() == '\'' && v.back() == '\''))) return v.substr(1, v.size() - 2);
  if (auto n = PyNumber(v)) return *n;
  return v;
}

std::optional<json> JsConvert(const std::string& v, const std::string& t, const std::string& nested);

json JsCollection(const std::string& raw, bool array, const std::string& nested) {
  std::string code = Strip(raw);
  std::smatch m;
  if (array) {
    static const std::regex two_d("\\[\\s*\\[.*?\\]\\s*(,\\s*\\[.*?\\]\\s*)*\\]|\\bnew\\s+Array\\(\\s*\\[.*?\\]\\s*(,\\s*\\[.*?\\]\\s*)*\\)");
    static const std::regex one_d("\\[(.*?)\\]|\\bnew\\s+Array\\((.*?)\\)");
    if (std::regex_search(code, m, two_d, std::regex_constants::match_continuous)) {
      std::string whole = m[0].str();
      static const std::regex inner("\\[(.*?)\\]");
      json out = json::array();
      int idx = 0;
      for (auto it = std::sregex_iterator(whole.begin(), whole.end(), inner); it != std::sregex_iterator(); ++it, ++idx) {
        std::string s = Strip((*it)[1].str());
        if (idx == 0 && !s.empty() && s[0] == '[') s = s.substr(1);
        json row = json::array();
        for (auto& e : SplitComma(s)) row.push_back(ParseJsValue(Strip(e)));
        out.push_back(row);
      }
      return out;
    }
    if (std::regex_search(code, m, one_d, std::regex_constants::match_continuous)) {
      std::string body = Strip(m[1].matched ? m[1].str() : m[2].str());
      json out = json::array();
      if (body.empty()) return out;
      for (auto& x : SplitComma(body)) {
        std::string e = Strip(x);
        if (!nested.empty()) {
          auto c = JsConvert(e, nested, "");
          out.push_back(c ? *c : json(e));
        } else {
          out.push_back(ParseJsValue(e));
        }
      }
      return out;
    }
    return code;
  }
  if (code == "{}") return json::object();
  static const std::regex dict("\\{(.*?)\\}");
  if (!std::regex_search(code, m, dict, std::regex_constants::match_continuous)) return code;
  std::string content = m[1].str();
  static const std::regex pair("([^:]+):\\s*(.*?)(?:,\\s*(?=[^,]+:)|$)");
  json out = json::object();
  for (auto it = std::sregex_iterator(content.begin(), content.end(), pair); it != std::sregex_iterator(); ++it) {
    std::string key = Strip((*it)[1].str());
    while (!key.empty() && (key.front() == '\'' || key.front() == '"')) key.erase(0, 1);
    while (!key.empty() && (key.back() == '\'' || key.back() == '"')) key.pop_back();
    std::string val = Strip((*it)[2].str());
    if (!val.empty() && val.front() == '[' && val.back() == ']') {
      out[key] = JsCollection(val, true, "");
    } else if (!val.empty() && val.front() == '{' && val.back() == '}') {
      out[key] = JsCollection(val, false, "");
    } else {
      while (!val.empty() && (val.front() == '\'' || val.front() == '"')) val.erase(0, 1);
      while (!val.empty() && (val.back() == '\'' || val.back() == '"')) val.pop_back();
      out[key] = ParseJsValue(val);
    }
  }
  return out;
}

std::optional<json> JsConvert(const std::string& v, const std::string& t, const std::string& nested) {
  if (t == "String") {
    if (v.size() >= 2 && ((v.front() == '"' && v.back() == '"') || (v.front() == '\'' && v.back() == '\''))) return json(v.substr(1, v.size() - 2));
    return json(v);
  }
  if (t == "integer") return Full(v, "-?[0-9]+") ? json(static_cast<int64_t>(std::stoll(v))) : json(v);
  if (t == "float") return Full(v, "-?[0-9]+(\\.[0-9]+)?") ? json(std::stod(v)) : json(v);
  if (t == "Bigint") return Full(v, "-?[0-9]+n") ? json(static_cast<int64_t>(std::stoll(v.substr(0, v.size() - 1)))) : json(v);
  if (t == "Boolean") return (v == "true" || v == "false") ? json(v == "true") : json(v);
  if (t == "dict") return JsCollection(v, false, nested);
  if (t == "array") return JsCollection(v, true, nested);
  if (t == "any") return json(v);
  return std::nullopt;
}

std::string DeclType(const json& schema) {
  return schema.is_object() && schema.contains("type") && schema["type"].is_string() ? schema["type"].get<std::string>() : std::string();
}
std::string ItemType(const json& schema) {
  if (!schema.is_object() || !schema.contains("items") || !schema["items"].is_object()) return "";
  return DeclType(schema["items"]);
}

// ---- BFCL checks ---------------------------------------------------------------------------------------------

// The type of the first allowed value that is not "" (an optional-parameter marker).
std::optional<Py> AnswerType(const json& allowed) {
  if (!allowed.is_array()) return PyTypeOf(allowed);
  for (auto& a : allowed)
    if (a != "") return PyTypeOf(a);
  return std::nullopt;
}

struct TypeCheck {
  bool valid = true;
  bool is_variable = false;
  std::string error;
};

// BFCL's type_checker: the declared type, or the ground truth's own type (then the value is compared
// as it is: a "variable"); arrays check their items one level deep against list-valued allowed values.
TypeCheck BfclTypeCheck(const json& value, const json& allowed, Py expected, std::optional<Py> nested, const std::string& decl) {
  TypeCheck r;
  auto at = AnswerType(allowed);
  bool is_variable = at && *at != expected;
  Py vt = PyTypeOf(value);
  if (vt == expected) {
    if (!nested) {
      r.is_variable = is_variable;
      return r;
    }
    for (auto& item : allowed.is_array() ? allowed : json::array({allowed})) {
      bool flag = true;
      if (item.is_array()) {
        for (auto& vi : value)
          if (!BfclTypeCheck(vi, item, *nested, std::nullopt, "").valid) {
            flag = false;
            break;
          }
      }
      if (flag) {
        r.is_variable = is_variable;
        return r;
      }
    }
    r.valid = false;
    r.error = std::string("nested type check failed: expected ") + decl + " of " + PyName(*nested) + ", got " + Short(value);
    return r;
  }
  if (at && vt == *at) {
    r.is_variable = true;
    return r;
  }
  r.valid = false;
  r.error = "expected type " + decl + ", got " + PyName(vt) + " " + Short(value);
  return r;
}

bool BfclDictOk(const json& value, const json& allowed_dicts, std::string* why) {
  for (auto& pa : allowed_dicts.is_array() ? allowed_dicts : json::array({allowed_dicts})) {
    if (pa == "" || !pa.is_object()) continue;
    bool flag = true;
    for (auto& [k, v] : value.items()) {
      if (!pa.contains(k)) {
        *why = "unexpected dict key \"" + k + "\"";
        flag = false;
        break;
      }
      json opts = pa[k].is_array() ? pa[k] : json::array({pa[k]});
      if (!PyIn(StdTop(v), StdList(opts))) {
        *why = "dict key \"" + k + "\": value " + Short(v) + " not in " + Short(opts);
        flag = false;
        break;
      }
    }
    if (flag)
      for (auto& [k, v] : pa.items()) {
        bool optional = v.is_array() && std::any_of(v.begin(), v.end(), [](const json& x) { return x == ""; });
        if (!value.contains(k) && !optional) {
          *why = "dict key \"" + k + "\" missing";
          flag = false;
          break;
        }
      }
    if (flag) return true;
  }
  if (why->empty()) *why = "no allowed dict";
  return false;
}

bool BfclListDictOk(const json& value, const json& allowed, std::string* why) {
  for (auto& pa : allowed.is_array() ? allowed : json::array()) {
    if (!pa.is_array() || pa.size() != value.size()) {
      *why = "wrong number of dicts in the list";
      continue;
    }
    bool flag = true;
    for (size_t i = 0; i < value.size() && flag; ++i) flag = value[i].is_object() && BfclDictOk(value[i], json::array({pa[i]}), why);
    if (flag) return true;
  }
  return false;
}

bool BfclListOk(const json& value, const json& allowed) {
  json v = StdList(value);
  for (auto& pa : allowed.is_array() ? allowed : json::array()) {
    json p = pa == "" ? json::array() : pa;  // BFCL iterates "" as an empty list
    if (!p.is_array()) continue;
    if (PyEq(v, StdList(p))) return true;
  }
  return false;
}

AstResult BfclMatchCall(const FunctionCall& call, const json& doc, const std::string& want, const json& allowed, CallLanguage lang) {
  json params = doc.value("parameters", json::object());
  json props = params.is_object() ? params.value("properties", json::object()) : json::object();
  json required = params.is_object() ? params.value("required", json::array()) : json::array();
  for (auto& r : required)
    if (r.is_string() && !call.arguments.contains(r.get<std::string>()))
      return {false, want + ": required parameter \"" + r.get<std::string>() + "\" missing"};
  for (auto& [k, raw] : call.arguments.items()) {
    if (!props.contains(k) || !allowed.contains(k)) return {false, want + ": unexpected parameter \"" + k + "\""};
    const json& schema = props[k];
    const json& opts = allowed[k];
    std::string decl = DeclType(schema);
    std::string item = ItemType(schema);
    json value = raw;
    Py expected;
    std::optional<Py> nested;
    if (lang == CallLanguage::kPython) {
      expected = PythonType(decl);
      if (NestedChecked(decl, lang) && !item.empty() && PythonType(item) != Py::kUnknown) nested = PythonType(item);
      if (expected == Py::kUnknown) {
        // Not a BFCL type: compare with the allowed values as they are.
        if (!PyIn(value, opts)) return {false, want + "." + k + ": value " + Short(value) + " not in allowed " + Short(opts)};
        continue;
      }
      if (expected == Py::kFloat && value.is_number_integer()) value = value.get<double>();
    } else {
      bool java = lang == CallLanguage::kJava;
      expected = java ? JavaType(decl) : JsType(decl);
      if (expected == Py::kUnknown) return {false, want + "." + k + ": declared type \"" + decl + "\" has no " + (java ? "Java" : "JavaScript") + " conversion"};
      if (!value.is_string())
        return {false, want + "." + k + ": expected a " + (java ? "Java" : "JavaScript") + " value in string representation, got " + Short(value)};
      std::string nested_decl = NestedChecked(decl, lang) ? item : "";
      if (!nested_decl.empty()) nested = java ? JavaType(nested_decl) : JsType(nested_decl);
      auto converted = java ? JavaConvert(value.get<std::string>(), decl, nested_decl) : JsConvert(value.get<std::string>(), decl, nested_decl);
      if (!converted) return {false, want + "." + k + ": declared type \"" + decl + "\" has no conversion in BFCL"};
      value = *converted;
    }
    TypeCheck tc = BfclTypeCheck(value, opts, expected, nested, decl);
    if (!tc.valid) return {false, want + "." + k + ": " + tc.error};
    std::string why;
    if (!tc.is_variable) {
      if (expected == Py::kDict) {
        if (!BfclDictOk(value, opts, &why)) return {false, want + "." + k + ": " + why};
        continue;
      }
      if (expected == Py::kList && nested == Py::kDict) {
        if (!BfclListDictOk(value, opts, &why)) return {false, want + "." + k + ": " + why};
        continue;
      }
      if (expected == Py::kStr) {
        json std_opts = json::array();
        for (auto& o : opts.is_array() ? opts : json::array({opts}))
          if (o.is_string()) std_opts.push_back(StandardizeString(o.get<std::string>()));
        if (!PyIn(StdTop(value), std_opts)) return {false, want + "." + k + ": value " + Short(raw) + " not in allowed " + Short(opts)};
        continue;
      }
      if (expected == Py::kList) {
        if (!BfclListOk(value, opts)) return {false, want + "." + k + ": value " + Short(raw) + " not in allowed " + Short(opts)};
        continue;
      }
    }
    if (!PyIn(value, opts)) return {false, want + "." + k + ": value " + Short(raw) + " not in allowed " + Short(opts)};
  }
  for (auto& [k, av] : allowed.items()) {
    if (call.arguments.contains(k)) continue;
    bool optional = av.is_array() && std::any_of(av.begin(), av.end(), [](const json& x) { return x == ""; });
    if (!optional) return {false, want + ": parameter \"" + k + "\" missing (ground truth requires one of " + Short(av) + ")"};
  }
  return {true, want + ": match"};
}

// ---- ACEBench checks -----------------------------------------------------------------------------------------

Py AceType(const std::string& t) {
  if (t == "string" || t == "any") return Py::kStr;
  if (t == "integer" || t == "int" || t == "number") return Py::kInt;  // ACEBench maps "number" to int
  if (t == "float") return Py::kFloat;
  if (t == "boolean") return Py::kBool;
  if (t == "array" || t == "tuple" || t == "list" || t == "objectArray" || t == "list(string)" || t == "list(enum)") return Py::kList;
  if (t == "dict" || t == "object") return Py::kDict;
  if (t == "enum") return Py::kEnum;  // matches no value type: the ground truth's type decides
  return Py::kUnknown;
}

json AceBoolish(const json& v) {
  if (v == "true") return true;
  if (v == "false") return false;
  return v;
}

// ACEBench value comparison: strings by standardized substring (exact with `exact`), lists element-wise
// with standardized strings, dicts with the same key count and recursively, other values by ==.
bool AceValueOk(const json& raw, const json& want, bool exact, std::string* why) {
  json v = AceBoolish(raw);
  if (want.is_string()) {
    if (!v.is_string()) {
      *why = "expected a string like " + Short(want) + ", got " + Short(raw);
      return false;
    }
    std::string g = StandardizeString(v.get<std::string>()), w = StandardizeString(want.get<std::string>());
    bool ok = exact ? g == w : g.find(w) != std::string::npos;
    if (!ok) *why = "value " + Short(raw) + " does not " + (exact ? "equal " : "contain ") + Short(want);
    return ok;
  }
  if (want.is_object()) {
    if (!v.is_object() || v.size() != want.size()) {
      *why = "expected " + Short(want) + ", got " + Short(raw);
      return false;
    }
    for (auto& [k, x] : v.items()) {
      if (!want.contains(k)) {
        *why = "unexpected key \"" + k + "\" in " + Short(raw);
        return false;
      }
      if (!AceValueOk(x, want[k], exact, why)) return false;
    }
    return true;
  }
  if (want.is_array()) {
    if (!v.is_array() || v.size() != want.size()) {
      *why = "expected " + Short(want) + ", got " + Short(raw);
      return false;
    }
    for (size_t i = 0; i < v.size(); ++i) {
      if (want[i].is_object() || want[i].is_array()) {
        if (!AceValueOk(v[i], want[i], exact, why)) return false;
      } else if (!PyEq(StdTop(AceBoolish(v[i])), StdTop(want[i]))) {
        *why = "expected " + Short(want) + ", got " + Short(raw);
        return false;
      }
    }
    return true;
  }
  if (!PyEq(v, want) || v.is_string()) {
    *why = "value " + Short(raw) + " != " + Short(want);
    return false;
  }
  return true;
}

AstResult AceMatchCall(const FunctionCall& call, const json& doc, const std::string& want, const json& gt, bool exact) {
  json fparams = doc.value("parameters", json::object());
  bool no_params = !fparams.is_object() || fparams.empty() || fparams.value("properties", json::object()).empty();
  if (call.arguments.empty() && no_params) return {true, want + ": match (no parameters)"};
  if (call.arguments.empty() || no_params) return {false, want + ": wrong parameters (" + Short(call.arguments) + ")"};
  if (!gt.is_object() || gt.empty()) return {false, want + ": the ground truth has no parameters, the call has " + Short(call.arguments)};
  json props = fparams.value("properties", json::object());
  json required = fparams.value("required", json::array());
  for (auto& r : required)
    if (r.is_string() && !call.arguments.contains(r.get<std::string>()))
      return {false, want + ": required parameter \"" + r.get<std::string>() + "\" missing"};
  for (auto& [k, raw] : call.arguments.items()) {
    if (!props.contains(k) || !gt.contains(k)) return {false, want + ": unexpected parameter \"" + k + "\""};
    std::string decl = DeclType(props[k]);
    Py expected = AceType(decl);
    json value = AceBoolish(raw);
    if (decl == "float" && value.is_number_integer()) value = value.get<double>();
    Py vt = PyTypeOf(value), at = PyTypeOf(gt[k]);
    if (vt != expected && vt != at && !PyEq(value, gt[k]))
      return {false, want + "." + k + ": expected type " + decl + ", got " + PyName(vt) + " " + Short(raw)};
    std::string why;
    if (!AceValueOk(value, gt[k], exact, &why)) return {false, want + "." + k + ": " + why};
  }
  return {true, want + ": match"};
}

// ---- matching ------------------------------------------------------------------------------------------------

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

std::string AceBaseName(const std::string& name, const json& functions) {
  if (FindFunction(functions, name)) return name;
  static const std::regex suffix("_[0-9]+$");
  return std::regex_replace(name, suffix, "");
}

std::optional<json> ConvertSourceValue(const std::string& text, const std::string& type, const std::string& item_type, CallLanguage language) {
  if (language == CallLanguage::kJava) return JavaConvert(text, type, NestedChecked(type, language) ? item_type : "");
  if (language == CallLanguage::kJavaScript) return JsConvert(text, type, NestedChecked(type, language) ? item_type : "");
  return json(text);
}

namespace {

std::string NumText(const json& v) {
  if (v.is_number_integer()) return v.dump();
  if (!v.is_number()) return v.dump();
  std::string s = v.dump();  // shortest round-trip form, as Python's repr
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::optional<std::string> RenderElement(const json& v, const std::string& t, CallLanguage lang, bool quote_strings) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (!quote_strings) return s;
    return lang == CallLanguage::kJava ? "\"" + s + "\"" : "'" + s + "'";
  }
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number()) {
    if (lang == CallLanguage::kJava && t == "long") return v.dump() + "L";
    if (lang == CallLanguage::kJava && t == "float") return NumText(v) + "f";
    if (lang == CallLanguage::kJavaScript && t == "Bigint") return v.dump() + "n";
    return (t == "float" || t == "double") ? NumText(v) : v.dump();
  }
  if (v.is_array() && lang == CallLanguage::kJavaScript) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      auto e = RenderElement(v[i], "", lang, true);
      if (!e) return std::nullopt;
      out += (i ? ", " : "") + *e;
    }
    return out + "]";
  }
  if (v.is_object() && lang == CallLanguage::kJavaScript) {
    std::string out = "{";
    size_t i = 0;
    for (auto& [k, x] : v.items()) {
      auto e = RenderElement(x, "", lang, true);
      if (!e) return std::nullopt;
      out += (i++ ? ", " : "") + ("'" + k + "': ") + *e;
    }
    return out + "}";
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> RenderSourceValue(const json& value, const json& schema, CallLanguage lang) {
  std::string t = DeclType(schema), item = ItemType(schema);
  std::optional<std::string> out;
  if (lang == CallLanguage::kJava && (t == "Array" || t == "ArrayList") && value.is_array()) {
    std::string body;
    for (size_t i = 0; i < value.size(); ++i) {
      auto e = RenderElement(value[i], item, lang, t == "ArrayList" && (item == "String" || item == "char" || item.empty()));
      if (!e) return std::nullopt;
      body += (i ? ", " : "") + *e;
    }
    if (t == "Array") out = "new Object[]{" + body + "}";
    else out = value.empty() ? "new ArrayList<>()" : "new ArrayList<>(Arrays.asList(" + body + "))";
  } else if (lang == CallLanguage::kJava && t == "HashMap" && value.is_object()) {
    std::string body;
    for (auto& [k, x] : value.items()) {
      auto e = RenderElement(x, "", lang, true);
      if (!e) return std::nullopt;
      body += "put(\"" + k + "\", " + *e + "); ";
    }
    out = value.empty() ? "new HashMap<>()" : "new HashMap<String, Object>() {{ " + body + "}}";
  } else if (lang == CallLanguage::kJavaScript && t == "array" && value.is_array()) {
    out = RenderElement(value, item, lang, true);
  } else if (lang == CallLanguage::kJavaScript && t == "String" && value.is_string()) {
    out = value.get<std::string>();
  } else if (!value.is_array() && !value.is_object()) {
    out = RenderElement(value, t, lang, false);
  } else if (lang == CallLanguage::kJavaScript) {
    out = RenderElement(value, t, lang, true);
  }
  if (!out) return std::nullopt;
  // Only a text the converter reads back as the value is a rendering.
  auto back = ConvertSourceValue(*out, t, item, lang);
  if (!back) return std::nullopt;
  return out;
}

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

AstResult MatchCall(const FunctionCall& call, const json& functions, const json& gt_entry, const AstRules& rules) {
  if (!gt_entry.is_object() || gt_entry.size() != 1) return {false, "ground truth entry: expected {name: {params}}"};
  const std::string want = rules.acebench ? AceBaseName(gt_entry.begin().key(), functions) : gt_entry.begin().key();
  const json& allowed = gt_entry.begin().value();
  if (call.name != want) return {false, "function name " + call.name + " != " + want};
  if (!call.arguments.is_object()) return {false, want + ": arguments are not a JSON object"};
  const json* doc = FindFunction(functions, want);
  if (!doc) return {false, want + ": no function doc with this name"};
  if (rules.acebench) return AceMatchCall(call, *doc, want, allowed, rules.exact_strings);
  if (!allowed.is_object()) return {false, want + ": ground truth parameters: expected an object"};
  return BfclMatchCall(call, *doc, want, allowed, rules.language);
}

AstResult MatchCalls(const std::vector<FunctionCall>& calls, const json& functions, const json& gt, const AstRules& rules) {
  if (!gt.is_array()) return {false, "ground truth: expected array"};
  if (calls.size() != gt.size())
    return {false, std::to_string(calls.size()) + " call(s), expected " + std::to_string(gt.size())};
  if (gt.empty()) return {true, "no call expected, none made"};
  std::vector<std::vector<bool>> ok(gt.size(), std::vector<bool>(calls.size()));
  std::string first_fail;
  for (size_t i = 0; i < gt.size(); ++i) {
    bool any = false;
    std::string fail;
    std::string want = gt[i].is_object() && !gt[i].empty() ? gt[i].begin().key() : "";
    if (rules.acebench) want = AceBaseName(want, functions);
    for (size_t j = 0; j < calls.size(); ++j) {
      AstResult r = MatchCall(calls[j], functions, gt[i], rules);
      ok[i][j] = r.ok;
      any |= r.ok;
      // The most informative failure is the one against the call with the same name.
      if (!r.ok && (fail.empty() || calls[j].name == want)) fail = r.detail;
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
  AstReward(bool exact, CallLanguage lang) : exact_(exact), lang_(lang) {}
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
    AstRules rules;
    rules.language = lang_;
    if (auto l = t.find("language"); l != t.end()) {
      if (*l == "python") rules.language = CallLanguage::kPython;
      else if (*l == "java") rules.language = CallLanguage::kJava;
      else if (*l == "javascript") rules.language = CallLanguage::kJavaScript;
      else return InvalidArgument("ast: task.language: expected \"python\", \"java\" or \"javascript\"");
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
    AstResult m = MatchCalls(calls, t["functions"], gt, rules);
    r.value = m.ok ? 1 : 0;
    r.components["calls"] = static_cast<double>(calls.size());
    r.explanation = m.detail;
    return r;
  }

 private:
  bool exact_;
  CallLanguage lang_;
};

}  // namespace

Expected<std::unique_ptr<Reward>> MakeAstReward(const json& config, const std::string& where) {
  bool exact = false;
  CallLanguage lang = CallLanguage::kPython;
  for (auto& [k, v] : config.items()) {
    if (k == "type") continue;
    if (k == "format" && v.is_string() && (v == "bfcl" || v == "exact")) exact = v == "exact";
    else if (k == "language" && v.is_string() && (v == "python" || v == "java" || v == "javascript"))
      lang = v == "java" ? CallLanguage::kJava : v == "javascript" ? CallLanguage::kJavaScript : CallLanguage::kPython;
    else return InvalidArgument(where + "." + k + ": unknown key or wrong type (expected format: \"bfcl\"|\"exact\", language: \"python\"|\"java\"|\"javascript\")");
  }
  return std::unique_ptr<Reward>(new AstReward(exact, lang));
}

}  // namespace k2::rewards
