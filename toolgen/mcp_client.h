// MCP client: the lifecycle (initialize with protocol-version negotiation, notifications/initialized),
// tools/list with pagination, tools/call, ping and cancellation, over any Transport (stdio or HTTP).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "toolgen/mcp_transport.h"
#include "toolgen/tool_spec.h"

namespace k2::toolgen::mcp {

// Newest first; initialize offers the first and accepts any of these in the server's answer.
inline const std::vector<std::string>& SupportedProtocolVersions() {
  static const std::vector<std::string> k = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};
  return k;
}

struct ClientOptions {
  std::string client_name = "k2gym";
  std::string client_version = "0.1.0";
  int timeout_ms = 30000;            // per request (initialize, tools/list page, tools/call)
  int max_list_pages = 1000;         // a server that keeps returning nextCursor is cut off here
};

// A CallToolResult: content blocks (text, image, audio, resource_link, resource) kept as JSON,
// structuredContent when sent, and isError (a tool-level error, as opposed to a protocol error).
struct CallResult {
  json content = json::array();
  std::optional<json> structured;
  bool is_error = false;
  // The text blocks joined by newlines; other blocks rendered as "[image image/png, 1234 bytes base64]".
  std::string Text() const;
  json ToJson() const;
};
// Strict parse of a CallToolResult; `where` prefixes errors.
Expected<CallResult> ParseCallResult(const json& result, const std::string& where);

struct CallOptions {
  int timeout_ms = -1;                        // -1: ClientOptions::timeout_ms
  const std::atomic<bool>* cancel = nullptr;  // set from another thread to cancel (sends notifications/cancelled)
};

// Thread safety: all methods may be called from any thread; requests are serialized (one in flight per
// client). For parallelism use one Client per environment or a pool of them.
// Failure behaviour: a request that times out or is cancelled sends notifications/cancelled and returns
// kTimeout/kCancelled; the client stays usable and drops the late reply by its id. A server that dies
// makes every later call return kUnavailable. JSON-RPC errors come back as kInvalidArgument (-32602,
// -32600), kNotFound (-32601) or kUnavailable (others), the message naming the method, code and text.
class Client {
 public:
  // Runs initialize + notifications/initialized. The error names the server (transport description).
  static Expected<std::unique_ptr<Client>> Connect(std::unique_ptr<Transport> transport, ClientOptions options = {});
  ~Client();

  const std::string& protocol_version() const { return protocol_version_; }
  const json& server_info() const { return server_info_; }
  const json& server_capabilities() const { return capabilities_; }
  std::string Describe() const;
  // False once the server is gone (crashed, closed, oversize reply); every request then fails fast.
  bool alive() const;

  // All pages of tools/list, each parsed strictly with ParseToolSpec (provenance as given); tools whose
  // execution.taskSupport is "required" are left out (this client does not use MCP tasks).
  Expected<std::vector<ToolSpec>> ListTools(const std::string& provenance);
  // The raw tool objects (for dumps and import), all pages.
  Expected<std::vector<json>> ListToolsRaw();
  Expected<CallResult> CallTool(const std::string& name, const json& arguments, const CallOptions& opts = {});
  Status Ping(const CallOptions& opts = {});

  // Any request; returns its `result`.
  Expected<json> Request(const std::string& method, const json& params, const CallOptions& opts = {});
  Status Notify(const std::string& method, const json& params);

  // Ends the session and the transport (reaps a stdio server). Idempotent.
  void Close();

  // How many replies with an id matching no pending request were dropped (late or wrong ids).
  int64_t dropped_replies() const { return dropped_.load(); }

 private:
  Client(std::unique_ptr<Transport> t, ClientOptions o) : transport_(std::move(t)), opt_(std::move(o)) {}
  Status Initialize();
  Expected<json> RequestLocked(const std::string& method, const json& params, const CallOptions& opts);
  void AnswerServerRequest(const json& msg);

  std::mutex mu_;
  std::unique_ptr<Transport> transport_;
  ClientOptions opt_;
  int64_t next_id_ = 1;
  std::atomic<int64_t> dropped_{0};
  std::string protocol_version_;
  json server_info_ = json::object();
  json capabilities_ = json::object();
};

}  // namespace k2::toolgen::mcp
