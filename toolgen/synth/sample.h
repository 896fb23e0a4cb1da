// Plausible tool-call arguments for a synthetic tool, drawn from its domain database: mostly
// existing ids and valid values, sometimes unknown ids, past dates or large amounts, so that sampled
// calls reach both the success and the error paths. Used by tests, the bench and `toolgen synth --verify`.
#pragma once

#include "core/json.h"
#include "core/rng.h"
#include "toolgen/synth/model.h"

namespace k2::toolgen::synth {

// Arguments that always conform to op.input_schema.
json SampleArguments(const Domain& d, const Op& op, const json& db, Rng& r);

}  // namespace k2::toolgen::synth
