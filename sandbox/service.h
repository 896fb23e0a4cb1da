// The sandbox as a service: SandboxFusion's `POST /run_code` request and response shapes over
// k2::http::Server, with an optional bearer token. The translation functions are public for tests and
// for in-process clients that want the same JSON.
//
// Thread safety: Service::Handle may be called concurrently (the Sandbox is thread-safe).
// Failure: malformed requests get 400 with a message naming the field; a bad token 401; internal sandbox
// failures a 200 with status "SandboxError" (the SandboxFusion convention).
#pragma once

#include <memory>
#include <string>

#include "core/http/server.h"
#include "core/json.h"
#include "sandbox/sandbox.h"

namespace k2::sandbox {

struct ServiceConfig {
  std::string bind = "127.0.0.1";
  int port = 8080;
  std::string token_env;            // name of an env var holding the bearer token ("" = no auth)
  int max_concurrent = 16;          // requests executing at once
  int max_queue = 64;               // waiting connections; beyond: 429
  int64_t max_body_bytes = 32 << 20;
  double header_timeout_s = 10;
  double max_run_timeout_s = 60;    // cap on a request's run_timeout

  template <class V> void Visit(V& v) {
    v("bind", bind, "listen address (loopback by default)");
    v("port", port, "TCP port (0 = ephemeral)", {.min = 0, .max = 65535});
    v("token_env", token_env, "env var with the bearer token required in Authorization (\"\" = none)");
    v("max_concurrent", max_concurrent, "requests executing at once", {.min = 1, .max = 4096});
    v("max_queue", max_queue, "connections waiting; beyond this the server answers 429", {.min = 0, .max = 65536});
    v("max_body_bytes", max_body_bytes, "request size cap (413 above)", {.min = 1024, .max = 1LL << 32});
    v("header_timeout_s", header_timeout_s, "deadline to receive a request header (s)", {.min = 0.1, .max = 600});
    v("max_run_timeout_s", max_run_timeout_s, "largest run_timeout a request may ask for (s)", {.min = 0.1, .max = 3600});
  }
};

// SandboxFusion request -> RunRequest. Unknown keys are ignored (clients send extras); known keys are
// type-checked. run_timeout sets the wall and CPU limits; memory_limit_MB <= 0 keeps the default.
Expected<RunRequest> ParseRunCode(const json& body, const Limits& defaults, double max_run_timeout_s);
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
