// `k2gym tools import|stats|show`: the tool registry in the store (toolgen/registry.h).
// Import takes corpora (.jsonl, one server per line), tools/list dumps (.json) or folders of them.
#include <cstdio>

#include "apps/cli.h"
#include "toolgen/registry.h"

namespace k2::app {
namespace {

struct ToolsArgs {
  std::vector<std::string> paths;
  double near_dup = 0.9;
  std::string server;
  int limit = 50;
};
ToolsArgs g_tools;

int Import(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  json all = json::array();
  int rc = kExitOk;
  for (const auto& p : g_tools.paths) {
    toolgen::ImportOptions o;
    o.near_duplicate_jaccard = g_tools.near_dup;
    o.progress = !ctx.g.quiet && !ctx.g.json;
    auto r = toolgen::ImportTools(db->get(), p, o);
    if (!r.ok()) return Fail(r.status());
    json j = r->ToJson();
    j["path"] = p;
    all.push_back(j);
    for (const auto& e : r->errors) std::fprintf(stderr, "k2gym: warning: skipped %s\n", e.c_str());
    if (!r->errors.empty()) rc = kExitRuntime;
    if (!ctx.g.json) {
      std::printf("%s: %lld file(s), %lld server(s), %lld tool(s): %lld new, %lld updated; %lld valid, %lld invalid; "
                  "%lld exact duplicate(s) skipped; %lld near-duplicate(s) in the registry\n",
                  p.c_str(), static_cast<long long>(r->files), static_cast<long long>(r->servers),
                  static_cast<long long>(r->tools_seen), static_cast<long long>(r->inserted),
                  static_cast<long long>(r->updated), static_cast<long long>(r->valid), static_cast<long long>(r->invalid),
                  static_cast<long long>(r->exact_duplicates), static_cast<long long>(r->near_duplicates));
    }
  }
  if (ctx.g.json) ctx.PrintJson(all);
  return rc;
}

int Stats(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  auto s = toolgen::RegistryStats(db->get());
  if (!s.ok()) return Fail(s.status());
  if (ctx.g.json) {
    ctx.PrintJson(*s);
    return kExitOk;
  }
  const json& j = *s;
  std::printf("servers %lld, tools %lld (valid %lld, invalid %lld, near-duplicates %lld, with outputSchema %lld)\n",
              j["servers"].get<long long>(), j["tools"].get<long long>(), j["valid"].get<long long>(),
              j["invalid"].get<long long>(), j["near_duplicates"].get<long long>(), j["with_output_schema"].get<long long>());
  std::printf("\n%-40s %8s %8s %8s\n", "source", "servers", "tools", "valid");
  for (auto& [k, v] : j["by_source"].items())
    std::printf("%-40s %8lld %8lld %8lld\n", k.c_str(), v["servers"].get<long long>(), v["tools"].get<long long>(),
                v["valid"].get<long long>());
  std::printf("\n%-40s %8s %8s %8s\n", "category", "servers", "tools", "valid");
  for (auto& [k, v] : j["by_category"].items())
    std::printf("%-40s %8lld %8lld %8lld\n", k.c_str(), v["servers"].get<long long>(), v["tools"].get<long long>(),
                v["valid"].get<long long>());
  std::printf("\nschema complexity (subschemas per inputSchema, valid tools)\n");
  long long most = 1;
  for (auto& [k, v] : j["complexity_histogram"].items()) most = std::max(most, v.get<long long>());
  for (const char* b : {"1", "2-3", "4-7", "8-15", "16-31", "32+"}) {
    long long n = j["complexity_histogram"][b].get<long long>();
    std::printf("  %-6s %7lld %s\n", b, n, std::string(static_cast<size_t>(50 * n / most), '#').c_str());
  }
  std::printf("\ninvalid tools (%zu)\n", j["invalid_tools"].size());
  for (const auto& t : j["invalid_tools"]) std::printf("  %s\n", t["reason"].get<std::string>().c_str());
  return kExitOk;
}

int Show(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  auto tools = toolgen::RegistryServerTools(db->get(), g_tools.server);
  if (!tools.ok()) return Fail(tools.status());
  if (ctx.g.json) {
    json out = json::array();
    for (const auto& t : *tools) out.push_back(toolgen::ToJson(t));
    ctx.PrintJson(out);
    return kExitOk;
  }
  for (const auto& t : *tools) {
    std::string d = t.description.substr(0, t.description.find('\n'));
    if (d.size() > 100) d = d.substr(0, 97) + "...";
    std::printf("%-40s %s\n", t.name.c_str(), d.c_str());
  }
  return kExitOk;
}

K2_COMMAND("tools", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("tools", "The tool registry: import MCP tool corpora and dumps, statistics");
  c->require_subcommand(1);
  auto* imp = c->add_subcommand("import", "Import a corpus (.jsonl), a tools/list dump (.json) or a folder of them");
  imp->add_option("paths", g_tools.paths, "FILE or DIR (several allowed)")->required()->check(CLI::ExistingPath);
  imp->add_option("--near-dup", g_tools.near_dup, "description Jaccard for near-duplicates (same tool name)")
      ->check(CLI::Range(0.0, 1.0));
  imp->callback([action] { *action = Import; });
  c->add_subcommand("stats", "Counts by source and category, complexity histogram, invalid schemas (--json for all)")
      ->callback([action] { *action = Stats; });
  auto* show = c->add_subcommand("show", "List the valid tools of one imported server");
  show->add_option("server", g_tools.server, "server key (corpus id or dump name)")->required();
  show->callback([action] { *action = Show; });
});

}  // namespace
}  // namespace k2::app
