// Persistence of the synthetic catalog in the SQLite store: domains, tools (MCP specs), agents and
// tasks, under module "toolgen_synth" (own tables; the real-tool registry is toolgen/registry.h).
// Every Save* replaces its table's content in one transaction: a failure leaves the previous content.
// Thread safety: as Db (one thread per connection).
#pragma once

#include <vector>

#include "core/json.h"
#include "core/store.h"
#include "toolgen/synth/agents.h"
#include "toolgen/synth/dedupe.h"
#include "toolgen/synth/synth.h"
#include "toolgen/synth/tasks.h"

namespace k2::toolgen::synth {

const Migrations& SynthMigrations();

// The generation parameters a later `toolgen agents/tasks` needs to rebuild the same catalog.
struct CatalogMeta {
  uint64_t seed = 0;
  int64_t count = 0;
  DbSize size;
};

Status SaveCatalog(Db* db, const Catalog& c, const CatalogMeta& meta, const DedupeReport* dedupe);
// NotFound when `toolgen synth` has not been run on this store.
Expected<CatalogMeta> LoadCatalogMeta(Db* db);
Status SaveAgents(Db* db, const std::vector<Agent>& agents);
Status SaveTasks(Db* db, const std::vector<Task>& tasks);
// Loads stored tasks (tau2 JSON) in id order; `domain` filters when not empty.
Expected<std::vector<Task>> LoadTasks(Db* db, const std::string& domain = "");

// Counts of domains, tools (by category and by operation), agents, tasks (by difficulty and scenario),
// the near-duplicate report of the last synth, and the real tools of the registry (toolgen/registry.h)
// when its tables exist: {"synthetic": {...}, "real_tools": n, "total_tools": n, ...}.
Expected<json> SynthStats(Db* db);

}  // namespace k2::toolgen::synth
