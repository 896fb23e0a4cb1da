// Config sections registry, --set overrides, resolution and the Markdown reference.
#include "core/config.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace k2::config {

namespace {

std::vector<SectionInfo>& Registry() {
  static std::vector<SectionInfo> r;
  return r;
}

size_t Levenshtein(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string FormatNumber(double d) {
  std::ostringstream os;
  if (std::floor(d) == d && std::fabs(d) < 1e15) {
    os << static_cast<long long>(d);
  } else {
    os << d;
  }
  return os.str();
}

const FieldInfo* FindField(const std::vector<FieldInfo>& fields, const std::string& path) {
  for (auto& f : fields)
    if (f.path == path) return &f;
  return nullptr;
}

std::vector<FieldInfo> AllFields() {
  std::vector<FieldInfo> all;
  for (auto& s : Sections()) {
    all.push_back({s.name, "object", json(nullptr), s.doc, {}});
    for (auto& f : s.fields()) all.push_back(std::move(f));
  }
  return all;
}

// Parses a scalar string as the field's type. Returns an error message or "".
std::string ParseTyped(const FieldInfo& f, const std::string& text, json* out) {
  const std::string& t = f.type;
  auto base = t.substr(0, t.find(" or null"));
  if (t.find(" or null") != std::string::npos && text == "null") {
    *out = nullptr;
    return "";
  }
  if (base == "boolean") {
    if (text == "true") *out = true;
    else if (text == "false") *out = false;
    else return "expected boolean (true or false)";
    return "";
  }
  if (base == "integer") {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE) return "expected integer";
    *out = v;
    return "";
  }
  if (base == "number") {
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v)) return "expected number";
    *out = v;
    return "";
  }
  if (base == "string") {
    *out = text;
    return "";
  }
  if (base == "object") return "is a section; set one of its keys";
  // Arrays and free-form: JSON text; arrays of strings also accept a comma-separated list.
  auto j = ParseJson(text, "value");
  if (j.ok()) {
    *out = *j;
    return "";
  }
  if (base == "array of string") {
    json a = json::array();
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) a.push_back(item);
    *out = a;
    return "";
  }
  return "expected " + t + " as JSON";
}

}  // namespace

std::string Nearest(const std::string& key, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (auto& c : candidates) {
    size_t d = Levenshtein(key, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(2, key.size() / 3);
  return best_d <= limit ? best : "";
}

std::string DescribeExpected(const std::string& type, const Opt& opt) {
  std::string s = type;
  if (!opt.choices.empty()) {
    s = "one of ";
    for (size_t i = 0; i < opt.choices.size(); ++i) s += (i ? ", \"" : "\"") + opt.choices[i] + "\"";
    return s;
  }
  if (opt.min && opt.max) s += " in [" + FormatNumber(*opt.min) + ", " + FormatNumber(*opt.max) + "]";
  else if (opt.min) s += " >= " + FormatNumber(*opt.min);
  else if (opt.max) s += " <= " + FormatNumber(*opt.max);
  return s;
}

namespace detail {
std::string ShowValue(const json& j) {
  std::string d = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (d.size() > 60) d = d.substr(0, 57) + "...";
  if (j.is_string()) return "string " + d;
  if (j.is_object() || j.is_array()) return std::string(JsonTypeName(j)) + " " + d;
  return d;
}
}  // namespace detail

void RegisterSection(SectionInfo info) {
  auto& r = Registry();
  for (auto& s : r) K2_CHECK(s.name != info.name) << "config section registered twice: " << info.name;
  r.push_back(std::move(info));
  std::sort(r.begin(), r.end(), [](const SectionInfo& a, const SectionInfo& b) { return a.name < b.name; });
}

const std::vector<SectionInfo>& Sections() { return Registry(); }

Status ApplySet(json& root, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    return InvalidArgument("--set " + assignment + ": expected key.path=value");
  std::string path = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  auto fields = AllFields();
  const FieldInfo* f = FindField(fields, path);
  if (!f) {
    std::vector<std::string> paths;
    for (auto& x : fields) paths.push_back(x.path);
    std::string near = Nearest(path, paths);
    std::string msg = "--set: unknown key \"" + path + "\"";
    if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
    return InvalidArgument(msg);
  }
  json typed;
  std::string err = ParseTyped(*f, value, &typed);
  if (!err.empty()) return InvalidArgument("--set " + path + ": " + err + ", got \"" + value + "\"");
  if (!root.is_object()) root = json::object();
  json* node = &root;
  std::stringstream ss(path);
  std::string part;
  std::vector<std::string> parts;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    json& next = (*node)[parts[i]];
    if (!next.is_object()) next = json::object();
    node = &next;
  }
  (*node)[parts.back()] = typed;
  return Status::Ok();
}

Expected<json> Resolve(const json& root, const std::string& source) {
  if (!root.is_null() && !root.is_object())
    return InvalidArgument(source + ": <root>: expected object, got " + detail::ShowValue(root));
  json in = root.is_null() ? json::object() : root;
  std::vector<std::string> names;
  for (auto& s : Sections()) names.push_back(s.name);
  for (auto& [k, v] : in.items()) {
    if (std::find(names.begin(), names.end(), k) == names.end()) {
      std::string near = Nearest(k, names);
      std::string msg = source + ": unknown key \"" + k + "\"";
      if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
      return InvalidArgument(msg);
    }
  }
  json out = json::object();
  for (auto& s : Sections()) {
    json resolved;
    auto it = in.find(s.name);
    K2_RETURN_IF_ERROR(s.resolve(it == in.end() ? json::object() : *it, source, &resolved));
    out[s.name] = std::move(resolved);
  }
  return out;
}

std::string DocMarkdown() {
  std::ostringstream os;
  os << "# Configuration reference\n\n"
     << "Generated by `k2gym config doc` from the config structs in the code (their member initializers\n"
     << "are the defaults); a test fails when this file and the code disagree.\n\n"
     << "A run config is one JSON object whose top-level keys are the sections below. Every key is\n"
     << "optional; unknown keys are errors. Override any leaf on the command line with\n"
     << "`--set section.key=value` (typed by the table: booleans `true`/`false`, numbers, strings as\n"
     << "they are, arrays as JSON or comma-separated strings).\n";
  for (auto& s : Sections()) {
    os << "\n## `" << s.name << "`\n\n" << s.doc << "\n\n";
    os << "| key | type | default | description |\n|---|---|---|---|\n";
    for (auto& f : s.fields()) {
      if (f.type == "object") {
        os << "| `" << f.path << "` | object | | " << f.doc << " |\n";
        continue;
      }
      std::string def = f.default_value.dump();
      std::string type = DescribeExpected(f.type, f.opt);
      os << "| `" << f.path << "` | " << type << " | `" << def << "` | " << f.doc << " |\n";
    }
  }
  return os.str();
}

}  // namespace k2::config
