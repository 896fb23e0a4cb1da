// Tokenizer directories as checkpoints ship them, written from the small trained tokenizer: a
// Kimi-K2-style directory (tiktoken.model of 163,584 ranks + tokenizer_config.json added tokens at
// 163584+) and a Hugging Face tokenizer.json (byte-level BPE with merges, ids in another order than
// the ranks, added tokens), each with special-token ids of its own.
#pragma once

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/rng.h"
#include "engine/text/pretokenize.h"
#include "engine/text/tokenizer.h"
#include "tests/engine/text/test_tokenizer.h"

namespace k2::text::testing {

inline constexpr int kKimiRanks = 163584;  // Kimi-K2's tiktoken.model

// Kimi-K2's tokenizer_config.json added tokens, and a fine-tune's variant that moved <|im_end|> and
// <|im_middle|> and added a token after the 256-slot block.
inline std::vector<std::pair<int, std::string>> KimiAddedTokens(bool finetuned) {
  const int b = kKimiRanks;
  std::vector<std::pair<int, std::string>> t = {
      {b + 0, "[BOS]"},  {b + 1, "[EOS]"}, {b + 2, "<|im_end|>"}, {b + 3, "<|im_user|>"}, {b + 4, "<|im_assistant|>"},
      {b + 6, "<|start_header_id|>"}, {b + 7, "<|end_header_id|>"}, {b + 9, "[EOT]"}, {b + 10, "<|im_system|>"},
      {b + 11, "<|tool_calls_section_begin|>"}, {b + 12, "<|tool_calls_section_end|>"}, {b + 13, "<|tool_call_begin|>"},
      {b + 14, "<|tool_call_argument_begin|>"}, {b + 15, "<|tool_call_end|>"}, {b + 17, "<|im_middle|>"},
      {b + 254, "[UNK]"}, {b + 255, "[PAD]"}};
  if (finetuned) {
    for (auto& [id, name] : t) {
      if (name == "<|im_end|>") id = b + 300;
      if (name == "<|im_middle|>") id = b + 40;
    }
    t.emplace_back(b + 2, "<|think|>");
  }
  return t;
}

// The small tokenizer's ranks padded with filler tokens (bytes 0xF8..0xFA, never in valid UTF-8) to
// Kimi-K2's 163,584 ranks.
inline std::vector<std::string> KimiSizedRanks() {
  const Tokenizer& small = SmallTokenizer();
  std::vector<std::string> ranks;
  for (int r = 0; r < small.num_ranks(); ++r) ranks.push_back(small.TokenBytes(r));
  for (int lead = 0xf8; static_cast<int>(ranks.size()) < kKimiRanks; ++lead)
    for (int x = 0; x < 256 && static_cast<int>(ranks.size()) < kKimiRanks; ++x)
      for (int y = 0; y < 256 && static_cast<int>(ranks.size()) < kKimiRanks; ++y)
        ranks.push_back(std::string{static_cast<char>(lead), static_cast<char>(x), static_cast<char>(y)});
  return ranks;
}

inline void WriteKimiStyleDir(const std::string& dir, bool finetuned) {
  std::filesystem::create_directories(dir);
  K2_CHECK(WriteFileAtomic(dir + "/tiktoken.model", FormatTiktokenRanks(KimiSizedRanks())).ok());
  json added = json::object();
  for (auto& [id, name] : KimiAddedTokens(finetuned))
    added[std::to_string(id)] = {{"content", name}, {"lstrip", false}, {"normalized", false},
                                 {"rstrip", false}, {"single_word", false}, {"special", true}};
  json cfg = {{"added_tokens_decoder", added},
              {"bos_token", "[BOS]"},
              {"eos_token", "[EOS]"},
              {"pad_token", "[PAD]"},
              {"unk_token", "[UNK]"},
              {"model_max_length", 1048576},
              {"tokenizer_class", "TikTokenTokenizer"},
              {"auto_map", {{"AutoTokenizer", {"tokenization_kimi.TikTokenTokenizer", nullptr}}}}};
  K2_CHECK(WriteFileAtomic(dir + "/tokenizer_config.json", cfg.dump(2)).ok());
}

// GPT-2's byte -> unicode spelling, written out here independently of the loader.
inline std::string ByteLevelSpell(const std::string& bytes) {
  std::vector<int> bs;
  for (int b = 33; b <= 126; ++b) bs.push_back(b);
  for (int b = 161; b <= 172; ++b) bs.push_back(b);
  for (int b = 174; b <= 255; ++b) bs.push_back(b);
  std::map<int, int> cp;
  for (int b : bs) cp[b] = b;
  int n = 0;
  for (int b = 0; b < 256; ++b)
    if (!cp.count(b)) cp[b] = 256 + n++;
  std::string out;
  for (unsigned char c : bytes) {
    const int u = cp[c];
    if (u < 0x80) {
      out.push_back(static_cast<char>(u));
    } else {
      out.push_back(static_cast<char>(0xc0 | (u >> 6)));
      out.push_back(static_cast<char>(0x80 | (u & 0x3f)));
    }
  }
  return out;
}

// tokenizer.json of the small tokenizer: vocab ids are a seeded permutation of the ranks (so merge
// priority and id order differ), merges in rank order (each token's two-token splits, the usual
// tiktoken -> tokenizers conversion), Kimi's pattern as a Split + ByteLevel(use_regex=false), added
// tokens at ids after the vocab in a layout of its own. `rank_to_id` receives the permutation.
inline json HfTokenizerJson(std::vector<int>* rank_to_id, bool pair_merges = false) {
  const Tokenizer& small = SmallTokenizer();
  const int R = small.num_ranks();
  std::vector<int> perm(R);
  for (int i = 0; i < R; ++i) perm[i] = i;
  Rng rng(5);
  for (int i = R - 1; i > 0; --i) std::swap(perm[i], perm[rng.Below(static_cast<uint64_t>(i + 1))]);
  json vocab = json::object();
  for (int r = 0; r < R; ++r) vocab[ByteLevelSpell(small.TokenBytes(r))] = perm[r];
  json merges = json::array();
  for (int r = 0; r < R; ++r) {
    const std::string& t = small.TokenBytes(r);
    std::vector<std::pair<int, int>> splits;
    for (size_t k = 1; k < t.size(); ++k) {
      int a = small.Rank(t.substr(0, k)), b = small.Rank(t.substr(k));
      if (a >= 0 && b >= 0) splits.emplace_back(a, b);
    }
    std::sort(splits.begin(), splits.end());
    for (auto [a, b] : splits) {
      std::string l = ByteLevelSpell(small.TokenBytes(a)), rr = ByteLevelSpell(small.TokenBytes(b));
      if (pair_merges) merges.push_back({l, rr});
      else merges.push_back(l + " " + rr);
    }
  }
  json added = json::array();
  int k = 0;
  for (const char* name : {"<|im_system|>", "<|im_user|>", "<|im_assistant|>", "<|im_middle|>", "<|im_end|>",
                           "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>", "<|tool_call_begin|>",
                           "<|tool_call_argument_begin|>", "<|tool_call_end|>", "[BOS]", "[EOS]"})
    added.push_back({{"id", R + 3 * k++}, {"content", name}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  if (rank_to_id) *rank_to_id = perm;
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"Regex", kKimiPattern}}}, {"behavior", "Isolated"}, {"invert", false}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
            {"vocab", vocab}, {"merges", merges}}}};
}

}  // namespace k2::text::testing
