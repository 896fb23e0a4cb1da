// The MCP client against the real reference servers installed by scripts/setup.sh (npm): memory,
// filesystem (on a temp dir) and everything (stdio and streamable HTTP). Skips when node or a package is absent.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "toolgen/mcp_client.h"
#include "toolgen/schema.h"

namespace k2::toolgen::mcp {
namespace {

namespace fs = std::filesystem;

std::string Pkg(const std::string& name) {
  return std::string(K2GYM_SOURCE_DIR) + "/third_party/mcp/node_modules/@modelcontextprotocol/" + name + "/dist/index.js";
}

bool HaveNode() { return system("node --version >/dev/null 2>&1") == 0; }

#define REQUIRE_SERVER(name)                                                                         \
  if (!HaveNode()) GTEST_SKIP() << "node not on PATH (scripts/setup.sh installs it)";               \
  if (!fs::exists(Pkg(name))) GTEST_SKIP() << Pkg(name) << " not installed (run scripts/setup.sh)"

std::unique_ptr<Client> Start(std::vector<std::string> argv, std::map<std::string, std::string> env = {}) {
  StdioOptions o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  auto t = StartStdio(o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) return nullptr;
  auto c = Client::Connect(std::move(*t));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// Validates the arguments against the tool's own inputSchema (as an environment does), then calls it.
std::string Call(Client& c, const std::vector<ToolSpec>& tools, const std::string& name, const json& args) {
  auto it = std::find_if(tools.begin(), tools.end(), [&](const ToolSpec& t) { return t.name == name; });
  EXPECT_NE(it, tools.end()) << "server has no tool " << name;
  if (it == tools.end()) return "";
  auto schema = Schema::Compile(it->input_schema, name);
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_TRUE((*schema)->Validate(args).ok()) << (*schema)->Validate(args).ToString();
  auto r = c.CallTool(name, args);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return "";
  EXPECT_FALSE(r->is_error) << r->Text();
  return r->Text();
}

fs::path TempDir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("k2gym_" + tag + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(McpServers, MemoryCreatesAndReadsEntities) {
  REQUIRE_SERVER("server-memory");
  fs::path dir = TempDir("memory");
  auto c = Start({"node", Pkg("server-memory")}, {{"MEMORY_FILE_PATH", (dir / "memory.jsonl").string()}});
  ASSERT_NE(c, nullptr);
  auto tools = c->ListTools("mcp:memory");
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  EXPECT_GE(tools->size(), 9u);
  Call(*c, *tools, "create_entities",
       {{"entities", {{{"name", "Ada"}, {"entityType", "person"}, {"observations", {"wrote the first program"}}}}}});
  Call(*c, *tools, "create_relations", {{"relations", {{{"from", "Ada"}, {"to", "Ada"}, {"relationType", "knows"}}}}});
  std::string graph = Call(*c, *tools, "read_graph", json::object());
  EXPECT_NE(graph.find("wrote the first program"), std::string::npos) << graph;
  std::string found = Call(*c, *tools, "search_nodes", {{"query", "Ada"}});
  EXPECT_NE(found.find("person"), std::string::npos) << found;
  c->Close();
  fs::remove_all(dir);
}

TEST(McpServers, FilesystemWritesReadsAndListsInTempDir) {
  REQUIRE_SERVER("server-filesystem");
  fs::path dir = fs::canonical(TempDir("fs"));
  auto c = Start({"node", Pkg("server-filesystem"), dir.string()});
  ASSERT_NE(c, nullptr);
  auto tools = c->ListTools("mcp:filesystem");
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  Call(*c, *tools, "write_file", {{"path", (dir / "a.txt").string()}, {"content", "hello k2gym"}});
  EXPECT_EQ(Call(*c, *tools, "read_text_file", {{"path", (dir / "a.txt").string()}}), "hello k2gym");
  std::string listing = Call(*c, *tools, "list_directory", {{"path", dir.string()}});
  EXPECT_NE(listing.find("a.txt"), std::string::npos) << listing;
  // Outside the allowed directory: a tool-level error, not a protocol failure.
  auto denied = c->CallTool("read_text_file", {{"path", "/etc/hostname"}});
  ASSERT_TRUE(denied.ok()) << denied.status().ToString();
  EXPECT_TRUE(denied->is_error) << denied->Text();
  c->Close();
  fs::remove_all(dir);
}

TEST(McpServers, EverythingEchoesAndSumsOverStdio) {
  REQUIRE_SERVER("server-everything");
  auto c = Start({"node", Pkg("server-everything"), "stdio"});
  ASSERT_NE(c, nullptr);
  auto tools = c->ListTools("mcp:everything");
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  EXPECT_NE(Call(*c, *tools, "echo", {{"message", "hi there"}}).find("hi there"), std::string::npos);
  EXPECT_NE(Call(*c, *tools, "get-sum", {{"a", 2}, {"b", 3}}).find("5"), std::string::npos);
  auto bad = c->CallTool("get-sum", {{"a", "two"}});  // the server's own validation rejects it
  EXPECT_TRUE(!bad.ok() || bad->is_error);
}

int FreePort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(s);
  return port;
}

TEST(McpServers, EverythingOverStreamableHttp) {
  REQUIRE_SERVER("server-everything");
  int port = FreePort();
  StdioOptions o;  // the stdio transport doubles as a process supervisor for the HTTP server
  o.argv = {"node", Pkg("server-everything"), "streamableHttp"};
  o.env = {{"PORT", std::to_string(port)}};
  o.close_grace_ms = 200;
  auto proc = StartStdio(o);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/mcp";
  std::unique_ptr<Client> c;
  Status last;
  for (int i = 0; i < 100 && !c; ++i) {  // up to ~10 s for node to listen
    auto t = ConnectHttp({.url = url});
    ASSERT_TRUE(t.ok());
    auto r = Client::Connect(std::move(*t));
    if (r.ok()) {
      c = std::move(*r);
    } else {
      last = r.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_NE(c, nullptr) << last.ToString();
  EXPECT_EQ(c->protocol_version(), "2025-11-25");
  auto tools = c->ListTools("mcp:everything-http");
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  EXPECT_NE(Call(*c, *tools, "echo", {{"message", "over http"}}).find("over http"), std::string::npos);
  EXPECT_NE(Call(*c, *tools, "get-sum", {{"a", 20}, {"b", 22}}).find("42"), std::string::npos);
  c->Close();
  (*proc)->Close();
}

// npm servers outside @modelcontextprotocol: missing packages fail (setup installs them); only a machine
// without node/npm skips.
std::string NpmFile(const std::string& rel) { return std::string(K2GYM_SOURCE_DIR) + "/third_party/mcp/node_modules/" + rel; }
#define REQUIRE_NPM_FILE(rel)                                                                                  \
  if (!HaveNode() || system("npm --version >/dev/null 2>&1") != 0)                                             \
    GTEST_SKIP() << "node/npm not installed (scripts/setup.sh installs them)";                                 \
  ASSERT_TRUE(fs::exists(NpmFile(rel))) << NpmFile(rel) << " missing: run scripts/setup.sh"

TEST(McpServers, TimeMcpPrintsABannerOnStdoutAndStillAnswers) {
  REQUIRE_NPM_FILE("time-mcp/dist/index.js");
  auto c = Start({"node", NpmFile("time-mcp/dist/index.js")});  // prints "Starting Time MCP server..." first
  ASSERT_NE(c, nullptr);
  auto tools = c->ListTools("mcp:time");
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  EXPECT_GE(tools->size(), 5u);
  EXPECT_EQ(Call(*c, *tools, "days_in_month", {{"date", "2024-02-10"}}).find("29") != std::string::npos, true);
  std::string now = Call(*c, *tools, "current_time", {{"format", "YYYY-MM-DD"}, {"timezone", "UTC"}});
  EXPECT_NE(now.find("20"), std::string::npos) << now;
  EXPECT_TRUE(c->Ping().ok());
}

TEST(McpServers, SqliteServerLoggingSqlToStdoutCreatesInsertsAndQueries) {
  REQUIRE_NPM_FILE("mcp-server-sqlite/dist/cli.js");
  fs::path dir = TempDir("sqlite_mcp");
  // The server logs every SQL statement to stdout (better-sqlite3 verbose: console.log).
  auto c = Start({"node", NpmFile("mcp-server-sqlite/dist/cli.js"), "--db", (dir / "t.db").string()});
  ASSERT_NE(c, nullptr);
  auto tools = c->ListTools("mcp:sqlite");
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  Call(*c, *tools, "create-table",
       {{"name", "pets"}, {"columns", json::array({{{"name", "id"}, {"type", "INTEGER"}, {"primaryKey", true}},
                                                  {{"name", "name"}, {"type", "TEXT"}}})}});
  Call(*c, *tools, "insert-record", {{"table", "pets"}, {"data", {{"name", "Rex"}}}});
  Call(*c, *tools, "insert-record", {{"table", "pets"}, {"data", {{"name", "Tom"}}}});
  std::string rows = Call(*c, *tools, "query", {{"sql", "SELECT name FROM pets ORDER BY id"}});
  EXPECT_NE(rows.find("Rex"), std::string::npos) << rows;
  EXPECT_NE(rows.find("Tom"), std::string::npos) << rows;
  c->Close();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace k2::toolgen::mcp
