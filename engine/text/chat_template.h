// The Kimi-K2 chat template: renders k2::Message dialogs and tool declarations to text, token ids and
// a loss mask, and parses model output (one assistant turn, or a whole rendered dialog) back.
//
// Layout (DESIGN.md): tools first as <|im_system|>tool_declare<|im_middle|>TOOLS_JSON<|im_end|>
// (compact JSON, keys sorted); a default system turn when the dialog has none; then
// <|im_system|>system / <|im_user|>user / <|im_assistant|>assistant <|im_middle|> content <|im_end|>;
// assistant tool calls after the content: <|tool_calls_section_begin|> then per call
// <|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>ARGS<|tool_call_end|>, then
// <|tool_calls_section_end|>; IDX counts calls across the dialog from 0. Tool results:
// <|im_system|>NAME<|im_middle|>## Return of functions.NAME:IDX\nCONTENT<|im_end|>.
//
// Special tokens exist only where the template puts them: message text is encoded as ordinary bytes,
// so "<|im_end|>" typed by a user (or returned by a tool) cannot end a turn.
//
// Thread safety: free functions over immutable inputs; safe to call concurrently. Nothing throws:
// rendering returns Status (bad dialog), parsing returns a structured failure (bad model output).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/message.h"
#include "core/status.h"
#include "engine/text/tokenizer.h"

namespace k2::text {

// The template's special tokens, by name.
inline constexpr const char* kImEnd = "<|im_end|>";
inline constexpr const char* kImUser = "<|im_user|>";
inline constexpr const char* kImAssistant = "<|im_assistant|>";
inline constexpr const char* kImSystem = "<|im_system|>";
inline constexpr const char* kImMiddle = "<|im_middle|>";
inline constexpr const char* kSectionBegin = "<|tool_calls_section_begin|>";
inline constexpr const char* kSectionEnd = "<|tool_calls_section_end|>";
inline constexpr const char* kCallBegin = "<|tool_call_begin|>";
inline constexpr const char* kArgBegin = "<|tool_call_argument_begin|>";
inline constexpr const char* kCallEnd = "<|tool_call_end|>";

inline constexpr const char* kDefaultSystemPrompt = "You are Kimi, an AI assistant created by Moonshot AI.";

struct RenderOptions {
  bool add_generation_prompt = false;  // append <|im_assistant|>assistant<|im_middle|>
  std::string default_system = kDefaultSystemPrompt;  // used when the first message is not "system"
};

struct RenderedChat {
  std::string text;                // special tokens spelled out
  std::vector<int> tokens;         // empty when rendered without a tokenizer
  std::vector<uint8_t> loss_mask;  // per token: 1 on the assistant's content, tool-call sections and
                                   // the <|im_end|> of its turns; 0 on headers, prompts, tool results
  std::vector<Message> messages;   // the dialog as rendered (canonical call ids, tool names filled)
};

// The dialog with canonical tool-call ids: the k-th call of the dialog (from 0) is
// "functions.NAME:k"; tool results that answered an earlier id now answer its canonical one, and a tool
// message without `name` gets the function name. InvalidArgument names messages[i] for: unknown role,
// tool_calls outside assistant, empty or malformed function name (whitespace or ':'), a tool result
// whose tool_call_id matches no earlier call and is not itself "functions.NAME:IDX".
Expected<std::vector<Message>> CanonicalizeToolCallIds(const std::vector<Message>& messages);

// The compact declaration of an OpenAI tools array: per tool only the name and a parameter schema
// reduced to type, properties, items, enum and required (descriptions, patterns, formats, bounds and
// defaults dropped: for small-context models, names must carry the meaning). Entries that are not
// function tools pass through unchanged. Used by RenderChat when the tokenizer asks for "compact".
json CompactToolDeclarations(const json& tools);

// Renders `messages` with `tools` (a JSON array of OpenAI tool objects, or null for none). With a
// tokenizer, also the token ids and loss mask (InvalidArgument when the tokenizer lacks a template
// special token).
Expected<RenderedChat> RenderChat(const std::vector<Message>& messages, const json& tools,
                                  const Tokenizer* tokenizer, const RenderOptions& opt = {});

// ---- parsing model output ------------------------------------------------------------------------

enum class ParseFailureKind {
  kUnexpectedSpecial,      // a special token that cannot appear here (<|im_user|>, a nested section, ...)
  kUnclosedSection,        // <|tool_calls_section_begin|> never closed
  kUnclosedCall,           // <|tool_call_begin|> without <|tool_call_end|>
  kMissingArgumentMarker,  // a call without <|tool_call_argument_begin|>
  kBadCallId,              // call id is not "functions.NAME:IDX"
  kCallIndexMismatch,      // IDX differs from the expected running index
  kDuplicateCallId,        // the same id twice in one turn
  kUnknownTool,            // NAME is not among the declared tools
  kInvalidArguments,       // arguments are not JSON
  kArgumentsNotObject,     // arguments are JSON but not an object
  kEmptySection,           // a tool-call section with no calls
  kTextInSection,          // non-whitespace text between calls inside the section
  kTextAfterSection,       // non-whitespace text between the section end and <|im_end|>
  kTextAfterEnd,           // anything after <|im_end|>
  kMissingEnd,             // no <|im_end|> (only when ParseOptions::require_end)
  kInvalidUtf8,            // content or arguments are not valid UTF-8
};
const char* ParseFailureKindName(ParseFailureKind k);  // "unclosed_section", ...

struct ParseFailure {
  ParseFailureKind kind;
  std::string message;  // what was found and what was expected
  size_t offset = 0;    // byte offset in the output text (special tokens spelled out)
};

struct ParseOptions {
  bool require_end = false;              // output must end with <|im_end|> (false: it may be cut off)
  std::optional<int> first_call_index;   // when set, call IDX must run first_call_index, +1, ...
};

// The assistant message (role "assistant", content, tool_calls with id/name/raw arguments) or, on
// failure, what was parsed before the failure plus the failure.
struct AssistantParse {
  Message message;
  std::optional<ParseFailure> failure;
  bool ok() const { return !failure.has_value(); }
};

// Output of one assistant turn: what follows <|im_assistant|>assistant<|im_middle|>, up to and
// including <|im_end|> (it may be missing, see require_end). `tools` (array of tool objects, or null)
// declares the known names; null accepts any name.
AssistantParse ParseAssistantTokens(const Tokenizer& tokenizer, std::span<const int> ids, const json& tools,
                                    const ParseOptions& opt = {});
// The same on text, where the template's special-token strings are taken as the tokens (text cannot
// tell a typed "<|im_end|>" from the token: prefer ParseAssistantTokens).
AssistantParse ParseAssistantText(std::string_view text, const json& tools, const ParseOptions& opt = {});

// A whole rendered dialog back into tools and messages (the inverse of RenderChat on its tokens).
// InvalidArgument naming the byte offset when the tokens do not follow the template.
struct ParsedDialog {
  json tools;                      // null when there was no tool_declare turn
  std::vector<Message> messages;
  bool generation_prompt = false;  // ended with an open <|im_assistant|>assistant<|im_middle|>
};
Expected<ParsedDialog> ParseDialogTokens(const Tokenizer& tokenizer, std::span<const int> ids);
Expected<ParsedDialog> ParseDialogText(std::string_view text);

// Names of the declared tools: {"type":"function","function":{"name":..}} or MCP-style {"name":..}.
// InvalidArgument naming tools[i] when an entry has neither.
Expected<std::vector<std::string>> DeclaredToolNames(const json& tools);

}  // namespace k2::text
