// MCP transports: how JSON-RPC messages reach a server. stdio (a child process speaking newline-delimited
// JSON; posix_spawn + pipes + poll) and Streamable HTTP (libcurl; JSON or SSE responses, Mcp-Session-Id).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace k2::toolgen::mcp {

using Clock = std::chrono::steady_clock;

// When to give up waiting: a deadline, and an optional flag another thread sets to cancel.
struct Wait {
  Clock::time_point deadline;
  const std::atomic<bool>* cancel = nullptr;
};

// One connection to one server. Not thread-safe: the Client serializes access.
// Failure behaviour: Receive returns kTimeout (deadline passed, connection still usable), kCancelled,
// kCorruption (a line/body that is not JSON; usable), kResourceExhausted (a message over the size cap;
// the connection is closed because the stream position is lost), kUnavailable (the server is gone).
class Transport {
 public:
  virtual ~Transport() = default;
  // Sends one JSON-RPC message (request, notification or response).
  virtual Status Send(const json& message, const Wait& wait) = 0;
  // The next message from the server.
  virtual Expected<json> Receive(const Wait& wait) = 0;
  // Tells the transport the negotiated protocol version (HTTP sends it as MCP-Protocol-Version).
  virtual void SetProtocolVersion(const std::string& version) { (void)version; }
  // Ends the connection; for stdio: closes stdin, waits `grace`, then SIGTERM, then SIGKILL, and reaps
  // the process group. Idempotent; also run by the destructor.
  virtual void Close() = 0;
  virtual bool alive() const = 0;
  virtual std::string Describe() const = 0;  // "stdio:node server.js (pid 123)" / "http://127.0.0.1:3001/mcp"
};

// The variables the MCP TypeScript SDK passes to stdio servers by default (POSIX).
inline std::vector<std::string> DefaultInheritedEnv() { return {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"}; }

struct StdioOptions {
  std::vector<std::string> argv;             // argv[0] is looked up in PATH
  // The server's environment is explicit (as the MCP SDKs do it): only the inherit_env variables of
  // k2gym's own environment, then `env`. Nothing else of k2gym's environment (API keys, tokens) leaks.
  std::map<std::string, std::string> env;    // set for the server (overrides an inherited value)
  std::vector<std::string> inherit_env = DefaultInheritedEnv();
  // stdout lines that are not JSON (banners, logs printed to stdout) are logged to stderr and skipped;
  // more than this many in a row, or a non-JSON line over max_message_bytes, is an error.
  int max_skipped_lines = 1000;
  std::string cwd;                           // empty: inherit
  size_t max_message_bytes = 16u << 20;      // a longer line is an error, not an allocation
  int close_grace_ms = 2000;                 // how long Close waits after closing stdin before SIGTERM
  bool forward_stderr = false;               // false: the server's stderr is kept (last 4 KiB) for errors
};
// Starts the server process. Error: kInvalidArgument for an empty argv, kUnavailable when spawn fails.
Expected<std::unique_ptr<Transport>> StartStdio(const StdioOptions& options);

struct HttpOptions {
  std::string url;                           // the MCP endpoint, e.g. http://127.0.0.1:3001/mcp
  std::map<std::string, std::string> headers;  // extra headers (Authorization, ...)
  size_t max_message_bytes = 16u << 20;
};
Expected<std::unique_ptr<Transport>> ConnectHttp(const HttpOptions& options);

}  // namespace k2::toolgen::mcp
