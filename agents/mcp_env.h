// The built-in `mcp` environment kind: any stdio or Streamable-HTTP MCP server becomes an Env whose tools
// are the action space and whose tool results are the observations. Server processes are per environment
// or pooled (bounded), and always reaped.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agents/env.h"
#include "toolgen/mcp_client.h"

namespace k2::agents {

struct McpEnvConfig {
  std::vector<std::string> command;  // stdio server: argv (argv[0] looked up in PATH)
  std::string url;                   // or a Streamable HTTP endpoint
  json env = json::object();         // extra environment variables for a stdio server (string values)
  std::string cwd;                   // working directory of a stdio server (empty: inherit)
  std::string name;                  // provenance "mcp:<name>" (empty: the server's serverInfo.name)
  std::string system_prompt;         // system message when the task has none
  int timeout_ms = 30000;            // per MCP request
  int max_steps = 32;                // steps per episode before truncation
  int64_t max_message_bytes = 16 << 20;
  std::string servers = "per_env";   // "per_env": own process; "pooled": shared, bounded pool
  int max_servers = 4;               // pooled: live processes per distinct server config
  int lease_timeout_ms = 60000;      // pooled: how long make()/reset() waits for a free server
  // Episode isolation. "episode": a per_env server is restarted at every reset after the first, so each
  // episode starts from the server's initial state; "never": one server for the environment's life.
  // With reset_tool set, the server is kept and that tool is called at each reset instead (the
  // optional reset/state convention for long-lived servers).
  std::string restart = "episode";
  std::string reset_tool;            // called with {} at each reset (a long-lived server restores itself)
  // Called with state_arguments after the episode; its text (JSON) is the environment's State(), the
  // final state DB-style rewards compare ("" = no state).
  std::string state_tool;
  json state_arguments = json::object();

  template <class V>
  void Visit(V& v) {
    v("command", command, "stdio MCP server command line (argv)");
    v("url", url, "Streamable HTTP MCP endpoint (instead of command)");
    v("env", env, "environment variables for the stdio server (object of strings)");
    v("cwd", cwd, "working directory of the stdio server");
    v("name", name, "server name used in provenance mcp:<name> (default: serverInfo.name)");
    v("system_prompt", system_prompt, "system message when the task gives none");
    v("timeout_ms", timeout_ms, "timeout of one MCP request (ms)", {.min = 1, .max = 3600000});
    v("max_steps", max_steps, "steps per episode before truncation", {.min = 1, .max = 100000});
    v("max_message_bytes", max_message_bytes, "largest accepted server message (bytes)", {.min = 1024});
    v("servers", servers, "server processes per environment or pooled", {.choices = {"per_env", "pooled"}});
    v("max_servers", max_servers, "pooled: live server processes per server config", {.min = 1, .max = 1024});
    v("lease_timeout_ms", lease_timeout_ms, "pooled: wait for a free server (ms)", {.min = 0});
    v("restart", restart, "per_env servers: a fresh process per episode or one for the env's life",
      {.choices = {"episode", "never"}});
    v("reset_tool", reset_tool, "tool called at each reset instead of restarting the server");
    v("state_tool", state_tool, "tool whose JSON text is the final state after an episode");
    v("state_arguments", state_arguments, "arguments of state_tool");
  }
};

// Task JSON of an mcp episode: ToolEnv::TaskMessages keys plus "initial_calls": [{"name", "arguments"}],
// run on the server at reset before the first message (an error, or a tool reporting isError, fails the
// reset). `${EPISODE_TMP}` in a stdio server's env values or argv is replaced by a fresh temporary
// directory per server process (removed when the process goes), e.g. {"MEMORY_FILE_PATH":
// "${EPISODE_TMP}/memory.json"} for @modelcontextprotocol/server-memory.
// Strict: unknown keys, wrong types, neither or both of command/url are errors naming the field.
Expected<McpEnvConfig> ParseMcpEnvConfig(const json& config);
// Connects, lists tools (all pages, strictly parsed, names unique) and returns the environment.
Expected<std::unique_ptr<Env>> MakeMcpEnv(const McpEnvConfig& config);

// Live server processes held by the shared pool (for tests and `env` diagnostics).
int PooledServersLive();

// Registers the `mcp` kind (EnvRegistry::Global() does this itself).
Status RegisterMcpEnv(EnvRegistry& registry);

}  // namespace k2::agents
