// Hierarchical domain evolution: seed category -> application theme -> sub-domain (segment x region),
// each sub-domain growing its own field vocabulary, policies, naming grammar and tool set.
//
// Deterministic: a domain depends only on (seed, path); other seeds pick other sub-domain paths, extra
// fields, policy parameters, verbs and phrasings. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "toolgen/synth/model.h"

namespace k2::toolgen::synth {

// One leaf of the hierarchy before it is built: indexes into vocab.h tables.
struct DomainKey {
  int category = 0, theme = 0, segment = 0, region = 0;
  std::string Path() const;  // "travel/airline/budget-nordic"
};

// Sub-domain keys, round-robin over all themes (so every seed category is represented early), each
// theme walking its own seeded permutation of segment x region pairs, until the estimated tool count
// reaches `min_tools`. At most every combination once.
std::vector<DomainKey> PlanDomains(uint64_t seed, int64_t min_tools);

// Builds the sub-domain: entities and fields, lifecycle, policies, and its tools (BuildOps).
Domain BuildDomain(const DomainKey& key, uint64_t seed);

// Finds a key by its path ("travel/airline/budget-nordic"); NotFound names the unknown part.
Expected<DomainKey> KeyFromPath(const std::string& path);

// The tools of a domain (names unique within it), with MCP schemas and descriptions. Called by
// BuildDomain; exposed for tests.
void BuildOps(Domain& d, uint64_t seed);

// The JSON Schema of one field / of a whole entity (all fields required, no extra properties).
json FieldSchema(const Domain& d, const Field& f);
json EntitySchema(const Domain& d, int role);

// Tools per domain, for planning.
inline constexpr int kToolsPerDomain = 14;

}  // namespace k2::toolgen::synth
