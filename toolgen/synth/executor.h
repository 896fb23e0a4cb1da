// Executable semantics of synthetic tools: one generic interpreter of the Op descriptors over a domain
// database (JSON state), plus a stateful tool simulator with seeded transient failures and timeouts.
//
// Execute() either applies the whole operation or leaves the database untouched (errors are checked
// before anything is written). Errors are realistic tool errors, not Statuses: invalid_arguments,
// not_found, precondition_failed, policy_violation (and transient / timeout from the simulator).
// Thread safety: Execute is a pure function of its inputs; a ToolSimulator is used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/json.h"
#include "core/rng.h"
#include "toolgen/synth/model.h"

namespace k2::toolgen::synth {

struct CallResult {
  std::string error;    // "" on success, else "invalid_arguments", "not_found", "precondition_failed",
                        // "policy_violation", "transient", "timeout"
  std::string message;  // human-readable, names the argument / id / rule
  json value;           // the structured result on success (conforms to the tool's outputSchema)
  bool simulated = false;  // produced by the schema simulator (no real semantics behind it)
  bool ok() const { return error.empty(); }
  // MCP CallToolResult: {"content":[{"type":"text","text":...}], "structuredContent"?, "isError",
  // "_meta": {"k2gym/simulated": true} when simulated}.
  json ToMcp() const;
};

CallResult Execute(const Domain& d, const Op& op, json& db, const json& args);

// Independent reference for the policies (written apart from Execute on purpose): the first policy
// the call would violate on `db`, or nullptr. Unknown ids and ill-typed arguments give nullptr (they
// are the executor's not_found / invalid_arguments, not policy matters); nullptr for read-only tools.
const Policy* ViolatedPolicy(const Domain& d, const Op& op, const json& db, const json& args);

struct FaultConfig {
  double transient_rate = 0;  // probability that a call fails with "transient" (retry may succeed)
  double timeout_rate = 0;    // probability that a call fails with "timeout"
};

// A domain's tools bound to one database: what an environment steps through. Faults are drawn from
// the simulator's own seeded stream, so an episode replays identically from the same seed.
class ToolSimulator {
 public:
  ToolSimulator(std::shared_ptr<const Domain> d, json db, FaultConfig faults = {}, uint64_t seed = 0);
  CallResult Call(const std::string& tool, const json& args);
  const json& db() const { return db_; }
  const Domain& domain() const { return *d_; }
  int64_t calls() const { return calls_; }

 private:
  std::shared_ptr<const Domain> d_;
  json db_;
  FaultConfig faults_;
  Rng rng_;
  int64_t calls_ = 0;
};

}  // namespace k2::toolgen::synth
