// The k2gym command dispatcher. Each apps/cmd_*.cc registers its subcommands with K2_COMMAND; main
// parses the global options, resolves the config and runs the chosen command's action.
//
// Exit codes: 0 ok, 1 runtime failure, 2 usage or config error; each failure prints one line
// "k2gym: error: <what, where, what was expected>" to stderr.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/core.h"

namespace k2::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// Options every command accepts (before or after the subcommand name).
struct Globals {
  std::string config_path;          // --config FILE.json
  std::vector<std::string> sets;    // --set key.path=value (repeatable)
  std::string db_path = "k2gym.db"; // --db PATH
  std::string run_name;             // --name: the name of the run this command creates
  uint64_t seed = 0;                // --seed
  int verbose = 0;                  // -v (repeatable)
  bool quiet = false;               // --quiet
  bool deterministic = false;       // --deterministic (in effect through core/determinism.h)
  bool json = false;                // --json: machine-readable output on stdout
};

// What a command's action gets.
struct Context {
  Globals g;
  json config;  // resolved run config (every section, defaults filled)
  std::vector<std::string> argv;  // the command line as given (argv[0] first): resume hints repeat it

  // Opens the store at --db (creating it); the error names the path.
  Expected<std::unique_ptr<Db>> OpenDb() const;
  // Prints `j` (pretty) to stdout.
  void PrintJson(const json& j) const;
};

using Action = std::function<int(Context&)>;

// A command registers its CLI11 subcommand(s) under `parent` and sets `*action` in the callback of the
// chosen subcommand (CLI11 runs it after parsing).
using Setup = std::function<void(CLI::App& parent, Context& ctx, Action* action)>;

void RegisterCommand(std::string name, Setup setup);

struct CommandRegistrar {
  CommandRegistrar(const char* name, Setup setup) { RegisterCommand(name, std::move(setup)); }
};
#define K2_COMMAND(name, setup) static ::k2::app::CommandRegistrar K2_CONCAT_(k2_command_, __LINE__)(name, setup)

// Reports a failed Status and returns the exit code for it: 2 for invalid_argument (bad config,
// usage, bad input file), 1 for everything else.
int Fail(const Status& s);

// Runs the whole CLI (used by main and by in-process tests).
int Main(int argc, char** argv);

}  // namespace k2::app
