// libFuzzer harness: tokenizer files (engine/text/tokenizer): tiktoken.model ranks and tokenizer.json,
// loaded from a directory as `--tokenizer DIR` does, then an encode/decode round trip. Input:
// tiktoken.model text, NUL, tokenizer.json text (absent: ranks only; empty ranks: 256 single bytes).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/text/tokenizer.h"
#include "fuzz/fuzz_util.h"

// The pre-tokenizer builds its Unicode class table once per process (seconds under ASan): build it
// before the first input, so libFuzzer's per-input timeout measures parsing only.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::vector<std::string> b;
  for (int i = 0; i < 256; ++i) b.push_back(std::string(1, static_cast<char>(i)));
  auto tok = k2::text::Tokenizer::CreateKimi(b);
  if (!tok.ok()) __builtin_trap();
  (void)tok->Encode("warm up \xc3\xa9 123");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  auto [ranks, meta] = k2::fuzz::SplitNul(all);
  bool has_meta = all.find('\0') != std::string_view::npos;
  (void)k2::text::ParseTiktokenRanks(ranks, "tiktoken.model");
  static const std::string bytes_model = [] {
    std::vector<std::string> b;
    for (int i = 0; i < 256; ++i) b.push_back(std::string(1, static_cast<char>(i)));
    return k2::text::FormatTiktokenRanks(b);
  }();
  const std::string dir = k2::fuzz::ScratchDir();
  k2::fuzz::WriteScratch("tiktoken.model", ranks.empty() ? std::string_view(bytes_model) : ranks);
  if (has_meta) k2::fuzz::WriteScratch("tokenizer.json", meta);
  else std::remove((dir + "/tokenizer.json").c_str());
  auto tok = k2::text::Tokenizer::Load(dir);
  if (!tok.ok()) return 0;
  static const std::string sample = "Hello, world! <|im_end|> 123 \xc3\xa9\xe4\xb8\xad\n\tfunctions.f:0";
  std::vector<int> ids = tok->Encode(sample);
  auto back = tok->Decode(ids);
  if (!back.ok() || *back != sample) __builtin_trap();  // documented: Encode is the exact inverse of Decode
  return 0;
}
