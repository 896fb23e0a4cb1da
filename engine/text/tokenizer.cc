// Byte-level BPE: tiktoken rank files, the fast merge (array scan for short pieces, linked list +
// min-heap for long ones), its string-vector reference, special tokens, load/save.
#include "engine/text/tokenizer.h"

#include <algorithm>
#include <cctype>
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

Status Tokenizer::BuildRanks(std::vector<std::string> tokens) {
  ranks_.reserve(tokens.size() * 2);
  for (size_t r = 0; r < tokens.size(); ++r) {
    if (tokens[r].empty()) return InvalidArgument("rank " + std::to_string(r) + ": empty token");
    if (!ranks_.emplace(tokens[r], static_cast<int>(r)).second)
      return InvalidArgument("rank " + std::to_string(r) + ": token \"" + Base64Encode(tokens[r]) +
                             "\" (base64) repeats rank " + std::to_string(ranks_.find(tokens[r])->second));
  }
  for (int b = 0; b < 256; ++b)
    if (!ranks_.count(std::string(1, char(b))))
      return InvalidArgument("ranks: byte 0x" + std::string(1, "0123456789abcdef"[b >> 4]) + "0123456789abcdef"[b & 15] +
                             " has no token: a byte-level BPE needs all 256 single bytes");
  tokens_ = std::move(tokens);
  for (int b = 0; b < 256; ++b) byte_ids_[b] = Rank(std::string(1, char(b)));
  return Status::Ok();
}

void Tokenizer::BuildTiktokenPairs() {
  size_t npairs = 0;
  for (auto& tk : tokens_) npairs += tk.size() - 1;
  pairs_.Build(npairs);
  for (size_t r = 0; r < tokens_.size(); ++r) {
    std::string_view tk = tokens_[r];
    for (size_t k = 1; k < tk.size(); ++k) {
      int a = Rank(tk.substr(0, k)), b = Rank(tk.substr(k));
      if (a >= 0 && b >= 0) pairs_.Put(a, b, PairVal{static_cast<int>(r), static_cast<int>(r)});
    }
  }
}

Status Tokenizer::BuildSpecials(const std::vector<std::pair<std::string, int>>& specials, int num_reserved,
                                bool allow_aliases) {
  if (num_reserved < 0) return InvalidArgument("num_reserved_special_tokens: expected >= 0");
  num_reserved_ = num_reserved;
  const int base = num_ranks();
  specials_.assign(num_reserved, "");
  std::vector<std::pair<std::string, int>> aliases;  // names of ids inside the BPE range
  for (auto& [name, id] : specials) {
    if (name.empty()) return InvalidArgument("special_tokens: empty name for id " + std::to_string(id));
    if (allow_aliases && id >= 0 && id < base) {
      aliases.emplace_back(name, id);
      continue;
    }
    if (id < base || id >= base + num_reserved)
      return InvalidArgument("special_tokens: \"" + name + "\" has id " + std::to_string(id) + ": expected an id in [" +
                             std::to_string(base) + ", " + std::to_string(base + num_reserved) + ")");
    if (!specials_[id - base].empty())
      return InvalidArgument("special_tokens: id " + std::to_string(id) + " is given twice");
    specials_[id - base] = name;
  }
  for (int k = 0; k < num_reserved; ++k)
    if (specials_[k].empty()) specials_[k] = "<|reserved_token_" + std::to_string(base + k) + "|>";
  for (int k = 0; k < num_reserved; ++k) {
    if (!special_ids_.emplace(specials_[k], base + k).second)
      return InvalidArgument("special_tokens: name \"" + specials_[k] + "\" is used twice");
    specials_by_length_.emplace_back(specials_[k], base + k);
  }
  for (auto& [name, id] : aliases) {
    if (!special_ids_.emplace(name, id).second)
      return InvalidArgument("special_tokens: name \"" + name + "\" is used twice");
    specials_by_length_.emplace_back(name, id);
  }
  named_specials_ = specials;
  for (auto& [name, id] : specials_by_length_) special_first_byte_[static_cast<uint8_t>(name[0])] = true;
  std::stable_sort(specials_by_length_.begin(), specials_by_length_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return Status::Ok();
}

Expected<Tokenizer> Tokenizer::Create(std::vector<std::string> tokens, const std::string& pattern,
                                      const std::vector<std::pair<std::string, int>>& specials,
                                      int num_reserved) {
  Tokenizer t;
  K2_ASSIGN_OR_RETURN(t.pre_, Pretokenizer::Create(pattern));
  if (num_reserved < 0) return InvalidArgument("num_reserved_special_tokens: expected >= 0");
  K2_RETURN_IF_ERROR(t.BuildRanks(std::move(tokens)));
  t.BuildTiktokenPairs();
  K2_RETURN_IF_ERROR(t.BuildSpecials(specials, num_reserved, /*allow_aliases=*/false));
  return t;
}

Expected<Tokenizer> Tokenizer::CreateKimi(std::vector<std::string> tokens) {
  int base = static_cast<int>(tokens.size());
  return Create(std::move(tokens), kKimiPattern, KimiSpecialTokens(base), kKimiNumReservedSpecial);
}

Expected<Tokenizer> Tokenizer::Load(const std::string& dir) {
  std::string model = dir + "/tiktoken.model";
  std::string meta = dir + "/tokenizer.json";
  if (!std::filesystem::exists(model) && std::filesystem::exists(meta)) {
    K2_ASSIGN_OR_RETURN(std::string text, ReadFile(meta));
    K2_ASSIGN_OR_RETURN(json j, ParseJson(text, meta));
    K2_ASSIGN_OR_RETURN(Tokenizer t, FromHfTokenizerJson(j, meta));
    t.hf_json_ = std::move(text);
    return t;
  }
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(model));
  K2_ASSIGN_OR_RETURN(auto tokens, ParseTiktokenRanks(text, model));
  if (!std::filesystem::exists(meta)) {
    const std::string cfg = dir + "/tokenizer_config.json";
    if (std::filesystem::exists(cfg)) return LoadKimiConfig(std::move(tokens), cfg);
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

Expected<Tokenizer> Tokenizer::LoadKimiConfig(std::vector<std::string> tokens, const std::string& path) {
  K2_ASSIGN_OR_RETURN(json j, ReadJsonFile(path));
  if (!j.is_object()) return InvalidArgument(path + ": expected an object");
  const int base = static_cast<int>(tokens.size());
  if (!j.contains("added_tokens_decoder")) {
    auto t = CreateKimi(std::move(tokens));
    if (!t.ok()) return t.status().Context(path);
    return t;
  }
  const json& d = j["added_tokens_decoder"];
  if (!d.is_object()) return InvalidArgument(path + ": added_tokens_decoder: expected an object {id: {content, ...}}");
  // tokenization_kimi.py: special ids are num_base_tokens .. +num_reserved (256), named by
  // added_tokens_decoder, the rest "<|reserved_token_ID|>".
  std::vector<std::pair<std::string, int>> specials;
  int top = base + kKimiNumReservedSpecial - 1;
  for (auto& [key, v] : d.items()) {
    const std::string where = path + ": added_tokens_decoder." + key;
    int64_t id = -1;
    if (key.empty() || key.size() > 9 || key.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument(where + ": expected a decimal token id as the key");
    id = std::stoll(key);
    if (!v.is_object() || !v.contains("content") || !v["content"].is_string())
      return InvalidArgument(where + ": expected an object with a string \"content\"");
    if (id < base || id >= base + (1 << 20))
      return InvalidArgument(where + ": id " + key + " is not after the " + std::to_string(base) +
                             " ranks of tiktoken.model (expected ids from " + std::to_string(base) + ")");
    specials.emplace_back(v["content"].get<std::string>(), static_cast<int>(id));
    top = std::max(top, static_cast<int>(id));
  }
  std::sort(specials.begin(), specials.end(), [](auto& a, auto& b) { return a.second < b.second; });
  auto t = Create(std::move(tokens), kKimiPattern, specials, top - base + 1);
  if (!t.ok()) return t.status().Context(path);
  return t;
}

namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes are their own code point, the other 68 bytes map
// to U+0100.. in byte order. Returns code point -> byte (-1: not a byte's spelling).
const std::vector<int>& UnicodeToByte() {
  static const std::vector<int> table = [] {
    std::vector<int> t(512, -1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[printable ? b : 256 + extra++] = b;
    }
    return t;
  }();
  return table;
}

// A byte-level token spelling back to its bytes; nullopt for a character outside the mapping.
std::optional<std::string> ByteLevelDecode(std::string_view s) {
  std::string out;
  size_t i = 0;
  const auto& map = UnicodeToByte();
  while (i < s.size()) {
    uint32_t cp;
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      cp = c, i += 1;
    } else if ((c >> 5) == 6 && i + 1 < s.size()) {
      cp = ((c & 0x1f) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3f), i += 2;
    } else {
      return std::nullopt;  // every mapped code point is below U+0800
    }
    if (cp >= map.size() || map[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(map[cp]));
  }
  return out;
}

// GPT-2's pre-tokenization regex (tokenizers' ByteLevel with use_regex).
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string EscapeRegex(std::string_view lit) {
  std::string out;
  for (char c : lit) {
    if (std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80) out.push_back(c);
    else out += std::string("\\") + c;
  }
  return out;
}

// The regex stages of a tokenizer.json pre_tokenizer (empty: the whole text is one piece).
Status PreTokenizerStages(const json& p, const std::string& where, std::vector<std::string>* stages) {
  if (p.is_null()) return Status::Ok();
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
    return InvalidArgument(where + ": expected an object with a \"type\"");
  const std::string type = p["type"];
  if (type == "Sequence") {
    if (!p.contains("pretokenizers") || !p["pretokenizers"].is_array())
      return InvalidArgument(where + ".pretokenizers: expected an array");
    for (size_t i = 0; i < p["pretokenizers"].size(); ++i)
      K2_RETURN_IF_ERROR(PreTokenizerStages(p["pretokenizers"][i], where + ".pretokenizers[" + std::to_string(i) + "]", stages));
    return Status::Ok();
  }
  if (type == "ByteLevel") {
    if (p.value("add_prefix_space", false) == true)
      return InvalidArgument(where + ".add_prefix_space: expected false (a prefix space would change the text)");
    if (p.value("use_regex", true)) stages->push_back(kGpt2Pattern);
    return Status::Ok();
  }
  if (type == "Split") {
    if (p.value("behavior", std::string()) != "Isolated")
      return InvalidArgument(where + ".behavior: expected \"Isolated\", got " + (p.contains("behavior") ? p["behavior"].dump() : "nothing"));
    if (p.value("invert", false)) return InvalidArgument(where + ".invert: expected false");
    const json& pat = p.contains("pattern") ? p["pattern"] : json();
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) {
      stages->push_back(pat["Regex"].get<std::string>());
    } else if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) {
      stages->push_back(EscapeRegex(pat["String"].get<std::string>()));
    } else {
      return InvalidArgument(where + ".pattern: expected {\"Regex\": ...} or {\"String\": ...}");
    }
    return Status::Ok();
  }
  return InvalidArgument(where + ".type: expected ByteLevel, Split or Sequence, got \"" + type + "\"");
}

}  // namespace

Expected<Tokenizer> Tokenizer::FromHfTokenizerJson(const json& j, const std::string& src) {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    return InvalidArgument(src + ": expected a tokenizers file with a \"model\" object");
  const json& m = j["model"];
  if (m.value("type", std::string("BPE")) != "BPE")
    return InvalidArgument(src + ": model.type: expected \"BPE\", got " + m["type"].dump());
  if (m.contains("byte_fallback") && m["byte_fallback"] == true)
    return InvalidArgument(src + ": model.byte_fallback: expected false (byte-level BPE)");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(k) && !m[k].is_null() && !(m[k].is_string() && m[k].get<std::string>().empty()))
      return InvalidArgument(src + ": model." + k + ": expected null (byte-level BPE)");
  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    const json& n = j["normalizer"];
    if (!(n.is_object() && n.value("type", std::string()) == "Sequence" && n.contains("normalizers") &&
          n["normalizers"].is_array() && n["normalizers"].empty()))
      return InvalidArgument(src + ": normalizer: expected null (a normalizer would change the text)");
  }
  if (!m.contains("vocab") || !m["vocab"].is_object())
    return InvalidArgument(src + ": model.vocab: expected an object {token: id}");
  const json& vocab = m["vocab"];
  std::vector<std::string> tokens(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (auto& [spelling, idv] : vocab.items()) {
    const std::string where = src + ": model.vocab[\"" + spelling + "\"]";
    if (!idv.is_number_integer() || idv.get<int64_t>() < 0 || idv.get<uint64_t>() >= vocab.size())
      return InvalidArgument(where + ": expected an id in [0, " + std::to_string(vocab.size()) + ")");
    const size_t id = idv.get<size_t>();
    if (seen[id]) return InvalidArgument(where + ": id " + std::to_string(id) + " is given twice");
    auto bytes = ByteLevelDecode(spelling);
    if (!bytes || bytes->empty())
      return InvalidArgument(where + ": not a byte-level spelling (GPT-2 byte-to-unicode characters)");
    seen[id] = true;
    tokens[id] = std::move(*bytes);
  }
  Tokenizer t;
  t.format_ = "hf";
  t.piece_lookup_ = m.value("ignore_merges", false) == true;
  K2_RETURN_IF_ERROR(t.BuildRanks(std::move(tokens)).Context(src));
  // Merges: "left right" strings (tokenizers < 0.20) or [left, right] pairs.
  if (!m.contains("merges") || !m["merges"].is_array()) return InvalidArgument(src + ": model.merges: expected an array");
  const json& merges = m["merges"];
  t.pairs_.Build(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string where = src + ": model.merges[" + std::to_string(i) + "]";
    std::string l, r;
    const json& e = merges[i];
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        return InvalidArgument(where + ": expected \"left right\"");
      l = s.substr(0, sp), r = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      l = e[0].get<std::string>(), r = e[1].get<std::string>();
    } else {
      return InvalidArgument(where + ": expected \"left right\" or [left, right]");
    }
    auto lb = ByteLevelDecode(l), rb = ByteLevelDecode(r);
    if (!lb || !rb) return InvalidArgument(where + ": not a byte-level spelling");
    const int a = t.Rank(*lb), b = t.Rank(*rb), c = t.Rank(*lb + *rb);
    if (a < 0 || b < 0 || c < 0)
      return InvalidArgument(where + ": \"" + (a < 0 ? l : b < 0 ? r : l + r) + "\" is not in model.vocab");
    t.pairs_.Put(a, b, PairVal{static_cast<int>(i), c});
    t.merge_prio_.emplace(std::to_string(lb->size()) + ":" + *lb + *rb, static_cast<int>(i));
  }
  std::vector<std::string> stages;
  K2_RETURN_IF_ERROR(PreTokenizerStages(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json(), src + ": pre_tokenizer",
                                        &stages));
  if (stages.empty()) stages.push_back(R"([\s\S]+)");
  for (size_t i = 0; i < stages.size(); ++i) {
    auto p = Pretokenizer::Create(stages[i]);
    if (!p.ok()) return p.status().Context(src + ": pre_tokenizer stage " + std::to_string(i));
    if (i == 0) t.pre_ = std::move(*p);
    else t.more_pre_.push_back(std::move(*p));
  }
  // Added tokens: content -> id. Ids from V on form the special block (gaps are reserved names).
  std::vector<std::pair<std::string, int>> specials;
  int top = t.num_ranks() - 1;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) return InvalidArgument(src + ": added_tokens: expected an array");
    for (size_t i = 0; i < j["added_tokens"].size(); ++i) {
      const json& a = j["added_tokens"][i];
      const std::string where = src + ": added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
          !a.contains("content") ||
          !a["content"].is_string())
        return InvalidArgument(where + ": expected {\"id\": integer, \"content\": string}");
      const uint64_t id = a["id"].get<uint64_t>();
      if (id >= static_cast<uint64_t>(t.num_ranks()) + (1u << 20))
        return InvalidArgument(where + ".id: " + std::to_string(id) + " is far beyond the vocabulary");
      const std::string content = a["content"].get<std::string>();
      if (id < static_cast<uint64_t>(t.num_ranks()) && t.tokens_[id] != content)
        return InvalidArgument(where + ": id " + std::to_string(id) + " is the vocab token \"" + t.tokens_[id] +
                               "\", not \"" + content + "\"");
      specials.emplace_back(content, static_cast<int>(id));
      top = std::max(top, static_cast<int>(id));
    }
  }
  std::sort(specials.begin(), specials.end(), [](auto& a, auto& b) { return a.second < b.second; });
  K2_RETURN_IF_ERROR(t.BuildSpecials(specials, top - t.num_ranks() + 1, /*allow_aliases=*/true).Context(src));
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
  if (format_ == "hf") {
    if (tool_declarations_ != "full")
      return InvalidArgument(dir + ": a tokenizer.json tokenizer keeps the \"full\" tool declarations (got \"" +
                             tool_declarations_ + "\")");
    return WriteFileAtomic(dir + "/tokenizer.json", hf_json_);
  }
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
  vals.assign(cap, PairVal{});
  mask = cap - 1;
}

void Tokenizer::PairTable::Put(int a, int b, PairVal v) {
  uint64_t k = Key(a, b);
  uint64_t i = Slot(k);
  while (keys[i] != 0 && keys[i] != k) i = (i + 1) & mask;
  if (keys[i] == k && vals[i].prio >= 0 && vals[i].prio <= v.prio) return;  // the first (best) merge wins
  keys[i] = k;
  vals[i] = v;
}

namespace {
// Pieces up to this many bytes use the quadratic array scan (tiktoken's own loop): for them it beats
// the heap's allocation and bookkeeping. Longer pieces (long numbers are split, but whitespace runs,
// symbol runs and invalid bytes are not) take the O(n log n) heap.
constexpr size_t kSmallPiece = 48;
}  // namespace

void Tokenizer::MergeSmall(std::string_view piece, std::vector<int>* out) const {
  // Parts are token ids; prio[i] / res[i] are the priority and result of joining parts i and i+1 (a
  // pair-table lookup). Same order of merges as the reference: lowest priority, leftmost first.
  size_t parts = piece.size();
  int id[kSmallPiece];
  int prio[kSmallPiece];
  int res[kSmallPiece];
  for (size_t i = 0; i < parts; ++i) id[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
  auto look = [&](size_t i) {
    PairVal v = pairs_.Get(id[i], id[i + 1]);
    prio[i] = v.prio < 0 ? INT_MAX : v.prio;
    res[i] = v.id;
  };
  for (size_t i = 0; i + 1 < parts; ++i) look(i);
  while (parts > 1) {
    int best = INT_MAX;
    size_t bi = 0;
    for (size_t i = 0; i + 1 < parts; ++i)
      if (prio[i] < best) best = prio[i], bi = i;
    if (best == INT_MAX) break;
    id[bi] = res[bi];
    for (size_t k = bi + 1; k + 1 < parts; ++k) id[k] = id[k + 1];
    for (size_t k = bi + 1; k + 2 < parts; ++k) prio[k] = prio[k + 1], res[k] = res[k + 1];
    --parts;
    if (bi + 1 < parts) look(bi);
    if (bi > 0) look(bi - 1);
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
  using Entry = std::tuple<int, uint32_t, uint32_t>;  // priority, left start, right end
  std::vector<Entry> storage;
  storage.reserve(n);
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap(std::greater<Entry>(), std::move(storage));
  auto push = [&](uint32_t left) {
    uint32_t right = next[left];
    if (right >= n) return;
    PairVal v = pairs_.Get(id[left], id[right]);
    if (v.prio >= 0) heap.emplace(v.prio, left, end[right]);
  };
  for (uint32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    auto [r, left, right_end] = heap.top();
    heap.pop();
    if (!alive[left] || next[left] >= n || end[next[left]] != right_end) continue;
    uint32_t right = next[left];
    (void)r;
    alive[right] = 0;
    id[left] = pairs_.Get(id[left], id[right]).id;
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
  if (int r = piece_lookup_ ? Rank(piece) : -1; r >= 0) {
    out->push_back(r);
    return;
  }
  if (piece.size() == 1) {
    out->push_back(byte_ids_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (piece.size() <= kSmallPiece) {
    MergeSmall(piece, out);
  } else {
    MergeHeap(piece, out);
  }
}

void Tokenizer::EncodePieceReference(std::string_view piece, std::vector<int>* out) const {
  if (int r = piece_lookup_ ? Rank(piece) : -1; r >= 0) {
    out->push_back(r);
    return;
  }
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  // tiktoken: a join is ranked by the rank of its bytes; tokenizer.json: by the merges list.
  auto prio = [&](const std::string& a, const std::string& b) {
    if (format_ != "hf") return Rank(a + b);
    std::string key = std::to_string(a.size()) + ":" + a + b;
    auto it = merge_prio_.find(key);
    return it == merge_prio_.end() ? -1 : it->second;
  };
  while (parts.size() > 1) {
    int best = INT_MAX;
    size_t bi = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      int r = prio(parts[i], parts[i + 1]);
      if (r >= 0 && r < best) best = r, bi = i;
    }
    if (best == INT_MAX) break;
    parts[bi] += parts[bi + 1];
    parts.erase(parts.begin() + bi + 1);
  }
  for (auto& p : parts) out->push_back(Rank(p));
}

void Tokenizer::SplitAll(std::string_view text, bool reference, std::vector<std::string_view>* out) const {
  if (reference) pre_.SplitReference(text, out);
  else pre_.Split(text, out);
  for (const Pretokenizer& stage : more_pre_) {
    std::vector<std::string_view> next;
    next.reserve(out->size());
    for (auto p : *out) {
      if (reference) stage.SplitReference(p, &next);
      else stage.Split(p, &next);
    }
    out->swap(next);
  }
}

void Tokenizer::Encode(std::string_view text, std::vector<int>* out) const {
  std::vector<std::string_view> pieces;
  pieces.reserve(text.size() / 3 + 1);
  SplitAll(text, /*reference=*/false, &pieces);
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
  SplitAll(text, /*reference=*/true, &pieces);
  std::vector<int> out;
  for (auto p : pieces) EncodePieceReference(p, &out);
  return out;
}

std::vector<int> Tokenizer::EncodeWithSpecial(std::string_view text) const {
  std::vector<int> out;
  size_t run = 0, i = 0;
  while (i < text.size()) {
    const std::pair<std::string, int>* hit = nullptr;
    if (special_first_byte_[static_cast<uint8_t>(text[i])]) {
      for (const auto& s : specials_by_length_)
        if (text.compare(i, s.first.size(), s.first) == 0) {
          hit = &s;
          break;
        }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    Encode(text.substr(run, i - run), &out);
    out.push_back(hit->second);
    i += hit->first.size();
    run = i;
  }
  Encode(text.substr(run), &out);
  return out;
}

}  // namespace k2::text
