// libFuzzer harness: the JSON entry point (ParseJson under limits) and what every reader does next with
// the value (dump, copy, compare, depth check). Input: one JSON document.
#include <cstddef>
#include <cstdint>

#include "core/json.h"
#include "core/json_limits.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto j = k2::ParseJson(text, "fuzz");
  if (!j.ok()) return 0;
  std::string canon = k2::CanonicalJson(*j);
  auto again = k2::ParseJson(canon, "canonical");
  if (!again.ok() || *again != *j) {
    // A parsed value must survive its own canonical dump (NaN cannot occur: out-of-range numbers are refused).
    if (!(again.ok() && again->dump() == j->dump())) __builtin_trap();
  }
  (void)k2::CheckJsonDepth(*j, 16, "fuzz");
  k2::json copy = *j;
  (void)k2::JsonTypeName(copy);
  return 0;
}
