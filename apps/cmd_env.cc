// `k2gym env list|inspect|call`: environments from the registry (agents/env.h): built-in kinds (mcp,
// synthetic, answer, code_interpreter), kinds of --plugin libraries, and named environments from the
// run config's `env.named` section.
#include <cstdio>

#include "agents/env.h"
#include "agents/mcp_env.h"
#include "apps/cli.h"
#include "apps/pipeline_cli.h"
#include "toolgen/registry.h"

namespace k2::app {
namespace {

struct EnvSection {
  json named = json::object();
  template <class V>
  void Visit(V& v) {
    v("named", named,
      "named environments: {NAME: {\"kind\": KIND, \"config\": {...}}}, e.g. an MCP server "
      "{\"kind\": \"mcp\", \"config\": {\"command\": [\"node\", \"server.js\"]}}");
  }
};
K2_CONFIG_SECTION("env", EnvSection, "Environments for `k2gym env` and episode runners");

struct EnvArgs {
  std::string name, tool, args = "{}", env_config, task = "{}";
  std::vector<std::string> plugins;
};
EnvArgs g_env;


// NAME -> (kind, config): a named environment of the config, else a registered kind; --env-config
// (JSON) is merged over the config.
Expected<std::pair<std::string, json>> Resolve(Context& ctx, const std::string& name) {
  K2_RETURN_IF_ERROR(LoadPlugins(g_env.plugins));
  auto sec = config::Get<EnvSection>(ctx.config, "env");
  if (!sec.ok()) return sec.status();
  std::string kind = name;
  json cfg = json::object();
  if (sec->named.is_object() && sec->named.contains(name)) {
    const json& n = sec->named[name];
    if (!n.is_object() || !n.contains("kind") || !n["kind"].is_string())
      return InvalidArgument("config env.named." + name + ".kind: expected a string (an environment kind)");
    for (auto& [k, v] : n.items())
      if (k != "kind" && k != "config") return InvalidArgument("config env.named." + name + ": unknown key " + json(k).dump());
    kind = n["kind"];
    cfg = n.value("config", json::object());
  } else if (!agents::EnvRegistry::Global().Has(name)) {
    return NotFound("no environment " + json(name).dump() +
                    ": not a registered kind (see `k2gym env list`) nor in config env.named");
  }
  if (!g_env.env_config.empty()) {
    K2_ASSIGN_OR_RETURN(json patch, ParseJson(g_env.env_config, "--env-config"));
    if (!patch.is_object()) return InvalidArgument("--env-config: expected a JSON object");
    cfg.merge_patch(patch);
  }
  return std::make_pair(kind, cfg);
}

Expected<std::unique_ptr<agents::Env>> MakeNamed(Context& ctx, const std::string& name) {
  K2_ASSIGN_OR_RETURN(auto kc, Resolve(ctx, name));
  return agents::EnvRegistry::Global().Make(kc.first, kc.second);
}

int List(Context& ctx) {
  if (Status s = LoadPlugins(g_env.plugins); !s.ok()) return Fail(s);
  json kinds = json::array();
  for (const auto& e : agents::EnvRegistry::Global().List())
    kinds.push_back({{"name", e.name}, {"description", e.description}, {"example_config", e.example_config}});
  auto sec = config::Get<EnvSection>(ctx.config, "env");
  if (!sec.ok()) return Fail(sec.status());
  json named = sec->named;
  if (ctx.g.json) {
    ctx.PrintJson({{"kinds", kinds}, {"named", named}});
    return kExitOk;
  }
  std::printf("%-16s %s\n", "kind", "description");
  for (const auto& k : kinds)
    std::printf("%-16s %s\n  example: --env-config '%s'\n", k["name"].get<std::string>().c_str(),
                k["description"].get<std::string>().c_str(), k["example_config"].dump().c_str());
  if (!named.empty()) {
    std::printf("\nnamed (config env.named)\n");
    for (auto& [n, v] : named.items()) std::printf("%-16s kind %s\n", n.c_str(), v.value("kind", "?").c_str());
  }
  return kExitOk;
}

int Inspect(Context& ctx) {
  std::vector<toolgen::ToolSpec> tools;
  auto env = MakeNamed(ctx, g_env.name);
  if (env.ok()) {
    tools = (*env)->Tools();
  } else if (env.status().code() == Code::kNotFound) {
    // Not runnable, but maybe an imported server: show its registered tools.
    auto db = ctx.OpenDb();
    if (!db.ok()) return Fail(db.status());
    auto reg = toolgen::RegistryServerTools(db->get(), g_env.name);
    if (!reg.ok()) return Fail(env.status());
    tools = std::move(*reg);
  } else {
    return Fail(env.status());
  }
  if (ctx.g.json) {
    json out = json::array();
    for (const auto& t : tools) {
      json j = toolgen::ToJson(t);
      j["provenance"] = t.provenance;
      out.push_back(j);
    }
    ctx.PrintJson({{"name", g_env.name}, {"tools", out}});
    return kExitOk;
  }
  std::printf("%s: %zu tool(s)\n", g_env.name.c_str(), tools.size());
  for (const auto& t : tools) {
    std::string req;
    if (t.input_schema.contains("required") && t.input_schema["required"].is_array())
      for (const auto& r : t.input_schema["required"]) req += (req.empty() ? "" : ", ") + r.get<std::string>();
    std::string d = t.description.substr(0, t.description.find('\n'));
    if (d.size() > 90) d = d.substr(0, 87) + "...";
    std::printf("\n  %s%s\n    %s\n    required: %s; schema size %d\n", t.name.c_str(),
                t.annotations.value("readOnlyHint", false) ? " (read-only)" : "", d.c_str(),
                req.empty() ? "-" : req.c_str(), toolgen::SchemaComplexity(t.input_schema));
  }
  return kExitOk;
}

int Call(Context& ctx) {
  auto env = MakeNamed(ctx, g_env.name);
  if (!env.ok()) return Fail(env.status());
  auto task = ParseJson(g_env.task, "--task");
  if (!task.ok()) return Fail(task.status());
  auto first = (*env)->Reset(ctx.g.seed, *task);
  if (!first.ok()) return Fail(first.status());
  Message action{.role = "assistant", .tool_calls = {{.id = "call_0", .name = g_env.tool, .arguments = g_env.args}}};
  auto r = (*env)->Step(action);
  if (!r.ok()) return Fail(r.status());
  bool failed = r->truncated || r->info.value("invalid_calls", 0) > 0 || r->info.value("tool_errors", 0) > 0;
  if (ctx.g.json) {
    ctx.PrintJson(r->ToJson());
  } else {
    for (const auto& m : r->observation) std::printf("%s\n", m.content.c_str());
  }
  (*env)->Close();
  return failed ? kExitRuntime : kExitOk;
}

K2_COMMAND("env", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("env", "Environments: list kinds, inspect tools, call one tool");
  c->require_subcommand(1);
  auto* list = c->add_subcommand("list", "Registered environment kinds and named environments");
  AddPluginFlag(list, &g_env.plugins);
  list->callback([action] { *action = List; });
  auto* ins = c->add_subcommand("inspect", "Show an environment's tools (or an imported server's)");
  ins->add_option("name", g_env.name, "environment kind, config env.named entry, or imported server key")->required();
  ins->add_option("--env-config", g_env.env_config, "JSON merged over the environment config");
  AddPluginFlag(ins, &g_env.plugins);
  ins->callback([action] { *action = Inspect; });
  auto* call = c->add_subcommand("call", "Reset the environment and run one tool call; prints the observation");
  call->add_option("name", g_env.name, "environment kind or config env.named entry")->required();
  call->add_option("tool", g_env.tool, "tool name")->required();
  call->add_option("arguments", g_env.args, "arguments as a JSON object (default {})");
  call->add_option("--env-config", g_env.env_config, "JSON merged over the environment config");
  call->add_option("--task", g_env.task, "task JSON given to reset (default {})");
  AddPluginFlag(call, &g_env.plugins);
  call->callback([action] { *action = Call; });
});

}  // namespace
}  // namespace k2::app
