// Domain databases: the JSON state that synthetic tools read and write, generated from a seed, and the
// invariant checker that is the slow reference for what the executor must preserve.
//
// Layout: {"today": "YYYY-MM-DD", "next_id": {<plural>: n}, <actor plural>: {id: record}, <item plural>:
// {...}, <record plural>: {...}}. Money in units with 2 decimals; dates ISO. Pure functions, thread-safe.
#pragma once

#include <cstdint>

#include "core/json.h"
#include "core/status.h"
#include "toolgen/synth/model.h"

namespace k2::toolgen::synth {

struct DbSize {
  int actors = 6;
  int items = 6;
  int records = 14;
};

// A database that satisfies CheckInvariants: every id referenced exists, capacities hold, active
// records respect no-double-booking and max-active, balances are non-negative.
json GenerateDatabase(const Domain& d, uint64_t seed, const DbSize& size = {});

// The default value a field takes when a create call leaves it out.
json DefaultValue(const Domain& d, const Field& f, const json& record_so_far);

// Independent checks of a database state (reference for the executor): shapes of every field,
// referential integrity, lifecycle states, capacity per item and date, balances >= 0, and the
// state-level policies (no double booking, max active). The error names the collection, id and field.
Status CheckInvariants(const Domain& d, const json& db);

// SHA-256 of the canonical JSON (sorted keys, compact): what task replay compares.
std::string StateHash(const json& db);

}  // namespace k2::toolgen::synth
