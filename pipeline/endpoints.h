// Separate model endpoints per role — agent, user, judge, critic — as τ²-bench's --agent-llm /
// --user-llm: run-config sections "agent_llm", "user_llm", "judge_llm", "critic_llm" each name a model,
// a base URL and the environment variable holding the key; any field left empty falls back to the
// shared "openai" section (retries, timeouts and rate limits always come from there).
#pragma once

#include <string>

#include "agents/http_policy.h"
#include "core/config.h"

namespace k2::pipeline {

struct EndpointConfig {
  std::string base_url;     // "" = the openai section's (or the URL of --policy/--user/--judge/--critic openai:URL)
  std::string model;        // "" = the openai section's
  std::string api_key_env;  // "" = the openai section's
  template <class V>
  void Visit(V& v) {
    v("base_url", base_url, "OpenAI-compatible base URL of this role (empty: openai.base_url or the flag's URL)");
    v("model", model, "model name of this role (empty: openai.model)");
    v("api_key_env", api_key_env, "environment variable with this role's API key (empty: openai.api_key_env)");
  }
};

// The HTTP policy config of `role` ("agent", "user", "judge", "critic"): the "openai" section overlaid
// with the role's section "<role>_llm", then `url` (from a flag's openai:URL) when not empty.
// Errors name the section and field.
Expected<agents::HttpPolicyConfig> EndpointFor(const json& run_config, const std::string& role, const std::string& url);

}  // namespace k2::pipeline
