// Regression tests for the inputs in shared/data/hostile_inputs (found by fuzzing): each one goes through
// the command or request a user would send and must end in a named error, never an abort or a hang.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>
#include <sstream>

#include <gtest/gtest.h>

#include "core/json.h"
#include "engine/text/tokenizer.h"
#include "tests/cli_util.h"
#include "toolgen/mcp_client.h"
#include "toolgen/mcp_transport.h"
#include "toolgen/schema.h"

extern char** environ;

namespace k2 {
namespace {

namespace fs = std::filesystem;

const std::string kHostile = std::string(K2GYM_SOURCE_DIR) + "/../shared/data/hostile_inputs/";

std::string Input(const std::string& name) {
  std::ifstream in(kHostile + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing " << kHostile << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The harness framing of the files (README of the folder): a leading selector byte, or a NUL separating
// two documents.
std::string DropFirstByte(const std::string& s) { return s.empty() ? s : s.substr(1); }
std::pair<std::string, std::string> SplitNul(const std::string& s) {
  size_t z = s.find('\0');
  if (z == std::string::npos) return {s, ""};
  return {s.substr(0, z), s.substr(z + 1)};
}

class HostileInputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("k2gym_hostile_" + std::to_string(getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& data) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }

  // `k2gym ARGS` under a kill-timer (a hang fails the test instead of stalling the suite), with stderr
  // merged into the output. Prints the wall time of the command.
  test::ShellResult K2gym(const std::string& args) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = test::RunShell("timeout -s KILL 60 " + test::K2gymBin() + " --db " + dir_ + "/k.db " + args + " 2>&1");
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[hostile] %.3f s rc %d: k2gym %.120s\n", s, r.rc, args.c_str());
    EXPECT_NE(r.rc, 137) << "killed after 60 s (hang): " << args;
    EXPECT_NE(r.rc, -1) << "did not exit normally: " << args;
    EXPECT_LT(r.rc, 128) << "killed by a signal (134: abort): " << args;
    EXPECT_NE(r.rc, 0) << "hostile input accepted: " << args << "\n" << r.out.substr(0, 2000);
    return r;
  }

  // A stdio MCP server replaying `script` ('@'-prefixed reply lines), as an --env-config JSON.
  std::string McpEnvConfig(const std::string& script_name, const std::string& script) {
    std::string p = Write(script_name, script);
    return json({{"command", {SCRIPTED_MCP_SERVER, p}}, {"timeout_ms", 5000}}).dump();
  }

  std::string dir_;
};

std::string Quote(const std::string& s) {  // single-quoted for /bin/sh
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "expected \"" << (needle) << "\" in:\n" << (haystack).substr(0, 3000)

// ---- config: `k2gym --config FILE config show` ----

TEST_F(HostileInputs, ConfigNumberOutOfDoubleRangeIsNamedErrorNotAbort) {
  std::string f = Write("config_1e999.json", SplitNul(Input("config_1e999")).first);
  auto r = K2gym("--config " + f + " config show");
  EXPECT_HAS(r.out, f + ":1:");
  EXPECT_HAS(r.out, "number 1e999 is outside the double range (at /pretrain/optimizer/lr)");
}

TEST_F(HostileInputs, ConfigNestedDeeperThanTheLimitIsRefusedWhileParsing) {
  std::string f = Write("config_deep.json", SplitNul(Input("config_deep")).first);
  auto r = K2gym("--config " + f + " config show");
  EXPECT_HAS(r.out, f + ":1:");
  EXPECT_HAS(r.out, "nesting deeper than 512 levels (at /alltypes/free/0/0/0");
}

TEST_F(HostileInputs, ConfigIntegerAt2To63IsRangeErrorNotWrapped) {
  std::string f = Write("config_int64_wrap.json", SplitNul(Input("config_int64_wrap")).first);
  auto r = K2gym("--config " + f + " config show");
  EXPECT_HAS(r.out, f + ": pretrain.steps: expected integer");
  EXPECT_HAS(r.out, "got 9223372036854775808");
}

TEST_F(HostileInputs, ConfigFloatAt2To63IsRangeErrorNotCast) {
  std::string f = Write("config_float_cast.json", SplitNul(Input("config_float_cast")).first);
  auto r = K2gym("--config " + f + " config show");
  EXPECT_HAS(r.out, f + ": pretrain.batch_size: expected integer");
}

// ---- tool import: `k2gym tools import FILE` (corpus lines; schemas compiled at import) ----

TEST_F(HostileInputs, ToolImportSkipsOutOfRangeNumberWithNamedError) {
  std::string f = Write("registry_1e999.jsonl", DropFirstByte(Input("registry_1e999")) + "\n");
  auto r = K2gym("tools import " + f);
  EXPECT_HAS(r.out, "registry_1e999.jsonl:1:1:");
  EXPECT_HAS(r.out, "number 1e999 is outside the double range (at /tools/0/inputSchema/maximum)");
}

TEST_F(HostileInputs, ToolImportSkipsDeepSchemaWithNamedError) {
  std::string f = Write("registry_deep.jsonl", DropFirstByte(Input("registry_deep")) + "\n");
  auto r = K2gym("tools import " + f);
  EXPECT_HAS(r.out, "registry_deep.jsonl:1:1:");
  EXPECT_HAS(r.out, "nesting deeper than 512 levels (at /tools/0/inputSchema/properties/x/default/0/0");
}

// The schema_* documents as the inputSchema of an imported tool (a tools/list dump).
TEST_F(HostileInputs, ToolImportRefusesSchemaWithOutOfRangeNumber) {
  std::string schema = SplitNul(Input("schema_1e999")).first;
  std::string f = Write("schema_1e999.json", R"({"tools":[{"name":"t","inputSchema":)" + schema + "}]}");
  auto r = K2gym("tools import " + f);
  EXPECT_HAS(r.out, f + ":1:");
  EXPECT_HAS(r.out, "number 1e999 is outside the double range (at /tools/0/inputSchema/properties/x/maximum)");
}

TEST_F(HostileInputs, ToolImportRefusesSchemaNested400kLevels) {
  std::string schema = SplitNul(Input("schema_deep_schema")).first;
  std::string f = Write("schema_deep.json", R"({"tools":[{"name":"t","inputSchema":)" + schema + "}]}");
  auto r = K2gym("tools import " + f);
  EXPECT_HAS(r.out, "nesting deeper than 512 levels (at /tools/0/inputSchema/not/not/not");
}

// ---- MCP: the client behind `k2gym env inspect mcp` / `env call mcp` against a scripted server ----

TEST_F(HostileInputs, McpInitializeReplyWithOutOfRangeNumberIsProtocolError) {
  std::string cfg = McpEnvConfig("mcp_1e999.txt", Input("mcp_1e999"));
  auto r = K2gym("env inspect mcp --env-config " + Quote(cfg));
  EXPECT_HAS(r.out, "mcp server stdout:1:");
  EXPECT_HAS(r.out, "number 1e999 is outside the double range (at /result/serverInfo/v)");
}

TEST_F(HostileInputs, McpInitializeReplyNested200kLevelsIsProtocolError) {
  std::string cfg = McpEnvConfig("mcp_deep.txt", Input("mcp_deep"));
  auto r = K2gym("env inspect mcp --env-config " + Quote(cfg));
  EXPECT_HAS(r.out, "nesting deeper than 512 levels (at /result/serverInfo/v/0/0");
}

// tools/list is empty in this script, so no CLI command reaches tools/call: the client's CallTool does.
TEST_F(HostileInputs, McpResourceUriGivenAsNumberIsProtocolError) {
  std::string script = Write("mcp_uri.txt", Input("mcp_resource_uri_int"));
  toolgen::mcp::StdioOptions o;
  o.argv = {SCRIPTED_MCP_SERVER, script};
  o.close_grace_ms = 200;
  auto t = toolgen::mcp::StartStdio(o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  toolgen::mcp::ClientOptions co;
  co.timeout_ms = 20000;
  auto c = toolgen::mcp::Client::Connect(std::move(*t), co);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto tools = (*c)->ListTools("mcp:f");
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  auto res = (*c)->CallTool("t", json::object());
  ASSERT_FALSE(res.ok());
  EXPECT_HAS(res.status().message(), "resource: expected an object with a string uri");
  (*c)->Close();
}

// ---- schema validation of tool-call arguments: `k2gym env call mcp TOOL ARGS` ----

std::string ToolScript(const std::string& schema) {
  return "@" R"({"jsonrpc":"2.0","result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"s"}}})"
         "\n@" R"({"jsonrpc":"2.0","result":{"tools":[{"name":"t","inputSchema":)" + schema + "}]}}\n";
}

TEST_F(HostileInputs, SchemaPatternCatastrophicBacktrackingIsValidationError) {
  auto [schema, instance] = SplitNul(Input("schema_redos"));
  std::string cfg = McpEnvConfig("redos.txt", ToolScript(schema));
  std::string args = Write("args.json", instance);
  auto r = K2gym("env call mcp t \"$(cat " + args + ")\" --env-config " + Quote(cfg));
  EXPECT_HAS(r.out, "/q: pattern \"^(a+)+$\" hit the regex match limit");
}

TEST_F(HostileInputs, SchemaPatternOn100KBStringIsBoundedValidationError) {
  auto [schema, instance] = SplitNul(Input("schema_regex_stack"));
  std::string cfg = McpEnvConfig("stack.txt", ToolScript(schema));
  std::string args = Write("args.json", instance);
  auto r = K2gym("env call mcp t \"$(cat " + args + ")\" --env-config " + Quote(cfg));
  EXPECT_HAS(r.out, "/q: pattern \"^(a|b)*$\" hit the regex match limit");
}

// A 200 KB argument does not fit one command-line argument (Linux caps one at 128 KiB): this one goes
// through the same two calls the environment makes, ParseJson of the arguments, then Validate.
TEST_F(HostileInputs, SchemaInstanceNested200kLevelsIsRefusedBeforeValidation) {
  auto [schema_text, instance] = SplitNul(Input("schema_deep_instance"));
  auto schema = ParseJson(schema_text, "inputSchema");
  ASSERT_TRUE(schema.ok());
  auto s = toolgen::Schema::Compile(*schema, "tools[0].inputSchema");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto args = ParseJson(instance, "arguments of t");
  ASSERT_FALSE(args.ok());
  EXPECT_HAS(args.status().message(), "arguments of t:1:");
  EXPECT_HAS(args.status().message(), "nesting deeper than 512 levels (at /a/0/0/0");
  // A value built in memory (not parsed) is bounded by Validate itself.
  json deep = json::array();
  for (int i = 0; i < 100000; ++i) deep = json::array({std::move(deep)});
  auto v = (*s)->Validate(json{{"a", std::move(deep)}});
  ASSERT_FALSE(v.ok());
  EXPECT_HAS(v.message(), "nesting deeper than 512 levels");
}

// ---- chat template: `k2gym chat-template parse --output FILE` (model tool-call arguments) ----

TEST_F(HostileInputs, ToolCallArgumentsOutOfDoubleRangeAreParseFailure) {
  std::string f = Write("out.txt", DropFirstByte(Input("chat_1e999")));
  auto r = K2gym("chat-template parse --output " + f);
  EXPECT_HAS(r.out, "number 1e999 is outside the double range (at /days)");
}

TEST_F(HostileInputs, ToolCallArgumentsNested200kLevelsAreParseFailure) {
  std::string f = Write("out.txt", DropFirstByte(Input("chat_deep")));
  auto r = K2gym("chat-template parse --output " + f);
  EXPECT_HAS(r.out, "nesting deeper than 512 levels (at /days/0/0");
}

// ---- tokenizer.json: `k2gym tokenizer encode --tokenizer DIR` ----

TEST_F(HostileInputs, TokenizerJsonWithOutOfRangeNumberIsNamedError) {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  fs::create_directories(dir_ + "/tok");
  Write("tok/tiktoken.model", text::FormatTiktokenRanks(bytes));
  Write("tok/tokenizer.json", DropFirstByte(Input("tokenizer_1e999")));
  auto r = K2gym("tokenizer encode --tokenizer " + dir_ + "/tok --text hi");
  EXPECT_HAS(r.out, dir_ + "/tok/tokenizer.json:1:");
  EXPECT_HAS(r.out, "number 1e999 is outside the double range (at /num_reserved_special_tokens)");
}

// ---- safetensors header: `k2gym generate --model CONFIG --weights FILE` ----

TEST_F(HostileInputs, SafetensorsHeaderWithOutOfRangeNumberIsNamedError) {
  std::string f = Write("w.safetensors", Input("safetensors_1e999"));
  auto r = K2gym("generate --model " + std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json --weights " + f +
                 " --prompt hi --max-tokens 1");
  EXPECT_HAS(r.out, f + " (safetensors header):1:");
  EXPECT_HAS(r.out, "number 1e999 is outside the double range (at /a/shape/0)");
}

// Shape products that overflow 64 bits (numel, numel x dtype size) and a dimension at 2^64-1: refused
// by the reader's checked arithmetic before anything is sized from them.
TEST_F(HostileInputs, SafetensorsShapeOverflowsAreNamedErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"st_bytes_overflow", "shape [2305843009213693952] x 8 bytes per element overflows 64 bits"},
      {"st_numel_overflow", "shape [4611686018427387904,4]: the element count overflows 64 bits"},
      {"st_shape_u64", "shape: expected non-negative integers below 2^63, got 18446744073709551615"}};
  for (const auto& [name, want] : cases) {
    std::string f = Write(name + ".safetensors", Input(name));
    auto r = K2gym("generate --model " + std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json --weights " + f +
                   " --prompt hi --max-tokens 1");
    EXPECT_HAS(r.out, f);
    EXPECT_HAS(r.out, want);
  }
}

// ---- HTTP request body to `k2gym serve` ----

TEST_F(HostileInputs, ServeRequestBodyNested200kLevelsIs400AndServerKeepsServing) {
  // A byte-level tokenizer and the tiny config sized to it: the request never reaches the model.
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  auto tok = text::Tokenizer::CreateKimi(bytes);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  ASSERT_TRUE(tok->Save(dir_ + "/tok").ok());
  auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["vocab_size"] = tok->vocab_size();
  std::string model = Write("model.json", cfg->dump());
  std::string body = Write("body.json", Input("serve_deep_tools_200k.json"));

  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::string bin = test::K2gymBin();
  std::vector<std::string> argv_s = {bin, "--db", dir_ + "/k.db", "serve", "--model", model, "--tokenizer", dir_ + "/tok",
                                     "--port", "0", "--max-body", "1048576"};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  close(out[0]);
  size_t colon = line.rfind(':');
  ASSERT_NE(line.find("listening on http://127.0.0.1:"), std::string::npos) << line;
  int port = std::atoi(line.c_str() + colon + 1);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);

  auto t0 = std::chrono::steady_clock::now();
  auto r = test::RunShell("curl -s --max-time 60 -w '\\n%{http_code}' -H 'Content-Type: application/json' --data-binary @" +
                          body + " " + url + "/v1/chat/completions");
  std::printf("[hostile] %.3f s: POST serve_deep_tools_200k.json\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_HAS(r.out, "\n400");
  EXPECT_HAS(r.out, "nesting deeper than 512 levels (at /tools/0/function/parameters/properties/x/default/0/0");
  auto health = test::RunShell("curl -s --max-time 20 " + url + "/health");
  EXPECT_HAS(health.out, "ok");
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "serve exits 0 on SIGTERM";
}

// Every file of the folder is covered above; a new one fails here until it gets its test.
TEST(HostileInputsFolder, EveryFileHasARegressionTest) {
  const std::set<std::string> covered = {
      "README.md",          "config_1e999",       "config_deep",          "config_float_cast",
      "config_int64_wrap",  "registry_1e999",     "registry_deep",        "schema_1e999",
      "schema_deep_schema", "mcp_1e999",          "mcp_deep",             "mcp_resource_uri_int",
      "schema_redos",       "schema_regex_stack", "schema_deep_instance", "chat_1e999",
      "chat_deep",          "tokenizer_1e999",    "safetensors_1e999",    "serve_deep_tools_200k.json",
      "st_bytes_overflow",  "st_numel_overflow",  "st_shape_u64"};
  ASSERT_TRUE(fs::exists(kHostile)) << kHostile;
  for (const auto& e : fs::directory_iterator(kHostile)) {
    std::string n = e.path().filename().string();
    EXPECT_TRUE(covered.count(n)) << "no regression test for " << n;
  }
}

}  // namespace
}  // namespace k2
