// The dispatcher: global options, config resolution, command registry.
#include "apps/cli.h"
#include "agents/tau2/env.h"
#include "core/run_name.h"

#include <cstdio>
#include <iostream>

namespace k2::app {

namespace {

struct Entry {
  std::string name;
  Setup setup;
};

std::vector<Entry>& Commands() {
  static std::vector<Entry> c;
  return c;
}

// Config sections of the foundation itself.
struct StoreConfig {
  int busy_timeout_ms = 10000;
  template <class V>
  void Visit(V& v) {
    v("busy_timeout_ms", busy_timeout_ms, "how long a writer waits for a locked database (ms)", {.min = 0, .max = 600000});
  }
};
K2_CONFIG_SECTION("store", StoreConfig, "The SQLite store (`--db PATH`, default `./k2gym.db`).");

struct ProgressConfig {
  double period_s = 5.0;
  template <class V>
  void Visit(V& v) {
    v("period_s", period_s, "seconds between progress lines when stderr is not a terminal", {.min = 0.1, .max = 3600});
  }
};
K2_CONFIG_SECTION("progress", ProgressConfig, "Progress lines of long-running commands.");

}  // namespace

void RegisterCommand(std::string name, Setup setup) {
  Commands().push_back({std::move(name), std::move(setup)});
}

int Fail(const Status& s) {
  std::fprintf(stderr, "k2gym: error: %s\n", s.message().c_str());
  return s.code() == Code::kInvalidArgument ? kExitUsage : kExitRuntime;
}

Expected<std::unique_ptr<Db>> Context::OpenDb() const {
  int timeout = 10000;
  if (config.contains("store")) timeout = config["store"].value("busy_timeout_ms", 10000);
  auto db = Db::Open(g.db_path, timeout);
  if (!db.ok()) return db.status().Context("--db " + g.db_path);
  return db;
}

void Context::PrintJson(const json& j) const { std::cout << j.dump(2) << std::endl; }

int Main(int argc, char** argv) {
  CLI::App app{"k2gym: agentic post-training (Kimi-K2 recipe): tools, environments, rollouts, rewards, SFT, RL, eval.",
               "k2gym"};
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommand too
  app.set_help_all_flag("--help-all", "Print help for every command");

  Context ctx;
  for (int i = 0; i < argc; ++i) ctx.argv.emplace_back(argv[i]);
  Action action;
  app.add_option("--config", ctx.g.config_path, "Run config (JSON); see docs/config.md")->option_text("FILE.json");
  app.add_option("--set", ctx.g.sets, "Override one config key, e.g. --set progress.period_s=1 (repeatable)")
      ->option_text("KEY.PATH=VALUE")->take_all();
  app.add_option("--db", ctx.g.db_path, "SQLite store")->option_text("PATH")->capture_default_str();
  app.add_option("--name", ctx.g.run_name, "Name of the run this command stores (k2gym runs show NAME)")
      ->option_text("NAME");
  app.add_option("--seed", ctx.g.seed, "Random seed (an integer in [0, 2^64))")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("-v,--verbose", ctx.g.verbose, "More output (repeatable)");
  app.add_flag("--quiet", ctx.g.quiet, "Only errors and results");
  // Read by main() before anything starts (core/determinism.h); listed here so CLI11 accepts it.
  app.add_flag("--deterministic", ctx.g.deterministic,
               "Same seed, same results on any machine of this architecture: fixed thread counts, batch-invariant "
               "generation, no wall-clock episode limit (docs/guide.md)");
  app.add_flag("--json", ctx.g.json, "Machine-readable JSON on stdout");

  for (auto& c : Commands()) c.setup(app, ctx, &action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "k2gym: error: %s (see k2gym --help)\n", e.what());
    return kExitUsage;
  }

  SetVerbosity(ctx.g.quiet ? 0 : 1 + ctx.g.verbose);
  SetRunNameOverride(ctx.g.run_name);
  // Kinds whose libraries sit above agents/ register here (agents' built-in kinds register themselves).
  if (Status s = agents::tau2::RegisterTau2Env(agents::EnvRegistry::Global()); !s.ok()) return Fail(s);

  // Resolve the config: file (if any), then --set overrides in order, then validation + defaults.
  json root = json::object();
  std::string source = "--set";
  if (!ctx.g.config_path.empty()) {
    auto j = ReadJsonFile(ctx.g.config_path);
    if (!j.ok()) return Fail(InvalidArgument(j.status().message()));
    root = std::move(*j);
    source = ctx.g.config_path;
    if (!root.is_object())
      return Fail(InvalidArgument(source + ": <root>: expected object, got " + config::detail::ShowValue(root)));
  }
  for (auto& s : ctx.g.sets) {
    Status st = config::ApplySet(root, s);
    if (!st.ok()) return Fail(st);
  }
  auto resolved = config::Resolve(root, source);
  if (!resolved.ok()) return Fail(resolved.status());
  ctx.config = std::move(*resolved);

  if (!action) {
    std::fprintf(stderr, "k2gym: error: no action for this command (see k2gym --help)\n");
    return kExitUsage;
  }
  try {
    return action(ctx);
  } catch (const std::exception& e) {
    // Library code returns Status; this is the last line of defence against a crash.
    std::fprintf(stderr, "k2gym: error: unexpected exception: %s\n", e.what());
    return kExitRuntime;
  }
}

}  // namespace k2::app
