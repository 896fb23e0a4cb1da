// The `mcp` environment: an MCP client behind the ToolEnv loop, and the bounded server pool.
// Protocol-level failures of one call (timeout, JSON-RPC error, garbage) become error tool messages;
// a server that is gone breaks the episode (truncated) and is replaced at the next reset.
#include "agents/mcp_env.h"

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>

#include "core/config.h"

namespace k2::agents {
namespace {

using toolgen::mcp::Client;

constexpr const char* kEpisodeTmp = "${EPISODE_TMP}";

std::string SubstituteTmp(std::string s, const std::string& dir) {
  for (size_t p = s.find(kEpisodeTmp); p != std::string::npos; p = s.find(kEpisodeTmp, p + dir.size()))
    s.replace(p, std::string(kEpisodeTmp).size(), dir);
  return s;
}

bool UsesEpisodeTmp(const McpEnvConfig& c) {
  for (auto& a : c.command)
    if (a.find(kEpisodeTmp) != std::string::npos) return true;
  for (auto& [k, v] : c.env.items())
    if (v.is_string() && v.get<std::string>().find(kEpisodeTmp) != std::string::npos) return true;
  return false;
}

// `tmp`: the directory substituted for ${EPISODE_TMP} (empty when the config does not use it).
Expected<std::unique_ptr<Client>> Connect(const McpEnvConfig& c, const std::string& tmp = "") {
  std::unique_ptr<toolgen::mcp::Transport> t;
  if (!c.url.empty()) {
    K2_ASSIGN_OR_RETURN(t, toolgen::mcp::ConnectHttp({.url = c.url, .max_message_bytes = static_cast<size_t>(c.max_message_bytes)}));
  } else {
    toolgen::mcp::StdioOptions o;
    for (auto& a : c.command) o.argv.push_back(SubstituteTmp(a, tmp));
    for (auto& [k, v] : c.env.items()) o.env[k] = SubstituteTmp(v.get<std::string>(), tmp);
    o.cwd = c.cwd;
    o.max_message_bytes = static_cast<size_t>(c.max_message_bytes);
    K2_ASSIGN_OR_RETURN(t, toolgen::mcp::StartStdio(o));
  }
  toolgen::mcp::ClientOptions co;
  co.timeout_ms = c.timeout_ms;
  return Client::Connect(std::move(t), co);
}

// The pool's state is shared with every lease's deleter, so leases may outlive the pool object itself
// (static destruction order) without dangling. Destroying the state closes (and reaps) idle servers.
struct PoolState {
  struct Slot {
    std::deque<std::unique_ptr<Client>> idle;
    int live = 0;  // idle + leased
  };
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Slot> slots;

  int Live() {
    std::lock_guard<std::mutex> lock(mu);
    int n = 0;
    for (auto& [k, s] : slots) n += s.live;
    return n;
  }
};

std::shared_ptr<PoolState>& Pool() {
  static auto* p = new std::shared_ptr<PoolState>(std::make_shared<PoolState>());
  return *p;
}

// Idle pooled servers are closed at process exit (an atexit hook, since the pool pointer is leaked on purpose).
struct PoolReaper {
  ~PoolReaper() {
    auto state = Pool();
    std::lock_guard<std::mutex> lock(state->mu);
    for (auto& [k, s] : state->slots) {
      for (auto& c : s.idle) c->Close();
      s.live -= static_cast<int>(s.idle.size());
      s.idle.clear();
    }
  }
} g_pool_reaper;

std::string PoolKey(const McpEnvConfig& c) {
  return CanonicalJson({{"command", c.command}, {"url", c.url}, {"env", c.env}, {"cwd", c.cwd}});
}

// A leased client: returned to the pool (or closed when dead) when the last reference goes.
Expected<std::shared_ptr<Client>> Acquire(const McpEnvConfig& c) {
  if (c.servers == "per_env") {
    K2_ASSIGN_OR_RETURN(auto client, Connect(c));
    return std::shared_ptr<Client>(std::move(client));
  }
  std::shared_ptr<PoolState> state = Pool();
  const std::string key = PoolKey(c);
  std::unique_ptr<Client> got;
  {
    std::unique_lock<std::mutex> lock(state->mu);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(c.lease_timeout_ms);
    while (true) {
      auto& slot = state->slots[key];
      while (!slot.idle.empty() && !slot.idle.front()->alive()) {  // drop servers that died while idle
        slot.idle.pop_front();
        --slot.live;
      }
      if (!slot.idle.empty()) {
        got = std::move(slot.idle.front());
        slot.idle.pop_front();
        break;
      }
      if (slot.live < c.max_servers) {
        ++slot.live;  // reserve, connect outside the lock
        break;
      }
      if (state->cv.wait_until(lock, deadline) == std::cv_status::timeout)
        return ResourceExhausted("mcp pool: all " + std::to_string(c.max_servers) + " servers busy for " +
                                 std::to_string(c.lease_timeout_ms) + " ms (raise max_servers or lease_timeout_ms)");
    }
  }
  if (!got) {
    auto client = Connect(c);
    if (!client.ok()) {
      std::lock_guard<std::mutex> lock(state->mu);
      --state->slots[key].live;
      state->cv.notify_one();
      return client.status();
    }
    got = std::move(*client);
  }
  Client* raw = got.release();
  return std::shared_ptr<Client>(raw, [state, key](Client* cl) {
    std::unique_ptr<Client> owned(cl);
    std::lock_guard<std::mutex> lock(state->mu);
    auto& slot = state->slots[key];
    if (owned->alive()) {
      slot.idle.push_back(std::move(owned));
    } else {
      --slot.live;
      owned.reset();
    }
    state->cv.notify_one();
  });
}

class McpEnv final : public ToolEnv {
 public:
  explicit McpEnv(McpEnvConfig c) : ToolEnv(c.max_steps), cfg_(std::move(c)) {}
  ~McpEnv() override { Close(); }

  Status Init() {
    K2_RETURN_IF_ERROR(Start());
    std::string server = cfg_.name;
    if (server.empty()) server = client_->server_info().value("name", "unnamed");
    K2_ASSIGN_OR_RETURN(auto tools, client_->ListTools("mcp:" + server));
    return SetTools(std::move(tools));
  }

  void Close() override {
    client_.reset();
    DropTmp();
  }

  json State() const override {
    if (cfg_.state_tool.empty() || !client_) return nullptr;
    auto r = client_->CallTool(cfg_.state_tool, cfg_.state_arguments, {.timeout_ms = cfg_.timeout_ms});
    if (!r.ok()) return {{"state_error", r.status().ToString()}};
    if (r->is_error) return {{"state_error", "state_tool " + cfg_.state_tool + " failed: " + r->Text()}};
    if (r->structured) return *r->structured;
    auto j = ParseJson(r->Text(), "state_tool " + cfg_.state_tool);
    if (!j.ok()) return {{"state_error", j.status().message()}};
    return *j;
  }

 protected:
  Expected<std::vector<Message>> OnReset(uint64_t seed, const json& task) override {
    (void)seed;  // MCP servers are not seedable; the seed is recorded by the caller
    const bool fresh = cfg_.servers == "per_env" && cfg_.restart == "episode" && cfg_.reset_tool.empty();
    if (!client_ || !client_->alive() || (fresh && resets_ > 0)) {
      client_.reset();
      DropTmp();
      K2_RETURN_IF_ERROR(Start());
    }
    ++resets_;
    if (!cfg_.reset_tool.empty()) {
      auto r = client_->CallTool(cfg_.reset_tool, json::object(), {.timeout_ms = cfg_.timeout_ms});
      if (!r.ok()) return r.status().Context("mcp env: reset_tool " + cfg_.reset_tool);
      if (r->is_error) return Internal("mcp env: reset_tool " + cfg_.reset_tool + " failed: " + r->Text());
    }
    if (task.is_object() && task.contains("initial_calls")) {
      const json& calls = task["initial_calls"];
      if (!calls.is_array()) return InvalidArgument("task.initial_calls: expected an array of {name, arguments}");
      for (size_t i = 0; i < calls.size(); ++i) {
        const std::string w = "task.initial_calls[" + std::to_string(i) + "]";
        if (!calls[i].is_object() || !calls[i].contains("name") || !calls[i]["name"].is_string())
          return InvalidArgument(w + ".name: expected a string");
        json args = calls[i].value("arguments", json::object());
        if (!args.is_object()) return InvalidArgument(w + ".arguments: expected an object");
        auto r = client_->CallTool(calls[i]["name"].get<std::string>(), args, {.timeout_ms = cfg_.timeout_ms});
        if (!r.ok()) return r.status().Context(w);
        if (r->is_error) return InvalidArgument(w + ": the server reports an error: " + r->Text().substr(0, 300));
      }
    }
    return TaskMessages(task, cfg_.system_prompt);
  }

  Expected<ToolOutcome> Invoke(const std::string& tool, const json& arguments) override {
    if (!client_) return FailedPrecondition("mcp env closed");
    auto r = client_->CallTool(tool, arguments, {.timeout_ms = cfg_.timeout_ms});
    if (r.ok()) return ToolOutcome{r->Text(), r->structured, r->is_error};
    const Status& s = r.status();
    if (!client_->alive()) return s;  // the server is gone: the episode cannot continue
    // One failed call on a live server (timeout, JSON-RPC error, unparsable reply) is the tool's failure.
    return ToolOutcome{"error: " + s.message(), std::nullopt, true};
  }

 private:
  Status Start() {
    if (cfg_.servers == "pooled") {
      K2_ASSIGN_OR_RETURN(client_, Acquire(cfg_));
      return Status::Ok();
    }
    if (UsesEpisodeTmp(cfg_)) {
      std::string templ = (std::filesystem::temp_directory_path() / "k2gym-mcp-XXXXXX").string();
      if (!mkdtemp(templ.data())) return IoError("mcp env: cannot create a temporary directory for ${EPISODE_TMP}");
      tmp_ = templ;
    }
    auto c = Connect(cfg_, tmp_);
    if (!c.ok()) {
      DropTmp();
      return c.status();
    }
    client_ = std::shared_ptr<Client>(std::move(*c));
    return Status::Ok();
  }
  void DropTmp() {
    if (tmp_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(tmp_, ec);
    tmp_.clear();
  }

  McpEnvConfig cfg_;
  std::shared_ptr<Client> client_;
  std::string tmp_;
  int64_t resets_ = 0;
};

}  // namespace

namespace {
// The checks the struct's Visit cannot express; MakeMcpEnv runs them too (callers may build the struct).
Status CheckMcpEnvConfig(const McpEnvConfig& c) {
  if (c.command.empty() == c.url.empty())
    return InvalidArgument("mcp env config: expected exactly one of \"command\" (stdio) or \"url\" (HTTP)");
  if (!c.env.is_object()) return InvalidArgument("mcp env config: env: expected an object of strings");
  for (auto& [k, v] : c.env.items())
    if (!v.is_string()) return InvalidArgument("mcp env config: env." + k + ": expected a string, got " + JsonTypeName(v));
  if (c.restart != "episode" && c.restart != "never")
    return InvalidArgument("mcp env config: restart: expected \"episode\" or \"never\", got " + json(c.restart).dump());
  if (!c.state_arguments.is_object()) return InvalidArgument("mcp env config: state_arguments: expected an object");
  if (c.servers == "pooled" && UsesEpisodeTmp(c))
    return InvalidArgument("mcp env config: ${EPISODE_TMP} needs servers \"per_env\" (pooled servers outlive episodes)");
  if (c.servers != "per_env" && c.servers != "pooled")
    return InvalidArgument("mcp env config: servers: expected \"per_env\" or \"pooled\", got " + json(c.servers).dump());
  if (c.timeout_ms < 1 || c.max_steps < 1 || c.max_servers < 1 || c.max_message_bytes < 1024 || c.lease_timeout_ms < 0)
    return InvalidArgument("mcp env config: timeout_ms, max_steps, max_servers must be >= 1, max_message_bytes >= 1024");
  return Status::Ok();
}
}  // namespace

Expected<McpEnvConfig> ParseMcpEnvConfig(const json& config) {
  McpEnvConfig c;
  K2_RETURN_IF_ERROR(config::Reader::Read(config, c, "", "mcp env config"));
  K2_RETURN_IF_ERROR(CheckMcpEnvConfig(c));
  return c;
}

Expected<std::unique_ptr<Env>> MakeMcpEnv(const McpEnvConfig& config) {
  K2_RETURN_IF_ERROR(CheckMcpEnvConfig(config));
  auto env = std::make_unique<McpEnv>(config);
  K2_RETURN_IF_ERROR(env->Init());
  return std::unique_ptr<Env>(std::move(env));
}

int PooledServersLive() { return Pool()->Live(); }

Status RegisterMcpEnv(EnvRegistry& registry) {
  return registry.Register(
      {.name = "mcp",
       .description = "any MCP server (stdio command or Streamable HTTP url): its tools are the actions",
       .example_config = {{"command", {"node", "third_party/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js"}}}},
      [](const json& cfg) -> Expected<std::unique_ptr<Env>> {
        K2_ASSIGN_OR_RETURN(auto c, ParseMcpEnvConfig(cfg));
        return MakeMcpEnv(c);
      });
}

}  // namespace k2::agents
