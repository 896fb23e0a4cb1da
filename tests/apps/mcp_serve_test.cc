// `k2gym mcp serve` against the ecosystem's clients: the MCP TypeScript SDK client and MCP Inspector's
// CLI (npm, installed by scripts/setup.sh), over stdio and Streamable HTTP. The served environment is a
// synthetic domain with the sandboxed python tool: a whole gold episode is replayed through MCP and the
// session's state resource must equal the state the same actions give in process; a second session
// starts from the initial state; python runs in the sandbox; tools/list is paged.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agents/env.h"
#include "agents/synthetic_env.h"
#include "toolgen/synth/tasks.h"

extern char** environ;

namespace k2 {
namespace {

namespace fs = std::filesystem;

std::string RunShell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

std::string Modules() { return std::string(K2GYM_SOURCE_DIR) + "/third_party/mcp/node_modules"; }
std::string Bin() { return std::string(K2GYM_BINARY_DIR) + "/apps/k2gym"; }
const char* kEnvConfig = R"({"seed":11,"count":150,"python":true})";

struct Episode {
  std::string dir;
  std::string task_file;
  json calls = json::array();  // the gold actions as MCP calls
  json initial, final_state;
  int tools = 0;
};
Episode* E = nullptr;

class McpServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    E = new Episode;
    E->dir = (fs::temp_directory_path() / ("k2gym_mcp_serve_" + std::to_string(getpid()))).string();
    fs::create_directories(E->dir);
    // A generated task of the served world with a state-changing gold episode of >= 2 assistant actions.
    auto world = agents::SyntheticWorld::Generate(11, 150, nullptr);
    std::vector<toolgen::synth::Domain> domains;
    for (const auto& d : world->domains()) domains.push_back(*d);
    auto tasks = toolgen::synth::GenerateTasks(domains, 5, 40, nullptr);
    const toolgen::synth::Task* pick = nullptr;
    for (auto& t : tasks) {
      bool assistant_only = true;
      for (auto& a : t.actions) assistant_only = assistant_only && a.requestor == "assistant";
      if (assistant_only && t.steps >= 1 && t.actions.size() >= 2) {
        pick = &t;
        break;
      }
    }
    ASSERT_NE(pick, nullptr) << "no task with a state-changing episode";
    E->task_file = E->dir + "/task.json";
    std::ofstream(E->task_file) << toolgen::synth::ToTau2(*pick).dump();
    // The same episode in process: the state the MCP session must reach.
    auto env = agents::EnvRegistry::Global().Make("synthetic", json::parse(kEnvConfig));
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    ASSERT_TRUE((*env)->Reset(1, toolgen::synth::ToTau2(*pick)).ok());
    E->initial = (*env)->State();
    E->tools = static_cast<int>((*env)->Tools().size());
    int k = 0;
    for (auto& a : pick->actions) {
      E->calls.push_back({{"name", a.name}, {"arguments", a.arguments}});
      Message m{.role = "assistant", .tool_calls = {{.id = "c" + std::to_string(k++), .name = a.name, .arguments = a.arguments.dump()}}};
      auto r = (*env)->Step(m);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    E->final_state = (*env)->State();
    ASSERT_NE(E->initial, E->final_state) << "the gold episode changes the state";
    (*env)->Close();
  }
  static void TearDownTestSuite() {
    fs::remove_all(E->dir);
    delete E;
  }
  void SetUp() override {
    if (system("node --version >/dev/null 2>&1") != 0 || system("npm --version >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "node/npm not installed: the MCP SDK and Inspector checks need them (scripts/setup.sh)";
    ASSERT_TRUE(fs::exists(Modules() + "/@modelcontextprotocol/sdk/package.json"))
        << "npm package @modelcontextprotocol/sdk missing: run scripts/setup.sh";
    ASSERT_TRUE(fs::exists(Modules() + "/@modelcontextprotocol/inspector/package.json"))
        << "npm package @modelcontextprotocol/inspector missing: run scripts/setup.sh";
  }

  static std::vector<std::string> ServeArgs(bool http) {
    std::vector<std::string> a = {Bin(), "mcp", "serve", "--env", "synthetic", "--env-config", kEnvConfig,
                                  "--task", "@" + E->task_file, "--page-size", "7", "--db", E->dir + "/k.db"};
    if (http) a.insert(a.end(), {"--http", "--port", "0"});
    return a;
  }
  // A wrapper script, so that MCP Inspector's own flag parsing never sees k2gym's flags.
  static std::string Wrapper() {
    std::string w = E->dir + "/serve.sh";
    std::ofstream f(w);
    f << "#!/bin/sh\nexec";
    for (auto& a : ServeArgs(false)) f << " '" << a << "'";
    f << "\n";
    f.close();
    fs::permissions(w, fs::perms::owner_all);
    return w;
  }

  // Runs the SDK client script with `plan`; returns its JSON report.
  static json Drive(json plan) {
    plan["calls"] = E->calls;
    plan["python"] = "import math\nprint(math.factorial(5) + 6 * 7)";
    const std::string pf = E->dir + "/plan.json";
    std::ofstream(pf) << plan.dump();
    std::string out = RunShell("node " + std::string(K2GYM_SOURCE_DIR) + "/tests/toolgen/mcp_sdk_client.cjs " +
                               Modules() + " " + pf + " 2>&1");
    std::string last = out.substr(out.rfind('{') == std::string::npos ? 0 : out.rfind("\n{") == std::string::npos ? 0 : out.rfind("\n{") + 1);
    json j = json::parse(last, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    EXPECT_FALSE(j.contains("fatal")) << out;
    return j.is_discarded() ? json::object() : j;
  }

  static void CheckEpisode(const json& r) {
    ASSERT_TRUE(r.contains("tools")) << r.dump();
    EXPECT_EQ(r["tools"].size(), static_cast<size_t>(E->tools));
    EXPECT_EQ(r["pages"].get<int>(), (E->tools + 6) / 7) << "tools/list pages of 7";
    EXPECT_GT(r["pages"].get<int>(), 1);
    bool python = false;
    for (auto& t : r["tools"]) {
      EXPECT_TRUE(t["hasInput"].get<bool>()) << t.dump();
      python = python || t["name"] == "python";
    }
    EXPECT_TRUE(python);
    EXPECT_EQ(r["state_before"], E->initial);
    ASSERT_EQ(r["calls"].size(), E->calls.size());
    for (auto& c : r["calls"]) EXPECT_FALSE(c["isError"].get<bool>()) << c.dump();
    EXPECT_EQ(r["state_after"], E->final_state) << "the MCP episode reaches the in-process episode's state";
    EXPECT_FALSE(r["python"]["isError"].get<bool>()) << r["python"].dump();
    EXPECT_NE(r["python"]["text"].get<std::string>().find("162"), std::string::npos) << r["python"].dump();
    EXPECT_TRUE(r["unknown_tool"].contains("error")) << r["unknown_tool"].dump();
    EXPECT_EQ(r["other_session_state"], E->initial) << "a new session starts its own episode";
    EXPECT_EQ(r["state_after_other"], E->final_state);
    EXPECT_NE(r["cancelled"], "completed");
  }
};

TEST_F(McpServeTest, TypeScriptSdkClientRunsAnEpisodeOverStdio) {
  CheckEpisode(Drive({{"transport", "stdio"}, {"command", ServeArgs(false)}}));
}

// Starts the HTTP server and returns (pid, url).
std::pair<pid_t, std::string> StartHttp(const std::vector<std::string>& args) {
  int out[2];
  if (pipe(out) != 0) return {-1, ""};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::vector<std::string> a = args;
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, a[0].c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string line;
  char c;
  while (rc == 0 && read(out[0], &c, 1) == 1 && c != '\n') line += c;
  close(out[0]);
  size_t at = line.find("http://");
  if (rc != 0 || at == std::string::npos) return {pid, ""};
  return {pid, line.substr(at, line.find(' ', at) - at)};
}

void StopHttp(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST_F(McpServeTest, TypeScriptSdkClientRunsAnEpisodeOverStreamableHttp) {
  auto [pid, url] = StartHttp(ServeArgs(true));
  ASSERT_FALSE(url.empty()) << "k2gym mcp serve --http did not print its address";
  CheckEpisode(Drive({{"transport", "http"}, {"url", url}}));
  // Protocol errors over HTTP: no session header, an unknown session, a bad message.
  const std::string curl = "curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' ";
  EXPECT_EQ(RunShell(curl + "-d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}' " + url), "400");
  EXPECT_EQ(RunShell(curl + "-H 'Mcp-Session-Id: nope' -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}' " + url), "404");
  EXPECT_EQ(RunShell(curl + "-d '{\"jsonrpc\":\"1.0\"}' " + url), "400");
  StopHttp(pid);
}

std::string Inspector() {
  return "node " + Modules() + "/@modelcontextprotocol/inspector/cli/build/cli.js --cli ";
}

TEST_F(McpServeTest, InspectorCliListsAndCallsToolsOverStdio) {
  const std::string w = Wrapper();
  std::string list = RunShell(Inspector() + w + " --method tools/list 2>&1");
  json l = json::parse(list.substr(list.find('{')), nullptr, false);
  ASSERT_FALSE(l.is_discarded()) << list;
  // The Inspector CLI shows one page: the first 7 tools and the cursor to the rest.
  EXPECT_EQ(l["tools"].size(), 7u) << list;
  EXPECT_TRUE(l.contains("nextCursor")) << list;
  std::string call = RunShell(Inspector() + w + " --method tools/call --tool-name python --tool-arg 'code=print(6*7)' 2>&1");
  EXPECT_NE(call.find("42"), std::string::npos) << call;
  std::string res = RunShell(Inspector() + w + " --method resources/read --uri k2gym://session/state 2>&1");
  json r = json::parse(res.substr(res.find('{')), nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << res;
  EXPECT_EQ(json::parse(r["contents"][0]["text"].get<std::string>()), E->initial);
}

TEST_F(McpServeTest, InspectorCliListsAndCallsToolsOverStreamableHttp) {
  auto [pid, url] = StartHttp(ServeArgs(true));
  ASSERT_FALSE(url.empty());
  std::string list = RunShell(Inspector() + url + " --transport http --method tools/list 2>&1");
  json l = json::parse(list.substr(std::min(list.size(), list.find('{'))), nullptr, false);
  ASSERT_FALSE(l.is_discarded()) << list;
  EXPECT_EQ(l["tools"].size(), 7u) << list;
  EXPECT_TRUE(l.contains("nextCursor")) << list;
  const json& first = E->calls[0];
  std::string args;
  for (auto& [k, v] : first["arguments"].items())
    args += " '" + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()) + "'";
  std::string call = RunShell(Inspector() + url + " --transport http --method tools/call --tool-name " +
                              first["name"].get<std::string>() + " --tool-arg" + args + " 2>&1");
  json c = json::parse(call.substr(std::min(call.size(), call.find('{'))), nullptr, false);
  ASSERT_FALSE(c.is_discarded()) << call;
  EXPECT_FALSE(c.value("isError", false)) << call;
  std::string py = RunShell(Inspector() + url + " --transport http --method tools/call --tool-name python --tool-arg 'code=print(6*7)' 2>&1");
  EXPECT_NE(py.find("42"), std::string::npos) << py;
  StopHttp(pid);
}

}  // namespace
}  // namespace k2
