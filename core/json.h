// JSON helpers shared by every module: parsing with located errors, canonical dumps, file I/O.
// nlohmann::json is the one JSON type of the project.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace k2 {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// Parses `text`; on failure the message names `source` (a file name or "request body"), the line and
// column, and what the parser expected. Never throws.
Expected<json> ParseJson(std::string_view text, std::string_view source);
Expected<json> ReadJsonFile(const std::string& path);
// JSON Lines: one value per non-empty line; an error names source:line.
Expected<std::vector<json>> ReadJsonLines(const std::string& path);

// Canonical form: object keys sorted, compact separators (',' ':'), UTF-8 kept as is.
// nlohmann::json objects are std::map-ordered, so dump() is already sorted.
std::string CanonicalJson(const json& j);

// Reads a whole file; IoError names the path and errno text.
Expected<std::string> ReadFile(const std::string& path);
// Writes atomically: temp file in the same directory, fsync, rename. Never leaves a partial file.
Status WriteFileAtomic(const std::string& path, std::string_view data);

// The JSON type name as JSON Schema spells it ("integer" for integral numbers).
const char* JsonTypeName(const json& j);

}  // namespace k2
