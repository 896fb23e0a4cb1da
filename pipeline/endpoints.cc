// Per-role endpoint resolution (pipeline/endpoints.h).
#include "pipeline/endpoints.h"

namespace k2::pipeline {

Expected<agents::HttpPolicyConfig> EndpointFor(const json& run_config, const std::string& role, const std::string& url) {
  K2_ASSIGN_OR_RETURN(agents::HttpPolicyConfig base, config::Get<agents::HttpPolicyConfig>(run_config, "openai"));
  K2_ASSIGN_OR_RETURN(EndpointConfig e, config::Get<EndpointConfig>(run_config, role + "_llm"));
  if (!e.base_url.empty()) base.base_url = e.base_url;
  if (!e.model.empty()) base.model = e.model;
  if (!e.api_key_env.empty()) base.api_key_env = e.api_key_env;
  if (!url.empty()) base.base_url = url;
  return base;
}

}  // namespace k2::pipeline
