// The `mcp` environment: an MCP client behind the ToolEnv loop, and the bounded server pool.
// Protocol-level failures of one call (timeout, JSON-RPC error, garbage) become error tool messages;
// a server that is gone breaks the episode (truncated) and is replaced at the next reset.
#include "agents/mcp_env.h"

#include <condition_variable>
#include <deque>

#include "core/config.h"

namespace k2::agents {
namespace {

using toolgen::mcp::Client;

Expected<std::unique_ptr<Client>> Connect(const McpEnvConfig& c) {
  std::unique_ptr<toolgen::mcp::Transport> t;
  if (!c.url.empty()) {
    K2_ASSIGN_OR_RETURN(t, toolgen::mcp::ConnectHttp({.url = c.url, .max_message_bytes = static_cast<size_t>(c.max_message_bytes)}));
  } else {
    toolgen::mcp::StdioOptions o;
    o.argv = c.command;
    for (auto& [k, v] : c.env.items()) o.env[k] = v.get<std::string>();
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
    K2_ASSIGN_OR_RETURN(client_, Acquire(cfg_));
    std::string server = cfg_.name;
    if (server.empty()) server = client_->server_info().value("name", "unnamed");
    K2_ASSIGN_OR_RETURN(auto tools, client_->ListTools("mcp:" + server));
    return SetTools(std::move(tools));
  }

  void Close() override { client_.reset(); }

 protected:
  Expected<std::vector<Message>> OnReset(uint64_t seed, const json& task) override {
    (void)seed;  // MCP servers are not seedable; the seed is recorded by the caller
    if (!client_ || !client_->alive()) {
      client_.reset();
      K2_ASSIGN_OR_RETURN(client_, Acquire(cfg_));
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
  McpEnvConfig cfg_;
  std::shared_ptr<Client> client_;
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
