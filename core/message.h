// Chat messages in the OpenAI format: the one message type of engine (chat template), agents
// (episodes), rewards and training. Tool-call arguments are kept as the raw text the model produced
// (it may not be valid JSON: model output is data), with the parsed value alongside when it parses.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace k2 {

struct ToolCall {
  std::string id;         // "functions.NAME:IDX" in the Kimi-K2 template
  std::string name;       // function name
  std::string arguments;  // raw JSON text of the arguments object
  // The parsed arguments, or nullopt when `arguments` is not a JSON object.
  std::optional<json> ParsedArguments() const;
  bool operator==(const ToolCall&) const = default;
};

struct Message {
  std::string role;                 // "system", "user", "assistant", "tool"
  std::string content;
  std::vector<ToolCall> tool_calls; // assistant only
  std::string tool_call_id;         // tool only: the id of the call this answers
  std::string name;                 // tool only: the function name (optional in OpenAI's format)
  bool operator==(const Message&) const = default;
};

// OpenAI chat format: {"role", "content", "tool_calls": [{"id", "type": "function",
// "function": {"name", "arguments"}}], "tool_call_id", "name"}. Empty optional fields are omitted.
json ToJson(const Message& m);
json ToJson(const std::vector<Message>& ms);
// Strict: `where` names the message in errors ("messages[3].tool_calls[0].function.name: expected string").
Expected<Message> MessageFromJson(const json& j, const std::string& where);
Expected<std::vector<Message>> MessagesFromJson(const json& j, const std::string& where);

}  // namespace k2
