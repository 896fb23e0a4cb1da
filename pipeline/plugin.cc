// dlopen-based plugin loading (pipeline/plugin.h). Libraries are never unloaded: their factories live in
// the registries until exit.
#include "pipeline/plugin.h"

#include <dlfcn.h>

#include <mutex>

#include "agents/env.h"
#include "pipeline/plugin_api.h"
#include "rewards/reward.h"

namespace k2::pipeline {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
std::vector<std::string>& Loaded() {
  static auto* v = new std::vector<std::string>();
  return *v;
}

int RegisterRewardThunk(const char* type, const void* factory) {
  if (!type || !factory) return 1;
  return rewards::RegisterReward(type, *static_cast<const rewards::RewardFactory*>(factory)) ? 0 : 1;
}

}  // namespace

Status LoadPlugin(const std::string& path) {
  std::lock_guard<std::mutex> lock(Mu());
  for (const auto& p : Loaded())
    if (p == path) return Status::Ok();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    return InvalidArgument("--plugin " + path + ": cannot load: " + (e ? e : "unknown error"));
  }
  auto init = reinterpret_cast<k2gym_plugin_init_fn>(dlsym(h, "k2gym_plugin_init"));
  if (!init) return InvalidArgument("--plugin " + path + ": no k2gym_plugin_init entry point (pipeline/plugin_api.h)");
  char err[512] = {0};
  k2gym_plugin_host host{};
  host.abi = K2GYM_PLUGIN_ABI;
  host.version = "k2gym";
  host.env_registry = &agents::EnvRegistry::Global();
  host.register_reward = &RegisterRewardThunk;
  host.error = err;
  host.error_size = sizeof err;
  int rc = init(&host);
  if (rc != 0)
    return InvalidArgument("--plugin " + path + ": k2gym_plugin_init failed (" + std::to_string(rc) + ")" +
                           (err[0] ? std::string(": ") + err : std::string()));
  Loaded().push_back(path);
  return Status::Ok();
}

std::vector<std::string> LoadedPlugins() {
  std::lock_guard<std::mutex> lock(Mu());
  return Loaded();
}

}  // namespace k2::pipeline
