// The run name given on the command line (`k2gym --name NAME`): CreateRun (core/store.h) uses it instead
// of the command's own name for every run this process creates (one command per process).
#pragma once

#include <string>

namespace k2 {

void SetRunNameOverride(std::string name);  // "" = the command's default name

}  // namespace k2
