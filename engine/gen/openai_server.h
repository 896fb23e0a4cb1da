// OpenAI-compatible chat completions over the Generator: POST /v1/chat/completions (model, messages
// incl. the developer role, tools, tool_choice, response_format, temperature, top_p, top_k, max_tokens,
// n, stop, seed, logprobs/top_logprobs, logit_bias, frequency/presence penalties; JSON or SSE stream;
// tool_calls in responses; usage), GET /v1/models[/{id}], GET /health — served by core/http.
//
// Every error, including those the HTTP layer raises (413/429/431/408/500), is OpenAI's error object
// {"error": {"message", "type", "param", "code"}}; request errors name the field (invalid UTF-8 too).
// Model output that does not follow the template is returned as plain content with
// "k2gym_failure": "kind: detail" on the choice. A request whose client disconnects is cancelled.
// Token fidelity: the server remembers the token ids of the completions it returned (a bounded cache
// keyed by the message as sent: content and tool calls) and renders such an assistant message back as
// those ids, so a multi-turn dialog continues on the tokens the model generated — as an in-process
// engine session does — even where the text does not re-tokenize to them (malformed or non-canonical
// output). Other messages are rendered by the chat template.
// Thread safety: Handle runs on many server workers at once; the Generator batches their requests.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/http/server.h"
#include "engine/gen/generator.h"
#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"

namespace k2::gen {

struct OpenAiOptions {
  std::string model_name = "k2gym";
  std::vector<std::string> aliases;  // further names a request's `model` may use
  int64_t default_max_tokens = 256;
  int64_t max_n = 8;
  http::ServerOptions http;  // bind 127.0.0.1, port, workers, body/header limits, keep-alive
};

class OpenAiService {
 public:
  // Not owned; both must outlive the service. The tokenizer must have the chat template's tokens.
  OpenAiService(Generator* gen, const text::Tokenizer* tok, OpenAiOptions opt);
  http::Response Handle(const http::Request& req);
  Expected<std::unique_ptr<http::Server>> Listen();

 private:
  http::Response ChatCompletions(const http::Request& req);
  bool Serves(const std::string& name) const;
  // The completion cache (see above): Remember after a completion, Render for a request.
  void Remember(const Message& m, const std::vector<int32_t>& tokens);
  Expected<text::RenderedChat> Render(const std::vector<Message>& messages, const json& tools) const;
  Generator* gen_;
  const text::Tokenizer* tok_;
  OpenAiOptions opt_;
  std::atomic<int64_t> next_id_{1};
  mutable std::mutex out_mu_;
  std::map<std::string, std::vector<int32_t>> outputs_;  // message key -> generated ids (ending in <|im_end|>)
  std::deque<std::string> output_order_;                 // oldest first, bounded by kRememberedOutputs
};

}  // namespace k2::gen
