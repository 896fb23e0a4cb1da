// Catalog synthesis (see synth.h): plan domain paths, build domains and databases in parallel.
#include "toolgen/synth/synth.h"

#include "core/thread_pool.h"

namespace k2::toolgen::synth {

int64_t Catalog::ToolCount() const {
  int64_t n = 0;
  for (auto& d : domains) n += static_cast<int64_t>(d->ops.size());
  return n;
}

Catalog Synthesize(uint64_t seed, int64_t min_tools, ThreadPool* pool, bool with_databases, const DbSize& size) {
  Catalog c;
  c.seed = seed;
  std::vector<DomainKey> keys = PlanDomains(seed, min_tools);
  c.domains.resize(keys.size());
  if (with_databases) c.databases.resize(keys.size());
  auto one = [&](int64_t i) {
    auto d = std::make_shared<Domain>(BuildDomain(keys[i], seed));
    if (with_databases) c.databases[i] = GenerateDatabase(*d, seed, size);
    c.domains[i] = std::move(d);
  };
  if (pool) pool->ParallelFor(static_cast<int64_t>(keys.size()), one, 8);
  else
    for (size_t i = 0; i < keys.size(); ++i) one(static_cast<int64_t>(i));
  return c;
}

ToolSpec ToToolSpec(const Domain& d, const Op& op) {
  ToolSpec s;
  s.name = op.name;
  s.title = op.title;
  s.description = op.description;
  s.input_schema = op.input_schema;
  s.output_schema = op.output_schema;
  s.annotations = {{"readOnlyHint", op.read_only},
                   {"destructiveHint", op.destructive},
                   {"idempotentHint", op.idempotent},
                   {"openWorldHint", false}};
  s.provenance = "synthetic:" + d.path;
  return s;
}

}  // namespace k2::toolgen::synth
