// Environment benchmarks. (1) steps/s of the in-process example environment (LedgerEnv) against the
// reference of the same work without the Env machinery (schema validation + the tool function), and
// across threads. (2) p50/p99 of an MCP stdio tools/call round trip (our fake server; server-everything
// when installed) against the same call through an in-process ToolEnv. Prints machine, threads, sizes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agents/env.h"
#include "agents/mcp_env.h"
#include "core/thread_pool.h"
#include "examples/ledger_env/ledger_env.h"
#include "toolgen/mcp_client.h"
#include "toolgen/schema.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace k2;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown cpu";
}

Message Deposit() { return {.role = "assistant", .tool_calls = {{.id = "c", .name = "deposit", .arguments = R"({"amount":1})"}}}; }

// Runs `steps` steps of one ledger env, resetting every 32 steps (as episodes would).
void RunLedger(agents::Env& env, int64_t steps) {
  for (int64_t s = 0; s < steps; ++s) {
    if (s % 32 == 0) (void)env.Reset(static_cast<uint64_t>(s), {{"target", 10}, {"start", 0}});
    auto r = env.Step(Deposit());
    if (!r.ok()) {
      std::fprintf(stderr, "step failed: %s\n", r.status().ToString().c_str());
      std::abort();
    }
  }
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

void LatencyReport(const char* what, const std::vector<double>& us, const std::vector<double>& ref_us) {
  double p50 = Percentile(us, 0.5), p99 = Percentile(us, 0.99);
  double r50 = Percentile(ref_us, 0.5), r99 = Percentile(ref_us, 0.99);
  std::printf("%-44s p50 %9.1f us  p99 %9.1f us   (in-process p50 %.2f us, p99 %.2f us; ratio p50 %.0fx, p99 %.0fx)\n",
              what, p50, p99, r50, r99, p50 / r50, p99 / r99);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = argc > 1 ? std::atoll(argv[1]) : 200000;
  int calls = argc > 2 ? std::atoi(argv[2]) : 2000;
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  std::printf("machine: %s, %d hardware threads\n", CpuModel().c_str(), hw);
  std::printf("sizes: %lld env steps per run, %d MCP calls per latency run\n\n", static_cast<long long>(steps), calls);

  // (1a) one env, one thread, against the reference: validate + apply, no Env machinery.
  auto env = examples::LedgerEnv::Make({{"max_steps", 64}});
  if (!env.ok()) return 1;
  RunLedger(**env, 1000);  // warm-up
  auto t0 = Clock::now();
  RunLedger(**env, steps);
  double env_s = Seconds(t0, Clock::now());
  auto schema = toolgen::Schema::Compile((*env)->Tools()[0].input_schema, "deposit").value();
  int64_t balance = 0;
  t0 = Clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    auto args = Deposit().tool_calls[0].ParsedArguments();
    if (!schema->Validate(*args).ok()) std::abort();
    balance += (*args)["amount"].get<int64_t>();
  }
  double ref_s = Seconds(t0, Clock::now());
  std::printf("in-process env (LedgerEnv), 1 thread:   %10.0f steps/s; reference parse+validate+apply %10.0f ops/s; "
              "env/reference time ratio %.2f (balance %lld)\n",
              static_cast<double>(steps) / env_s, static_cast<double>(steps) / ref_s, env_s / ref_s,
              static_cast<long long>(balance));

  // (1b) many envs stepping at once from a thread pool.
  for (int threads : {1, 2, 4}) {
    if (threads > std::max(hw, 1) * 2) break;
    const int n_envs = threads * 4;
    std::vector<std::unique_ptr<agents::Env>> envs;
    for (int i = 0; i < n_envs; ++i) envs.push_back(std::move(examples::LedgerEnv::Make({{"max_steps", 64}}).value()));
    ThreadPool pool(threads);
    t0 = Clock::now();
    pool.ParallelFor(n_envs, [&](int64_t i) { RunLedger(*envs[i], steps / n_envs); });
    double s = Seconds(t0, Clock::now());
    std::printf("%2d envs on ThreadPool(%d):               %10.0f steps/s; speedup vs 1-thread run %.2fx\n", n_envs,
                threads, static_cast<double>(steps) / s, env_s / s);
  }

  // (2) MCP stdio round trip vs in-process.
  std::printf("\n");
  std::vector<double> ref_us;
  {
    auto ledger = examples::LedgerEnv::Make({{"max_steps", 1 << 30}}).value();
    (void)ledger->Reset(0, {{"target", 1}, {"start", 0}});
    for (int i = 0; i < calls; ++i) {
      auto a = Clock::now();
      auto r = ledger->Step(Deposit());
      ref_us.push_back(Seconds(a, Clock::now()) * 1e6);
      if (!r.ok()) return 1;
    }
  }
  auto measure = [&](const char* label, std::vector<std::string> argv_server, const std::string& tool, const json& args) {
    toolgen::mcp::StdioOptions o;
    o.argv = std::move(argv_server);
    auto t = toolgen::mcp::StartStdio(o);
    if (!t.ok()) return;
    auto c = toolgen::mcp::Client::Connect(std::move(*t));
    if (!c.ok()) {
      std::printf("%s: %s\n", label, c.status().ToString().c_str());
      return;
    }
    for (int i = 0; i < 50; ++i) (void)(*c)->CallTool(tool, args);  // warm-up (JIT for node servers)
    std::vector<double> us;
    for (int i = 0; i < calls; ++i) {
      auto a = Clock::now();
      auto r = (*c)->CallTool(tool, args);
      us.push_back(Seconds(a, Clock::now()) * 1e6);
      if (!r.ok()) {
        std::printf("%s: %s\n", label, r.status().ToString().c_str());
        return;
      }
    }
    LatencyReport(label, us, ref_us);
  };
#ifdef FAKE_MCP_SERVER
  measure("MCP stdio tools/call (fake C++ server, add)", {FAKE_MCP_SERVER}, "add", {{"a", 1}, {"b", 2}});
#endif
  const std::string everything = std::string(K2GYM_SOURCE_DIR) +
                                 "/third_party/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js";
  if (std::filesystem::exists(everything) && system("node --version >/dev/null 2>&1") == 0)
    measure("MCP stdio tools/call (server-everything, get-sum)", {"node", everything, "stdio"}, "get-sum", {{"a", 1}, {"b", 2}});
  else
    std::printf("server-everything not installed: skipped its round trip\n");
  return 0;
}
