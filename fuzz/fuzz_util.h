// Shared bits of the libFuzzer harnesses: a private scratch directory per process and byte-exact file
// writes, for the readers whose public entry point takes a path.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

namespace k2::fuzz {

// Removed at exit; one per process, so parallel fuzzing jobs (-jobs=N) do not share files. The path is
// never destroyed: the atexit hook that removes the directory runs after static destructors would.
inline const std::string& ScratchDir() {
  static const std::string* dir = [] {
    auto* d = new std::string("/tmp/k2gym_fuzz_XXXXXX");
    if (!mkdtemp(d->data())) std::abort();
    std::atexit([] { (void)!std::system(("rm -rf " + ScratchDir()).c_str()); });
    return d;
  }();
  return *dir;
}

inline std::string WriteScratch(const std::string& name, std::string_view bytes) {
  std::string p = ScratchDir() + "/" + name;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p;
}

// Splits at the first NUL: two documents in one input (schema + instance, ranks + tokenizer.json).
inline std::pair<std::string_view, std::string_view> SplitNul(std::string_view s) {
  size_t z = s.find('\0');
  if (z == std::string_view::npos) return {s, {}};
  return {s.substr(0, z), s.substr(z + 1)};
}

}  // namespace k2::fuzz
