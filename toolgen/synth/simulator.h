// A schema-driven stateful simulator for real tools that have no implementation (the imported MCP
// corpus): arguments are validated against inputSchema; results are plausible values generated from
// outputSchema (validated against it) or, without one, a generic record of what was done; objects
// that earlier "create"-like calls made are remembered and returned by later reads, listed by
// searches and removed by deletes. Every result is marked simulated (MCP `_meta`).
//
// Thread safety: one simulator per episode/thread. Deterministic for a seed and call sequence.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/rng.h"
#include "toolgen/synth/executor.h"
#include "toolgen/tool_spec.h"

namespace k2::toolgen::synth {

// A value conforming to `schema` where the generator understands it (type, enum, const, properties,
// required, items, min/max bounds and lengths, formats, simple patterns, anyOf/oneOf/allOf first
// branch, local $ref). Callers validate; `root` resolves $ref.
json ValueFromSchema(const json& schema, const json& root, Rng& r, int depth = 0);
// A string matching a simple regular expression (literals, escapes \d \w \s, classes, '.', groups,
// alternation, quantifiers ? * + {n} {n,m}); anchors are dropped.
std::string StringFromPattern(const std::string& pattern, Rng& r);

enum class ToolIntent { kCreate, kRead, kList, kUpdate, kDelete, kOther };
ToolIntent GuessIntent(const std::string& tool_name);

class SchemaSimulator {
 public:
  SchemaSimulator(std::vector<CompiledTool> tools, uint64_t seed, FaultConfig faults = {});
  // Errors: "not_found" (unknown tool), "invalid_arguments" (message = the validator's, starting with
  // the JSON pointer), "transient"/"timeout" (seeded faults); a remembered object asked for but gone:
  // "not_found".
  CallResult Call(const std::string& tool, const json& args);
  // {"objects": {id: {"tool", "value"}}, "calls": n}: what the simulator remembers.
  json State() const;
  int64_t nonconforming() const { return nonconforming_; }  // generated outputs that failed outputSchema

 private:
  std::map<std::string, CompiledTool> tools_;
  Rng rng_;
  FaultConfig faults_;
  std::map<std::string, json> objects_;  // id -> {"tool": name, "value": object}
  int64_t calls_ = 0, next_id_ = 1, nonconforming_ = 0;
};

}  // namespace k2::toolgen::synth
