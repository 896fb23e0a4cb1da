// Kimi-K2 chat template: rendering to segments (text or special token, with a loss-mask bit), token
// ids from the segments, and a parser over the same segment view for model output and dialogs.
#include "engine/text/chat_template.h"

#include <algorithm>
#include <map>
#include <set>

namespace k2::text {

namespace {

// ---- rendering ----------------------------------------------------------------------------------

struct Segment {
  bool special;
  std::string text;  // a special token's name, or ordinary text
  uint8_t mask;
};

struct Builder {
  std::vector<Segment> segs;
  void Special(const char* name, uint8_t mask) { segs.push_back({true, name, mask}); }
  void Text(std::string t, uint8_t mask) {
    if (t.empty()) return;
    // Adjacent text of the same mask is one run: it is encoded in one piece, as the rendered text is.
    if (!segs.empty() && !segs.back().special && segs.back().mask == mask) {
      segs.back().text += t;
    } else {
      segs.push_back({false, std::move(t), mask});
    }
  }
};

bool ValidFunctionName(const std::string& n) {
  if (n.empty()) return false;
  for (unsigned char c : n)
    if (c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') return false;
  return true;
}

// "functions.NAME:IDX" -> NAME and IDX; nullopt when the form does not hold.
std::optional<std::pair<std::string, int>> SplitCallId(std::string_view id) {
  constexpr std::string_view kPrefix = "functions.";
  if (id.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  size_t colon = id.rfind(':');
  if (colon == std::string_view::npos || colon <= kPrefix.size()) return std::nullopt;
  std::string name(id.substr(kPrefix.size(), colon - kPrefix.size()));
  std::string_view idx = id.substr(colon + 1);
  if (idx.empty() || idx.size() > 9 || !ValidFunctionName(name)) return std::nullopt;
  if (idx.size() > 1 && idx[0] == '0') return std::nullopt;  // one spelling per index
  int v = 0;
  for (char c : idx) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return std::make_pair(name, v);
}

}  // namespace

Expected<std::vector<std::string>> DeclaredToolNames(const json& tools) {
  std::vector<std::string> names;
  if (tools.is_null()) return names;
  if (!tools.is_array()) return InvalidArgument(std::string("tools: expected array of tool objects, got ") + JsonTypeName(tools));
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const json* name = nullptr;
    if (t.is_object() && t.contains("function") && t["function"].is_object() && t["function"].contains("name"))
      name = &t["function"]["name"];
    else if (t.is_object() && t.contains("name"))
      name = &t["name"];
    if (name == nullptr || !name->is_string())
      return InvalidArgument("tools[" + std::to_string(i) +
                             "]: expected {\"type\": \"function\", \"function\": {\"name\": string, ...}}");
    names.push_back(name->get<std::string>());
  }
  return names;
}

Expected<std::vector<Message>> CanonicalizeToolCallIds(const std::vector<Message>& messages) {
  std::vector<Message> out = messages;
  std::map<std::string, std::string> remap;  // id as given -> canonical
  int next_index = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    Message& m = out[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    // Fields the template does not render are dropped, so `messages` is exactly what the tokens say.
    if (m.role != "tool") m.name.clear(), m.tool_call_id.clear();
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
      return InvalidArgument(where + ".role: expected system, user, assistant or tool, got \"" + m.role + "\"");
    if (m.role != "assistant" && !m.tool_calls.empty())
      return InvalidArgument(where + ".tool_calls: only assistant messages carry tool calls (role is \"" + m.role + "\")");
    for (size_t k = 0; k < m.tool_calls.size(); ++k) {
      ToolCall& c = m.tool_calls[k];
      if (!ValidFunctionName(c.name))
        return InvalidArgument(where + ".tool_calls[" + std::to_string(k) + "].function.name: \"" + c.name +
                               "\": expected a non-empty name without whitespace or ':'");
      std::string canon = "functions." + c.name + ":" + std::to_string(next_index++);
      if (!c.id.empty()) remap[c.id] = canon;
      c.id = canon;
    }
    if (m.role == "tool") {
      if (m.tool_call_id.empty())
        return InvalidArgument(where + ".tool_call_id: missing (a tool result names the call it answers)");
      auto it = remap.find(m.tool_call_id);
      if (it != remap.end()) {
        m.tool_call_id = it->second;
      } else if (!SplitCallId(m.tool_call_id)) {
        return InvalidArgument(where + ".tool_call_id: \"" + m.tool_call_id +
                               "\" answers no earlier tool call and is not of the form functions.NAME:IDX");
      }
      if (m.name.empty()) m.name = SplitCallId(m.tool_call_id)->first;
      if (m.name == "system" || m.name == "tool_declare" || !ValidFunctionName(m.name))
        return InvalidArgument(where + ".name: \"" + m.name +
                               "\": a tool name must be non-empty, without whitespace or ':', and not a template role");
    }
  }
  return out;
}

namespace {

json CompactSchema(const json& s) {
  if (!s.is_object()) return s;
  json out = json::object();
  for (const char* k : {"type", "enum", "required"})
    if (s.contains(k)) out[k] = s[k];
  if (s.contains("items")) out["items"] = CompactSchema(s["items"]);
  if (s.contains("properties") && s["properties"].is_object()) {
    json props = json::object();
    for (auto& [name, sub] : s["properties"].items()) props[name] = CompactSchema(sub);
    out["properties"] = std::move(props);
  }
  return out;
}

}  // namespace

json CompactToolDeclarations(const json& tools) {
  if (!tools.is_array()) return tools;
  json out = json::array();
  for (const json& t : tools) {
    if (!t.is_object() || !t.contains("function") || !t["function"].is_object()) {
      out.push_back(t);
      continue;
    }
    const json& f = t["function"];
    json cf = json::object();
    if (f.contains("name")) cf["name"] = f["name"];
    if (f.contains("parameters")) cf["parameters"] = CompactSchema(f["parameters"]);
    out.push_back({{"type", "function"}, {"function", std::move(cf)}});
  }
  return out;
}

Expected<RenderedChat> RenderChat(const std::vector<Message>& messages, const json& tools,
                                  const Tokenizer* tokenizer, const RenderOptions& opt) {
  K2_RETURN_IF_ERROR(DeclaredToolNames(tools).status());
  K2_ASSIGN_OR_RETURN(std::vector<Message> ms, CanonicalizeToolCallIds(messages));
  Builder b;
  if (!tools.is_null() && !tools.empty()) {
    b.Special(kImSystem, 0);
    b.Text("tool_declare", 0);
    b.Special(kImMiddle, 0);
    // Compact, keys sorted, UTF-8 kept; an invalid UTF-8 string (only possible in a json built in code,
    // the parser rejects it) becomes U+FFFD instead of throwing.
    const bool compact = tokenizer && tokenizer->tool_declarations() == "compact";
    b.Text((compact ? CompactToolDeclarations(tools) : tools).dump(-1, ' ', false, json::error_handler_t::replace), 0);
    b.Special(kImEnd, 0);
  }
  if (ms.empty() || ms[0].role != "system") {
    b.Special(kImSystem, 0);
    b.Text("system", 0);
    b.Special(kImMiddle, 0);
    b.Text(opt.default_system, 0);
    b.Special(kImEnd, 0);
  }
  for (const Message& m : ms) {
    if (m.role == "assistant") {
      b.Special(kImAssistant, 0);
      b.Text("assistant", 0);
      b.Special(kImMiddle, 0);
      b.Text(m.content, 1);
      if (!m.tool_calls.empty()) {
        b.Special(kSectionBegin, 1);
        for (const ToolCall& c : m.tool_calls) {
          b.Special(kCallBegin, 1);
          b.Text(c.id, 1);
          b.Special(kArgBegin, 1);
          b.Text(c.arguments, 1);
          b.Special(kCallEnd, 1);
        }
        b.Special(kSectionEnd, 1);
      }
      b.Special(kImEnd, 1);
    } else if (m.role == "tool") {
      b.Special(kImSystem, 0);
      b.Text(m.name, 0);
      b.Special(kImMiddle, 0);
      b.Text("## Return of " + m.tool_call_id + "\n" + m.content, 0);
      b.Special(kImEnd, 0);
    } else {
      b.Special(m.role == "user" ? kImUser : kImSystem, 0);
      b.Text(m.role, 0);
      b.Special(kImMiddle, 0);
      b.Text(m.content, 0);
      b.Special(kImEnd, 0);
    }
  }
  if (opt.add_generation_prompt) {
    b.Special(kImAssistant, 0);
    b.Text("assistant", 0);
    b.Special(kImMiddle, 0);
  }
  RenderedChat out;
  for (auto& s : b.segs) out.text += s.text;
  if (tokenizer != nullptr) {
    for (auto& s : b.segs) {
      size_t before = out.tokens.size();
      if (s.special) {
        int id = tokenizer->SpecialId(s.text);
        if (id < 0) return InvalidArgument("tokenizer: has no special token " + s.text + " (the chat template needs it)");
        out.tokens.push_back(id);
      } else {
        tokenizer->Encode(s.text, &out.tokens);
      }
      out.loss_mask.resize(out.tokens.size(), 0);
      std::fill(out.loss_mask.begin() + before, out.loss_mask.end(), s.mask);
    }
  }
  out.messages = std::move(ms);
  return out;
}

// ---- parsing ------------------------------------------------------------------------------------

const char* ParseFailureKindName(ParseFailureKind k) {
  switch (k) {
    case ParseFailureKind::kUnexpectedSpecial: return "unexpected_special";
    case ParseFailureKind::kUnclosedSection: return "unclosed_section";
    case ParseFailureKind::kUnclosedCall: return "unclosed_call";
    case ParseFailureKind::kMissingArgumentMarker: return "missing_argument_marker";
    case ParseFailureKind::kBadCallId: return "bad_call_id";
    case ParseFailureKind::kCallIndexMismatch: return "call_index_mismatch";
    case ParseFailureKind::kDuplicateCallId: return "duplicate_call_id";
    case ParseFailureKind::kUnknownTool: return "unknown_tool";
    case ParseFailureKind::kInvalidArguments: return "invalid_arguments";
    case ParseFailureKind::kArgumentsNotObject: return "arguments_not_object";
    case ParseFailureKind::kEmptySection: return "empty_section";
    case ParseFailureKind::kTextInSection: return "text_in_section";
    case ParseFailureKind::kTextAfterSection: return "text_after_section";
    case ParseFailureKind::kTextAfterEnd: return "text_after_end";
    case ParseFailureKind::kMissingEnd: return "missing_end";
    case ParseFailureKind::kInvalidUtf8: return "invalid_utf8";
  }
  return "unknown";
}

namespace {

enum class Tok { kText, kImEnd, kImUser, kImAssistant, kImSystem, kImMiddle, kSectionBegin, kSectionEnd,
                 kCallBegin, kArgBegin, kCallEnd, kOther };

struct Piece {
  Tok tok;
  std::string text;  // ordinary bytes, or the special token's name
  size_t offset;     // byte offset in the spelled-out output
};

constexpr std::pair<const char*, Tok> kTemplateSpecials[] = {
    {kImEnd, Tok::kImEnd},           {kImUser, Tok::kImUser},         {kImAssistant, Tok::kImAssistant},
    {kImSystem, Tok::kImSystem},     {kImMiddle, Tok::kImMiddle},     {kSectionBegin, Tok::kSectionBegin},
    {kSectionEnd, Tok::kSectionEnd}, {kCallBegin, Tok::kCallBegin},   {kArgBegin, Tok::kArgBegin},
    {kCallEnd, Tok::kCallEnd}};

Tok SpecialKind(std::string_view name) {
  for (auto& [n, t] : kTemplateSpecials)
    if (name == n) return t;
  return Tok::kOther;
}

void PushText(std::vector<Piece>& ps, std::string_view t, size_t offset) {
  if (t.empty()) return;
  if (!ps.empty() && ps.back().tok == Tok::kText) {
    ps.back().text += t;
  } else {
    ps.push_back({Tok::kText, std::string(t), offset});
  }
}

std::vector<Piece> PiecesFromTokens(const Tokenizer& tok, std::span<const int> ids, std::optional<ParseFailure>* bad) {
  std::vector<Piece> ps;
  size_t off = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    int id = ids[i];
    if (id < 0 || id >= tok.vocab_size()) {
      *bad = ParseFailure{ParseFailureKind::kUnexpectedSpecial,
                          "token " + std::to_string(i) + " = " + std::to_string(id) + " is outside the vocabulary", off};
      return ps;
    }
    const std::string& bytes = tok.TokenBytes(id);
    if (tok.IsSpecial(id)) {
      ps.push_back({SpecialKind(bytes), bytes, off});
    } else {
      PushText(ps, bytes, off);
    }
    off += bytes.size();
  }
  return ps;
}

std::vector<Piece> PiecesFromText(std::string_view text) {
  std::vector<Piece> ps;
  size_t run = 0, i = 0;
  while (i < text.size()) {
    Tok hit = Tok::kText;
    size_t len = 0;
    if (text[i] == '<') {
      for (auto& [n, t] : kTemplateSpecials) {
        std::string_view name(n);
        if (text.compare(i, name.size(), name) == 0) {
          hit = t, len = name.size();
          break;
        }
      }
    }
    if (hit == Tok::kText) {
      ++i;
      continue;
    }
    PushText(ps, text.substr(run, i - run), run);
    ps.push_back({hit, std::string(text.substr(i, len)), i});
    i += len;
    run = i;
  }
  PushText(ps, text.substr(run), run);
  return ps;
}

bool IsBlank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
}

class AssistantParser {
 public:
  AssistantParser(const std::vector<Piece>& ps, size_t end_offset, const std::vector<std::string>* tools,
                  const ParseOptions& opt)
      : ps_(ps), end_offset_(end_offset), tools_(tools), opt_(opt) {}

  AssistantParse Run() {
    AssistantParse r;
    r.message.role = "assistant";
    out_ = &r;
    Parse();
    return r;
  }

 private:
  bool Fail(ParseFailureKind k, std::string msg, size_t offset) {
    out_->failure = ParseFailure{k, std::move(msg), offset};
    return false;
  }
  size_t Off() const { return i_ < ps_.size() ? ps_[i_].offset : end_offset_; }
  bool AtEnd() const { return i_ >= ps_.size(); }
  Tok Peek() const { return AtEnd() ? Tok::kOther : ps_[i_].tok; }
  std::string Found() const { return AtEnd() ? "end of output" : "\"" + ps_[i_].text + "\""; }

  bool Parse() {
    if (Peek() == Tok::kText && !AtEnd()) {
      if (!IsValidUtf8(ps_[i_].text))
        return Fail(ParseFailureKind::kInvalidUtf8, "content is not valid UTF-8", ps_[i_].offset + ValidUtf8Prefix(ps_[i_].text));
      out_->message.content = ps_[i_++].text;
    }
    if (!AtEnd() && Peek() == Tok::kSectionBegin) {
      if (!Section()) return false;
      if (!AtEnd() && Peek() == Tok::kText) {
        if (!IsBlank(ps_[i_].text))
          return Fail(ParseFailureKind::kTextAfterSection, "text after <|tool_calls_section_end|>: expected <|im_end|>", Off());
        ++i_;
      }
    }
    if (AtEnd()) {
      if (opt_.require_end) return Fail(ParseFailureKind::kMissingEnd, "output ends without <|im_end|>", Off());
      return true;
    }
    if (Peek() != Tok::kImEnd)
      return Fail(ParseFailureKind::kUnexpectedSpecial,
                  "unexpected " + Found() + ": expected content, <|tool_calls_section_begin|> or <|im_end|>", Off());
    ++i_;
    if (!AtEnd()) return Fail(ParseFailureKind::kTextAfterEnd, Found() + " after <|im_end|>: expected end of output", Off());
    return true;
  }

  bool Section() {
    size_t section_at = Off();
    ++i_;  // <|tool_calls_section_begin|>
    int calls = 0;
    while (true) {
      if (AtEnd()) return Fail(ParseFailureKind::kUnclosedSection, "<|tool_calls_section_begin|> is never closed", section_at);
      Tok t = Peek();
      if (t == Tok::kText) {
        if (!IsBlank(ps_[i_].text))
          return Fail(ParseFailureKind::kTextInSection, "text inside the tool-call section: expected <|tool_call_begin|>", Off());
        ++i_;
      } else if (t == Tok::kCallBegin) {
        if (!Call()) return false;
        ++calls;
      } else if (t == Tok::kSectionEnd) {
        if (calls == 0) return Fail(ParseFailureKind::kEmptySection, "tool-call section without calls", section_at);
        ++i_;
        return true;
      } else if (t == Tok::kImEnd) {
        return Fail(ParseFailureKind::kUnclosedSection, "<|im_end|> inside the tool-call section: expected <|tool_calls_section_end|>", Off());
      } else {
        return Fail(ParseFailureKind::kUnexpectedSpecial,
                    "unexpected " + Found() + " in the tool-call section: expected <|tool_call_begin|> or <|tool_calls_section_end|>", Off());
      }
    }
  }

  bool Call() {
    size_t call_at = Off();
    ++i_;  // <|tool_call_begin|>
    std::string id;
    size_t id_at = Off();
    if (Peek() == Tok::kText && !AtEnd()) id = ps_[i_++].text;
    if (AtEnd()) return Fail(ParseFailureKind::kUnclosedCall, "<|tool_call_begin|> is never closed", call_at);
    if (Peek() == Tok::kCallEnd || Peek() == Tok::kSectionEnd || Peek() == Tok::kImEnd)
      return Fail(ParseFailureKind::kMissingArgumentMarker, "call \"" + id + "\" has no <|tool_call_argument_begin|>", Off());
    if (Peek() != Tok::kArgBegin)
      return Fail(ParseFailureKind::kUnexpectedSpecial, "unexpected " + Found() + " after a call id: expected <|tool_call_argument_begin|>", Off());
    ++i_;
    std::string args;
    size_t args_at = Off();
    if (Peek() == Tok::kText && !AtEnd()) args = ps_[i_++].text;
    if (AtEnd()) return Fail(ParseFailureKind::kUnclosedCall, "call \"" + id + "\" is never closed with <|tool_call_end|>", call_at);
    if (Peek() == Tok::kSectionEnd || Peek() == Tok::kImEnd || Peek() == Tok::kCallBegin)
      return Fail(ParseFailureKind::kUnclosedCall, "call \"" + id + "\": found " + Found() + ", expected <|tool_call_end|>", Off());
    if (Peek() != Tok::kCallEnd)
      return Fail(ParseFailureKind::kUnexpectedSpecial, "unexpected " + Found() + " in call arguments: expected <|tool_call_end|>", Off());
    ++i_;
    // The call is well delimited: now its id and arguments.
    auto split = SplitCallId(id);
    if (!split) return Fail(ParseFailureKind::kBadCallId, "call id \"" + id + "\": expected functions.NAME:IDX", id_at);
    auto& [name, index] = *split;
    if (tools_ != nullptr && std::find(tools_->begin(), tools_->end(), name) == tools_->end())
      return Fail(ParseFailureKind::kUnknownTool, "tool \"" + name + "\" is not declared", id_at);
    if (opt_.first_call_index) {
      int expected = *opt_.first_call_index + static_cast<int>(out_->message.tool_calls.size());
      if (index != expected)
        return Fail(ParseFailureKind::kCallIndexMismatch,
                    "call id \"" + id + "\": expected index " + std::to_string(expected), id_at);
    }
    for (auto& c : out_->message.tool_calls)
      if (c.id == id) return Fail(ParseFailureKind::kDuplicateCallId, "call id \"" + id + "\" repeats", id_at);
    if (!IsValidUtf8(args))
      return Fail(ParseFailureKind::kInvalidUtf8, "arguments of \"" + id + "\" are not valid UTF-8", args_at + ValidUtf8Prefix(args));
    auto j = ParseJson(args, "arguments of " + id);
    if (!j.ok()) return Fail(ParseFailureKind::kInvalidArguments, j.status().message(), args_at);
    if (!j->is_object())
      return Fail(ParseFailureKind::kArgumentsNotObject,
                  "arguments of \"" + id + "\": expected a JSON object, got " + JsonTypeName(*j), args_at);
    out_->message.tool_calls.push_back(ToolCall{id, name, args});
    return true;
  }

  const std::vector<Piece>& ps_;
  size_t end_offset_;
  const std::vector<std::string>* tools_;
  ParseOptions opt_;
  size_t i_ = 0;
  AssistantParse* out_ = nullptr;
};

AssistantParse ParseAssistantPieces(const std::vector<Piece>& ps, size_t end_offset, const json& tools,
                                    const ParseOptions& opt) {
  auto names = DeclaredToolNames(tools);
  if (!names.ok()) {
    AssistantParse r;
    r.message.role = "assistant";
    r.failure = ParseFailure{ParseFailureKind::kUnknownTool, "declared tools: " + names.status().message(), 0};
    return r;
  }
  return AssistantParser(ps, end_offset, tools.is_null() ? nullptr : &*names, opt).Run();
}

size_t EndOffset(const std::vector<Piece>& ps) { return ps.empty() ? 0 : ps.back().offset + ps.back().text.size(); }

Expected<ParsedDialog> ParseDialogPieces(const std::vector<Piece>& ps) {
  ParsedDialog d;
  size_t i = 0;
  auto err = [&](const std::string& what) {
    size_t off = i < ps.size() ? ps[i].offset : EndOffset(ps);
    return InvalidArgument("dialog at byte " + std::to_string(off) + ": " + what);
  };
  while (i < ps.size()) {
    Tok head = ps[i].tok;
    if (head != Tok::kImSystem && head != Tok::kImUser && head != Tok::kImAssistant)
      return err("expected <|im_system|>, <|im_user|> or <|im_assistant|>, got \"" + ps[i].text + "\"");
    ++i;
    if (i >= ps.size() || ps[i].tok != Tok::kText) return err("expected a role name after the turn marker");
    std::string role = ps[i++].text;
    if (i >= ps.size() || ps[i].tok != Tok::kImMiddle) return err("expected <|im_middle|> after role \"" + role + "\"");
    ++i;
    if (head == Tok::kImAssistant) {
      // The turn's pieces run to its <|im_end|> (tool-call sections contain no <|im_end|>).
      size_t j = i;
      while (j < ps.size() && ps[j].tok != Tok::kImEnd) ++j;
      if (j == ps.size() && i == ps.size()) {
        d.generation_prompt = true;
        break;
      }
      if (j == ps.size()) return err("assistant turn without <|im_end|>");
      std::vector<Piece> turn(ps.begin() + i, ps.begin() + j + 1);
      AssistantParse a = ParseAssistantPieces(turn, EndOffset(turn), json(), {});
      if (!a.ok()) {
        return InvalidArgument("dialog: assistant turn at byte " + std::to_string(turn.front().offset) + ": " +
                               ParseFailureKindName(a.failure->kind) + ": " + a.failure->message);
      }
      d.messages.push_back(std::move(a.message));
      i = j + 1;
      continue;
    }
    std::string body;
    if (i < ps.size() && ps[i].tok == Tok::kText) body = ps[i++].text;
    if (i >= ps.size() || ps[i].tok != Tok::kImEnd) return err("expected <|im_end|> to close the " + role + " turn");
    ++i;
    if (head == Tok::kImUser) {
      d.messages.push_back(Message{.role = "user", .content = body});
    } else if (role == "tool_declare") {
      auto j = ParseJson(body, "tool_declare turn");
      if (!j.ok()) return InvalidArgument("dialog: " + j.status().message());
      d.tools = std::move(*j);
    } else if (role == "system") {
      d.messages.push_back(Message{.role = "system", .content = body});
    } else {
      constexpr std::string_view kReturn = "## Return of ";
      size_t nl = body.find('\n');
      if (body.compare(0, kReturn.size(), kReturn) != 0 || nl == std::string::npos)
        return InvalidArgument("dialog: tool turn \"" + role + "\": expected \"## Return of functions.NAME:IDX\\n\" first");
      Message m;
      m.role = "tool";
      m.name = role;
      m.tool_call_id = body.substr(kReturn.size(), nl - kReturn.size());
      m.content = body.substr(nl + 1);
      d.messages.push_back(std::move(m));
    }
  }
  return d;
}

}  // namespace

AssistantParse ParseAssistantTokens(const Tokenizer& tokenizer, std::span<const int> ids, const json& tools,
                                    const ParseOptions& opt) {
  std::optional<ParseFailure> bad;
  std::vector<Piece> ps = PiecesFromTokens(tokenizer, ids, &bad);
  if (bad) {
    AssistantParse r;
    r.message.role = "assistant";
    r.failure = std::move(bad);
    return r;
  }
  return ParseAssistantPieces(ps, EndOffset(ps), tools, opt);
}

AssistantParse ParseAssistantText(std::string_view text, const json& tools, const ParseOptions& opt) {
  return ParseAssistantPieces(PiecesFromText(text), text.size(), tools, opt);
}

Expected<ParsedDialog> ParseDialogTokens(const Tokenizer& tokenizer, std::span<const int> ids) {
  std::optional<ParseFailure> bad;
  std::vector<Piece> ps = PiecesFromTokens(tokenizer, ids, &bad);
  if (bad) return InvalidArgument("dialog: " + bad->message);
  return ParseDialogPieces(ps);
}

Expected<ParsedDialog> ParseDialogText(std::string_view text) { return ParseDialogPieces(PiecesFromText(text)); }

}  // namespace k2::text
