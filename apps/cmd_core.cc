// Foundation commands: version, config show/doc, db info.
#include <cstdio>
#include <iostream>

#include "apps/cli.h"
#include "engine/cuda/device.h"

#ifndef K2GYM_VERSION
#define K2GYM_VERSION "0.0.0"
#endif

namespace k2::app {
namespace {

int Version(Context& ctx) {
  json j = {{"name", "k2gym"},
            {"version", K2GYM_VERSION},
            {"compiler", __VERSION__},
            {"cuda_built", CudaBuilt()},
            {"cuda_devices", CudaDeviceCount()}};
  if (ctx.g.json) {
    ctx.PrintJson(j);
  } else {
    std::printf("k2gym %s (%s; CUDA %s, %d device(s))\n", K2GYM_VERSION, __VERSION__,
                CudaBuilt() ? "built" : "not built", CudaDeviceCount());
  }
  return kExitOk;
}

int ConfigShow(Context& ctx) {
  std::cout << ctx.config.dump(2) << std::endl;
  return kExitOk;
}

int ConfigDoc(Context&) {
  std::cout << config::DocMarkdown();
  return kExitOk;
}

int DbInfo(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  json versions = json::object();
  {
    auto q = (*db)->Prepare("SELECT module, version FROM schema_versions ORDER BY module");
    if (!q.ok()) return Fail(q.status());
    while (q->Step()) versions[q->Text(0)] = q->Int(1);
    if (!q->status().ok()) return Fail(q->status());
  }
  auto counts = TableCounts(db->get());
  if (!counts.ok()) return Fail(counts.status());
  json tables = json::object();
  for (auto& [name, n] : *counts) tables[name] = n;
  if (ctx.g.json) {
    ctx.PrintJson({{"db", ctx.g.db_path}, {"schema_versions", versions}, {"tables", tables}});
    return kExitOk;
  }
  std::printf("database %s\nschema versions:", ctx.g.db_path.c_str());
  for (auto& [m, v] : versions.items()) std::printf(" %s=%d", m.c_str(), v.get<int>());
  std::printf("\n%-28s %12s\n", "table", "rows");
  for (auto& [name, n] : *counts) std::printf("%-28s %12lld\n", name.c_str(), static_cast<long long>(n));
  return kExitOk;
}

K2_COMMAND("version", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("version", "Print the version and build (CUDA or not)");
  c->callback([action] { *action = Version; });
});

K2_COMMAND("config", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("config", "Inspect the run configuration");
  c->require_subcommand(1);
  c->add_subcommand("show", "Print the resolved config (file + --set + defaults) as JSON")
      ->callback([action] { *action = ConfigShow; });
  c->add_subcommand("doc", "Print the config reference as Markdown (docs/config.md)")
      ->callback([action] { *action = ConfigDoc; });
});

K2_COMMAND("db", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("db", "Inspect the SQLite store");
  c->require_subcommand(1);
  c->add_subcommand("info", "Schema versions and row counts per table")->callback([action] { *action = DbInfo; });
});

}  // namespace
}  // namespace k2::app
