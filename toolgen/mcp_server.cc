// The MCP server: JSON-RPC dispatch for one session, the stdio loop (reader thread + call worker) and the
// Streamable HTTP endpoint on core/http (sessions by Mcp-Session-Id, JSON responses, 202 for notifications).
#include "toolgen/mcp_server.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "core/http/server.h"
#include "toolgen/mcp_client.h"

namespace k2::toolgen::mcp {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr const char* kStateUri = "k2gym://session/state";
constexpr size_t kMaxLine = 16u << 20;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json RpcError(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}
json RpcResult(const json& id, json result) { return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}}; }

// What one incoming message is.
enum class Kind { kRequest, kNotification, kResponse, kInvalid };
Kind Classify(const json& m, std::string* why) {
  if (!m.is_object()) return *why = "expected a JSON-RPC message object", Kind::kInvalid;
  if (m.value("jsonrpc", json()) != "2.0") return *why = "jsonrpc: expected \"2.0\"", Kind::kInvalid;
  if (m.contains("method")) {
    if (!m["method"].is_string()) return *why = "method: expected a string", Kind::kInvalid;
    if (!m.contains("id")) return Kind::kNotification;
    if (!m["id"].is_string() && !m["id"].is_number_integer()) return *why = "id: expected a string or integer", Kind::kInvalid;
    if (m.contains("params") && !m["params"].is_object()) return *why = "params: expected an object", Kind::kInvalid;
    return Kind::kRequest;
  }
  if (m.contains("id") && (m.contains("result") || m.contains("error"))) return Kind::kResponse;
  return *why = "expected a request, notification or response", Kind::kInvalid;
}

}  // namespace

struct McpServer::Session {
  std::string id;
  std::unique_ptr<ToolSession> tools;
  std::mutex call_mu;  // one ToolSession call (or listing) at a time
  std::mutex mu;       // inflight, last_used
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> inflight;  // request id (dumped) -> cancel flag
  SteadyClock::time_point last_used = SteadyClock::now();

  std::shared_ptr<std::atomic<bool>> Begin(const json& rid) {
    auto f = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard<std::mutex> lk(mu);
    inflight[rid.dump()] = f;
    return f;
  }
  void End(const json& rid) {
    std::lock_guard<std::mutex> lk(mu);
    inflight.erase(rid.dump());
  }
  void Cancel(const json& params) {
    if (!params.is_object() || !params.contains("requestId")) return;
    std::lock_guard<std::mutex> lk(mu);
    auto it = inflight.find(params["requestId"].dump());
    if (it != inflight.end()) it->second->store(true);
  }
};

McpServer::McpServer(ToolSessionFactory factory, McpServerOptions options)
    : factory_(std::move(factory)), opt_(std::move(options)) {}

json McpServer::HandleRequest(Session& s, const json& msg, const std::atomic<bool>& cancel) {
  const json& id = msg["id"];
  const std::string method = msg["method"];
  const json params = msg.value("params", json::object());
  if (method == "ping") return RpcResult(id, json::object());
  if (method == "initialize") {
    std::string version = SupportedProtocolVersions().front();
    if (params.contains("protocolVersion") && params["protocolVersion"].is_string()) {
      const std::string want = params["protocolVersion"];
      for (auto& v : SupportedProtocolVersions())
        if (v == want) version = want;
    }
    std::lock_guard<std::mutex> lk(s.call_mu);
    if (!s.tools) {
      auto t = factory_();
      if (!t.ok()) return RpcError(id, -32603, "cannot start the session: " + t.status().message());
      s.tools = std::move(*t);
      ++sessions_created_;
    }
    json result = {{"protocolVersion", version},
                   {"capabilities", {{"tools", {{"listChanged", false}}}, {"resources", json::object()}}},
                   {"serverInfo", {{"name", opt_.name}, {"version", opt_.version}}}};
    std::string ins = s.tools->Instructions();
    if (!ins.empty()) result["instructions"] = ins;
    return RpcResult(id, result);
  }
  if (!s.tools) return RpcError(id, -32600, method + ": the session is not initialized (send initialize first)");
  if (method == "tools/list") {
    size_t offset = 0;
    if (params.contains("cursor") && !params["cursor"].is_null()) {
      const json& c = params["cursor"];
      char* end = nullptr;
      if (!c.is_string() || c.get<std::string>().rfind("o:", 0) != 0)
        return RpcError(id, -32602, "tools/list: invalid cursor");
      const std::string cs = c.get<std::string>();
      offset = std::strtoull(cs.c_str() + 2, &end, 10);
      if (*end != '\0' || cs.size() == 2) return RpcError(id, -32602, "tools/list: invalid cursor " + Dump(c));
    }
    std::vector<json> all;
    {
      std::lock_guard<std::mutex> lk(s.call_mu);
      all = s.tools->Tools();
    }
    if (offset > all.size()) return RpcError(id, -32602, "tools/list: cursor past the end");
    const size_t n = std::min(all.size() - offset, static_cast<size_t>(std::max(1, opt_.page_size)));
    json page = json::array();
    for (size_t i = offset; i < offset + n; ++i) page.push_back(all[i]);
    json result = {{"tools", page}};
    if (offset + n < all.size()) result["nextCursor"] = "o:" + std::to_string(offset + n);
    return RpcResult(id, result);
  }
  if (method == "tools/call") {
    if (!params.contains("name") || !params["name"].is_string())
      return RpcError(id, -32602, "tools/call: params.name: expected a string");
    const std::string name = params["name"];
    json args = params.value("arguments", json::object());
    if (!args.is_object()) return RpcError(id, -32602, "tools/call: params.arguments: expected an object");
    std::lock_guard<std::mutex> lk(s.call_mu);
    bool known = false;
    for (auto& t : s.tools->Tools()) known = known || t.value("name", "") == name;
    if (!known) return RpcError(id, -32602, "Unknown tool: " + name);
    if (cancel.load()) return RpcError(id, -32800, "request cancelled");
    auto r = s.tools->Call(name, args, cancel);
    if (!r.ok())
      return RpcResult(id, {{"content", json::array({{{"type", "text"}, {"text", "error: " + r.status().message()}}})},
                            {"isError", true}});
    return RpcResult(id, *r);
  }
  if (method == "resources/list") {
    return RpcResult(id, {{"resources", json::array({{{"uri", kStateUri}, {"name", "state"},
                                                      {"description", "this session's environment state (JSON)"},
                                                      {"mimeType", "application/json"}}})}});
  }
  if (method == "resources/templates/list") return RpcResult(id, {{"resourceTemplates", json::array()}});
  if (method == "resources/read") {
    if (params.value("uri", json()) != kStateUri)
      return RpcError(id, -32002, "Resource not found: " + Dump(params.value("uri", json())));
    json state;
    {
      std::lock_guard<std::mutex> lk(s.call_mu);
      state = s.tools->State();
    }
    return RpcResult(id, {{"contents", json::array({{{"uri", kStateUri}, {"mimeType", "application/json"},
                                                      {"text", Dump(state)}}})}});
  }
  return RpcError(id, -32601, "Method not found: " + method);
}

// ---- stdio --------------------------------------------------------------------------------------

Status McpServer::ServeStdio(int in_fd, int out_fd) {
  Session s;
  std::mutex out_mu;
  auto send = [&](const json& m) {
    std::string line = Dump(m) + "\n";
    std::lock_guard<std::mutex> lk(out_mu);
    size_t off = 0;
    while (off < line.size()) {
      ssize_t n = ::write(out_fd, line.data() + off, line.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the client is gone; the reader sees EOF next
      off += static_cast<size_t>(n);
    }
  };
  // Requests run in order on one worker; the reader keeps reading (cancellations) meanwhile.
  std::mutex qmu;
  std::condition_variable qcv;
  std::deque<std::pair<json, std::shared_ptr<std::atomic<bool>>>> q;
  bool eof = false;
  std::thread worker([&] {
    for (;;) {
      std::pair<json, std::shared_ptr<std::atomic<bool>>> item;
      {
        std::unique_lock<std::mutex> lk(qmu);
        qcv.wait(lk, [&] { return eof || !q.empty(); });
        if (q.empty()) return;
        item = std::move(q.front());
        q.pop_front();
      }
      json reply = HandleRequest(s, item.first, *item.second);
      s.End(item.first["id"]);
      // A cancelled request gets no response (the spec: the receiver should not respond).
      if (!item.second->load()) send(reply);
    }
  });
  std::string buf;
  char chunk[65536];
  bool overflow = false;
  for (;;) {
    ssize_t n = ::read(in_fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = buf.find('\n', start)) != std::string::npos) {
      std::string line = buf.substr(start, nl - start);
      start = nl + 1;
      if (overflow) {  // the tail of an oversize line
        overflow = false;
        continue;
      }
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto m = ParseJson(line, "stdin");
      if (!m.ok()) {
        send(RpcError(nullptr, -32700, "Parse error: " + m.status().message()));
        continue;
      }
      std::string why;
      Kind k = Classify(*m, &why);
      if (k == Kind::kInvalid) {
        send(RpcError(m->is_object() && m->contains("id") ? (*m)["id"] : json(), -32600, "Invalid Request: " + why));
      } else if (k == Kind::kNotification) {
        if ((*m)["method"] == "notifications/cancelled") s.Cancel(m->value("params", json::object()));
      } else if (k == Kind::kRequest) {
        auto flag = s.Begin((*m)["id"]);
        std::lock_guard<std::mutex> lk(qmu);
        q.emplace_back(std::move(*m), flag);
        qcv.notify_one();
      }
    }
    buf.erase(0, start);
    if (buf.size() > kMaxLine) {
      send(RpcError(nullptr, -32700, "Parse error: a message longer than " + std::to_string(kMaxLine) + " bytes"));
      buf.clear();
      overflow = true;
    }
  }
  {
    std::lock_guard<std::mutex> lk(qmu);
    eof = true;
    qcv.notify_all();
  }
  worker.join();
  return Status::Ok();
}

// ---- Streamable HTTP ----------------------------------------------------------------------------

struct McpServer::HttpState {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Session>> sessions;
  std::mt19937_64 rng{std::random_device{}()};
};

McpServer::~McpServer() = default;

Expected<std::unique_ptr<http::Server>> McpServer::ListenHttp() {
  if (!http_) http_ = std::make_unique<HttpState>();
  http::ServerOptions ho;
  ho.bind = opt_.bind;
  ho.port = opt_.port;
  ho.max_concurrent = opt_.workers;
  ho.keep_alive_s = 5;
  ho.error_body = [](int status, const std::string& msg) {
    return Dump(RpcError(nullptr, status == 413 ? -32600 : -32603, msg));
  };
  HttpState* st = http_.get();
  auto reply = [](int status, const json& body) { return http::Response::Json(status, Dump(body)); };
  return http::Server::Start(ho, [this, st, reply](const http::Request& req) -> http::Response {
    if (req.Path() != "/mcp") return reply(404, RpcError(nullptr, -32600, "not found: the MCP endpoint is /mcp"));
    const std::string sid = req.Header("mcp-session-id");
    const std::string pv = req.Header("mcp-protocol-version");
    if (!pv.empty()) {
      bool ok = false;
      for (auto& v : SupportedProtocolVersions()) ok = ok || v == pv;
      if (!ok) return reply(400, RpcError(nullptr, -32600, "unsupported MCP-Protocol-Version " + pv));
    }
    auto find = [&]() -> std::shared_ptr<Session> {
      std::lock_guard<std::mutex> lk(st->mu);
      auto it = st->sessions.find(sid);
      if (it == st->sessions.end()) return nullptr;
      it->second->last_used = SteadyClock::now();
      return it->second;
    };
    if (req.method == "DELETE") {
      if (sid.empty()) return reply(400, RpcError(nullptr, -32600, "DELETE needs an Mcp-Session-Id header"));
      std::lock_guard<std::mutex> lk(st->mu);
      if (st->sessions.erase(sid) == 0) return reply(404, RpcError(nullptr, -32600, "unknown session"));
      return http::Response::Text(200, "");
    }
    if (req.method != "POST") {
      http::Response r = reply(405, RpcError(nullptr, -32600, "use POST (this server offers no GET stream)"));
      r.headers.push_back({"Allow", "POST, DELETE"});
      return r;
    }
    auto m = ParseJson(req.body, "request body");
    if (!m.ok()) return reply(400, RpcError(nullptr, -32700, "Parse error: " + m.status().message()));
    if (m->is_array()) return reply(400, RpcError(nullptr, -32600, "Invalid Request: batches are not supported"));
    std::string why;
    const Kind k = Classify(*m, &why);
    if (k == Kind::kInvalid)
      return reply(400, RpcError(m->is_object() && m->contains("id") ? (*m)["id"] : json(), -32600, "Invalid Request: " + why));
    std::shared_ptr<Session> s;
    const bool init = k == Kind::kRequest && (*m)["method"] == "initialize";
    if (init) {
      s = std::make_shared<Session>();
      char hex[40];
      {
        std::lock_guard<std::mutex> lk(st->mu);
        std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(st->rng()),
                      static_cast<unsigned long long>(st->rng()));
        // Sessions idle too long are ended; beyond max_sessions a new one is refused.
        const auto now = SteadyClock::now();
        for (auto it = st->sessions.begin(); it != st->sessions.end();)
          it = now - it->second->last_used > std::chrono::duration<double>(opt_.idle_session_s) ? st->sessions.erase(it)
                                                                                                : std::next(it);
        if (static_cast<int>(st->sessions.size()) >= opt_.max_sessions)
          return reply(503, RpcError((*m)["id"], -32603, "too many sessions (" + std::to_string(opt_.max_sessions) + ")"));
      }
      s->id = hex;
    } else {
      if (sid.empty()) return reply(400, RpcError(nullptr, -32600, "missing Mcp-Session-Id header (initialize first)"));
      s = find();
      if (!s) return reply(404, RpcError(nullptr, -32600, "unknown or expired session " + sid));
    }
    if (k != Kind::kRequest) {
      if (k == Kind::kNotification && (*m)["method"] == "notifications/cancelled") s->Cancel(m->value("params", json::object()));
      return http::Response::Text(202, "");
    }
    // The call runs here; a watcher turns a closed connection into a cancellation.
    auto flag = s->Begin((*m)["id"]);
    std::mutex wmu;
    std::condition_variable wcv;
    bool done = false;
    std::thread watch([&] {
      std::unique_lock<std::mutex> lk(wmu);
      while (!wcv.wait_for(lk, std::chrono::milliseconds(50), [&] { return done; }))
        if (req.client_gone && req.client_gone()) flag->store(true);
    });
    json out = HandleRequest(*s, *m, *flag);
    {
      std::lock_guard<std::mutex> lk(wmu);
      done = true;
    }
    wcv.notify_all();
    watch.join();
    s->End((*m)["id"]);
    if (init) {
      if (out.contains("error")) return reply(500, out);
      std::lock_guard<std::mutex> lk(st->mu);
      st->sessions[s->id] = s;
    }
    http::Response r = reply(200, out);
    if (init) r.headers.push_back({"Mcp-Session-Id", s->id});
    return r;
  });
}

}  // namespace k2::toolgen::mcp
