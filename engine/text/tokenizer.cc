// Byte-level BPE: tiktoken rank files, the fast merge (array scan for short pieces, linked list +
// min-heap for long ones), its string-vector reference, special tokens, load/save.
#include "engine/text/tokenizer.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <queue>
#include <tuple>

#include "core/json.h"

namespace k2::text {

std::vector<std::pair<std::string, int>> KimiSpecialTokens(int base) {
  return {{"[BOS]", base + 0},
          {"[EOS]", base + 1},
          {"<|im_end|>", base + 2},
          {"<|im_user|>", base + 3},
          {"<|im_assistant|>", base + 4},
          {"<|start_header_id|>", base + 6},
          {"<|end_header_id|>", base + 7},
          {"[EOT]", base + 9},
          {"<|im_system|>", base + 10},
          {"<|tool_calls_section_begin|>", base + 11},
          {"<|tool_calls_section_end|>", base + 12},
          {"<|tool_call_begin|>", base + 13},
          {"<|tool_call_argument_begin|>", base + 14},
          {"<|tool_call_end|>", base + 15},
          {"<|im_middle|>", base + 17},
          {"[UNK]", base + 254},
          {"[PAD]", base + 255}};
}

// ---- base64 and rank files -------------------------------------------------------------------

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], kB64[v & 63]};
  }
  if (in.size() - i == 1) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], '=', '='};
  } else if (in.size() - i == 2) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kB64[v >> 18], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], '='};
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(s.size() / 4 * 3);
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i + k];
      if (c == '=' && i + 4 == s.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad > 0) return std::nullopt;  // data after padding
        v[k] = B64Value(c);
        if (v[k] < 0) return std::nullopt;
      }
    }
    uint32_t x = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(char(x >> 16));
    if (pad < 2) out.push_back(char((x >> 8) & 0xFF));
    if (pad < 1) out.push_back(char(x & 0xFF));
  }
  // Canonical only: re-encoding must give the same text (no stray bits in the padding).
  if (Base64Encode(out) != s) return std::nullopt;
  return out;
}

Expected<std::vector<std::string>> ParseTiktokenRanks(std::string_view text, const std::string& source) {
  std::vector<std::string> tokens;
  std::vector<bool> seen;
  size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view ln = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line;
    if (!ln.empty() && ln.back() == '\r') ln.remove_suffix(1);
    if (ln.empty()) continue;
    std::string where = source + ":" + std::to_string(line);
    size_t sp = ln.find(' ');
    if (sp == std::string_view::npos || ln.find(' ', sp + 1) != std::string_view::npos)
      return InvalidArgument(where + ": expected \"<base64 token> <rank>\"");
    auto bytes = Base64Decode(ln.substr(0, sp));
    if (!bytes) return InvalidArgument(where + ": token \"" + std::string(ln.substr(0, sp)) + "\" is not base64");
    std::string_view rs = ln.substr(sp + 1);
    int64_t rank = 0;
    if (rs.empty() || rs.size() > 9) return InvalidArgument(where + ": rank \"" + std::string(rs) + "\": expected an integer in [0, 1e9)");
    for (char c : rs) {
      if (c < '0' || c > '9') return InvalidArgument(where + ": rank \"" + std::string(rs) + "\": expected a non-negative integer");
      rank = rank * 10 + (c - '0');
    }
    if (rank >= static_cast<int64_t>(tokens.size())) {
      if (rank > static_cast<int64_t>(text.size()))  // more ranks than bytes in the file: not dense
        return InvalidArgument(where + ": rank " + std::to_string(rank) + " leaves gaps: expected ranks 0..n-1");
      tokens.resize(rank + 1);
      seen.resize(rank + 1, false);
    }
    if (seen[rank]) return InvalidArgument(where + ": rank " + std::to_string(rank) + " appears twice");
    seen[rank] = true;
    tokens[rank] = std::move(*bytes);
  }
  for (size_t r = 0; r < seen.size(); ++r)
    if (!seen[r]) return InvalidArgument(source + ": rank " + std::to_string(r) + " is missing: expected ranks 0..n-1");
  if (tokens.empty()) return InvalidArgument(source + ": no ranks: expected \"<base64 token> <rank>\" lines");
  return tokens;
}

std::string FormatTiktokenRanks(const std::vector<std::string>& tokens) {
  std::string out;
  for (size_t r = 0; r < tokens.size(); ++r) out += Base64Encode(tokens[r]) + " " + std::to_string(r) + "\n";
  return out;
}

// ---- construction, load, save ---------------------------------------------------------------

Expected<Tokenizer> Tokenizer::Create(std::vector<std::string> tokens, const std::string& pattern,
                                      const std::vector<std::pair<std::string, int>>& specials,
                                      int num_reserved) {
  Tokenizer t;
  K2_ASSIGN_OR_RETURN(t.pre_, Pretokenizer::Create(pattern));
  if (num_reserved < 0) return InvalidArgument("num_reserved_special_tokens: expected >= 0");
  t.ranks_.reserve(tokens.size() * 2);
  for (size_t r = 0; r < tokens.size(); ++r) {
    if (tokens[r].empty()) return InvalidArgument("rank " + std::to_string(r) + ": empty token");
    if (!t.ranks_.emplace(tokens[r], static_cast<int>(r)).second)
      return InvalidArgument("rank " + std::to_string(r) + ": token \"" + Base64Encode(tokens[r]) +
                             "\" (base64) repeats rank " + std::to_string(t.ranks_.find(tokens[r])->second));
  }
  for (int b = 0; b < 256; ++b)
    if (!t.ranks_.count(std::string(1, char(b))))
      return InvalidArgument("ranks: byte 0x" + std::string(1, "0123456789abcdef"[b >> 4]) + "0123456789abcdef"[b & 15] +
                             " has no token: a byte-level BPE needs all 256 single bytes");
  t.tokens_ = std::move(tokens);
  for (int b = 0; b < 256; ++b) t.byte_ids_[b] = t.Rank(std::string(1, char(b)));
  size_t npairs = 0;
  for (auto& tk : t.tokens_) npairs += tk.size() - 1;
  t.pairs_.Build(npairs);
  for (size_t r = 0; r < t.tokens_.size(); ++r) {
    std::string_view tk = t.tokens_[r];
    for (size_t k = 1; k < tk.size(); ++k) {
      int a = t.Rank(tk.substr(0, k)), b = t.Rank(tk.substr(k));
      if (a >= 0 && b >= 0) t.pairs_.Put(a, b, static_cast<int>(r));
    }
  }
  t.num_reserved_ = num_reserved;
  int base = t.num_ranks();
  t.specials_.assign(num_reserved, "");
  for (auto& [name, id] : specials) {
    if (id < base || id >= base + num_reserved)
      return InvalidArgument("special_tokens: \"" + name + "\" has id " + std::to_string(id) + ": expected an id in [" +
                             std::to_string(base) + ", " + std::to_string(base + num_reserved) + ")");
    if (name.empty()) return InvalidArgument("special_tokens: empty name for id " + std::to_string(id));
    if (!t.specials_[id - base].empty())
      return InvalidArgument("special_tokens: id " + std::to_string(id) + " is given twice");
    t.specials_[id - base] = name;
  }
  for (int k = 0; k < num_reserved; ++k)
    if (t.specials_[k].empty()) t.specials_[k] = "<|reserved_token_" + std::to_string(base + k) + "|>";
  for (int k = 0; k < num_reserved; ++k)
    if (!t.special_ids_.emplace(t.specials_[k], base + k).second)
      return InvalidArgument("special_tokens: name \"" + t.specials_[k] + "\" is used twice");
  t.named_specials_ = specials;
  for (int k = 0; k < num_reserved; ++k) {
    t.specials_by_length_.push_back(k);
    t.special_first_byte_[static_cast<uint8_t>(t.specials_[k][0])] = true;
  }
  std::stable_sort(t.specials_by_length_.begin(), t.specials_by_length_.end(),
                   [&t](int a, int b) { return t.specials_[a].size() > t.specials_[b].size(); });
  return t;
}

Expected<Tokenizer> Tokenizer::CreateKimi(std::vector<std::string> tokens) {
  int base = static_cast<int>(tokens.size());
  return Create(std::move(tokens), kKimiPattern, KimiSpecialTokens(base), kKimiNumReservedSpecial);
}

Expected<Tokenizer> Tokenizer::Load(const std::string& dir) {
  std::string model = dir + "/tiktoken.model";
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(model));
  K2_ASSIGN_OR_RETURN(auto tokens, ParseTiktokenRanks(text, model));
  std::string meta = dir + "/tokenizer.json";
  if (!std::filesystem::exists(meta)) {
    auto t = CreateKimi(std::move(tokens));
    if (!t.ok()) return t.status().Context(model);
    return t;
  }
  K2_ASSIGN_OR_RETURN(json j, ReadJsonFile(meta));
  if (!j.is_object()) return InvalidArgument(meta + ": expected an object");
  for (auto& [k, v] : j.items())
    if (k != "format" && k != "pattern" && k != "special_tokens" && k != "num_reserved_special_tokens" &&
        k != "chat_template")
      return InvalidArgument(meta + ": unknown key \"" + k +
                             "\": expected format, pattern, special_tokens, num_reserved_special_tokens, chat_template");
  std::string tool_decl = "full";
  if (j.contains("chat_template")) {
    const json& ct = j["chat_template"];
    if (!ct.is_object()) return InvalidArgument(meta + ": chat_template: expected object {\"tool_declarations\": ...}");
    for (auto& [k, v] : ct.items()) {
      if (k != "tool_declarations")
        return InvalidArgument(meta + ": chat_template: unknown key \"" + k + "\": expected tool_declarations");
      if (!v.is_string() || (v != "full" && v != "compact"))
        return InvalidArgument(meta + ": chat_template.tool_declarations: expected \"full\" or \"compact\", got " +
                               v.dump());
      tool_decl = v.get<std::string>();
    }
  }
  std::string pattern = kKimiPattern;
  if (j.contains("pattern")) {
    if (!j["pattern"].is_string()) return InvalidArgument(meta + ": pattern: expected string, got " + JsonTypeName(j["pattern"]));
    pattern = j["pattern"];
  }
  int reserved = kKimiNumReservedSpecial;
  if (j.contains("num_reserved_special_tokens")) {
    auto& v = j["num_reserved_special_tokens"];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1 << 20)
      return InvalidArgument(meta + ": num_reserved_special_tokens: expected integer in [0, 1048576]");
    reserved = v.get<int>();
  }
  std::vector<std::pair<std::string, int>> specials;
  if (j.contains("special_tokens")) {
    auto& s = j["special_tokens"];
    if (!s.is_object()) return InvalidArgument(meta + ": special_tokens: expected object {name: id}");
    for (auto& [name, id] : s.items()) {
      if (!id.is_number_integer())
        return InvalidArgument(meta + ": special_tokens." + name + ": expected integer id, got " + JsonTypeName(id));
      specials.emplace_back(name, id.get<int>());
    }
    std::sort(specials.begin(), specials.end(), [](auto& a, auto& b) { return a.second < b.second; });
  } else {
    specials = KimiSpecialTokens(static_cast<int>(tokens.size()));
  }
  auto t = Create(std::move(tokens), pattern, specials, reserved);
  if (!t.ok()) return t.status().Context(meta);
  t->tool_declarations_ = tool_decl;
  return t;
}

Status Tokenizer::set_tool_declarations(const std::string& mode) {
  if (mode != "full" && mode != "compact")
    return InvalidArgument("tool declarations: expected \"full\" or \"compact\", got \"" + mode + "\"");
  tool_declarations_ = mode;
  return Status::Ok();
}

Status Tokenizer::Save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError(dir + ": cannot create directory: " + ec.message());
  K2_RETURN_IF_ERROR(WriteFileAtomic(dir + "/tiktoken.model", FormatTiktokenRanks(tokens_)));
  json specials = json::object();
  for (auto& [name, id] : named_specials_) specials[name] = id;
  json meta = {{"format", "tiktoken"},
               {"pattern", pre_.pattern()},
               {"num_reserved_special_tokens", num_reserved_},
               {"special_tokens", specials}};
  if (tool_declarations_ != "full") meta["chat_template"] = {{"tool_declarations", tool_declarations_}};
  return WriteFileAtomic(dir + "/tokenizer.json", meta.dump(2) + "\n");
}

// ---- lookups ------------------------------------------------------------------------------------

int Tokenizer::Rank(std::string_view bytes) const {
  auto it = ranks_.find(bytes);
  return it == ranks_.end() ? -1 : it->second;
}

int Tokenizer::SpecialId(std::string_view name) const {
  auto it = special_ids_.find(name);
  return it == special_ids_.end() ? -1 : it->second;
}

const std::string& Tokenizer::TokenBytes(int id) const {
  K2_CHECK(id >= 0 && id < vocab_size()) << "token id " << id << " outside [0, " << vocab_size() << ")";
  return id < num_ranks() ? tokens_[id] : specials_[id - num_ranks()];
}

Expected<std::string> Tokenizer::Decode(std::span<const int> ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    int id = ids[i];
    if (id < 0 || id >= vocab_size())
      return InvalidArgument("ids[" + std::to_string(i) + "] = " + std::to_string(id) + ": expected an id in [0, " +
                             std::to_string(vocab_size()) + ")");
    out += TokenBytes(id);
  }
  return out;
}

// ---- BPE merge ----------------------------------------------------------------------------------

void Tokenizer::PairTable::Build(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n + 16) cap <<= 1;  // load factor <= 1/2
  keys.assign(cap, 0);
  vals.assign(cap, -1);
  mask = cap - 1;
}

void Tokenizer::PairTable::Put(int a, int b, int rank) {
  uint64_t k = Key(a, b);
  uint64_t i = Slot(k);
  while (keys[i] != 0 && keys[i] != k) i = (i + 1) & mask;
  keys[i] = k;
  vals[i] = rank;  // (a, b) determines the bytes, hence the rank: a repeated Put writes the same value
}

namespace {
// Pieces up to this many bytes use the quadratic array scan (tiktoken's own loop): for them it beats
// the heap's allocation and bookkeeping. Longer pieces (long numbers are split, but whitespace runs,
// symbol runs and invalid bytes are not) take the O(n log n) heap.
constexpr size_t kSmallPiece = 48;
}  // namespace

void Tokenizer::MergeSmall(std::string_view piece, std::vector<int>* out) const {
  // Parts are token ids; rank[i] is the rank of parts i and i+1 joined (a pair-table lookup: the
  // concatenation of two tokens is a token iff the table has the pair). Same order of merges as the
  // reference: lowest rank, leftmost first.
  size_t parts = piece.size();
  int id[kSmallPiece];
  int rank[kSmallPiece];
  for (size_t i = 0; i < parts; ++i) id[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
  auto pair_rank = [&](size_t i) {
    int r = pairs_.Get(id[i], id[i + 1]);
    return r < 0 ? INT_MAX : r;
  };
  for (size_t i = 0; i + 1 < parts; ++i) rank[i] = pair_rank(i);
  while (parts > 1) {
    int best = INT_MAX;
    size_t bi = 0;
    for (size_t i = 0; i + 1 < parts; ++i)
      if (rank[i] < best) best = rank[i], bi = i;
    if (best == INT_MAX) break;
    id[bi] = best;
    for (size_t k = bi + 1; k + 1 < parts; ++k) id[k] = id[k + 1];
    for (size_t k = bi + 1; k + 2 < parts; ++k) rank[k] = rank[k + 1];
    --parts;
    if (bi + 1 < parts) rank[bi] = pair_rank(bi);
    if (bi > 0) rank[bi - 1] = pair_rank(bi - 1);
  }
  out->insert(out->end(), id, id + parts);
}

void Tokenizer::MergeHeap(std::string_view piece, std::vector<int>* out) const {
  // Parts are a doubly linked list indexed by their first byte, each with its token id; a pair is keyed
  // by (rank, left start) so the heap pops the lowest rank, leftmost first, exactly like the
  // reference's scan. Entries go stale when a neighbour merges; an entry is live iff its left part is
  // alive and the right part still ends where the entry says.
  const uint32_t n = static_cast<uint32_t>(piece.size());
  std::vector<uint32_t> end(n), prev(n), next(n);
  std::vector<int> id(n);
  std::vector<uint8_t> alive(n, 1);
  for (uint32_t i = 0; i < n; ++i) {
    end[i] = i + 1, prev[i] = i - 1, next[i] = i + 1;  // next == n: none
    id[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
  }
  using Entry = std::tuple<int, uint32_t, uint32_t>;  // rank, left start, right end
  std::vector<Entry> storage;
  storage.reserve(n);
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap(std::greater<Entry>(), std::move(storage));
  auto push = [&](uint32_t left) {
    uint32_t right = next[left];
    if (right >= n) return;
    int r = pairs_.Get(id[left], id[right]);
    if (r >= 0) heap.emplace(r, left, end[right]);
  };
  for (uint32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    auto [r, left, right_end] = heap.top();
    heap.pop();
    if (!alive[left] || next[left] >= n || end[next[left]] != right_end) continue;
    uint32_t right = next[left];
    alive[right] = 0;
    id[left] = r;
    end[left] = end[right];
    next[left] = next[right];
    if (next[left] < n) prev[next[left]] = left;
    push(left);
    if (left > 0) push(prev[left]);
  }
  for (uint32_t i = 0; i < n; i = end[i]) out->push_back(id[i]);
}

void Tokenizer::EncodePiece(std::string_view piece, std::vector<int>* out) const {
  // As tiktoken: a piece that is itself a token is that token.
  if (int r = Rank(piece); r >= 0) {
    out->push_back(r);
    return;
  }
  if (piece.size() <= kSmallPiece) {
    MergeSmall(piece, out);
  } else {
    MergeHeap(piece, out);
  }
}

void Tokenizer::EncodePieceReference(std::string_view piece, std::vector<int>* out) const {
  if (int r = Rank(piece); r >= 0) {
    out->push_back(r);
    return;
  }
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  while (parts.size() > 1) {
    int best = INT_MAX;
    size_t bi = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      int r = Rank(parts[i] + parts[i + 1]);
      if (r >= 0 && r < best) best = r, bi = i;
    }
    if (best == INT_MAX) break;
    parts[bi] += parts[bi + 1];
    parts.erase(parts.begin() + bi + 1);
  }
  for (auto& p : parts) out->push_back(Rank(p));
}

void Tokenizer::Encode(std::string_view text, std::vector<int>* out) const {
  std::vector<std::string_view> pieces;
  pieces.reserve(text.size() / 3 + 1);
  pre_.Split(text, &pieces);
  for (auto p : pieces) EncodePiece(p, out);
}

std::vector<int> Tokenizer::Encode(std::string_view text) const {
  std::vector<int> out;
  out.reserve(text.size() / 3 + 1);
  Encode(text, &out);
  return out;
}

std::vector<int> Tokenizer::EncodeReference(std::string_view text) const {
  std::vector<std::string_view> pieces;
  pre_.SplitReference(text, &pieces);
  std::vector<int> out;
  for (auto p : pieces) EncodePieceReference(p, &out);
  return out;
}

std::vector<int> Tokenizer::EncodeWithSpecial(std::string_view text) const {
  std::vector<int> out;
  size_t run = 0, i = 0;
  while (i < text.size()) {
    int hit = -1;
    if (special_first_byte_[static_cast<uint8_t>(text[i])]) {
      for (int k : specials_by_length_)
        if (text.compare(i, specials_[k].size(), specials_[k]) == 0) {
          hit = k;
          break;
        }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    Encode(text.substr(run, i - run), &out);
    out.push_back(num_ranks() + hit);
    i += specials_[hit].size();
    run = i;
  }
  Encode(text.substr(run), &out);
  return out;
}

}  // namespace k2::text
