// MCP client over a Transport: JSON-RPC request/response matching by id, server-to-client requests
// answered (ping) or refused (-32601), timeouts and cancellation with notifications/cancelled.
#include "toolgen/mcp_client.h"

#include <algorithm>
#include <set>

namespace k2::toolgen::mcp {
namespace {

Status MapRpcError(const std::string& method, const json& err) {
  int64_t code = err.is_object() && err.contains("code") && err["code"].is_number_integer() ? err["code"].get<int64_t>() : 0;
  std::string text = err.is_object() && err.contains("message") && err["message"].is_string()
                         ? err["message"].get<std::string>() : err.dump();
  std::string msg = method + ": JSON-RPC error " + std::to_string(code) + ": " + text;
  switch (code) {
    case -32700:
    case -32600:
    case -32602: return InvalidArgument(msg);
    case -32601: return NotFound(msg);
    case -32603: return Internal(msg);
    default: return Unavailable(msg);
  }
}

Status CheckBlock(const json& b, const std::string& where) {
  if (!b.is_object()) return InvalidArgument(where + ": expected a content block object");
  auto t = b.find("type");
  if (t == b.end() || !t->is_string()) return InvalidArgument(where + ".type: expected a string");
  const std::string type = *t;
  auto need_string = [&](const char* key) -> Status {
    if (!b.contains(key) || !b[key].is_string())
      return InvalidArgument(where + "." + key + ": expected a string in a " + type + " block");
    return Status::Ok();
  };
  if (type == "text") return need_string("text");
  if (type == "image" || type == "audio") {
    K2_RETURN_IF_ERROR(need_string("data"));
    return need_string("mimeType");
  }
  if (type == "resource_link") return need_string("uri");
  if (type == "resource") {
    if (!b.contains("resource") || !b["resource"].is_object() || !b["resource"].contains("uri") || !b["resource"]["uri"].is_string())
      return InvalidArgument(where + ".resource: expected an object with a string uri");
    return Status::Ok();
  }
  return InvalidArgument(where + ".type: expected text, image, audio, resource_link or resource, got " + t->dump());
}

}  // namespace

std::string CallResult::Text() const {
  std::string out;
  for (const auto& b : content) {
    if (!out.empty()) out += "\n";
    const std::string type = b.value("type", "");
    if (type == "text") {
      out += b.value("text", "");
    } else if (type == "image" || type == "audio") {
      out += "[" + type + " " + b.value("mimeType", "") + ", " + std::to_string(b.value("data", "").size()) +
             " bytes base64]";
    } else if (type == "resource") {
      const json& r = b["resource"];
      out += r.contains("text") && r["text"].is_string() ? r["text"].get<std::string>()
                                                          : "[resource " + r.value("uri", "") + "]";
    } else {
      out += "[" + type + " " + b.value("uri", "") + "]";
    }
  }
  if (out.empty() && structured) out = structured->dump();
  return out;
}

json CallResult::ToJson() const {
  json j = {{"content", content}};
  if (structured) j["structuredContent"] = *structured;
  if (is_error) j["isError"] = true;
  return j;
}

Expected<CallResult> ParseCallResult(const json& r, const std::string& where) {
  if (!r.is_object()) return InvalidArgument(where + ": expected a CallToolResult object, got " + JsonTypeName(r));
  CallResult out;
  auto c = r.find("content");
  if (c != r.end()) {
    if (!c->is_array()) return InvalidArgument(where + ".content: expected an array of content blocks");
    for (size_t i = 0; i < c->size(); ++i)
      K2_RETURN_IF_ERROR(CheckBlock((*c)[i], where + ".content[" + std::to_string(i) + "]"));
    out.content = *c;
  } else if (!r.contains("structuredContent")) {
    return InvalidArgument(where + ".content: missing");
  }
  auto s = r.find("structuredContent");
  if (s != r.end() && !s->is_null()) {
    if (!s->is_object()) return InvalidArgument(where + ".structuredContent: expected an object");
    out.structured = *s;
  }
  auto e = r.find("isError");
  if (e != r.end() && !e->is_null()) {
    if (!e->is_boolean()) return InvalidArgument(where + ".isError: expected a boolean");
    out.is_error = e->get<bool>();
  }
  return out;
}

Expected<std::unique_ptr<Client>> Client::Connect(std::unique_ptr<Transport> transport, ClientOptions options) {
  if (!transport) return InvalidArgument("mcp: null transport");
  std::unique_ptr<Client> c(new Client(std::move(transport), std::move(options)));
  Status s = c->Initialize();
  if (!s.ok()) {
    std::string what = c->transport_->Describe();
    c->Close();
    return s.Context("mcp initialize with " + what);
  }
  return c;
}

Client::~Client() { Close(); }

bool Client::alive() const { return transport_ && transport_->alive(); }

std::string Client::Describe() const { return transport_ ? transport_->Describe() : "closed mcp client"; }

Status Client::Initialize() {
  json params = {{"protocolVersion", SupportedProtocolVersions().front()},
                 {"capabilities", json::object()},
                 {"clientInfo", {{"name", opt_.client_name}, {"version", opt_.client_version}}}};
  std::lock_guard<std::mutex> lock(mu_);
  K2_ASSIGN_OR_RETURN(json r, RequestLocked("initialize", params, {}));
  if (!r.is_object() || !r.contains("protocolVersion") || !r["protocolVersion"].is_string())
    return Corruption("initialize result: protocolVersion: expected a string, got " + r.dump().substr(0, 200));
  std::string v = r["protocolVersion"];
  const auto& ok = SupportedProtocolVersions();
  if (std::find(ok.begin(), ok.end(), v) == ok.end()) {
    std::string list;
    for (auto& s : ok) list += (list.empty() ? "" : ", ") + s;
    return FailedPrecondition("server chose protocol version " + v + "; k2gym supports " + list);
  }
  protocol_version_ = v;
  if (r.contains("serverInfo") && r["serverInfo"].is_object()) server_info_ = r["serverInfo"];
  if (r.contains("capabilities") && r["capabilities"].is_object()) capabilities_ = r["capabilities"];
  transport_->SetProtocolVersion(v);
  return transport_->Send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}},
                          {Clock::now() + std::chrono::milliseconds(opt_.timeout_ms), nullptr});
}

Expected<json> Client::Request(const std::string& method, const json& params, const CallOptions& opts) {
  std::lock_guard<std::mutex> lock(mu_);
  return RequestLocked(method, params, opts);
}

Status Client::Notify(const std::string& method, const json& params) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!transport_) return Unavailable("mcp client closed");
  json msg = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) msg["params"] = params;
  return transport_->Send(msg, {Clock::now() + std::chrono::milliseconds(opt_.timeout_ms), nullptr});
}

void Client::AnswerServerRequest(const json& msg) {
  json reply = {{"jsonrpc", "2.0"}, {"id", msg["id"]}};
  if (msg["method"] == "ping") {
    reply["result"] = json::object();
  } else {  // sampling, elicitation, roots: capabilities we did not declare
    reply["error"] = {{"code", -32601}, {"message", "k2gym client does not support " + msg["method"].dump()}};
  }
  (void)transport_->Send(reply, {Clock::now() + std::chrono::seconds(2), nullptr});
}

Expected<json> Client::RequestLocked(const std::string& method, const json& params, const CallOptions& opts) {
  if (!transport_) return Unavailable(method + ": mcp client closed");
  const int64_t id = next_id_++;
  json msg = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) msg["params"] = params;
  int timeout = opts.timeout_ms >= 0 ? opts.timeout_ms : opt_.timeout_ms;
  Wait wait{Clock::now() + std::chrono::milliseconds(timeout), opts.cancel};
  Status sent = transport_->Send(msg, wait);
  if (!sent.ok()) return sent.Context(method);
  while (true) {
    auto got = transport_->Receive(wait);
    if (!got.ok()) {
      const Status& s = got.status();
      if ((s.code() == Code::kTimeout || s.code() == Code::kCancelled) && transport_->alive() && method != "initialize") {
        json cancel = {{"jsonrpc", "2.0"},
                       {"method", "notifications/cancelled"},
                       {"params", {{"requestId", id}, {"reason", s.code() == Code::kTimeout ? "timeout" : "cancelled"}}}};
        (void)transport_->Send(cancel, {Clock::now() + std::chrono::seconds(1), nullptr});
      }
      std::string extra = dropped_.load() ? " (" + std::to_string(dropped_.load()) + " reply(ies) with unknown ids dropped so far)" : "";
      return Status(s.code(), method + " (id " + std::to_string(id) + "): " + s.message() + extra);
    }
    json& m = *got;
    if (!m.is_object())
      return Corruption(method + ": server sent a JSON-RPC message that is not an object: " + m.dump().substr(0, 120));
    bool has_method = m.contains("method") && m["method"].is_string();
    if (has_method && m.contains("id")) {
      AnswerServerRequest(m);
      continue;
    }
    if (has_method) continue;  // notifications (logging, progress, list_changed) need no answer here
    if (!m.contains("id"))
      return Corruption(method + ": server sent a message with neither method nor id: " + m.dump().substr(0, 120));
    if (!(m["id"].is_number_integer() && m["id"].get<int64_t>() == id)) {
      ++dropped_;  // a late reply to a timed-out request, or a server bug; never matched to the wrong call
      continue;
    }
    if (m.contains("error")) return MapRpcError(method, m["error"]);
    if (!m.contains("result")) return Corruption(method + ": reply has neither result nor error");
    return std::move(m["result"]);
  }
}

Expected<std::vector<json>> Client::ListToolsRaw() {
  std::vector<json> tools;
  std::set<std::string> seen_cursors;
  std::optional<std::string> cursor;
  for (int page = 0; page < opt_.max_list_pages; ++page) {
    json params = json::object();
    if (cursor) params["cursor"] = *cursor;
    K2_ASSIGN_OR_RETURN(json r, Request("tools/list", params));
    if (!r.is_object() || !r.contains("tools") || !r["tools"].is_array())
      return Corruption("tools/list page " + std::to_string(page) + ": result.tools: expected an array");
    for (auto& t : r["tools"]) tools.push_back(t);
    if (!r.contains("nextCursor") || r["nextCursor"].is_null()) return tools;
    if (!r["nextCursor"].is_string()) return Corruption("tools/list: nextCursor: expected a string");
    cursor = r["nextCursor"].get<std::string>();
    if (!seen_cursors.insert(*cursor).second)
      return Corruption("tools/list: server repeated cursor " + json(*cursor).dump() + " (pagination loop)");
  }
  return ResourceExhausted("tools/list: more than " + std::to_string(opt_.max_list_pages) + " pages");
}

Expected<std::vector<ToolSpec>> Client::ListTools(const std::string& provenance) {
  K2_ASSIGN_OR_RETURN(auto raw, ListToolsRaw());
  std::vector<ToolSpec> out;
  for (size_t i = 0; i < raw.size(); ++i) {
    // A tool that can only run as a task (execution.taskSupport "required") needs task augmentation,
    // which this client does not offer: it is not listed (calling it would fail with -32601).
    if (raw[i].is_object() && raw[i].contains("execution") && raw[i]["execution"].is_object() &&
        raw[i]["execution"].value("taskSupport", json("forbidden")) == "required")
      continue;
    K2_ASSIGN_OR_RETURN(auto t, ParseToolSpec(raw[i], Describe() + " tools/list tools[" + std::to_string(i) + "]", provenance));
    out.push_back(std::move(t));
  }
  K2_RETURN_IF_ERROR(CheckUniqueNames(out, Describe() + " tools/list tools"));
  return out;
}

Expected<CallResult> Client::CallTool(const std::string& name, const json& arguments, const CallOptions& opts) {
  K2_ASSIGN_OR_RETURN(json r, Request("tools/call", {{"name", name}, {"arguments", arguments}}, opts));
  return ParseCallResult(r, "tools/call " + name + " result");
}

Status Client::Ping(const CallOptions& opts) { return Request("ping", json::object(), opts).status(); }

void Client::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (transport_) transport_->Close();
}

}  // namespace k2::toolgen::mcp
