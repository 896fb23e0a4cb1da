// Agents: a system prompt (role + the domain's policy rules + style) and a toolset (a role's share of
// the domain's tools, optionally tools of a sibling sub-domain and unrelated distractors). Thousands are
// drawn from a catalog, each with a stable id. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "toolgen/synth/synth.h"

namespace k2::toolgen::synth {

struct Agent {
  std::string id;      // "agent-<12 hex>", stable for (seed, domain, index)
  std::string domain;  // its own domain path
  std::string role, style;
  std::string system_prompt;
  std::vector<std::string> tools;         // "<domain path>::<tool name>", own domain first
  std::vector<std::string> cross_domain;  // subset of tools from a sibling sub-domain
  std::vector<std::string> distractors;   // subset of tools from another category
  bool operator==(const Agent&) const = default;
};

struct AgentOptions {
  int per_domain = 2;
  int cross_domain_tools = 2;
  int distractor_tools = 2;
};

std::vector<Agent> SynthesizeAgents(const Catalog& c, uint64_t seed, const AgentOptions& o);

json ToJson(const Agent& a);
Expected<Agent> AgentFromJson(const json& j, const std::string& where);

}  // namespace k2::toolgen::synth
