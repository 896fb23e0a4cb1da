// ToolSpec: an MCP Tool (name, title, description, inputSchema, outputSchema, annotations) plus where
// it came from. Strict parsing from the MCP JSON shape, and the two JSON renderings callers need.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace k2::toolgen {

class Schema;

// A plain value type; copying is cheap enough for registries of a few thousand tools.
struct ToolSpec {
  std::string name, title, description;
  json input_schema;                  // JSON Schema, root type object
  std::optional<json> output_schema;  // JSON Schema, root type object, when the tool declares one
  json annotations = json::object();  // readOnlyHint, destructiveHint, idempotentHint, openWorldHint (+ title)
  std::string provenance;             // "mcp:<server>" or "synthetic:<domain path>"
};

// Strict MCP Tool parsing; `where` prefixes errors ("tools[3].name: expected 1-128 chars without spaces
// or commas"). Both schemas are compiled here, so a malformed schema is reported at registration
// ("tools[3].inputSchema/properties/x/type: ..."), never at call time. Keys the MCP spec defines but
// k2gym does not use (_meta, icons, execution) are accepted and dropped; any other key is an error.
Expected<ToolSpec> ParseToolSpec(const json& tool, const std::string& where, const std::string& provenance);

// Checks a tool name alone (same rule as ParseToolSpec): 1-128 chars, no whitespace, commas or control chars.
Status ValidateToolName(const std::string& name, const std::string& where);

json ToJson(const ToolSpec&);        // the MCP Tool object (no provenance); empty title/description omitted
json ToOpenAITool(const ToolSpec&);  // {"type":"function","function":{"name","description","parameters"}}

// A ToolSpec with its schemas compiled once, shared read-only between threads.
struct CompiledTool {
  ToolSpec spec;
  std::shared_ptr<const Schema> input;
  std::shared_ptr<const Schema> output;  // null when the tool has no outputSchema
};
Expected<CompiledTool> CompileTool(ToolSpec spec, const std::string& where);

// Names must be unique within one environment: the error names both positions of a duplicate.
Status CheckUniqueNames(const std::vector<ToolSpec>& tools, const std::string& where);

}  // namespace k2::toolgen
