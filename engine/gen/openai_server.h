// OpenAI-compatible chat completions over the Generator: POST /v1/chat/completions (messages, tools,
// tool_choice, temperature, top_p, top_k, max_tokens, n, stop, seed, logprobs; JSON or SSE stream;
// tool_calls in responses; usage), GET /v1/models, GET /health — served by core/http (Boost.Beast).
//
// Bad requests get a 4xx with {"error": {"message", "type", "param", "code"}} naming the field; size
// limits and deadlines are the http::Server's (413/431/408). Model output that does not follow the
// template is returned as plain content with "k2gym_failure": "kind: detail" on the choice.
// Thread safety: Handle runs on many server workers at once; the Generator batches their requests.
#pragma once

#include <memory>
#include <string>

#include "core/http/server.h"
#include "engine/gen/generator.h"
#include "engine/text/tokenizer.h"

namespace k2::gen {

struct OpenAiOptions {
  std::string model_name = "k2gym";
  int64_t default_max_tokens = 256;
  int64_t max_n = 8;
  http::ServerOptions http;  // bind 127.0.0.1, port, workers, body/header limits
};

class OpenAiService {
 public:
  // Not owned; both must outlive the service. The tokenizer must have the chat template's tokens.
  OpenAiService(Generator* gen, const text::Tokenizer* tok, OpenAiOptions opt);
  http::Response Handle(const http::Request& req);
  Expected<std::unique_ptr<http::Server>> Listen();

 private:
  http::Response ChatCompletions(const http::Request& req);
  Generator* gen_;
  const text::Tokenizer* tok_;
  OpenAiOptions opt_;
  std::atomic<int64_t> next_id_{1};
};

}  // namespace k2::gen
