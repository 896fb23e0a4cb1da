// libFuzzer harness: MCP client message handling (toolgen/mcp_client) behind an in-process transport
// that answers each request with the next scripted line. Input: lines, each '@' + one server message
// (the id of the pending request is set on it, as a well-behaved server would) or '!' + one message sent
// as is (wrong ids, notifications, server requests). The client runs initialize, tools/list (all pages),
// a tools/call and a ping against the script.
#include <cstddef>
#include <cstdint>
#include <deque>

#include "core/json.h"
#include "toolgen/mcp_client.h"
#include "toolgen/mcp_transport.h"

namespace {

using k2::json;
namespace mcp = k2::toolgen::mcp;

class ScriptTransport : public mcp::Transport {
 public:
  explicit ScriptTransport(std::string_view script) {
    size_t pos = 0;
    while (pos < script.size()) {
      size_t nl = script.find('\n', pos);
      if (nl == std::string_view::npos) nl = script.size();
      std::string_view line = script.substr(pos, nl - pos);
      if (!line.empty() && (line[0] == '@' || line[0] == '!')) lines_.emplace_back(line);
      pos = nl + 1;
    }
  }
  k2::Status Send(const json& message, const mcp::Wait&) override {
    if (!alive_) return k2::Unavailable("closed");
    if (message.is_object() && message.contains("id") && message.contains("method")) last_id_ = message["id"];
    return k2::Status::Ok();
  }
  k2::Expected<json> Receive(const mcp::Wait&) override {
    if (!alive_ || lines_.empty()) {
      alive_ = false;
      return k2::Unavailable("script spent");
    }
    std::string line = std::move(lines_.front());
    lines_.pop_front();
    auto j = k2::ParseJson(std::string_view(line).substr(1), "mcp server stdout");
    if (!j.ok()) return k2::Corruption(j.status().message());
    if (line[0] == '@' && j->is_object()) (*j)["id"] = last_id_;
    return *j;
  }
  void Close() override { alive_ = false; }
  bool alive() const override { return alive_; }
  std::string Describe() const override { return "script"; }

 private:
  std::deque<std::string> lines_;
  json last_id_ = nullptr;
  bool alive_ = true;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = std::make_unique<ScriptTransport>(std::string_view(reinterpret_cast<const char*>(data), size));
  mcp::ClientOptions co;
  co.timeout_ms = 1000;
  auto c = mcp::Client::Connect(std::move(t), co);
  if (!c.ok()) return 0;
  (void)(*c)->server_info();
  auto tools = (*c)->ListTools("mcp:fuzz");
  auto res = (*c)->CallTool("t", json{{"a", 1}});
  if (res.ok()) (void)res->Text();
  (void)(*c)->Ping();
  (*c)->Close();
  return 0;
}
