// Loading plugins (pipeline/plugin_api.h): dlopen a shared library and call its k2gym_plugin_init with
// the host's registries. A library loads once per process (a second load of the same path is a no-op).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace k2::pipeline {

// Errors name the path: the library cannot be opened (dlerror), has no k2gym_plugin_init, or its init
// returned non-zero (with the message it wrote).
Status LoadPlugin(const std::string& path);
// Paths loaded so far, in order.
std::vector<std::string> LoadedPlugins();

}  // namespace k2::pipeline
