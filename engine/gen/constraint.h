// Constrained decoding: a JSON Schema subset compiled to a character automaton, and TokenConstraints
// that mask the ids whose bytes the automaton (or the chat template's tool-call section) rejects —
// response_format json_object / json_schema, and tool_choice required / a named function.
//
// The automaton emits compact JSON (no whitespace), objects with every declared property in declared
// order, strings of printable ASCII without escapes, integers of <= 9 digits and numbers with <= 6
// decimals, and bounded strings/arrays/depth (so every output ends within a bounded number of bytes).
// Supported keywords: type (one), properties, required, additionalProperties, items, minItems,
// maxItems, minLength, maxLength, enum, const, and the annotations (title, description, default,
// examples, $schema, $id, $comment). Any other keyword is an InvalidArgument naming it, so whatever
// the constraint lets through validates against the schema.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "engine/gen/generator.h"

namespace k2::text {
class Tokenizer;
}

namespace k2::gen {

struct JsonNode;  // (constraint.cc)

// `schema` null = any JSON object (json_object mode). `where` prefixes errors ("response_format...").
Expected<std::shared_ptr<const JsonNode>> CompileJsonSchema(const json& schema, const std::string& where);

// Output = one JSON value of `node`, then <|im_end|>.
std::function<std::unique_ptr<TokenConstraint>()> JsonConstraint(std::shared_ptr<const JsonNode> node,
                                                                const text::Tokenizer* tok);

// Output = exactly one tool call of one of `tools` (name -> arguments node) in the chat template's
// section: <|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>
// ARGS<|tool_call_end|><|tool_calls_section_end|><|im_end|>, IDX = `call_index`.
std::function<std::unique_ptr<TokenConstraint>()> ToolCallConstraint(
    std::vector<std::pair<std::string, std::shared_ptr<const JsonNode>>> tools, int call_index,
    const text::Tokenizer* tok);

// For tests: whether `text` is a complete output of the automaton for `node`.
bool JsonAutomatonAccepts(const std::shared_ptr<const JsonNode>& node, const std::string& text);

}  // namespace k2::gen
