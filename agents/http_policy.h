// HttpPolicy: a Policy over an OpenAI-compatible /chat/completions endpoint (k2gym serve, vLLM, SGLang,
// hosted APIs) with libcurl: retries with exponential backoff, timeouts, a client-side rate limit, SSE.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agents/policy.h"
#include "core/config.h"

namespace k2::agents {

// Run-config section "openai" (registered in apps/cmd_agents.cc); `--policy openai:URL` sets base_url.
struct HttpPolicyConfig {
  std::string base_url;                    // "http://127.0.0.1:8000/v1": POSTs base_url + "/chat/completions"
  std::string model = "default";
  std::string api_key_env = "OPENAI_API_KEY";  // environment variable holding the key ("" or unset: no auth)
  int max_retries = 3;                     // retries after the first attempt (retryable failures only)
  double backoff_s = 0.5;                  // first retry delay; doubles per retry
  double backoff_max_s = 20;               // cap of one delay (and of a server's Retry-After)
  double timeout_s = 120;                  // whole request
  double connect_timeout_s = 10;
  double rate_limit_rps = 0;               // requests started per second across threads; 0 = unlimited
  bool stream = false;                     // request SSE (stream: true) and assemble the deltas
  template <class V>
  void Visit(V& v) {
    v("base_url", base_url, "OpenAI-compatible base URL (…/v1); --policy openai:URL sets it");
    v("model", model, "model name sent in the request");
    v("api_key_env", api_key_env, "environment variable that holds the API key (empty: no Authorization header)");
    v("max_retries", max_retries, "retries of a failed request (timeouts, 429, 5xx, malformed replies)", {.min = 0, .max = 100});
    v("backoff_s", backoff_s, "delay before the first retry, doubled each retry (s)", {.min = 0, .max = 3600});
    v("backoff_max_s", backoff_max_s, "maximum delay between retries, also caps Retry-After (s)", {.min = 0, .max = 3600});
    v("timeout_s", timeout_s, "timeout of one request (s)", {.min = 0.001, .max = 86400});
    v("connect_timeout_s", connect_timeout_s, "connect timeout (s)", {.min = 0.001, .max = 3600});
    v("rate_limit_rps", rate_limit_rps, "maximum requests started per second, all threads together (0 = no limit)",
      {.min = 0, .max = 1e6});
    v("stream", stream, "use server-sent events (stream: true) and assemble the deltas");
  }
};

// Time source and sleeper, injectable so tests check backoff and rate limiting without waiting.
struct HttpClock {
  std::function<double()> now;           // seconds, monotonic
  std::function<void(double)> sleep;     // seconds
  static HttpClock Real();
};

// Failure kinds (PolicyTurn::retries, errors, stats): timeout, connect, http_429, http_5xx (as
// "http_503"...), http_4xx (not retried), malformed_response, truncated_stream; malformed_tool_call is a
// model-output failure (PolicyTurn::failure), never retried.
// Thread-safe: Act runs concurrently (one curl handle per call). Error only when every attempt failed or
// the server refused the request (4xx): Unavailable/InvalidArgument naming the kind, attempts and detail.
class HttpPolicy : public Policy {
 public:
  // Reads the API key from config.api_key_env now. InvalidArgument for an empty/non-http base_url.
  static Expected<std::unique_ptr<HttpPolicy>> Create(const HttpPolicyConfig& config, HttpClock clock = HttpClock::Real());
  ~HttpPolicy() override;
  std::string name() const override { return "openai:" + config_.base_url; }
  Expected<PolicyTurn> Act(const PolicyRequest& request) override;

  // The request body for `request` (exposed for tests and --dry-run).
  json RequestBody(const PolicyRequest& request) const;

  struct Stats {
    int64_t requests = 0, attempts = 0, succeeded = 0, failed = 0;
    std::map<std::string, int64_t> failures;  // by kind, every failed attempt
  };
  Stats stats() const;

 private:
  HttpPolicy(HttpPolicyConfig config, std::string api_key, HttpClock clock);
  void WaitForRateLimit();
  void CountFailure(const std::string& kind);

  HttpPolicyConfig config_;
  std::string api_key_;
  HttpClock clock_;
  mutable std::mutex mu_;
  double next_slot_ = 0;
  Stats stats_;
};

// Parses one /chat/completions JSON reply into a turn. Error (kind "malformed_response: ...") when it is
// not an object with choices[0].message; bad tool-call arguments only set turn.failure.
Expected<PolicyTurn> ParseChatCompletion(const json& reply);
// Assembles an SSE body ("data: {...}\n\n" ... "data: [DONE]") into the same turn. Error kind
// "truncated_stream" when [DONE] never came, "malformed_response" for a frame that is not JSON.
Expected<PolicyTurn> ParseChatCompletionStream(const std::string& body);

}  // namespace k2::agents
