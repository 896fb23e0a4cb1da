// MCP server side: the protocol (initialize, ping, tools/list with cursor paging, tools/call with
// cancellation, resources/list|read of a session's state) over stdio (newline-delimited JSON) and
// Streamable HTTP (POST /mcp answered with JSON, Mcp-Session-Id sessions, DELETE to end one).
//
// What is served comes from a ToolSessionFactory: each MCP session gets its own ToolSession (an
// environment episode with its own state), so two clients never see each other's changes.
// Thread safety: a session's calls are serialized (one ToolSession is driven by one thread at a time);
// notifications/cancelled and a closed HTTP connection set the running call's cancel flag.
// Failure: protocol errors are JSON-RPC errors (-32700 parse, -32600 invalid request, -32601 unknown
// method, -32602 bad params/unknown tool/bad cursor, -32603 internal); a tool's own failure is a result
// with isError: true. Nothing a client sends ends the server.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace k2::http {
class Server;
}

namespace k2::toolgen::mcp {

// One session's tools and state.
class ToolSession {
 public:
  virtual ~ToolSession() = default;
  // MCP Tool objects: {name, description, inputSchema, outputSchema?, annotations?}.
  virtual std::vector<json> Tools() = 0;
  // Runs one call; returns a CallToolResult ({content, structuredContent?, isError}). A Status error is
  // reported to the client as isError (the session may be unusable afterwards: its message says why).
  virtual Expected<json> Call(const std::string& name, const json& arguments, const std::atomic<bool>& cancel) = 0;
  // The session's observable state (e.g. the episode's database); null when there is none.
  virtual json State() { return nullptr; }
  // Text for initialize's `instructions` (e.g. the episode's system prompt and task); may be empty.
  virtual std::string Instructions() { return ""; }
};
using ToolSessionFactory = std::function<Expected<std::unique_ptr<ToolSession>>()>;

struct McpServerOptions {
  std::string name = "k2gym";
  std::string version = "0.1.0";
  int page_size = 50;        // tools per tools/list page (nextCursor beyond)
  int max_sessions = 64;     // HTTP sessions alive at once; initialize beyond gets an error
  // HTTP only.
  std::string bind = "127.0.0.1";
  int port = 0;
  int workers = 16;
  double idle_session_s = 3600;  // an HTTP session unused this long is ended
};

// The protocol engine shared by both transports. Thread-safe.
class McpServer {
 public:
  McpServer(ToolSessionFactory factory, McpServerOptions options);
  ~McpServer();

  // stdio: reads messages from `in_fd`, writes replies to `out_fd` until EOF on in_fd (one session).
  // Calls run on a worker thread so that cancellations are read while a call runs. Returns when the
  // input ends and the running call (if any) has finished.
  Status ServeStdio(int in_fd, int out_fd);

  // Streamable HTTP on options.bind:port at path /mcp. The returned server runs until stopped.
  Expected<std::unique_ptr<http::Server>> ListenHttp();

  int64_t sessions_created() const { return sessions_created_.load(); }

  struct Session;  // (internal)

 private:
  json HandleRequest(Session& s, const json& msg, const std::atomic<bool>& cancel);
  ToolSessionFactory factory_;
  McpServerOptions opt_;
  std::atomic<int64_t> sessions_created_{0};
  struct HttpState;
  std::unique_ptr<HttpState> http_;
};

}  // namespace k2::toolgen::mcp
