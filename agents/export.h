// Trajectory output: the store table (module "agents" migrations), OpenAI chat-format JSONL with tools
// (and its validator), and Kimi-K2 template tokens with assistant loss masks for SFT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agents/trajectory.h"
#include "core/json.h"
#include "core/status.h"

namespace k2 {
class Db;
struct Migrations;
namespace text {
class Tokenizer;
}
}  // namespace k2

namespace k2::agents {

// Table agent_trajectories(id PRIMARY KEY, run, task_id, domain, policy, user_sim, seed, trial,
// end_reason, kept (NULL = not judged), reward, turns, n_tokens, data = Trajectory::ToJson text).
const Migrations& AgentMigrations();
// Upserts all trajectories in one transaction (a failure leaves the table as it was). `run` may be 0.
// kept: from provenance.judge.keep when present.
Status SaveTrajectories(Db* db, int64_t run, const std::vector<Trajectory>& trajectories);
// In id order; kept_only skips trajectories the judge discarded.
Expected<std::vector<Trajectory>> LoadTrajectories(Db* db, bool kept_only = false);
// The trajectories stored under one run (what a resumed simulate has already done), in id order.
Expected<std::vector<Trajectory>> LoadRunTrajectories(Db* db, int64_t run);

// One OpenAI fine-tuning line: {"messages": [...], "tools": [...]} (tools omitted when empty).
json OpenAIChatLine(const Trajectory& t);
// Checks a line against the OpenAI chat format with tools: roles, string contents, tool_calls entries
// {id, type: "function", function: {name, arguments: string}}, every tool message answering an earlier
// call id, tools entries {type: "function", function: {name, parameters: object}}, called names
// declared. The error names the JSON pointer ("/messages/3/tool_calls/0/function/arguments").
Status ValidateOpenAIChatLine(const json& line);

// Kimi-K2 chat template (engine/text RenderChat) of the conversation with its tools:
// {"id", "tokens": [...], "loss_mask": [...]}; loss_mask = 1 on assistant turns.
Expected<json> KimiTokensLine(const Trajectory& t, const text::Tokenizer& tokenizer);

// Writes one JSON line per trajectory (canonical JSON: sorted keys), atomically. Byte-identical for
// identical trajectories.
Status WriteOpenAIJsonl(const std::string& path, const std::vector<Trajectory>& trajectories);
Status WriteKimiTokensJsonl(const std::string& path, const std::vector<Trajectory>& trajectories,
                            const text::Tokenizer& tokenizer);

}  // namespace k2::agents
