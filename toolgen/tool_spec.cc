// ToolSpec parsing (the MCP Tool object, strictly) and its JSON renderings.
// Schemas are compiled during parsing so that malformed ones fail at registration time.
#include "toolgen/tool_spec.h"

#include <map>

#include "toolgen/schema.h"

namespace k2::toolgen {
namespace {

Status CheckSchemaRoot(const json& s, const std::string& where) {
  if (!s.is_object()) return InvalidArgument(where + ": expected a JSON Schema object, got " + JsonTypeName(s));
  auto t = s.find("type");
  if (t == s.end() || !t->is_string() || *t != "object")
    return InvalidArgument(where + "/type: expected \"object\" (MCP requires an object root), got " +
                           (t == s.end() ? std::string("nothing") : t->dump()));
  return Schema::Compile(s, where).status();
}

}  // namespace

Status ValidateToolName(const std::string& name, const std::string& where) {
  bool bad = name.empty() || name.size() > 128;
  for (unsigned char c : name)
    if (c <= 0x20 || c == ',' || c == 0x7f) bad = true;
  if (bad) return InvalidArgument(where + ": expected 1-128 chars without spaces or commas, got " + json(name).dump());
  return Status::Ok();
}

Expected<ToolSpec> ParseToolSpec(const json& tool, const std::string& where, const std::string& provenance) {
  if (!tool.is_object()) return InvalidArgument(where + ": expected an MCP Tool object, got " + JsonTypeName(tool));
  static const std::map<std::string, int> kKnown = {
      {"name", 1}, {"title", 1}, {"description", 1}, {"inputSchema", 1}, {"outputSchema", 1},
      {"annotations", 1}, {"_meta", 0}, {"icons", 0}, {"execution", 0}};
  for (auto& [k, v] : tool.items())
    if (!kKnown.count(k)) return InvalidArgument(where + "." + k + ": unknown key in an MCP Tool");
  ToolSpec spec;
  spec.provenance = provenance;
  auto name = tool.find("name");
  if (name == tool.end() || !name->is_string())
    return InvalidArgument(where + ".name: expected a string (1-128 chars without spaces or commas)");
  spec.name = name->get<std::string>();
  K2_RETURN_IF_ERROR(ValidateToolName(spec.name, where + ".name"));
  for (auto [key, field] : {std::pair{"title", &spec.title}, std::pair{"description", &spec.description}}) {
    auto it = tool.find(key);
    if (it == tool.end() || it->is_null()) continue;  // null is how some servers say "absent"
    if (!it->is_string()) return InvalidArgument(where + "." + key + ": expected a string, got " + JsonTypeName(*it));
    *field = it->get<std::string>();
  }
  auto in = tool.find("inputSchema");
  if (in == tool.end()) return InvalidArgument(where + ".inputSchema: missing (MCP requires it)");
  K2_RETURN_IF_ERROR(CheckSchemaRoot(*in, where + ".inputSchema"));
  spec.input_schema = *in;
  auto out = tool.find("outputSchema");
  if (out != tool.end() && !out->is_null()) {
    K2_RETURN_IF_ERROR(CheckSchemaRoot(*out, where + ".outputSchema"));
    spec.output_schema = *out;
  }
  auto ann = tool.find("annotations");
  if (ann != tool.end() && !ann->is_null()) {
    if (!ann->is_object()) return InvalidArgument(where + ".annotations: expected an object, got " + JsonTypeName(*ann));
    for (auto& [k, v] : ann->items()) {
      if (k == "title") {
        if (!v.is_string()) return InvalidArgument(where + ".annotations.title: expected a string");
      } else if (k == "readOnlyHint" || k == "destructiveHint" || k == "idempotentHint" || k == "openWorldHint") {
        if (!v.is_boolean()) return InvalidArgument(where + ".annotations." + k + ": expected a boolean, got " + JsonTypeName(v));
      } else {
        return InvalidArgument(where + ".annotations." + k +
                               ": unknown annotation (expected title, readOnlyHint, destructiveHint, idempotentHint, openWorldHint)");
      }
    }
    spec.annotations = *ann;
  }
  return spec;
}

json ToJson(const ToolSpec& t) {
  json j = {{"name", t.name}, {"inputSchema", t.input_schema}};
  if (!t.title.empty()) j["title"] = t.title;
  if (!t.description.empty()) j["description"] = t.description;
  if (t.output_schema) j["outputSchema"] = *t.output_schema;
  if (!t.annotations.empty()) j["annotations"] = t.annotations;
  return j;
}

json ToOpenAITool(const ToolSpec& t) {
  return {{"type", "function"},
          {"function", {{"name", t.name}, {"description", t.description}, {"parameters", t.input_schema}}}};
}

Expected<CompiledTool> CompileTool(ToolSpec spec, const std::string& where) {
  CompiledTool out;
  K2_ASSIGN_OR_RETURN(out.input, Schema::Compile(spec.input_schema, where + ".inputSchema"));
  if (spec.output_schema) {
    K2_ASSIGN_OR_RETURN(out.output, Schema::Compile(*spec.output_schema, where + ".outputSchema"));
  }
  out.spec = std::move(spec);
  return out;
}

Status CheckUniqueNames(const std::vector<ToolSpec>& tools, const std::string& where) {
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < tools.size(); ++i) {
    auto [it, fresh] = seen.emplace(tools[i].name, i);
    if (!fresh)
      return AlreadyExists(where + "[" + std::to_string(i) + "].name: duplicate tool name " + json(tools[i].name).dump() +
                           " (first at " + where + "[" + std::to_string(it->second) + "])");
  }
  return Status::Ok();
}

}  // namespace k2::toolgen
