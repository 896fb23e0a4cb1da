// Byte-level BPE tokenizer compatible with tiktoken rank files (Kimi-K2's tiktoken.model, with the ids
// of tokenizer_config.json) and with Hugging Face tokenizer.json byte-level BPE: the public API of
// engine/text for encoding, decoding, special tokens and the on-disk formats.
//
// Ids: [0, num_ranks) are BPE tokens (each a byte string; every single byte is one), then a block of
// num_reserved special tokens [num_ranks, num_ranks + num_reserved): Kimi-K2's layout by default
// (<|im_end|> = base + 2, ...), or the ids a checkpoint's files give; unnamed slots are
// "<|reserved_token_ID|>". tiktoken: the merge of two parts is ranked by the rank (= id) of the result;
// tokenizer.json: by the position of the pair in "merges".
//
// Thread safety: a Tokenizer is immutable after creation; every const method may run concurrently.
// Failure: loading and decoding return Status; encoding cannot fail (any byte string encodes).
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "engine/text/pretokenize.h"

namespace k2::text {

inline constexpr int kKimiNumReservedSpecial = 256;

// Kimi-K2's named special tokens and their offsets from the first special id (tokenizer_config.json):
// [BOS] +0, [EOS] +1, <|im_end|> +2, <|im_user|> +3, <|im_assistant|> +4, <|start_header_id|> +6,
// <|end_header_id|> +7, [EOT] +9, <|im_system|> +10, <|tool_calls_section_begin|> +11,
// <|tool_calls_section_end|> +12, <|tool_call_begin|> +13, <|tool_call_argument_begin|> +14,
// <|tool_call_end|> +15, <|im_middle|> +17, [UNK] +254, [PAD] +255.
std::vector<std::pair<std::string, int>> KimiSpecialTokens(int base);

// tiktoken rank file: one "base64(token bytes) rank" per line. Ranks must be 0..n-1, each once, tokens
// distinct. Errors name `source`:line and what was expected.
Expected<std::vector<std::string>> ParseTiktokenRanks(std::string_view text, const std::string& source);
std::string FormatTiktokenRanks(const std::vector<std::string>& tokens);
std::string Base64Encode(std::string_view bytes);
// nullopt when `s` is not canonical padded base64.
std::optional<std::string> Base64Decode(std::string_view s);

class Tokenizer {
 public:
  // `tokens[r]` is the byte string of rank r. `specials` maps names to ids in
  // [tokens.size(), tokens.size() + num_reserved); unnamed ids get "<|reserved_token_ID|>".
  // InvalidArgument when a single byte has no token (arbitrary bytes could not encode), tokens repeat,
  // a special id is out of its block or the pattern does not compile.
  static Expected<Tokenizer> Create(std::vector<std::string> tokens, const std::string& pattern,
                                    const std::vector<std::pair<std::string, int>>& specials,
                                    int num_reserved = kKimiNumReservedSpecial);
  // Kimi-K2's pattern and special-token layout over the given ranks.
  static Expected<Tokenizer> CreateKimi(std::vector<std::string> tokens);

  // Loads a tokenizer directory:
  //  - DIR/tiktoken.model with k2gym's DIR/tokenizer.json ({"format": "tiktoken", "pattern",
  //    "special_tokens": {name: id}, "num_reserved_special_tokens"}), as Save writes it;
  //  - DIR/tiktoken.model with DIR/tokenizer_config.json (a Kimi-K2 / Moonlight checkpoint): Kimi-K2's
  //    pattern, special ids from "added_tokens_decoder" ({"163584": {"content": "[BOS]"}, ...}) in a
  //    block of max(256, highest id - ranks + 1) after the ranks, as tokenization_kimi.py builds it;
  //  - DIR/tiktoken.model alone: Kimi-K2's pattern and special layout;
  //  - DIR/tokenizer.json of Hugging Face tokenizers (no tiktoken.model): see FromHfTokenizerJson.
  static Expected<Tokenizer> Load(const std::string& dir);
  // A Hugging Face tokenizer.json with a byte-level BPE model: "model": {"type": "BPE", "vocab" (ids
  // 0..V-1 in GPT-2's byte-to-unicode spelling), "merges" ("a b" strings or [a, b] pairs)}; pre-tokenizer
  // ByteLevel (its GPT-2 regex when use_regex) and/or Split regexes with behavior "Isolated", alone or in
  // a Sequence; normalizer null or empty. "added_tokens" become special tokens by content and id (ids
  // at or after V form the special block; one whose content is already a vocab token names that id).
  // Anything else is InvalidArgument naming `source` and the field.
  static Expected<Tokenizer> FromHfTokenizerJson(const json& j, const std::string& source);
  // Writes DIR/tiktoken.model and DIR/tokenizer.json atomically (creates DIR); a tokenizer read from a
  // Hugging Face tokenizer.json writes that file back unchanged.
  Status Save(const std::string& dir) const;
  // "tiktoken" or "hf" (loaded from a Hugging Face tokenizer.json).
  const std::string& format() const { return format_; }

  // Encodes ordinary text: special-token strings in it are plain bytes (no prompt injection through
  // "<|im_end|>" in user text). Exact inverse of Decode for every byte string.
  std::vector<int> Encode(std::string_view text) const;
  void Encode(std::string_view text, std::vector<int>* out) const;
  // Also recognizes special-token strings (all of them, longest first) and emits their ids.
  std::vector<int> EncodeWithSpecial(std::string_view text) const;
  // The slow, obviously-correct reference of Encode: pieces from PCRE2 (never the hand-written
  // splitter), then repeated merge of the adjacent pair with the lowest rank (leftmost on ties) on a
  // vector of strings. Tests compare the two.
  std::vector<int> EncodeReference(std::string_view text) const;
  // BPE of one piece (no pre-tokenization), fast and reference; exposed for tests and the benchmark.
  void EncodePiece(std::string_view piece, std::vector<int>* out) const;
  void EncodePieceReference(std::string_view piece, std::vector<int>* out) const;

  // Bytes of the ids (special tokens as their names). InvalidArgument naming the position of an id
  // outside [0, vocab_size).
  Expected<std::string> Decode(std::span<const int> ids) const;
  // Bytes of one id; the id must be in range (programmer error otherwise).
  const std::string& TokenBytes(int id) const;

  // -1 when `name` is not a special token.
  int SpecialId(std::string_view name) const;
  bool IsSpecial(int id) const { return id >= num_ranks() && id < vocab_size(); }
  // The rank of a byte string, -1 when it is not a BPE token.
  int Rank(std::string_view bytes) const;

  int num_ranks() const { return static_cast<int>(tokens_.size()); }
  int num_reserved() const { return num_reserved_; }
  int vocab_size() const { return num_ranks() + num_reserved_; }
  const Pretokenizer& pretokenizer() const { return pre_; }
  const std::vector<std::pair<std::string, int>>& named_specials() const { return named_specials_; }

  // How RenderChat declares tools to a model using this tokenizer: "full" (the OpenAI tool objects as
  // given, Kimi-K2's layout) or "compact" (CompactToolDeclarations: names, first sentence of each
  // description, parameter types/enums/required — for small-context models). Like HF's chat_template
  // in tokenizer_config.json it travels with the tokenizer (tokenizer.json "chat_template"), so SFT,
  // rollouts, serving and eval render a checkpoint's prompts the same way.
  const std::string& tool_declarations() const { return tool_declarations_; }
  Status set_tool_declarations(const std::string& mode);

 private:
  struct SvHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  void MergeSmall(std::string_view piece, std::vector<int>* out) const;
  void MergeHeap(std::string_view piece, std::vector<int>* out) const;

  static Expected<Tokenizer> LoadKimiConfig(std::vector<std::string> tokens, const std::string& config_path);
  Status BuildRanks(std::vector<std::string> tokens);
  void BuildTiktokenPairs();
  Status BuildSpecials(const std::vector<std::pair<std::string, int>>& specials, int num_reserved, bool allow_aliases);
  void SplitAll(std::string_view text, bool reference, std::vector<std::string_view>* out) const;

  std::vector<std::string> tokens_;    // id -> bytes
  std::vector<std::string> specials_;  // id - num_ranks -> name
  std::vector<std::pair<std::string, int>> named_specials_;  // as given (for Save)
  std::string tool_declarations_ = "full";
  std::unordered_map<std::string, int, SvHash, std::equal_to<>> ranks_;
  // Fast path of the merge: (left id, right id) -> (priority, id of the merged token). tiktoken: every
  // pair of tokens whose concatenation is a token (all two-token splits of every token), priority = the
  // result's rank. tokenizer.json: the merges list, priority = its index. Open addressing, linear
  // probing; keys are never 0 because a pair of ids is stored + 1.
  struct PairVal {
    int prio = -1;  // -1: not a merge
    int id = -1;
  };
  struct PairTable {
    std::vector<uint64_t> keys;
    std::vector<PairVal> vals;
    uint64_t mask = 0;
    void Build(size_t n);
    void Put(int a, int b, PairVal v);
    PairVal Get(int a, int b) const {
      uint64_t k = Key(a, b);
      for (uint64_t i = Slot(k);; i = (i + 1) & mask) {
        if (keys[i] == k) return vals[i];
        if (keys[i] == 0) return PairVal{};
      }
    }
    static uint64_t Key(int a, int b) { return ((uint64_t(uint32_t(a)) << 32) | uint32_t(b)) + 1; }
    uint64_t Slot(uint64_t k) const { return (k * 0x9E3779B97F4A7C15ull) >> 20 & mask; }
  };
  PairTable pairs_;
  std::array<int, 256> byte_ids_{};  // rank of each single byte
  std::unordered_map<std::string, int, SvHash, std::equal_to<>> special_ids_;
  std::vector<std::pair<std::string, int>> specials_by_length_;  // (name, id), longest first (EncodeWithSpecial)
  std::array<bool, 256> special_first_byte_{};          // bytes a special name can start with
  int num_reserved_ = 0;
  Pretokenizer pre_;
  std::vector<Pretokenizer> more_pre_;  // tokenizer.json: later Split stages, each on the previous pieces
  bool piece_lookup_ = true;            // tiktoken: a piece that is a token is that token
  // tokenizer.json only: merge priority by pair of byte strings (the reference merge's lookup).
  std::unordered_map<std::string, int> merge_prio_;
  std::string format_ = "tiktoken";
  std::string hf_json_;  // the tokenizer.json text, for Save
};

}  // namespace k2::text
