// `k2gym serve` end to end: the real binary on loopback, a real HTTP client (curl). The checkpoint is
// a bigram model built here whose greedy output is a fixed Kimi-K2 tool call, so responses can be
// checked exactly: tool_calls JSON, n choices, SSE chunks, a structured failure for a wrong call
// index, and 4xx for malformed requests while the server keeps serving.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/rng.h"
#include "engine/engine.h"
#include "engine/text/bpe_train.h"
#include "engine/text/chat_template.h"
#ifdef K2GEN_IN_PROCESS
#include "engine/gen/openai_server.h"
#endif

extern char** environ;

namespace k2 {
namespace {

namespace fs = std::filesystem;

struct Server {
  pid_t pid = -1;
  int port = 0;
  std::string dir;
#ifdef K2GEN_IN_PROCESS
  // The same service `k2gym serve` runs, in this process (the binary variant spawns k2gym instead).
  std::unique_ptr<engine::Model<float>> model;
  std::optional<text::Tokenizer> tok;
  std::unique_ptr<gen::Generator> gen;
  std::unique_ptr<gen::OpenAiService> svc;
  std::unique_ptr<http::Server> http;
#endif
};

Server* g_server = nullptr;

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

// curl with the body from a file; returns (status, body).
std::pair<int, std::string> Curl(const std::string& method, const std::string& path, const std::string& body = "",
                                 const std::string& extra = "") {
  std::string bf = g_server->dir + "/body.json";
  { std::ofstream(bf) << body; }
  std::string cmd = "curl -s -N --max-time 60 -X " + method + " " + extra + " -w '\\n%{http_code}' ";
  if (!body.empty() || method == "POST") cmd += "-H 'Content-Type: application/json' --data-binary @" + bf + " ";
  cmd += "http://127.0.0.1:" + std::to_string(g_server->port) + path;
  std::string out = RunShell(cmd);
  size_t nl = out.rfind('\n');
  if (nl == std::string::npos) return {0, out};
  return {std::atoi(out.c_str() + nl + 1), out.substr(0, nl)};
}

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_server = new Server;
    g_server->dir = (fs::temp_directory_path() / ("k2gym_serve_test_" + std::to_string(getpid()))).string();
    fs::remove_all(g_server->dir);
    fs::create_directories(g_server->dir + "/ckpt");
    // Tokenizer: trained on text holding the call's pieces so they become few, distinct tokens.
    std::string corpus;
    for (int i = 0; i < 300; ++i) corpus += "functions.get_weather:0 {\"city\": \"Paris\"} weather\n";
    text::BpeTrainOptions bo;
    bo.vocab_size = 256 + 48 + text::kKimiNumReservedSpecial;
    bo.threads = 1;
    auto tok = text::TrainBpe(corpus, bo);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    ASSERT_TRUE(tok->Save(g_server->dir + "/tok").ok());
    // The chain the bigram model follows after <|im_middle|>.
    std::vector<int32_t> chain = {tok->SpecialId(text::kImMiddle), tok->SpecialId(text::kSectionBegin),
                                  tok->SpecialId(text::kCallBegin)};
    for (int t : tok->Encode("functions.get_weather:0")) chain.push_back(t);
    chain.push_back(tok->SpecialId(text::kArgBegin));
    for (int t : tok->Encode("{\"city\": \"Paris\"}")) chain.push_back(t);
    for (const char* s : {text::kCallEnd, text::kSectionEnd, text::kImEnd}) chain.push_back(tok->SpecialId(s));
    ASSERT_EQ(std::set<int32_t>(chain.begin(), chain.end()).size(), chain.size()) << "chain tokens must be distinct";
    auto cfg = engine::LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
    ASSERT_TRUE(cfg.ok());
    cfg->vocab_size = tok->vocab_size();
    cfg->max_position_embeddings = 512;
    auto model = engine::Model<float>::Create(*cfg, 5);
    ASSERT_TRUE(model.ok());
    // Bigram model: residual branches zeroed (hidden = embedding of the last token), lm_head row of
    // next(v) aligned with v's embedding.
    const int64_t D = cfg->hidden_size;
    engine::Param<float>* emb = (*model)->Find("model.embed_tokens.weight");
    engine::Param<float>* lm = (*model)->Find("lm_head.weight");
    Rng rng(9);
    for (auto& x : emb->w) x = static_cast<float>(rng.Normal());
    std::fill(lm->w.begin(), lm->w.end(), 0.0f);
    for (size_t i = 0; i + 1 < chain.size(); ++i) {
      const float* e = &emb->w[static_cast<size_t>(chain[i] * D)];
      double n2 = 0;
      for (int64_t d = 0; d < D; ++d) n2 += double(e[d]) * e[d];
      for (int64_t d = 0; d < D; ++d) lm->w[static_cast<size_t>(chain[i + 1] * D + d)] = static_cast<float>(4.0 * e[d] / std::sqrt(n2));
    }
    for (auto& p : (*model)->params())
      if (p.name.find("o_proj") != std::string::npos || p.name.find("down_proj") != std::string::npos)
        std::fill(p.w.begin(), p.w.end(), 0.0f);
    ASSERT_TRUE((*model)->SaveSafetensors(g_server->dir + "/ckpt/model.safetensors").ok());
    ASSERT_TRUE(fs::exists(g_server->dir + "/ckpt/config.json"));

#ifdef K2GEN_IN_PROCESS
    {
      Server& S = *g_server;
      S.model = std::move(*engine::Model<float>::Create(*cfg, 1));
      ASSERT_TRUE(S.model->LoadSafetensors(S.dir + "/ckpt/model.safetensors").ok());
      auto t = text::Tokenizer::Load(S.dir + "/tok");
      ASSERT_TRUE(t.ok());
      S.tok.emplace(std::move(*t));
      gen::GeneratorOptions go;
      go.tokenizer = &*S.tok;
      auto g = gen::Generator::Create(S.model.get(), go);
      ASSERT_TRUE(g.ok());
      S.gen = std::move(*g);
      gen::OpenAiOptions oo;
      oo.http.max_body_bytes = 65536;
      oo.default_max_tokens = 64;
      S.svc = std::make_unique<gen::OpenAiService>(S.gen.get(), &*S.tok, oo);
      auto h = S.svc->Listen();
      ASSERT_TRUE(h.ok()) << h.status().ToString();
      S.http = std::move(*h);
      S.port = S.http->port();
      return;
    }
#endif
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::string bin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";
    std::vector<std::string> argv_s = {bin, "serve", "--ckpt", g_server->dir + "/ckpt", "--tokenizer", g_server->dir + "/tok",
                                       "--port", "0", "--max-body", "65536", "--max-tokens", "64", "--db", g_server->dir + "/k.db"};
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&g_server->pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    size_t colon = line.rfind(':');
    ASSERT_NE(line.find("listening on http://127.0.0.1:"), std::string::npos) << line;
    g_server->port = std::atoi(line.c_str() + colon + 1);
    ASSERT_GT(g_server->port, 0) << line;
  }
  static void TearDownTestSuite() {
#ifdef K2GEN_IN_PROCESS
    if (g_server->http) g_server->http->Stop();
#endif
    if (g_server->pid > 0) {
      kill(g_server->pid, SIGTERM);
      int st = 0;
      waitpid(g_server->pid, &st, 0);
      EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "serve exits 0 on SIGTERM";
    }
    fs::remove_all(g_server->dir);
    delete g_server;
  }
};

const char* kTools = R"([{"type":"function","function":{"name":"get_weather","description":"Weather",
  "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])";

std::string Body(const std::string& extra = "") {
  return std::string(R"({"model":"k2gym","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":)") + kTools +
         R"(,"temperature":0)" + extra + "}";
}

TEST_F(ServeTest, HealthAndModels) {
  auto [s1, b1] = Curl("GET", "/health");
  EXPECT_EQ(s1, 200);
  EXPECT_EQ(json::parse(b1)["status"], "ok");
  auto [s2, b2] = Curl("GET", "/v1/models");
  EXPECT_EQ(s2, 200);
  EXPECT_EQ(json::parse(b2)["data"][0]["id"], "k2gym");
}

TEST_F(ServeTest, ChatCompletionReturnsToolCallsAndUsage) {
  auto [s, b] = Curl("POST", "/v1/chat/completions", Body());
  ASSERT_EQ(s, 200) << b;
  json j = json::parse(b);
  EXPECT_EQ(j["object"], "chat.completion");
  const json& ch = j["choices"][0];
  EXPECT_EQ(ch["finish_reason"], "tool_calls") << b;
  EXPECT_TRUE(ch["message"]["content"].is_null());
  const json& call = ch["message"]["tool_calls"][0];
  EXPECT_EQ(call["id"], "functions.get_weather:0");
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(call["function"]["arguments"].get<std::string>()), json({{"city", "Paris"}}));
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 10);
  EXPECT_EQ(j["usage"]["total_tokens"].get<int>(),
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  auto [s2, b2] = Curl("POST", "/v1/chat/completions", Body(R"(,"n":3,"logprobs":true)"));
  ASSERT_EQ(s2, 200) << b2;
  json j2 = json::parse(b2);
  ASSERT_EQ(j2["choices"].size(), 3u);
  for (auto& c : j2["choices"]) {
    EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    EXPECT_EQ(c["logprobs"]["content"].size(), j["usage"]["completion_tokens"].get<size_t>());
  }
}

TEST_F(ServeTest, StreamsServerSentEvents) {
  auto [s, b] = Curl("POST", "/v1/chat/completions", Body(R"(,"stream":true,"stream_options":{"include_usage":true})"));
  ASSERT_EQ(s, 200) << b;
  std::vector<json> events;
  bool done = false;
  size_t pos = 0;
  while ((pos = b.find("data: ", pos)) != std::string::npos) {
    size_t end = b.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    std::string data = b.substr(pos + 6, end - pos - 6);
    if (data == "[DONE]") done = true;
    else events.push_back(json::parse(data));
    pos = end;
  }
  EXPECT_TRUE(done);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  bool saw_call = false;
  std::string finish;
  for (auto& e : events) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    if (e["choices"].empty()) continue;
    const json& d = e["choices"][0]["delta"];
    if (d.contains("tool_calls")) {
      saw_call = true;
      EXPECT_EQ(d["tool_calls"][0]["function"]["name"], "get_weather");
      EXPECT_EQ(d["tool_calls"][0]["index"], 0);
    }
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_TRUE(saw_call);
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_TRUE(events.back()["usage"]["completion_tokens"].get<int>() > 0);
}

TEST_F(ServeTest, WrongCallIndexIsReportedAsFailure) {
  // One call already in the dialog: the next must be :1, the model says :0.
  std::string body = std::string(R"({"messages":[{"role":"user","content":"Paris?"},
    {"role":"assistant","content":"","tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
    {"role":"tool","tool_call_id":"call_a","content":"sunny"}],"tools":)") + kTools + R"(,"temperature":0})";
  auto [s, b] = Curl("POST", "/v1/chat/completions", body);
  ASSERT_EQ(s, 200) << b;
  json j = json::parse(b);
  EXPECT_EQ(j["choices"][0]["k2gym_failure"].get<std::string>().rfind("call_index_mismatch", 0), 0u) << b;
  EXPECT_FALSE(j["choices"][0]["message"].contains("tool_calls"));
}

TEST_F(ServeTest, MalformedRequestsGet4xxAndServerKeepsServing) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{not json", "invalid JSON"},
      {"[1,2]", "body"},
      {"{}", "messages"},
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", "role"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0]"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_p":0})", "top_p"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":0})", "n"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":100})", "n"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"many"})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})", "stop"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":{}})", "tools"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"})", "tool_choice"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"nope"}}})", "nope"},
      {R"({"messages":[{"role":"tool","tool_call_id":"missing","content":"x"}]})", "messages"},
      {R"({"messages":[{"role":"user","content":"x"}],"seed":1.5})", "seed"},
  };
  for (auto& [body, want] : bad) {
    auto [s, b] = Curl("POST", "/v1/chat/completions", body);
    EXPECT_EQ(s, 400) << body << " -> " << b;
    auto j = json::parse(b, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << b;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(want), std::string::npos) << body << " -> " << b;
  }
  EXPECT_EQ(Curl("GET", "/v1/chat/completions").first, 405);
  EXPECT_EQ(Curl("GET", "/v2/nothing").first, 404);
  std::string huge = R"({"messages":[{"role":"user","content":")" + std::string(100000, 'a') + "\"}]}";
  EXPECT_EQ(Curl("POST", "/v1/chat/completions", huge).first, 413);
  std::string long_prompt = R"({"messages":[{"role":"user","content":")" + std::string(3000, 'z') + "\"}]}";
  auto [sl, bl] = Curl("POST", "/v1/chat/completions", long_prompt);
  EXPECT_EQ(sl, 400) << bl;
  EXPECT_NE(bl.find("context_length_exceeded"), std::string::npos) << bl;
  auto [s, b] = Curl("POST", "/v1/chat/completions", Body());
  EXPECT_EQ(s, 200) << b;
  EXPECT_EQ(Curl("GET", "/health").first, 200);
}

}  // namespace
}  // namespace k2

#ifndef K2GEN_IN_PROCESS
namespace k2 {
namespace {

std::string Bin() { return std::string(K2GYM_BINARY_DIR) + "/apps/k2gym"; }

TEST(GenerateCli, GreedyByteLevelGenerationIsDeterministic) {
  const std::string cmd = Bin() + " generate --model " + std::string(K2GYM_SOURCE_DIR) +
                          "/configs/models/small.json --prompt 'Once upon' --temperature 0 --max-tokens 6 -n 2 "
                          "--db /tmp/k2gym_gen_cli_test.db --json 2>&1";
  std::string a = RunShell(cmd), b = RunShell(cmd);
  auto j = json::parse(a, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << a;
  EXPECT_EQ(a, b);
  EXPECT_EQ(j["prompt_tokens"], 9);
  ASSERT_EQ(j["samples"].size(), 2u);
  EXPECT_EQ(j["samples"][0]["tokens"].size(), 6u);
  EXPECT_EQ(j["samples"][0]["tokens"], j["samples"][1]["tokens"]) << "greedy samples agree";
  EXPECT_EQ(j["samples"][0]["finish_reason"], "length");
}

TEST_F(ServeTest, ChatCommandRunsToolTurns) {
  std::string tools = g_server->dir + "/tools.json";
  { std::ofstream(tools) << kTools; }
  std::string out = RunShell("printf 'Weather in Paris?\\n/tool sunny\\n' | " + Bin() + " chat --ckpt " + g_server->dir +
                        "/ckpt --tokenizer " + g_server->dir + "/tok --tools " + tools +
                        " --temperature 0 --max-tokens 40 --db " + g_server->dir + "/c.db --json 2>/dev/null");
  std::istringstream in(out);
  std::string l1, l2;
  std::getline(in, l1);
  std::getline(in, l2);
  auto a = json::parse(l1, nullptr, false), b = json::parse(l2, nullptr, false);
  ASSERT_FALSE(a.is_discarded() || b.is_discarded()) << out;
  EXPECT_EQ(a["tool_calls"][0]["function"]["name"], "get_weather") << l1;
  EXPECT_EQ(a["tool_calls"][0]["id"], "functions.get_weather:0");
  // After the tool result the bigram model repeats call :0 where :1 is due: a scored failure.
  EXPECT_EQ(b["failure"].get<std::string>().rfind("call_index_mismatch", 0), 0u) << l2;
}

TEST(GenerateCli, MissingModelIsAUsageError) {
  int st = system((Bin() + " generate --prompt x --db /tmp/k2gym_gen_cli_test.db > /dev/null 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(st), 2);
  std::string out = RunShell(Bin() + " generate --model /nonexistent.json --prompt x --db /tmp/k2gym_gen_cli_test.db 2>&1");
  EXPECT_NE(out.find("/nonexistent.json"), std::string::npos) << out;
}

}  // namespace
}  // namespace k2
#endif  // K2GEN_IN_PROCESS
