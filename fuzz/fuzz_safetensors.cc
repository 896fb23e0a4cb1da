// libFuzzer harness: the safetensors reader (engine/safetensors: 8-byte header length, JSON header,
// shapes, dtypes, data offsets). Input: the whole file.
#include <cstddef>
#include <cstdint>

#include "engine/engine.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = k2::fuzz::WriteScratch("w.safetensors", std::string_view(reinterpret_cast<const char*>(data), size));
  auto f = k2::engine::ReadSafetensors(path);
  if (!f.ok()) return 0;
  for (const auto& [name, t] : f->tensors) {
    if (t.bytes.size() > (64u << 20)) continue;
    (void)k2::engine::StToDouble(t, name);
  }
  return 0;
}
