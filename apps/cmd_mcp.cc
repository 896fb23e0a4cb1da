// `k2gym mcp serve`: any registered environment kind (synthetic domains, with the sandboxed python tool
// when configured; kinds of --plugin libraries such as the ledger example; MCP proxies) served to MCP clients
// over stdio or Streamable HTTP.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "agents/env.h"
#include "apps/cli.h"
#include "core/http/server.h"
#include "apps/pipeline_cli.h"
#include "toolgen/mcp_server.h"

namespace k2::app {
namespace {

struct McpArgs {
  std::string env = "synthetic";
  std::string env_config = "{}";
  std::string task = "{}";
  bool http = false;
  std::string host = "127.0.0.1";
  int port = 0;
  int page_size = 50;
  int max_sessions = 64;
  std::vector<std::string> plugins;
} g_mcp;

// JSON given inline or as @FILE.
Expected<json> JsonArg(const std::string& v, const std::string& flag) {
  if (!v.empty() && v[0] == '@') {
    std::ifstream f(v.substr(1), std::ios::binary);
    if (!f) return NotFound(flag + ": cannot read " + v.substr(1));
    std::stringstream ss;
    ss << f.rdbuf();
    return ParseJson(ss.str(), flag + " " + v.substr(1));
  }
  return ParseJson(v, flag);
}

// One MCP session = one episode of the environment: Reset at session start, one Step per tools/call.
class EnvSession final : public toolgen::mcp::ToolSession {
 public:
  EnvSession(std::unique_ptr<agents::Env> env, std::vector<Message> first)
      : env_(std::move(env)), tools_(env_->Tools()) {
    for (auto& m : first)
      if (!m.content.empty()) instructions_ += (instructions_.empty() ? "" : "\n\n") + m.role + ": " + m.content;
  }
  ~EnvSession() override { env_->Close(); }

  std::vector<json> Tools() override {
    std::vector<json> out;
    for (auto& t : tools_) out.push_back(toolgen::ToJson(t));
    return out;
  }

  Expected<json> Call(const std::string& name, const json& arguments, const std::atomic<bool>& cancel) override {
    if (cancel.load()) return Cancelled("call cancelled before it started");
    Message action{.role = "assistant",
                   .tool_calls = {{.id = "call_" + std::to_string(calls_++), .name = name, .arguments = arguments.dump()}}};
    K2_ASSIGN_OR_RETURN(agents::StepResult r, env_->Step(action));
    if (r.observation.empty()) return Internal("the environment returned no observation (episode over?)");
    const std::string& text = r.observation[0].content;
    const bool is_error = r.truncated || r.info.value("invalid_calls", 0) > 0 || r.info.value("tool_errors", 0) > 0;
    json result = {{"content", json::array({{{"type", "text"}, {"text", text}}})}, {"isError", is_error}};
    // Tools with an outputSchema answer with structuredContent as well (their text is its JSON).
    for (auto& t : tools_)
      if (t.name == name && t.output_schema && !is_error) {
        json sc = json::parse(text, nullptr, false);
        if (sc.is_object()) result["structuredContent"] = sc;
      }
    return result;
  }

  json State() override { return env_->State(); }
  std::string Instructions() override { return instructions_; }

 private:
  std::unique_ptr<agents::Env> env_;
  std::vector<toolgen::ToolSpec> tools_;
  std::string instructions_;
  int64_t calls_ = 0;
};

int Serve(Context& ctx) {
  if (Status s = LoadPlugins(g_mcp.plugins); !s.ok()) return Fail(s);
  if (!agents::EnvRegistry::Global().Has(g_mcp.env))
    return Fail(NotFound("--env " + json(g_mcp.env).dump() + ": not a registered environment kind (see `k2gym env list`)"));
  auto cfg = JsonArg(g_mcp.env_config, "--env-config");
  if (!cfg.ok()) return Fail(cfg.status());
  auto task = JsonArg(g_mcp.task, "--task");
  if (!task.ok()) return Fail(task.status());
  // Checks the config and task once up front, so a bad one fails the command rather than each session.
  {
    auto probe = agents::EnvRegistry::Global().Make(g_mcp.env, *cfg);
    if (!probe.ok()) return Fail(probe.status().Context("--env-config"));
    auto first = (*probe)->Reset(ctx.g.seed, *task);
    if (!first.ok()) return Fail(first.status().Context("--task"));
    (*probe)->Close();
  }
  std::atomic<uint64_t> next{0};
  const std::string kind = g_mcp.env;
  const json config = *cfg, task_json = *task;
  const uint64_t seed = ctx.g.seed;
  toolgen::mcp::ToolSessionFactory factory = [&next, kind, config, task_json,
                                              seed]() -> Expected<std::unique_ptr<toolgen::mcp::ToolSession>> {
    K2_ASSIGN_OR_RETURN(auto env, agents::EnvRegistry::Global().Make(kind, config));
    K2_ASSIGN_OR_RETURN(auto first, env->Reset(seed + next++, task_json));
    return std::unique_ptr<toolgen::mcp::ToolSession>(std::make_unique<EnvSession>(std::move(env), std::move(first)));
  };
  toolgen::mcp::McpServerOptions o;
  o.name = "k2gym-" + kind;
  o.page_size = g_mcp.page_size;
  o.max_sessions = g_mcp.max_sessions;
  o.bind = g_mcp.host;
  o.port = g_mcp.port;
  toolgen::mcp::McpServer server(factory, o);
  if (!g_mcp.http) {
    std::fprintf(stderr, "k2gym mcp serve: %s over stdio\n", kind.c_str());
    Status s = server.ServeStdio(0, 1);
    return s.ok() ? kExitOk : Fail(s);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto http = server.ListenHttp();
  if (!http.ok()) return Fail(http.status());
  std::printf("k2gym mcp serve: listening on http://%s/mcp (%s)\n", (*http)->address().c_str(), kind.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  (*http)->Stop();
  std::fprintf(stderr, "k2gym mcp serve: stopped (signal %d)\n", sig);
  return kExitOk;
}

K2_COMMAND("mcp", [](CLI::App& app, Context& ctx, Action* action) {
  (void)ctx;
  auto* c = app.add_subcommand("mcp", "k2gym as an MCP server (docs/tools.md)");
  c->require_subcommand(1);
  auto* s = c->add_subcommand("serve", "Serve an environment kind's tools to MCP clients (one episode per session)");
  s->add_option("--env", g_mcp.env, "environment kind (`k2gym env list`)")->capture_default_str();
  s->add_option("--env-config", g_mcp.env_config, "environment config: JSON or @FILE")->capture_default_str();
  s->add_option("--task", g_mcp.task, "task each session's episode starts from: JSON or @FILE")->capture_default_str();
  s->add_flag("--http", g_mcp.http, "Streamable HTTP at http://HOST:PORT/mcp instead of stdio");
  s->add_option("--host", g_mcp.host, "HTTP bind address")->capture_default_str();
  s->add_option("--port", g_mcp.port, "HTTP port (0 = ephemeral, printed)")->capture_default_str();
  s->add_option("--page-size", g_mcp.page_size, "tools per tools/list page")->capture_default_str();
  s->add_option("--max-sessions", g_mcp.max_sessions, "HTTP sessions at once")->capture_default_str();
  AddPluginFlag(s, &g_mcp.plugins);
  s->callback([action] { *action = Serve; });
});

}  // namespace
}  // namespace k2::app
