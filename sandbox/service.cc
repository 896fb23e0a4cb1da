// SandboxFusion-compatible HTTP API over the Sandbox: request/response translation, routing and auth.
#include "sandbox/service.h"

#include <algorithm>
#include <cmath>

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

Status Expect(const json& body, const char* key, bool (json::*is)() const noexcept, const char* what) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return Status::Ok();
  if (!((*it).*is)()) {
    return InvalidArgument(std::string("/run_code: ") + key + ": expected " + what + ", got " + JsonTypeName(*it));
  }
  return Status::Ok();
}

}  // namespace

Expected<RunRequest> ParseRunCode(const json& body, const Limits& defaults, double max_run_timeout_s) {
  if (!body.is_object()) return InvalidArgument(std::string("/run_code: body: expected object, got ") + JsonTypeName(body));
  K2_RETURN_IF_ERROR(Expect(body, "code", &json::is_string, "string"));
  K2_RETURN_IF_ERROR(Expect(body, "language", &json::is_string, "string"));
  K2_RETURN_IF_ERROR(Expect(body, "stdin", &json::is_string, "string"));
  K2_RETURN_IF_ERROR(Expect(body, "run_timeout", &json::is_number, "number"));
  K2_RETURN_IF_ERROR(Expect(body, "compile_timeout", &json::is_number, "number"));
  K2_RETURN_IF_ERROR(Expect(body, "memory_limit_MB", &json::is_number, "number"));
  K2_RETURN_IF_ERROR(Expect(body, "files", &json::is_object, "object {path: base64}"));
  K2_RETURN_IF_ERROR(Expect(body, "fetch_files", &json::is_array, "array of paths"));
  if (!body.contains("code") || !body["code"].is_string()) return InvalidArgument("/run_code: code: required string is missing");
  RunRequest r;
  r.code = body["code"].get<std::string>();
  r.limits = defaults;
  std::string lang = body.value("language", std::string("python"));
  if (lang == "python" || lang == "python3") {
    r.language = "python";
  } else if (lang == "bash" || lang == "sh") {
    r.language = "bash";
  } else {
    return InvalidArgument("/run_code: language: \"" + lang.substr(0, 40) + "\" is not supported (python, bash)");
  }
  if (body.contains("stdin") && body["stdin"].is_string()) r.stdin_data = body["stdin"].get<std::string>();
  if (body.contains("run_timeout") && body["run_timeout"].is_number()) {
    double t = body["run_timeout"].get<double>();
    if (!(t > 0) || !std::isfinite(t)) return InvalidArgument("/run_code: run_timeout: expected a number > 0");
    t = std::min(t, max_run_timeout_s);
    r.limits.wall_s = std::max(0.01, t);
    r.limits.cpu_s = std::max(0.01, t);
  }
  if (body.contains("memory_limit_MB") && body["memory_limit_MB"].is_number()) {
    double m = body["memory_limit_MB"].get<double>();
    if (m > 0) {
      if (m < 16 || m > (1 << 20)) return InvalidArgument("/run_code: memory_limit_MB: expected -1 or a number in [16, 1048576]");
      r.limits.memory_mb = static_cast<int64_t>(m);
    }
  }
  if (body.contains("files") && body["files"].is_object()) {
    for (auto& [path, v] : body["files"].items()) {
      if (!v.is_string()) return InvalidArgument("/run_code: files." + path + ": expected base64 string");
      auto bytes = Base64Decode(v.get<std::string>());
      if (!bytes.ok()) return InvalidArgument("/run_code: files." + path + ": " + bytes.status().message());
      r.files[path] = std::move(*bytes);
    }
  }
  if (body.contains("fetch_files") && body["fetch_files"].is_array()) {
    for (size_t i = 0; i < body["fetch_files"].size(); ++i) {
      const json& p = body["fetch_files"][i];
      if (!p.is_string()) return InvalidArgument("/run_code: fetch_files/" + std::to_string(i) + ": expected string");
      r.fetch_files.push_back(p.get<std::string>());
    }
  }
  return r;
}

json RunResultToJson(const RunResult& r) {
  json out;
  if (r.status == RunStatus::kSandboxError) {
    out["status"] = "SandboxError";
    out["message"] = r.message;
    out["compile_result"] = nullptr;
    out["run_result"] = nullptr;
    out["files"] = json::object();
    out["k2_status"] = RunStatusName(r.status);
    return out;
  }
  const char* run_status = "Finished";
  if (r.status == RunStatus::kTimeout) run_status = "TimeLimitExceeded";
  if (r.status == RunStatus::kMemoryLimit || r.status == RunStatus::kOutputLimit) run_status = "Error";
  json rr = {{"status", run_status},
             {"execution_time", r.wall_s},
             {"return_code", r.exit_code >= 0 ? json(r.exit_code) : json(128 + r.signal)},
             {"stdout", r.stdout_data},
             {"stderr", r.stderr_data}};
  out["status"] = r.status == RunStatus::kOk ? "Success" : "Failed";
  out["message"] = r.message;
  out["compile_result"] = nullptr;
  out["run_result"] = std::move(rr);
  json files = json::object();
  for (auto& [p, bytes] : r.files) files[p] = Base64Encode(bytes);
  out["files"] = std::move(files);
  out["executor_pod_name"] = nullptr;
  // k2gym extras (SandboxFusion clients ignore unknown keys).
  out["k2_status"] = RunStatusName(r.status);
  out["stdout_truncated"] = r.stdout_truncated;
  out["stderr_truncated"] = r.stderr_truncated;
  out["cpu_time"] = r.cpu_s;
  return out;
}

Service::Service(Sandbox& sb, ServiceConfig cfg, std::string token)
    : sb_(sb), cfg_(std::move(cfg)), token_(std::move(token)) {}

http::Response Service::Handle(const http::Request& req) {
  auto err = [](int status, const std::string& msg) {
    return http::Response::Json(status, json{{"status", "SandboxError"}, {"message", msg}}.dump());
  };
  if (!token_.empty() && !SameSecret(req.Header("authorization"), "Bearer " + token_)) {
    http::Response r = err(401, "missing or wrong bearer token");
    r.headers.push_back({"WWW-Authenticate", "Bearer"});
    return r;
  }
  const std::string path = req.Path();
  if (path == "/" || path == "/health" || path == "/v1/ping") {
    if (req.method != "GET") return err(405, "use GET");
    return http::Response::Json(200, json{{"status", "ok"}, {"cgroup", sb_.cgroup_version()}}.dump());
  }
  if (path != "/run_code") return err(404, "no route " + path.substr(0, 100) + " (POST /run_code, GET /health)");
  if (req.method != "POST") return err(405, "use POST /run_code");
  auto body = ParseJson(req.body, "/run_code body");
  if (!body.ok()) return err(400, body.status().message());
  auto run = ParseRunCode(*body, sb_.config().defaults, cfg_.max_run_timeout_s);
  if (!run.ok()) return err(400, run.status().message());
  RunResult res = sb_.Run(*run);
  return http::Response::Json(200, RunResultToJson(res).dump(-1, ' ', false, json::error_handler_t::replace));
}

Expected<std::unique_ptr<http::Server>> Service::Listen() {
  http::ServerOptions o;
  o.bind = cfg_.bind;
  o.port = cfg_.port;
  o.max_concurrent = cfg_.max_concurrent;
  o.max_queue = cfg_.max_queue;
  o.max_body_bytes = cfg_.max_body_bytes;
  o.header_timeout_s = cfg_.header_timeout_s;
  return http::Server::Start(o, [this](const http::Request& r) { return Handle(r); });
}

}  // namespace k2::sandbox
