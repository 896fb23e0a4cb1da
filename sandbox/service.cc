// SandboxFusion-compatible HTTP API over the Sandbox: request validation in FastAPI/pydantic's shape
// (422 {"detail": [...]}), response translation, routing and auth, with the body's JSON checked for depth
// and size before it is parsed.
#include "sandbox/service.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "sandbox/detail/base64.h"

namespace k2::sandbox {

namespace {

// Constant-time comparison: the token check must not leak a prefix through timing.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// SandboxFusion's `Language` literal, in its order: the values its request model accepts. This sandbox
// runs python and bash; the others validate and then answer SandboxError (docs/sandbox.md).
const std::vector<std::string>& Languages() {
  static const std::vector<std::string> k = {
      "python", "cpp", "nodejs", "go", "go_test", "java", "php", "csharp", "bash", "typescript", "sql", "rust",
      "cuda", "lua", "R", "perl", "D_ut", "ruby", "scala", "julia", "pytest", "junit", "kotlin_script", "jest",
      "verilog", "python_gpu", "lean", "swift", "racket"};
  return k;
}

std::string LanguageChoices() {
  std::string out;
  const auto& l = Languages();
  for (size_t i = 0; i < l.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == l.size() ? " or " : ", ") + ("'" + l[i] + "'");
  }
  return out;
}

// Collects pydantic-shaped errors: {"type", "loc": ["body", field...], "msg", "input"[, "ctx"]}.
struct Errors {
  json detail = json::array();
  void Add(const char* type, json loc, const std::string& msg, const json& input, json ctx = nullptr) {
    json e = {{"type", type}, {"loc", std::move(loc)}, {"msg", msg}, {"input", input}};
    if (!ctx.is_null()) e["ctx"] = std::move(ctx);
    detail.push_back(std::move(e));
  }
};

// pydantic's lax float: numbers, bools and numeric strings.
bool LaxFloat(const json& v, const json& loc, Errors& errs, double* out) {
  if (v.is_number()) {
    *out = v.get<double>();
    return true;
  }
  if (v.is_boolean()) {
    *out = v.get<bool>() ? 1 : 0;
    return true;
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    while (end && *end == ' ') ++end;
    if (!s.empty() && end && *end == '\0') {
      *out = d;
      return true;
    }
    errs.Add("float_parsing", loc, "Input should be a valid number, unable to parse string as a number", v);
    return false;
  }
  errs.Add("float_type", loc, "Input should be a valid number", v);
  return false;
}

// pydantic's lax int: integers, floats without a fraction, bools and integer strings.
bool LaxInt(const json& v, const json& loc, Errors& errs, int64_t* out) {
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_boolean()) {
    *out = v.get<bool>() ? 1 : 0;
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18) {
      *out = static_cast<int64_t>(d);
      return true;
    }
    errs.Add(std::isfinite(d) ? "int_from_float" : "finite_number", loc,
             std::isfinite(d) ? "Input should be a valid integer, got a number with a fractional part"
                              : "Input should be a finite number", v);
    return false;
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    long long n = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end && *end == '\0') {
      *out = n;
      return true;
    }
    errs.Add("int_parsing", loc, "Input should be a valid integer, unable to parse string as an integer", v);
    return false;
  }
  errs.Add("int_type", loc, "Input should be a valid integer", v);
  return false;
}

json Loc(const char* field) { return json::array({"body", field}); }

// Inside the sandbox a relative path is under /work (the program's cwd); an absolute one names that path
// in the sandbox's own root, where /work, /tmp, /mnt and /dev/shm are the writable places.
Status CheckSandboxPath(const std::string& p, bool for_writing) {
  if (p.empty() || p.size() > 1024 || p.find('\0') != std::string::npos) return InvalidArgument("expected a file path");
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0 && end - start == 2) return InvalidArgument("\"..\" is not allowed");
    start = end + 1;
  }
  if (p[0] != '/') return Status::Ok();
  for (const char* dir : {"/work/", "/tmp/", "/mnt/", "/dev/shm/"}) {
    if (p.rfind(dir, 0) == 0 && p.size() > std::string(dir).size()) return Status::Ok();
  }
  if (for_writing) return InvalidArgument("an absolute path must be under /work, /tmp, /mnt or /dev/shm (the rest is read-only)");
  if (p == "/proc" || p.rfind("/proc/", 0) == 0 || p.rfind("/dev/", 0) == 0 || p.rfind("/sys", 0) == 0) {
    return InvalidArgument("/proc, /sys and /dev cannot be fetched");
  }
  return Status::Ok();
}

// The first invalid UTF-8 sequence of s as Python's UnicodeDecodeError words it, or "" when s is valid.
std::string Utf8Error(const std::string& s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  auto report = [&](size_t start, size_t len, const char* reason) {
    char buf[160];
    if (len <= 1) {
      std::snprintf(buf, sizeof buf, "'utf-8' codec can't decode byte 0x%02x in position %zu: %s", b[start], start, reason);
    } else {
      std::snprintf(buf, sizeof buf, "'utf-8' codec can't decode bytes in position %zu-%zu: %s", start, start + len - 1, reason);
    }
    return std::string(buf);
  };
  while (i < n) {
    const unsigned char c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int need = 0;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2;
    else if (c >= 0xF0 && c <= 0xF4) need = 3;
    else return report(i, 1, "invalid start byte");
    // The second byte's range depends on the first (no overlongs, surrogates or values above U+10FFFF).
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    size_t k = 1;
    for (; k <= static_cast<size_t>(need); ++k) {
      if (i + k >= n) return report(i, k, "unexpected end of data");
      const unsigned char x = b[i + k];
      const bool ok = k == 1 ? (x >= lo && x <= hi) : (x >= 0x80 && x <= 0xBF);
      if (!ok) return report(i, k, "invalid continuation byte");
    }
    i += k;
  }
  return "";
}

std::string Decoded(const std::string& s) {
  std::string err = Utf8Error(s);
  return err.empty() ? s : "[DecodeError] " + err;
}

// Depth and size check of a JSON text without building it (nlohmann's SAX interface): a body of nested
// arrays must be refused before a parser allocates a node per bracket.
struct LimitSax {
  int max_depth;
  int64_t max_values;
  int depth = 0;
  int64_t values = 0;
  std::string error;
  size_t error_at = 0;
  bool Value() {
    if (++values > max_values) {
      error = "more than " + std::to_string(max_values) + " JSON values";
      return false;
    }
    return true;
  }
  bool Open() {
    if (++depth > max_depth) {
      error = "JSON nested deeper than " + std::to_string(max_depth) + " levels";
      return false;
    }
    return Value();
  }
  bool null() { return Value(); }
  bool boolean(bool) { return Value(); }
  bool number_integer(json::number_integer_t) { return Value(); }
  bool number_unsigned(json::number_unsigned_t) { return Value(); }
  bool number_float(json::number_float_t, const std::string&) { return Value(); }
  bool string(std::string&) { return Value(); }
  bool binary(json::binary_t&) { return Value(); }
  bool start_object(std::size_t) { return Open(); }
  bool key(std::string&) { return true; }
  bool end_object() { --depth; return true; }
  bool start_array(std::size_t) { return Open(); }
  bool end_array() { --depth; return true; }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) {
    error = e.what();
    error_at = pos;
    return false;
  }
};

}  // namespace

Expected<json> ParseBodyJson(std::string_view text, int max_depth, int64_t max_values, size_t* error_pos) {
  LimitSax sax{max_depth, max_values};
  bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, /*strict=*/true);
  if (error_pos) *error_pos = sax.error_at;
  if (!ok) return InvalidArgument("request body: " + (sax.error.empty() ? std::string("invalid JSON") : sax.error));
  return ParseJson(text, "request body");
}

Expected<RunRequest> ParseRunCode(const json& body, const Limits& defaults, double max_run_timeout_s, json* detail) {
  Errors errs;
  RunRequest r;
  r.limits = defaults;
  auto done = [&]() -> Expected<RunRequest> {
    if (errs.detail.empty()) return r;
    std::string summary;
    for (auto& e : errs.detail) {
      std::string loc;
      for (size_t i = 1; i < e["loc"].size(); ++i) {
        loc += (i > 1 ? "." : "") + (e["loc"][i].is_string() ? e["loc"][i].get<std::string>() : e["loc"][i].dump());
      }
      summary += (summary.empty() ? "" : "; ") + (loc.empty() ? std::string("body") : loc) + ": " + e["msg"].get<std::string>();
    }
    if (detail) *detail = errs.detail;
    return InvalidArgument("/run_code: " + summary);
  };
  if (!body.is_object()) {
    errs.Add("model_attributes_type", json::array({"body"}),
             "Input should be a valid dictionary or object to extract fields from", body);
    return done();
  }
  auto field = [&](const char* k) -> const json* {
    auto it = body.find(k);
    return it == body.end() ? nullptr : &*it;
  };
  // code: str, required.
  if (const json* v = field("code"); !v) {
    errs.Add("missing", Loc("code"), "Field required", body);
  } else if (!v->is_string()) {
    errs.Add("string_type", Loc("code"), "Input should be a valid string", *v);
  } else {
    r.code = v->get<std::string>();
  }
  // language: Literal[...], required.
  if (const json* v = field("language"); !v) {
    errs.Add("missing", Loc("language"), "Field required", body);
  } else if (!v->is_string() || std::find(Languages().begin(), Languages().end(), v->get<std::string>()) == Languages().end()) {
    errs.Add("literal_error", Loc("language"), "Input should be " + LanguageChoices(), *v,
             json{{"expected", LanguageChoices()}});
  } else {
    r.language = v->get<std::string>();
  }
  // compile_timeout: float (nothing is compiled here; validated as SandboxFusion does).
  double unused = 0;
  if (const json* v = field("compile_timeout")) LaxFloat(*v, Loc("compile_timeout"), errs, &unused);
  // run_timeout: float, default 10; sets the wall and CPU limits. Not capped silently: above the
  // configured maximum it is an error.
  double t = 10;
  if (const json* v = field("run_timeout"); v && LaxFloat(*v, Loc("run_timeout"), errs, &t)) {
    if (!(t > 0) || !std::isfinite(t)) {
      errs.Add("greater_than", Loc("run_timeout"), "Input should be greater than 0", *v, json{{"gt", 0}});
    } else if (t > max_run_timeout_s) {
      errs.Add("less_than_equal", Loc("run_timeout"),
               "Input should be less than or equal to " + json(max_run_timeout_s).dump() +
                   " (sandbox_service.max_run_timeout_s)",
               *v, json{{"le", max_run_timeout_s}});
    }
  }
  r.limits.wall_s = std::max(0.01, t);
  r.limits.cpu_s = std::max(0.01, t);
  // memory_limit_MB: int, -1 (or any value <= 0) = the configured default.
  int64_t m = -1;
  if (const json* v = field("memory_limit_MB"); v && LaxInt(*v, Loc("memory_limit_MB"), errs, &m) && m > 0) {
    if (m < 16) {
      errs.Add("greater_than_equal", Loc("memory_limit_MB"), "Input should be greater than or equal to 16 (or -1)", *v, json{{"ge", 16}});
    } else if (m > (1 << 20)) {
      errs.Add("less_than_equal", Loc("memory_limit_MB"), "Input should be less than or equal to 1048576", *v, json{{"le", 1 << 20}});
    } else {
      r.limits.memory_mb = m;
    }
  }
  // stdin: Optional[str].
  if (const json* v = field("stdin"); v && !v->is_null()) {
    if (v->is_string()) r.stdin_data = v->get<std::string>();
    else errs.Add("string_type", Loc("stdin"), "Input should be a valid string", *v);
  }
  // files: Dict[str, Optional[str]] (base64); null values are skipped, as SandboxFusion does.
  if (const json* v = field("files")) {
    if (!v->is_object()) {
      errs.Add("dict_type", Loc("files"), "Input should be a valid dictionary", *v);
    } else {
      for (auto& [path, content] : v->items()) {
        json loc = {"body", "files", path};
        if (content.is_null()) continue;
        if (!content.is_string()) {
          errs.Add("string_type", loc, "Input should be a valid string", content);
          continue;
        }
        if (Status s = CheckSandboxPath(path, true); !s.ok()) {
          errs.Add("value_error", loc, "Value error, " + s.message(), path);
          continue;
        }
        auto bytes = Base64Decode(content.get<std::string>());
        if (!bytes.ok()) {
          errs.Add("value_error", loc, "Value error, invalid base64: " + bytes.status().message(), content);
          continue;
        }
        r.files[path] = std::move(*bytes);
      }
    }
  }
  // fetch_files: List[str].
  if (const json* v = field("fetch_files")) {
    if (!v->is_array()) {
      errs.Add("list_type", Loc("fetch_files"), "Input should be a valid list", *v);
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        const json& p = (*v)[i];
        json loc = {"body", "fetch_files", i};
        if (!p.is_string()) {
          errs.Add("string_type", loc, "Input should be a valid string", p);
        } else if (Status s = CheckSandboxPath(p.get<std::string>(), false); !s.ok()) {
          errs.Add("value_error", loc, "Value error, " + s.message(), p);
        } else {
          r.fetch_files.push_back(p.get<std::string>());
        }
      }
    }
  }
  return done();
}

json RunResultToJson(const RunResult& r) {
  json out;
  if (r.status == RunStatus::kSandboxError) {
    out["status"] = "SandboxError";
    out["message"] = r.message;
    out["compile_result"] = nullptr;
    out["run_result"] = nullptr;
    out["executor_pod_name"] = nullptr;
    out["files"] = json::object();
    out["k2_status"] = RunStatusName(r.status);
    return out;
  }
  // As SandboxFusion's runner reports a process: a timeout is TimeLimitExceeded without a return code;
  // anything else that ran is Finished with the exit status its shell would give (128 + signal when
  // killed, so 137 for the memory and output limits). "Error" is reserved for the sandbox's own failures.
  const bool timeout = r.status == RunStatus::kTimeout;
  json code = nullptr;
  if (!timeout) code = r.exit_code >= 0 ? json(r.exit_code) : json(128 + (r.signal ? r.signal : 9));
  json rr = {{"status", timeout ? "TimeLimitExceeded" : "Finished"},
             {"execution_time", r.wall_s},
             {"return_code", code},
             {"stdout", Decoded(r.stdout_data)},
             {"stderr", Decoded(r.stderr_data)}};
  out["status"] = r.status == RunStatus::kOk ? "Success" : "Failed";
  out["message"] = "";
  out["compile_result"] = nullptr;
  out["run_result"] = std::move(rr);
  json files = json::object();
  for (auto& [p, bytes] : r.files) files[p] = Base64Encode(bytes);
  out["files"] = std::move(files);
  out["executor_pod_name"] = nullptr;
  // k2gym extras (SandboxFusion clients ignore unknown keys).
  out["k2_status"] = RunStatusName(r.status);
  out["k2_message"] = r.message;
  out["stdout_truncated"] = r.stdout_truncated;
  out["stderr_truncated"] = r.stderr_truncated;
  out["cpu_time"] = r.cpu_s;
  return out;
}

Service::Service(Sandbox& sb, ServiceConfig cfg, std::string token)
    : sb_(sb), cfg_(std::move(cfg)), token_(std::move(token)) {}

http::Response Service::Handle(const http::Request& req) {
  // FastAPI's error shape: {"detail": "..."} for routing, {"detail": [...]} for validation.
  auto detail = [](int status, const json& d) { return http::Response::Json(status, json{{"detail", d}}.dump()); };
  if (!token_.empty() && !SameSecret(req.Header("authorization"), "Bearer " + token_)) {
    http::Response r = detail(401, "missing or wrong bearer token");
    r.headers.push_back({"WWW-Authenticate", "Bearer"});
    return r;
  }
  const std::string path = req.Path();
  if (path == "/v1/ping") {
    if (req.method != "GET") return detail(405, "Method Not Allowed");
    return http::Response::Json(200, "\"pong\"");
  }
  if (path == "/health") {
    if (req.method != "GET") return detail(405, "Method Not Allowed");
    return http::Response::Json(200, json{{"status", "ok"}, {"cgroup", sb_.cgroup_version()}}.dump());
  }
  if (path != "/run_code") return detail(404, "Not Found");
  if (req.method != "POST") return detail(405, "Method Not Allowed");
  if (req.body.empty()) {
    return detail(422, json::array({json{{"type", "missing"}, {"loc", {"body"}}, {"msg", "Field required"}, {"input", nullptr}}}));
  }
  size_t at = 0;
  auto body = ParseBodyJson(req.body, cfg_.max_json_depth, cfg_.max_json_values, &at);
  if (!body.ok()) {
    return detail(422, json::array({json{{"type", "json_invalid"}, {"loc", {"body", at}}, {"msg", "JSON decode error"},
                                         {"input", json::object()}, {"ctx", {{"error", body.status().message()}}}}}));
  }
  json errors;
  auto run = ParseRunCode(*body, sb_.config().defaults, cfg_.max_run_timeout_s, &errors);
  if (!run.ok()) return detail(422, errors);
  RunResult res = sb_.Run(*run);
  return http::Response::Json(200, RunResultToJson(res).dump(-1, ' ', false, json::error_handler_t::replace));
}

Expected<std::unique_ptr<http::Server>> Service::Listen() {
  http::ServerOptions o;
  o.bind = cfg_.bind;
  o.port = cfg_.port;
  o.max_concurrent = cfg_.max_concurrent;
  o.max_queue = cfg_.max_queue;
  o.max_connections = cfg_.max_connections;
  o.max_body_bytes = cfg_.max_body_bytes;
  o.header_timeout_s = cfg_.header_timeout_s;
  o.body_timeout_s = cfg_.body_timeout_s;
  return http::Server::Start(o, [this](const http::Request& r) { return Handle(r); });
}

}  // namespace k2::sandbox
