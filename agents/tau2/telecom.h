// What the telecom domain's two files share: the user's phone (user_db.toml with τ²'s device and
// surroundings defaults) and the user's tools on it. Internal to agents/tau2.
#pragma once

#include <string>

#include "agents/tau2/domain.h"

namespace k2::agents::tau2::detail {

// τ²'s TelecomUserDB from the parsed user_db.toml: every device and surroundings field τ²'s models
// default, overridden by the file (deep merge). Error: the file's device/surroundings is not a table.
Expected<json> TelecomUserDb(const json& file_db, const std::string& path);

// Adds the keys of `defaults` that `record` lacks (τ²'s pydantic defaults; present keys win).
void FillDefaults(json& record, const json& defaults);

// The user's phone tools (status bar, airplane mode, data, roaming, APN, SIM, network mode, Wi-Fi,
// VPN, apps, MMS, reboot, payments) and the user-side set-up and assertion functions.
void AddTelecomUserTools(Domain& d);

}  // namespace k2::agents::tau2::detail
