// Schema: a compiled JSON Schema (draft-07 plus the 2020-12 keywords real MCP tools use) that validates
// tool-call arguments and structured results. Validation runs on Debian's valijson (nlohmann adapter).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace k2::toolgen {

namespace detail {
struct SchemaImpl;
}

// Supported keywords: type (unions; integer vs number), properties, required, additionalProperties,
// patternProperties, propertyNames, dependencies/dependentRequired/dependentSchemas, enum, const,
// items (schema or tuple), prefixItems, additionalItems, contains, min/max bounds (incl. exclusive, and
// the draft-04 boolean form), multipleOf, uniqueItems, pattern, format (lenient: unknown formats pass),
// anyOf/oneOf/allOf/not, if/then/else, local $ref into $defs/definitions or any JSON pointer, default
// (an annotation: never validated). Remote $ref is rejected at Compile.
//
// Thread safety: a compiled Schema is immutable; Validate may run concurrently from any threads.
class Schema {
 public:
  // Malformed schema -> InvalidArgument naming `where` and the schema pointer
  // ("tools[3].inputSchema/properties/x/type: expected a type name or an array of them").
  static Expected<std::shared_ptr<const Schema>> Compile(const json& schema, const std::string& where);

  // ok, or InvalidArgument whose message starts with the JSON pointer of the offending value:
  // "/items/0/qty: expected integer, got string" ("" pointer = root shown as "/"). When several
  // values fail, the deepest one is reported and the count of further errors is appended.
  Status Validate(const json& instance) const;

  const json& source() const;  // the schema as given to Compile

  ~Schema();
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;

 private:
  Schema();
  std::unique_ptr<detail::SchemaImpl> impl_;
};

// "/a/b~1c/0" for the tokens {"a", "b/c", "0"} (RFC 6901 escaping). Exposed for tests and callers.
std::string JsonPointer(const std::vector<std::string>& tokens);

}  // namespace k2::toolgen
