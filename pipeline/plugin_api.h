// The plugin entry point: a shared library adds environment kinds and reward types to the k2gym binary
// that loads it (`--plugin lib.so`) without any core file being edited. docs/byo.md shows one.
//
//   #include "pipeline/plugin_api.h"
//   K2GYM_PLUGIN_EXPORT int k2gym_plugin_init(const k2gym_plugin_host* host) {
//     auto& envs = *static_cast<k2::agents::EnvRegistry*>(host->env_registry);
//     return envs.Register({.name = "mine", ...}, factory).ok() ? 0 : 1;
//   }
//
// The host hands over its own registries: a plugin must not use EnvRegistry::Global() or
// rewards::RegisterReward of its own copy of the libraries. Plugins are built against the same headers
// and compiler as the binary (find_package(k2gym) gives both); the ABI version guards the struct.
#pragma once

#include <stdint.h>

#define K2GYM_PLUGIN_ABI 1

#ifdef __cplusplus
#define K2GYM_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))
#else
#define K2GYM_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct k2gym_plugin_host {
  int32_t abi;              // K2GYM_PLUGIN_ABI of the host
  const char* version;      // k2gym version string
  void* env_registry;       // k2::agents::EnvRegistry* (the host's global registry)
  // Registers a reward type: `factory` points to a k2::rewards::RewardFactory (copied). Returns 0 when
  // registered, 1 when the type name is taken.
  int (*register_reward)(const char* type, const void* factory);
  char* error;              // a plugin may write why it failed here (NUL-terminated, < error_size)
  uint32_t error_size;
} k2gym_plugin_host;

// Returns 0 on success. Called once per process per library.
typedef int (*k2gym_plugin_init_fn)(const k2gym_plugin_host* host);

#ifdef __cplusplus
}
#endif
