// The limits every JSON reader applies to untrusted input (files, request bodies, server replies, model
// output), and the limit-taking forms of the entry points in core/json.h.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/status.h"

namespace k2 {

// Depth bounds every recursive walk done later on a parsed value (dump, copy, ==, schema validation,
// config reading), so a document over it is refused while parsing, before any recursion happens. Numbers
// outside the double range (1e999) are always refused instead of becoming infinities.
struct JsonLimits {
  size_t max_depth = 512;              // nested arrays/objects; the root container is depth 1
  size_t max_bytes = size_t{1} << 30;  // document size
};

// ParseJson(text, source) of core/json.h is this with the default limits. Never throws. On failure
// InvalidArgument "<source>:<line>:<col>: invalid JSON: <what>", with " (at <JSON pointer>)" when the
// error lies inside a value: "cfg.json:1:35: invalid JSON: number 1e999 is outside the double range (at
// /pretrain/optimizer/lr)". Parsing is iterative (nlohmann's SAX parser feeding a depth-counting DOM
// builder) and nlohmann >= 3.10 destroys values iteratively, so neither depth nor size reaches the stack.
Expected<json> ParseJson(std::string_view text, std::string_view source, const JsonLimits& limits);
// ReadFile + ParseJson; a file larger than limits.max_bytes is refused before it is read.
Expected<json> ReadJsonFile(const std::string& path, const JsonLimits& limits);

// For values built in memory rather than parsed: InvalidArgument "<what>: nesting deeper than N levels
// (at <pointer>)" when `j` nests deeper than max_depth. Iterative, so it is safe on any value.
Status CheckJsonDepth(const json& j, size_t max_depth, std::string_view what);

}  // namespace k2
