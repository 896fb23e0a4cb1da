// Dual control in tree: a telecom support domain where the USER owns a phone (airplane mode, mobile
// data, roaming) and the agent owns the account (lines, roaming, suspensions), after tau2's telecom.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/env.h"
#include "toolgen/synth/tasks.h"

namespace k2::agents {

// The domain path of dual-control tasks (toolgen::synth::Task::domain). Not a toolgen catalog domain:
// its tools live here, and SyntheticEnv runs such tasks with these tables (agent tools as the action
// space, user tools as Env::UserTools) and DualControlCall as the executor.
inline constexpr const char* kDualControlDomain = "dual/telecom_device";

// The shared state of one episode (also Env::State(), so the final-state hash covers the user's side):
//   {"today": str, "customers": {ID: {name, phone, email, line_id}},
//    "lines": {ID: {status: "active"|"suspended", balance: number, roaming_enabled: bool}},
//    "device": {airplane_mode, mobile_data, roaming: bool, location: "home"|"abroad"}}
// The phone has service iff the line is active, airplane mode is off, mobile data is on, and, abroad,
// both the line's roaming_enabled and the device's roaming are on.
bool DualControlConnected(const json& db);

// Agent tools: find_customer_by_phone{phone}, get_line_details{line_id}, check_network_status{line_id},
// resume_line{line_id}, enable_roaming{line_id}. User tools (dual control): check_status_bar{},
// toggle_airplane_mode{}, toggle_mobile_data{}, toggle_roaming{}. Compiled once; immutable.
std::shared_ptr<const ToolTable> DualControlAgentTools();
std::shared_ptr<const ToolTable> DualControlUserTools();

// Executes one schema-valid call on `db` (mutated in place). `user`: a user-owned tool. Unknown tools and
// references (no such customer/line) are tool errors (is_error), never a Status. Deterministic.
ToolOutcome DualControlCall(json& db, bool user, const std::string& tool, const json& arguments);

// The agent's system prompt (role, the rules, what the agent cannot do: the user's phone).
std::string DualControlSystemPrompt(const json& db);

// `count` tasks, deterministic per seed. Each draws a customer and 1-3 faults: airplane mode on / mobile
// data off (the user must toggle them: gold actions with requestor "user"), the line suspended with
// nothing owed (the agent resumes it) or with a balance (a refusal: resume_line is the forbidden action,
// the balance must be communicated), travelling abroad (agent enable_roaming + user toggle_roaming).
// Gold plans end with check_network_status; expected_hash is the state after the gold actions (tested
// to have service on every non-refusal task).
std::vector<toolgen::synth::Task> GenerateDualControlTasks(uint64_t seed, int count);

}  // namespace k2::agents
