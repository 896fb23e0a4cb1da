// Typed, strictly validated configuration. One documented struct per component (STYLE.md habit 9):
//
//   struct SandboxConfig {
//     int workers = 2;
//     double run_timeout_s = 10;
//     template <class V> void Visit(V& v) {
//       v("workers", workers, "warm zygotes kept ready", {.min = 1, .max = 256});
//       v("run_timeout_s", run_timeout_s, "wall-clock limit per run (s)", {.min = 0.001});
//     }
//   };
//
// The struct's member initializers are the defaults (the one place they live); Visit lists the keys.
// From it the same code derives: strict reading of JSON (unknown key -> error naming the nearest valid
// key; wrong type or range -> error naming what was expected), writing back to JSON, the field table
// for `--set key.path=value` typing, and the reference in docs/config.md (`k2gym config doc`).
// Supported field types: bool, int, int64_t, uint64_t, double, float, std::string, std::vector of
// string/int/double, std::optional<int|double|string>, nlohmann::json (free-form), nested structs.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace k2::config {

struct Opt {
  std::optional<double> min;            // inclusive
  std::optional<double> max;            // inclusive
  std::vector<std::string> choices;     // for strings: allowed values
};

// One leaf of a config tree, for docs and `--set` typing.
struct FieldInfo {
  std::string path;       // "sandbox.workers"
  std::string type;       // "integer", "number", "boolean", "string", "array of string", "object", ...
  json default_value;
  std::string doc;
  Opt opt;
};

// Levenshtein-nearest candidate, or "" when nothing is close enough to suggest.
std::string Nearest(const std::string& key, const std::vector<std::string>& candidates);

// "expected integer in [1, 256]" etc.; exposed for tests and other validators.
std::string DescribeExpected(const std::string& type, const Opt& opt);

struct Reader;

namespace detail {
template <class T> struct IsVector : std::false_type {};
template <class T> struct IsVector<std::vector<T>> : std::true_type { using elem = T; };
template <class T> struct IsOptional : std::false_type {};
template <class T> struct IsOptional<std::optional<T>> : std::true_type { using elem = T; };

template <class T>
const char* ScalarTypeName() {
  if constexpr (std::is_same_v<T, bool>) return "boolean";
  else if constexpr (std::is_integral_v<T>) return "integer";
  else if constexpr (std::is_floating_point_v<T>) return "number";
  else if constexpr (std::is_same_v<T, std::string>) return "string";
  else return "value";
}

template <class T>
std::string TypeName() {
  if constexpr (std::is_same_v<T, json>) return "any JSON";
  else if constexpr (IsVector<T>::value) return std::string("array of ") + TypeName<typename IsVector<T>::elem>();
  else if constexpr (IsOptional<T>::value) return TypeName<typename IsOptional<T>::elem>() + " or null";
  else if constexpr (requires(T t, Reader& r) { t.Visit(r); }) return "object";
  else return ScalarTypeName<T>();
}

std::string ShowValue(const json& j);  // short rendering of a bad value for messages
}  // namespace detail

namespace detail {
// `v` (an integer, or an integral float such as 3.0) as T when T holds it exactly; nullopt otherwise.
// Floats are range-checked against 2^63 / 2^64 before the cast (casting an out-of-range double is UB).
template <class T>
std::optional<T> ExactInteger(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (!std::in_range<T>(u)) return std::nullopt;
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (!std::in_range<T>(i)) return std::nullopt;
    return static_cast<T>(i);
  }
  if (!v.is_number_float()) return std::nullopt;
  double d = v.get<double>();
  if (!std::isfinite(d) || std::floor(d) != d) return std::nullopt;
  if (d >= -0x1p63 && d < 0x1p63) {
    int64_t i = static_cast<int64_t>(d);
    if (!std::in_range<T>(i)) return std::nullopt;
    return static_cast<T>(i);
  }
  if (d >= 0 && d < 0x1p64) {
    uint64_t u = static_cast<uint64_t>(d);
    if (!std::in_range<T>(u)) return std::nullopt;
    return static_cast<T>(u);
  }
  return std::nullopt;
}
}  // namespace detail

// Reads a JSON object into a config struct, strictly. Stops at the first error.
struct Reader {
  Reader(const json& j, std::string path, std::string source, bool allow_unknown = false)
      : j_(&j), path_(std::move(path)), source_(std::move(source)), allow_unknown_(allow_unknown) {}

  template <class T>
  void operator()(const char* key, T& field, const char* /*doc*/, Opt opt = {}) {
    seen_.push_back(key);
    if (!status_.ok() || !j_->is_object()) return;
    auto it = j_->find(key);
    if (it == j_->end()) return;  // default stays
    Read(*it, Join(key), field, opt);
  }

  // Reads `obj` into `cfg` (an object: unknown keys are errors unless allow_unknown).
  template <class T>
  static Status Read(const json& obj, T& cfg, const std::string& path, const std::string& source,
                     bool allow_unknown = false) {
    if (!obj.is_object()) {
      return InvalidArgument(source + ": " + (path.empty() ? "<root>" : path) + ": expected object, got " +
                             detail::ShowValue(obj));
    }
    Reader r(obj, path, source, allow_unknown);
    cfg.Visit(r);
    if (!r.status_.ok()) return r.status_;
    if (!allow_unknown) {
      for (auto& [k, v] : obj.items()) {
        bool known = false;
        for (auto& s : r.seen_) known |= (s == k);
        if (!known) {
          std::string full = path.empty() ? k : path + "." + k;
          std::string near = Nearest(k, r.seen_);
          std::string msg = source + ": unknown key \"" + full + "\"";
          if (!near.empty()) msg += " (did you mean \"" + (path.empty() ? near : path + "." + near) + "\"?)";
          return InvalidArgument(msg);
        }
      }
    }
    return Status::Ok();
  }

 private:
  std::string Join(const char* key) const { return path_.empty() ? key : path_ + "." + key; }
  void Fail(const std::string& path, const std::string& expected, const json& got) {
    status_ = InvalidArgument(source_ + ": " + path + ": " + expected + ", got " + detail::ShowValue(got));
  }

  template <class T>
  void Read(const json& v, const std::string& path, T& out, const Opt& opt) {
    if constexpr (std::is_same_v<T, json>) {
      out = v;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) return Fail(path, "expected boolean", v);
      out = v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) {
        // 3.0 is accepted as 3 (JSON writers print integral doubles that way); 3.5 is not.
        if (!(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
          return Fail(path, "expected " + DescribeExpected("integer", opt), v);
      }
      // Exact range checks: converting through double would let 2^63 pass as INT64_MAX and wrap.
      std::optional<T> exact = detail::ExactInteger<T>(v);
      double d = v.get<double>();
      if (!exact || (opt.min && d < *opt.min) || (opt.max && d > *opt.max))
        return Fail(path, "expected " + DescribeExpected("integer", opt), v);
      out = *exact;
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) return Fail(path, "expected " + DescribeExpected("number", opt), v);
      double d = v.get<double>();
      if ((opt.min && d < *opt.min) || (opt.max && d > *opt.max) || !std::isfinite(d))
        return Fail(path, "expected " + DescribeExpected("number", opt), v);
      out = static_cast<T>(d);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) return Fail(path, "expected " + DescribeExpected("string", opt), v);
      std::string s = v.get<std::string>();
      if (!opt.choices.empty()) {
        bool ok = false;
        for (auto& c : opt.choices) ok |= (c == s);
        if (!ok) return Fail(path, "expected " + DescribeExpected("string", opt), v);
      }
      out = std::move(s);
    } else if constexpr (detail::IsOptional<T>::value) {
      if (v.is_null()) {
        out.reset();
      } else {
        typename detail::IsOptional<T>::elem e{};
        Read(v, path, e, opt);
        if (status_.ok()) out = std::move(e);
      }
    } else if constexpr (detail::IsVector<T>::value) {
      if (!v.is_array()) return Fail(path, "expected " + detail::TypeName<T>(), v);
      T tmp;
      for (size_t i = 0; i < v.size() && status_.ok(); ++i) {
        typename detail::IsVector<T>::elem e{};
        Read(v[i], path + "[" + std::to_string(i) + "]", e, opt);
        tmp.push_back(std::move(e));
      }
      if (status_.ok()) out = std::move(tmp);
    } else {
      // Nested section.
      Status s = Reader::Read(v, out, path, source_, allow_unknown_);
      if (!s.ok()) status_ = s;
    }
  }

  const json* j_;
  std::string path_, source_;
  bool allow_unknown_;
  Status status_;
  std::vector<std::string> seen_;
};

// Writes a config struct to JSON (keys in Visit order are not kept: json objects sort keys).
struct Writer {
  json out = json::object();
  template <class T>
  void operator()(const char* key, const T& field, const char*, Opt = {}) {
    out[key] = ToJson(field);
  }
  template <class T>
  static json ToJson(const T& v) {
    if constexpr (detail::IsOptional<T>::value) {
      return v ? ToJson(*v) : json(nullptr);
    } else if constexpr (detail::IsVector<T>::value) {
      json a = json::array();
      for (auto& e : v) a.push_back(ToJson(e));
      return a;
    } else if constexpr (requires(T t, Writer& w) { t.Visit(w); }) {
      Writer w;
      const_cast<T&>(v).Visit(w);  // Visit does not modify when the visitor only reads
      return w.out;
    } else {
      return json(v);
    }
  }
};

// Collects the leaf fields of a config struct (for docs and --set typing).
struct Lister {
  std::string prefix;
  std::vector<FieldInfo> fields;
  template <class T>
  void operator()(const char* key, const T& field, const char* doc, Opt opt = {}) {
    std::string path = prefix.empty() ? key : prefix + "." + key;
    if constexpr (requires(T t, Lister& l) { t.Visit(l); }) {
      Lister sub{path, {}};
      const_cast<T&>(field).Visit(sub);
      fields.push_back({path, "object", json(nullptr), doc, opt});
      for (auto& f : sub.fields) fields.push_back(std::move(f));
    } else {
      fields.push_back({path, detail::TypeName<T>(), Writer::ToJson(field), doc, opt});
    }
  }
};

template <class T>
json ToJson(const T& cfg) { return Writer::ToJson(cfg); }

template <class T>
Expected<T> FromJson(const json& j, const std::string& path, const std::string& source) {
  T cfg{};
  K2_RETURN_IF_ERROR(Reader::Read(j, cfg, path, source));
  return cfg;
}

// ---- Sections of the run config: the top-level keys of a `--config FILE.json`. ----
// Each component's config struct is registered once (in apps/, next to the command that uses it).

struct SectionInfo {
  std::string name;
  std::string doc;
  std::function<Status(const json&, const std::string& source, json* resolved)> resolve;
  std::function<std::vector<FieldInfo>()> fields;
};

void RegisterSection(SectionInfo info);
const std::vector<SectionInfo>& Sections();  // sorted by name

template <class T>
struct SectionRegistrar {
  SectionRegistrar(const char* name, const char* doc) {
    RegisterSection(SectionInfo{
        name, doc,
        [name = std::string(name)](const json& j, const std::string& source, json* resolved) -> Status {
          T cfg{};
          K2_RETURN_IF_ERROR(Reader::Read(j, cfg, name, source));
          *resolved = ToJson(cfg);
          return Status::Ok();
        },
        [name = std::string(name)] {
          Lister l{name, {}};
          T cfg{};
          cfg.Visit(l);
          return l.fields;
        }});
  }
};

#define K2_CONFIG_SECTION(name, Type, doc) \
  static ::k2::config::SectionRegistrar<Type> K2_CONCAT_(k2_section_, __LINE__)(name, doc)

// Applies one `key.path=value` override to `root`. The value is typed by the registered field at that
// path: booleans accept true/false, numbers must parse whole, strings are taken as they are, arrays and
// free-form fields are parsed as JSON (arrays of strings also accept "a,b,c").
Status ApplySet(json& root, const std::string& assignment);

// Validates every section of `root` (unknown sections are errors) and returns the resolved config with
// every default filled in. `source` names the file (or "--set") in messages.
Expected<json> Resolve(const json& root, const std::string& source);

// Reads the resolved section `name` into its struct (after Resolve, this cannot fail on input).
template <class T>
Expected<T> Get(const json& resolved, const std::string& name) {
  auto it = resolved.find(name);
  if (it == resolved.end()) return T{};
  return FromJson<T>(*it, name, "config");
}

// The config reference as Markdown (docs/config.md is this text).
std::string DocMarkdown();

}  // namespace k2::config
