// `k2gym sandbox run|serve`: run one program in the sandbox, or serve SandboxFusion's /run_code API;
// registers the "sandbox" (pool and default limits) and "sandbox_service" (HTTP) config sections.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "apps/cli.h"
#include "sandbox/service.h"

namespace k2::app {
namespace {

K2_CONFIG_SECTION("sandbox", sandbox::SandboxConfig,
                  "Sandbox: warm zygote pool, isolation settings and default per-run limits (docs/sandbox.md).");
K2_CONFIG_SECTION("sandbox_service", sandbox::ServiceConfig,
                  "Sandbox service: `k2gym sandbox serve` (SandboxFusion POST /run_code) (docs/sandbox.md).");

struct RunOptions {
  std::string file, stdin_file, language;
  double wall_s = -1, memory_mb = -1;
  std::vector<std::string> fetch;
};

int RunCmd(Context& ctx, const RunOptions& o) {
  auto cfg = config::Get<sandbox::SandboxConfig>(ctx.config, "sandbox");
  if (!cfg.ok()) return Fail(cfg.status());
  auto code = ReadFile(o.file);
  if (!code.ok()) return Fail(InvalidArgument(code.status().message()));
  sandbox::RunRequest req;
  req.code = std::move(*code);
  req.limits = cfg->defaults;
  req.fetch_files = o.fetch;
  if (!o.language.empty()) {
    req.language = o.language;
  } else {
    auto ends = [&](const char* ext) {
      std::string e(ext);
      return o.file.size() >= e.size() && o.file.compare(o.file.size() - e.size(), e.size(), e) == 0;
    };
    req.language = ends(".sh") || ends(".bash") ? "bash" : "python";
  }
  if (!o.stdin_file.empty()) {
    auto in = ReadFile(o.stdin_file);
    if (!in.ok()) return Fail(InvalidArgument(in.status().message()));
    req.stdin_data = std::move(*in);
  }
  if (o.wall_s > 0) req.limits.wall_s = req.limits.cpu_s = o.wall_s;
  if (o.memory_mb > 0) req.limits.memory_mb = static_cast<int64_t>(o.memory_mb);
  if (Status s = sandbox::ValidateLimits(req.limits); !s.ok()) return Fail(InvalidArgument(s.message()));
  cfg->workers = 1;  // one run: one zygote
  auto sb = sandbox::Sandbox::Create(*cfg);
  if (!sb.ok()) return Fail(sb.status());
  auto res = (*sb)->Run(req);
  if (ctx.g.json) {
    json j = sandbox::RunResultToJson(res);
    j["wall_time"] = res.wall_s;
    j["memory_peak_bytes"] = res.memory_peak_bytes;
    ctx.PrintJson(j);
  } else {
    std::fwrite(res.stdout_data.data(), 1, res.stdout_data.size(), stdout);
    std::fwrite(res.stderr_data.data(), 1, res.stderr_data.size(), stderr);
    std::fflush(stdout);
    if (!ctx.g.quiet) {
      std::fprintf(stderr, "k2gym sandbox: %s (exit %d, signal %d, %.3f s wall, %.3f s cpu, %.1f MiB peak)%s%s\n",
                   sandbox::RunStatusName(res.status), res.exit_code, res.signal, res.wall_s, res.cpu_s,
                   static_cast<double>(res.memory_peak_bytes) / (1 << 20), res.message.empty() ? "" : ": ",
                   res.message.c_str());
    }
  }
  if (res.status == sandbox::RunStatus::kSandboxError) return kExitRuntime;
  return res.status == sandbox::RunStatus::kOk ? kExitOk : kExitRuntime;
}

int ServeCmd(Context& ctx, int port_override, const std::string& bind_override) {
  auto cfg = config::Get<sandbox::SandboxConfig>(ctx.config, "sandbox");
  if (!cfg.ok()) return Fail(cfg.status());
  auto scfg = config::Get<sandbox::ServiceConfig>(ctx.config, "sandbox_service");
  if (!scfg.ok()) return Fail(scfg.status());
  if (port_override >= 0) scfg->port = port_override;
  if (!bind_override.empty()) scfg->bind = bind_override;
  std::string token;
  if (!scfg->token_env.empty()) {
    const char* t = std::getenv(scfg->token_env.c_str());
    if (!t || !*t) {
      return Fail(InvalidArgument("sandbox_service.token_env: environment variable " + scfg->token_env + " is empty"));
    }
    token = t;
  }
  // Block SIGINT/SIGTERM before any thread starts, so that only sigwait below receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto sb = sandbox::Sandbox::Create(*cfg);
  if (!sb.ok()) return Fail(sb.status());
  sandbox::Service svc(**sb, *scfg, token);
  auto server = svc.Listen();
  if (!server.ok()) return Fail(server.status());
  if (ctx.g.json) {
    ctx.PrintJson({{"listening", (*server)->address()}, {"port", (*server)->port()}, {"cgroup", (*sb)->cgroup_version()}});
  } else {
    std::printf("k2gym sandbox: serving POST /run_code on http://%s (%d zygotes, cgroup %s, auth %s)\n",
                (*server)->address().c_str(), cfg->workers, (*sb)->cgroup_version().c_str(),
                token.empty() ? "off" : "bearer");
  }
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  if (!ctx.g.quiet) std::fprintf(stderr, "k2gym sandbox: signal %d, stopping\n", sig);
  (*server)->Stop();
  auto st = (*server)->stats();
  if (!ctx.g.quiet) {
    std::fprintf(stderr, "k2gym sandbox: %lld requests completed, %lld answered 429, %lld bad\n",
                 static_cast<long long>(st.completed), static_cast<long long>(st.rejected_429),
                 static_cast<long long>(st.bad_requests));
  }
  return kExitOk;
}

K2_COMMAND("sandbox", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("sandbox", "Run untrusted code in the sandbox, or serve it over HTTP");
  c->require_subcommand(1);
  auto o = std::make_shared<RunOptions>();
  auto* run = c->add_subcommand("run", "Run FILE (.py: python, .sh: bash) isolated; prints its stdout/stderr");
  run->add_option("file", o->file, "program file")->required()->check(CLI::ExistingFile);
  run->add_option("--stdin", o->stdin_file, "file fed to the program's stdin");
  run->add_option("--language", o->language, "python or bash (default: from the extension)");
  run->add_option("--wall", o->wall_s, "wall and CPU limit (s), default sandbox.defaults");
  run->add_option("--memory", o->memory_mb, "memory limit (MiB), default sandbox.defaults");
  run->add_option("--fetch", o->fetch, "work-dir files to return (with --json, base64)");
  run->callback([action, o] { *action = [o](Context& ctx) { return RunCmd(ctx, *o); }; });
  auto port = std::make_shared<int>(-1);
  auto bind = std::make_shared<std::string>();
  auto* serve = c->add_subcommand("serve", "Serve SandboxFusion's POST /run_code (127.0.0.1 by default)");
  serve->add_option("--port", *port, "TCP port (default sandbox_service.port; 0 = ephemeral)");
  serve->add_option("--bind", *bind, "listen address (default sandbox_service.bind)");
  serve->callback([action, port, bind] {
    *action = [port, bind](Context& ctx) { return ServeCmd(ctx, *port, *bind); };
  });
});

}  // namespace
}  // namespace k2::app
