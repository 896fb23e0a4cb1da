// libFuzzer harness: JSON Schema compile + validate (toolgen/schema: our front end, valijson, PCRE2
// patterns). Input: schema JSON, NUL, instance JSON.
#include <cstddef>
#include <cstdint>

#include "core/json.h"
#include "fuzz/fuzz_util.h"
#include "toolgen/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [schema_text, instance_text] = k2::fuzz::SplitNul(std::string_view(reinterpret_cast<const char*>(data), size));
  auto schema = k2::ParseJson(schema_text, "schema");
  if (!schema.ok()) return 0;
  auto compiled = k2::toolgen::Schema::Compile(*schema, "fuzz");
  if (!compiled.ok()) return 0;
  auto instance = k2::ParseJson(instance_text, "instance");
  (void)(*compiled)->Validate(instance.ok() ? *instance : k2::json(std::string(instance_text)));
  return 0;
}
