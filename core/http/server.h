// k2::http::Server: a small, bounded HTTP/1.1 server for local services (the sandbox's SandboxFusion API,
// the engine's OpenAI-compatible endpoint). Requests are parsed with Boost.Beast (kept out of this header).
//
// Model: one acceptor thread and `max_concurrent` worker threads. The acceptor reads every connection's
// request itself, with non-blocking sockets in one poll loop (at most `max_connections` at once), under
// deadlines that count from accept (header within header_timeout_s, whole request within body_timeout_s)
// and size caps (408/413/431/400); so slow or stalled clients hold no worker. A complete request waits in
// a queue of at most `max_queue` (beyond: 429); a worker calls the handler and writes the response (or
// streams it, chunked, e.g. SSE), then closes the connection. Bytes of requests being read, queued or
// handled are bounded in total (4x the per-request caps, at least 64 MiB; beyond: 503).
// Thread safety: the handler is called from several worker threads at once. Stop() is idempotent and
// graceful: no new connections, queued and in-flight requests are finished, threads joined.
// Failure: Start() fails with the bind error; per-connection errors only close that connection.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace k2::http {

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // "/run_code?x=1"
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
  std::string remote;                          // "127.0.0.1:54321"

  // Header value or "" (name is case-insensitive).
  std::string Header(std::string_view name) const;
  // target without the query string
  std::string Path() const;
};

// Writes one chunk of a streamed body; false once the client is gone or too slow (stop producing).
using ChunkWriter = std::function<bool(std::string_view chunk)>;

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length/Connection are set by the server
  std::string body;
  // When set, the body is streamed: headers go out with Transfer-Encoding: chunked, then stream() runs on
  // the worker thread and writes chunks until it returns.
  std::function<void(const ChunkWriter&)> stream;

  static Response Json(int status, const std::string& json_text);
  static Response Text(int status, const std::string& text);
  // text/event-stream with the given producer (write "data: ...\n\n" frames).
  static Response Sse(std::function<void(const ChunkWriter&)> producer);
};

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string bind = "127.0.0.1";   // IPv4 or IPv6 literal
  int port = 0;                     // 0 = ephemeral; Server::port() reports the bound one
  int max_concurrent = 8;           // worker threads = requests handled at once
  int max_queue = 64;               // complete requests waiting for a worker; beyond: 429
  int max_connections = 512;        // connections still sending their request (read by one poll loop); beyond: 429
  int64_t max_body_bytes = 16 << 20;    // larger bodies: 413
  int64_t max_header_bytes = 64 << 10;  // larger headers: 431
  double header_timeout_s = 10;     // to receive the complete header: else 408
  double body_timeout_s = 60;       // to receive the complete body: else 408
  double write_timeout_s = 30;      // per write: a client that stops reading is dropped
};

struct ServerStats {
  int64_t accepted = 0, rejected_429 = 0, completed = 0, bad_requests = 0;
  int in_flight = 0, queued = 0;
};

class Server {
 public:
  static Expected<std::unique_ptr<Server>> Start(const ServerOptions& opt, Handler handler);
  ~Server();  // Stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  std::string address() const;  // "127.0.0.1:8080"
  void Stop();
  ServerStats stats() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace k2::http
