// A fault-injecting MCP stdio server for the client tests: each tools/call name triggers one fault
// (crash mid-reply, never reply, invalid JSON, oversize reply, wrong ids) or a normal behaviour.
// Usage: fake_mcp_server [--protocol VERSION] [--page-size N]. Deliberately a separate process: faults must
// hit the real pipes, buffering and process lifecycle the client sees with real servers.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

using json = nlohmann::json;

namespace {

void Emit(const json& j) {
  std::string s = j.dump() + "\n";
  (void)!write(1, s.data(), s.size());
}

json Text(const std::string& t) { return {{"content", json::array({{{"type", "text"}, {"text", t}}})}}; }

// --more-tools 1 adds flood, getenv and task_only (kept out of the default list other tests count).
json ToolList(bool more) {
  json tools = json::array();
  std::vector<const char*> names = {"echo", "add", "crash", "hang", "garbage", "oversize", "wrong_id",
                                    "wrong_then_right", "ping_me", "tool_error", "slow", "cancelled_count",
                                    "structured", "not_object"};
  if (more) names.insert(names.end(), {"flood", "getenv", "task_only"});
  for (const char* name : names) {
    json t = {{"name", name}, {"description", std::string("fake ") + name},
              {"inputSchema", {{"type", "object"}, {"properties", json::object()}}}};
    if (std::string(name) == "echo")
      t["inputSchema"] = {{"type", "object"}, {"properties", {{"text", {{"type", "string"}}}}}, {"required", {"text"}}};
    if (std::string(name) == "add")
      t["inputSchema"] = {{"type", "object"},
                          {"properties", {{"a", {{"type", "integer"}}}, {"b", {{"type", "integer"}}}}},
                          {"required", {"a", "b"}}};
    if (std::string(name) == "structured")
      t["outputSchema"] = {{"type", "object"}, {"properties", {{"n", {{"type", "integer"}}}}}, {"required", {"n"}}};
    if (std::string(name) == "task_only") t["execution"] = {{"taskSupport", "required"}};
    tools.push_back(t);
  }
  return tools;
}

}  // namespace

int main(int argc, char** argv) {
  std::string protocol;
  size_t page_size = 5;
  bool more_tools = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--protocol")) protocol = argv[i + 1];
    if (!std::strcmp(argv[i], "--page-size")) page_size = std::stoul(argv[i + 1]);
    if (!std::strcmp(argv[i], "--more-tools")) more_tools = !std::strcmp(argv[i + 1], "1");
  }
  int cancelled = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    json m = json::parse(line, nullptr, false);
    if (m.is_discarded() || !m.is_object()) continue;
    std::string method = m.value("method", "");
    if (!m.contains("id")) {
      if (method == "notifications/cancelled") ++cancelled;
      continue;
    }
    json id = m["id"];
    if (!m.contains("method")) continue;  // a response to our own request (ping_me)
    auto reply = [&](const json& result) { Emit({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}}); };
    if (method == "initialize") {
      std::string v = protocol.empty() ? m["params"].value("protocolVersion", "2025-06-18") : protocol;
      reply({{"protocolVersion", v}, {"capabilities", {{"tools", json::object()}}},
             {"serverInfo", {{"name", "fake"}, {"version", "1"}}}});
    } else if (method == "ping") {
      reply(json::object());
    } else if (method == "tools/list") {
      json all = ToolList(more_tools);
      size_t start = 0;
      if (m["params"].contains("cursor")) start = std::stoul(m["params"]["cursor"].get<std::string>().substr(1));
      json page = json::array();
      for (size_t i = start; i < all.size() && i < start + page_size; ++i) page.push_back(all[i]);
      json r = {{"tools", page}};
      if (start + page_size < all.size()) r["nextCursor"] = "p" + std::to_string(start + page_size);
      reply(r);
    } else if (method == "tools/call") {
      std::string name = m["params"].value("name", "");
      json args = m["params"].value("arguments", json::object());
      if (name == "echo") {
        reply(Text(args.value("text", "")));
      } else if (name == "add") {
        reply(Text(std::to_string(args.value("a", 0) + args.value("b", 0))));
      } else if (name == "crash") {
        std::string partial = "{\"jsonrpc\":\"2.0\",\"id\":" + id.dump() + ",\"result\":{\"content\":[{\"type\":\"te";
        (void)!write(1, partial.data(), partial.size());
        std::fprintf(stderr, "fake: crashing on purpose\n");
        _exit(3);
      } else if (name == "hang") {
        // never replies to this request; keeps serving later ones
      } else if (name == "garbage") {
        std::string junk = "this is not json {\n";
        (void)!write(1, junk.data(), junk.size());
        reply(Text("after junk"));
      } else if (name == "not_object") {
        Emit(json::array({1, 2}));  // valid JSON, not a JSON-RPC message
        reply(Text("after an array"));
      } else if (name == "flood") {  // `lines` non-JSON lines, then the reply
        std::string junk;
        for (int k = 0; k < args.value("lines", 10); ++k) junk += "log line " + std::to_string(k) + "\n";
        (void)!write(1, junk.data(), junk.size());
        reply(Text("after flood"));
      } else if (name == "getenv") {
        const char* v = std::getenv(args.value("name", "").c_str());
        reply(Text(v ? v : "<unset>"));
      } else if (name == "oversize") {
        reply(Text(std::string(args.value("bytes", 2 << 20), 'x')));
      } else if (name == "wrong_id") {
        Emit({{"jsonrpc", "2.0"}, {"id", 999999}, {"result", Text("not yours")}});
      } else if (name == "wrong_then_right") {
        Emit({{"jsonrpc", "2.0"}, {"id", 999998}, {"result", Text("not yours")}});
        reply(Text("yours"));
      } else if (name == "ping_me") {
        Emit({{"jsonrpc", "2.0"}, {"id", "srv-1"}, {"method", "ping"}});
        std::string ans;
        std::getline(std::cin, ans);
        json a = json::parse(ans, nullptr, false);
        bool ok = !a.is_discarded() && a.value("id", json()) == "srv-1" && a.contains("result");
        reply(Text(ok ? "pong received" : "bad pong: " + ans));
      } else if (name == "tool_error") {
        json r = Text("the tool failed");
        r["isError"] = true;
        reply(r);
      } else if (name == "slow") {
        std::this_thread::sleep_for(std::chrono::milliseconds(args.value("ms", 100)));
        reply(Text("slow done"));
      } else if (name == "cancelled_count") {
        reply(Text(std::to_string(cancelled)));
      } else if (name == "structured") {
        json r = Text("n");
        r["structuredContent"] = {{"n", args.value("n", json(1))}};
        reply(r);
      } else {
        Emit({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32602}, {"message", "Unknown tool: " + name}}}});
      }
    } else {
      Emit({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32601}, {"message", "Method not found"}}}});
    }
  }
  return 0;
}
