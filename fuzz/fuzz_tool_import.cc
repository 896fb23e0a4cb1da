// libFuzzer harness: tool import (toolgen/registry: corpus lines and tools/list dumps, schema compile,
// dedupe) into an in-memory store. Input: the file; its first byte picks the form (even: .jsonl corpus,
// odd: .json dump).
#include <cstddef>
#include <cstdint>

#include "core/store.h"
#include "fuzz/fuzz_util.h"
#include "toolgen/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string path = k2::fuzz::WriteScratch(data[0] % 2 == 0 ? "corpus.jsonl" : "dump.json", body);
  auto db = k2::Db::Open(":memory:");
  if (!db.ok()) __builtin_trap();
  if (!(*db)->Migrate(k2::CoreMigrations()).ok() || !(*db)->Migrate(k2::toolgen::RegistryMigrations()).ok())
    __builtin_trap();
  auto r = k2::toolgen::ImportTools(db->get(), path);
  if (r.ok()) (void)k2::toolgen::RegistryStats(db->get());
  return 0;
}
