// The sandbox as a service: SandboxFusion's `POST /run_code` request and response shapes (its server at
// commit 469de08: pydantic validation errors as 422 {"detail": [...]}, `GET /v1/ping` -> "pong") over
// k2::http::Server, with an optional bearer token. The translation functions are public for tests and
// for in-process clients that want the same JSON.
//
// Thread safety: Service::Handle may be called concurrently (the Sandbox is thread-safe).
// Failure: malformed requests get 422 with FastAPI's detail list naming each bad field; a bad token 401;
// internal sandbox failures a 200 with status "SandboxError" (the SandboxFusion convention).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/http/server.h"
#include "core/json.h"
#include "sandbox/sandbox.h"

namespace k2::sandbox {

struct ServiceConfig {
  std::string bind = "127.0.0.1";
  int port = 8080;
  std::string token_env;            // name of an env var holding the bearer token ("" = no auth)
  int max_concurrent = 16;          // requests executing at once
  int max_queue = 64;               // complete requests waiting for a worker; beyond: 429
  int max_connections = 512;        // connections still sending their request; beyond: 429
  int64_t max_body_bytes = 32 << 20;
  double header_timeout_s = 10;     // from accept to the end of the header
  double body_timeout_s = 60;       // from accept to the end of the body
  int max_json_depth = 64;          // the body's JSON nesting, checked before it is parsed
  int64_t max_json_values = 1000000;  // values (of any kind) in the body's JSON
  double max_run_timeout_s = 60;    // largest run_timeout accepted (larger: 422)

  template <class V> void Visit(V& v) {
    v("bind", bind, "listen address (loopback by default)");
    v("port", port, "TCP port (0 = ephemeral)", {.min = 0, .max = 65535});
    v("token_env", token_env, "env var with the bearer token required in Authorization (\"\" = none)");
    v("max_concurrent", max_concurrent, "requests executing at once", {.min = 1, .max = 4096});
    v("max_queue", max_queue, "complete requests waiting for a worker; beyond this the server answers 429", {.min = 0, .max = 65536});
    v("max_connections", max_connections, "connections still sending their request; beyond this 429", {.min = 1, .max = 65536});
    v("max_body_bytes", max_body_bytes, "request size cap (413 above)", {.min = 1024, .max = 1LL << 32});
    v("header_timeout_s", header_timeout_s, "deadline from accept to a complete request header (s)", {.min = 0.1, .max = 600});
    v("body_timeout_s", body_timeout_s, "deadline from accept to a complete request body (s)", {.min = 0.1, .max = 3600});
    v("max_json_depth", max_json_depth, "deepest JSON nesting accepted in a request body (checked before parsing)", {.min = 2, .max = 10000});
    v("max_json_values", max_json_values, "most JSON values accepted in a request body (checked before parsing)", {.min = 16, .max = 1LL << 32});
    v("max_run_timeout_s", max_run_timeout_s, "largest run_timeout a request may ask for (s); larger is a 422", {.min = 0.1, .max = 3600});
  }
};

// The request body's JSON, refused before it is built when nested deeper than max_depth or holding more
// than max_values values (a SAX pass), then parsed. error_pos: byte offset of a syntax error.
Expected<json> ParseBodyJson(std::string_view text, int max_depth, int64_t max_values, size_t* error_pos = nullptr);
// SandboxFusion request -> RunRequest, validated as its pydantic model does (lax numbers, required code and
// language, Optional stdin, null file contents skipped, unknown keys ignored) plus this sandbox's bounds
// (run_timeout in (0, max_run_timeout_s], memory_limit_MB -1 or >= 16, files/fetch_files paths: relative
// to /work or absolute in the sandbox's root). On failure `detail` (when given) gets the 422 detail list.
Expected<RunRequest> ParseRunCode(const json& body, const Limits& defaults, double max_run_timeout_s,
                                  json* detail = nullptr);
// RunResult -> SandboxFusion response ({status, message, compile_result, run_result, files, ...}).
json RunResultToJson(const RunResult& r);

class Service {
 public:
  // token: required bearer token, "" for none.
  Service(Sandbox& sb, ServiceConfig cfg, std::string token);
  http::Response Handle(const http::Request& req);
  // Starts an HTTP server bound as configured, routing to Handle.
  Expected<std::unique_ptr<http::Server>> Listen();

 private:
  Sandbox& sb_;
  ServiceConfig cfg_;
  std::string token_;
};

}  // namespace k2::sandbox
