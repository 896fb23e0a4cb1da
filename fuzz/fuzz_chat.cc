// libFuzzer harness: chat-template parsing of model output (engine/text/chat_template): one assistant
// turn with tool calls (sections, call ids, JSON arguments) and whole rendered dialogs. Input: first
// byte picks the parser and options, the rest is the model's text.
#include <cstddef>
#include <cstdint>

#include "core/json.h"
#include "engine/text/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const k2::json tools = k2::json::parse(
      R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}}}}},
          {"type":"function","function":{"name":"search","parameters":{"type":"object"}}}])");
  const uint8_t mode = data[0];
  if (mode & 4) {
    auto d = k2::text::ParseDialogText(text);
    (void)d;
    return 0;
  }
  k2::text::ParseOptions opt;
  opt.require_end = mode & 1;
  if (mode & 2) opt.first_call_index = 0;
  auto p = k2::text::ParseAssistantText(text, (mode & 8) ? k2::json(nullptr) : tools, opt);
  if (!p.ok()) (void)k2::text::ParseFailureKindName(p.failure->kind);
  return 0;
}
