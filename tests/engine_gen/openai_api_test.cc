// The OpenAI service's conformance and robustness, in process, over loopback with curl: a model whose
// vocabulary is padded past its tokenizer's (never sampled, never a crash), invalid UTF-8 named by
// field, model names (404 model_not_found, /v1/models/{id}), the developer role, fresh seeds, real
// logprobs/top_logprobs, logit_bias and penalties, OpenAI error objects from the HTTP layer, keep-alive
// and cancellation when the client goes away.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "engine/gen/openai_server.h"
#include "engine/text/bpe_train.h"
#include "engine/text/chat_template.h"
#include "tests/tiny_model.h"
#include "toolgen/schema.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kPad = 512;  // model ids past the tokenizer's

struct Fixture {
  std::string dir;
  std::optional<text::Tokenizer> tok;
  std::unique_ptr<engine::Model<float>> model;
  std::unique_ptr<gen::Generator> gen;
  std::unique_ptr<gen::OpenAiService> svc;
  std::unique_ptr<http::Server> http;
  int port = 0;
};
Fixture* F = nullptr;

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

struct Reply {
  int status = 0;
  std::string body;
  json j;
};

// curl with the (binary) body from a file.
Reply Curl(const std::string& method, const std::string& path, const std::string& body = "",
           const std::string& extra = "") {
  static std::atomic<int> n{0};
  std::string bf = F->dir + "/body" + std::to_string(n++) + ".json";
  { std::ofstream(bf, std::ios::binary) << body; }
  std::string cmd = "curl -s -N --max-time 120 -X " + method + " " + extra + " -w '\\n%{http_code}' ";
  if (method == "POST") cmd += "-H 'Content-Type: application/json' --data-binary @" + bf + " ";
  cmd += "http://127.0.0.1:" + std::to_string(F->port) + path;
  std::string out = RunShell(cmd);
  Reply r;
  size_t nl = out.rfind('\n');
  if (nl == std::string::npos) return r;
  r.status = std::atoi(out.c_str() + nl + 1);
  r.body = out.substr(0, nl);
  r.j = json::parse(r.body, nullptr, false);
  return r;
}

// The requests at once (one shell, curl processes in parallel): the generator batches them.
std::vector<Reply> CurlMany(const std::vector<std::string>& bodies) {
  static std::atomic<int> n{0};
  const std::string tag = F->dir + "/many" + std::to_string(n++);
  std::string cmd;
  for (size_t i = 0; i < bodies.size(); ++i) {
    const std::string b = tag + "_" + std::to_string(i);
    { std::ofstream(b + ".json", std::ios::binary) << bodies[i]; }
    cmd += "curl -s --max-time 300 -H 'Content-Type: application/json' --data-binary @" + b + ".json -o " + b +
           ".out -w '%{http_code}' http://127.0.0.1:" + std::to_string(F->port) + "/v1/chat/completions > " + b +
           ".code & ";
  }
  RunShell(cmd + "wait");
  std::vector<Reply> out;
  for (size_t i = 0; i < bodies.size(); ++i) {
    const std::string b = tag + "_" + std::to_string(i);
    Reply r;
    std::ifstream c(b + ".code"), o(b + ".out");
    c >> r.status;
    std::stringstream ss;
    ss << o.rdbuf();
    r.body = ss.str();
    r.j = json::parse(r.body, nullptr, false);
    out.push_back(std::move(r));
  }
  return out;
}

std::string Chat(const std::string& extra, const std::string& content = "Hello there") {
  return R"({"model":"k2gym","messages":[{"role":"user","content":")" + content + R"("}])" + extra + "}";
}

class OpenAiApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    F = new Fixture;
    F->dir = (fs::temp_directory_path() / ("k2gym_openai_api_" + std::to_string(getpid()))).string();
    fs::create_directories(F->dir);
    std::string corpus;
    for (int i = 0; i < 200; ++i) corpus += "Hello there, the weather in Paris is sunny today.\n";
    text::BpeTrainOptions bo;
    bo.vocab_size = 256 + 64 + text::kKimiNumReservedSpecial;
    bo.threads = 1;
    auto tok = text::TrainBpe(corpus, bo);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    F->tok.emplace(std::move(*tok));
    // A released checkpoint's padded vocabulary: kPad ids the tokenizer does not have, with weights.
    // The quickstart-sized model (configs/models/small.json), random weights.
    auto cfg_or = engine::LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/small.json");
    ASSERT_TRUE(cfg_or.ok()) << cfg_or.status().ToString();
    engine::ModelConfig cfg = *cfg_or;
    cfg.vocab_size = F->tok->vocab_size() + kPad;
    auto model = engine::Model<float>::Create(cfg, 17);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    F->model = std::move(*model);
    gen::GeneratorOptions go;
    go.tokenizer = &*F->tok;
    auto g = gen::Generator::Create(F->model.get(), go);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    F->gen = std::move(*g);
    gen::OpenAiOptions oo;
    oo.http.max_body_bytes = 65536;
    oo.http.keep_alive_s = 5;
    oo.http.max_concurrent = 16;
    oo.default_max_tokens = 16;
    oo.aliases = {"k2gym-alias"};
    F->svc = std::make_unique<gen::OpenAiService>(F->gen.get(), &*F->tok, oo);
    auto h = F->svc->Listen();
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    F->http = std::move(*h);
    F->port = F->http->port();
  }
  static void TearDownTestSuite() {
    if (F->http) F->http->Stop();
    F->gen.reset();
    fs::remove_all(F->dir);
    delete F;
  }
};

void ExpectErrorObject(const Reply& r, int status, const std::string& param, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  ASSERT_TRUE(r.j.is_object() && r.j.contains("error") && r.j["error"].is_object()) << r.body;
  const json& e = r.j["error"];
  EXPECT_TRUE(e["message"].is_string()) << r.body;
  EXPECT_TRUE(e["type"].is_string()) << r.body;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << r.body;
  if (!param.empty()) {
    EXPECT_EQ(e["param"], param) << r.body;
  }
  if (!code.empty()) {
    EXPECT_EQ(e["code"], code) << r.body;
  }
}

TEST_F(OpenAiApiTest, PaddedVocabularyIdsAreNeverSampledAndTheServerNeverAborts) {
  const int64_t tv = F->tok->vocab_size();
  std::vector<int32_t> prompt;
  for (int t : F->tok->Encode("Hello there")) prompt.push_back(t);
  gen::GenerateRequest rq;
  rq.tokens = prompt;
  rq.n = 8;
  rq.sampling.temperature = 1.5;
  rq.sampling.max_new_tokens = 64;
  rq.sampling.seed = 3;
  rq.sampling.top_logprobs = 20;
  auto c = F->gen->Generate(rq);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  for (auto& s : c->samples) {
    for (int32_t t : s.tokens) EXPECT_LT(t, tv);
    for (auto& top : s.top_logprobs)
      for (auto& [t, lp] : top) EXPECT_LT(t, tv);
  }
  // The same model without the tokenizer's bound does sample padded ids (so the mask is what holds).
  gen::GeneratorOptions unbounded;
  auto g2 = gen::Generator::Create(F->model.get(), unbounded);
  ASSERT_TRUE(g2.ok());
  rq.sampling.top_logprobs = -1;
  auto c2 = (*g2)->Generate(rq);
  ASSERT_TRUE(c2.ok());
  int padded = 0;
  for (auto& s : c2->samples)
    for (int32_t t : s.tokens) padded += t >= tv;
  EXPECT_GT(padded, 0);
  // Through the server: sampled text, logprobs and top_logprobs of many requests, then still healthy.
  for (int i = 0; i < 6; ++i) {
    auto r = Curl("POST", "/v1/chat/completions",
                  Chat(R"(,"temperature":2,"n":4,"max_tokens":24,"logprobs":true,"top_logprobs":20)"));
    ASSERT_EQ(r.status, 200) << r.body;
    for (auto& ch : r.j["choices"])
      for (auto& e : ch["logprobs"]["content"]) EXPECT_LE(e["top_logprobs"].size(), 20u);
  }
  EXPECT_EQ(Curl("GET", "/health").status, 200);
}

TEST_F(OpenAiApiTest, InvalidUtf8Gets400NamingTheField) {
  auto content = Curl("POST", "/v1/chat/completions", Chat("", "caf\xff\xfe"));
  ExpectErrorObject(content, 400, "messages[0].content", "invalid_encoding");
  EXPECT_NE(content.j["error"]["message"].get<std::string>().find("messages[0].content"), std::string::npos);
  auto model = Curl("POST", "/v1/chat/completions", "{\"model\":\"k2\xc0\xafgym\",\"messages\":[]}");
  ExpectErrorObject(model, 400, "model", "invalid_encoding");
  auto key = Curl("POST", "/v1/chat/completions",
                  "{\"model\":\"k2gym\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"na\xed\xa0\x80me\":1}]}");
  ExpectErrorObject(key, 400, "", "invalid_encoding");
  EXPECT_NE(key.j["error"]["message"].get<std::string>().find("messages[0].na"), std::string::npos) << key.body;
  auto stop = Curl("POST", "/v1/chat/completions", Chat(",\"stop\":[\"ok\",\"\xf5\"]"));
  // An unpaired UTF-16 surrogate escape is no Unicode text either.
  ExpectErrorObject(Curl("POST", "/v1/chat/completions", Chat("", "x \\ud800 y")), 400, "messages[0].content",
                    "invalid_encoding");
  ExpectErrorObject(stop, 400, "stop[1]", "invalid_encoding");
  EXPECT_EQ(Curl("POST", "/v1/chat/completions", Chat(R"(,"max_tokens":2)", "caf\xc3\xa9 \xf0\x9f\x98\x80")).status, 200);
}

TEST_F(OpenAiApiTest, ModelIsCheckedAgainstServedNames) {
  ExpectErrorObject(Curl("POST", "/v1/chat/completions",
                         R"({"model":"gpt-9","messages":[{"role":"user","content":"x"}]})"),
                    404, "model", "model_not_found");
  EXPECT_EQ(Curl("POST", "/v1/chat/completions",
                 R"({"model":"k2gym-alias","max_tokens":2,"messages":[{"role":"user","content":"x"}]})").status, 200);
  auto one = Curl("GET", "/v1/models/k2gym");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.j["id"], "k2gym");
  EXPECT_EQ(one.j["object"], "model");
  ExpectErrorObject(Curl("GET", "/v1/models/gpt-9"), 404, "model", "model_not_found");
  auto list = Curl("GET", "/v1/models");
  ASSERT_EQ(list.j["data"].size(), 2u);
  EXPECT_EQ(list.j["data"][1]["id"], "k2gym-alias");
}

TEST_F(OpenAiApiTest, DeveloperRoleIsTheSystemMessage) {
  auto dev = Curl("POST", "/v1/chat/completions",
                  R"({"messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":"x"}],"max_tokens":4,"seed":1})");
  auto sys = Curl("POST", "/v1/chat/completions",
                  R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"x"}],"max_tokens":4,"seed":1})");
  ASSERT_EQ(dev.status, 200) << dev.body;
  ASSERT_EQ(sys.status, 200) << sys.body;
  EXPECT_EQ(dev.j["usage"]["prompt_tokens"], sys.j["usage"]["prompt_tokens"]);
  EXPECT_EQ(dev.j["choices"][0]["message"]["content"], sys.j["choices"][0]["message"]["content"]);
}

TEST_F(OpenAiApiTest, UnseededRequestsGetAFreshSeedThatIsReturnedAndReproduces) {
  const std::string body = Chat(R"(,"temperature":1.5,"max_tokens":16)");
  auto a = Curl("POST", "/v1/chat/completions", body);
  auto b = Curl("POST", "/v1/chat/completions", body);
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  ASSERT_TRUE(a.j["seed"].is_number_integer()) << a.body;
  EXPECT_NE(a.j["seed"], b.j["seed"]);
  EXPECT_NE(a.j["choices"][0]["message"]["content"], b.j["choices"][0]["message"]["content"]);
  auto again = Curl("POST", "/v1/chat/completions",
                    Chat(R"(,"temperature":1.5,"max_tokens":16,"seed":)" + a.j["seed"].dump()));
  EXPECT_EQ(again.j["seed"], a.j["seed"]);
  EXPECT_EQ(again.j["choices"][0]["message"]["content"], a.j["choices"][0]["message"]["content"]);
}

void CheckLogprobs(const json& content, size_t top_n, bool greedy) {
  ASSERT_FALSE(content.empty());
  for (auto& e : content) {
    EXPECT_LT(e["logprob"].get<double>(), 0.0);
    ASSERT_EQ(e["top_logprobs"].size(), top_n);
    for (size_t k = 1; k < top_n; ++k)
      EXPECT_GE(e["top_logprobs"][k - 1]["logprob"].get<double>(), e["top_logprobs"][k]["logprob"].get<double>());
    if (greedy && top_n > 0) {
      EXPECT_EQ(e["top_logprobs"][0]["token"], e["token"]);
      EXPECT_NEAR(e["top_logprobs"][0]["logprob"].get<double>(), e["logprob"].get<double>(), 1e-6);
    }
  }
}

TEST_F(OpenAiApiTest, LogprobsAreRealAndTopLogprobsAreBoundedStreamingOrNot) {
  auto r = Curl("POST", "/v1/chat/completions", Chat(R"(,"temperature":0,"max_tokens":6,"logprobs":true,"top_logprobs":5)"));
  ASSERT_EQ(r.status, 200) << r.body;
  CheckLogprobs(r.j["choices"][0]["logprobs"]["content"], 5, true);
  auto none = Curl("POST", "/v1/chat/completions", Chat(R"(,"temperature":0,"max_tokens":3,"logprobs":true)"));
  CheckLogprobs(none.j["choices"][0]["logprobs"]["content"], 0, true);
  ExpectErrorObject(Curl("POST", "/v1/chat/completions", Chat(R"(,"logprobs":true,"top_logprobs":21)")), 400,
                    "top_logprobs", "");
  ExpectErrorObject(Curl("POST", "/v1/chat/completions", Chat(R"(,"top_logprobs":2)")), 400, "top_logprobs", "");
  auto s = Curl("POST", "/v1/chat/completions",
                Chat(R"(,"temperature":0,"max_tokens":6,"logprobs":true,"top_logprobs":20,"stream":true)"));
  ASSERT_EQ(s.status, 200) << s.body;
  json all = json::array();
  size_t pos = 0;
  while ((pos = s.body.find("data: {", pos)) != std::string::npos) {
    json e = json::parse(s.body.substr(pos + 6, s.body.find("\n\n", pos) - pos - 6));
    pos += 6;
    if (!e["choices"].empty() && e["choices"][0]["logprobs"].is_object())
      for (auto& x : e["choices"][0]["logprobs"]["content"]) all.push_back(x);
  }
  CheckLogprobs(all, 20, true);
  EXPECT_EQ(all.size(), r.j["choices"][0]["logprobs"]["content"].size());
}

TEST_F(OpenAiApiTest, LogitBiasAndPenaltiesShapeSampling) {
  const int x = F->tok->Encode("Paris")[0];
  const std::string tx = F->tok->TokenBytes(x);
  // The sampled tokens, from logprobs (exact, unlike substrings of the content).
  auto tokens = [&](const std::string& extra) {
    auto r = Curl("POST", "/v1/chat/completions", Chat(extra + R"(,"logprobs":true)"));
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> out;
    if (r.status == 200)
      for (auto& e : r.j["choices"][0]["logprobs"]["content"]) out.push_back(e["bytes"].dump());  // exact bytes
    return out;
  };
  json txb = json::array();
  for (unsigned char ch : tx) txb.push_back(static_cast<int>(ch));
  auto count = [&](const std::vector<std::string>& ts) { return std::count(ts.begin(), ts.end(), txb.dump()); };
  const std::string bias = R"(,"max_tokens":8,"logit_bias":{")" + std::to_string(x) + R"(":)";
  EXPECT_EQ(count(tokens(bias + R"(50},"temperature":0)")), 8);
  EXPECT_EQ(count(tokens(bias + R"(100},"temperature":1)")), 8);
  // Bias 10, frequency penalty 2: x leads while 10 - 2k beats every other logit (|logit| < 2 here).
  const auto freq = count(tokens(bias + R"(10},"temperature":0,"frequency_penalty":2)"));
  EXPECT_GE(freq, 4);
  EXPECT_LE(freq, 5);
  // Presence penalty 2 at greedy: a token, once used, is never the argmax again.
  auto distinct = tokens(R"(,"max_tokens":16,"temperature":0,"presence_penalty":2)");
  EXPECT_EQ(std::set<std::string>(distinct.begin(), distinct.end()).size(), distinct.size());
  ExpectErrorObject(Curl("POST", "/v1/chat/completions", Chat(R"(,"logit_bias":{"999999":1})")), 400, "logit_bias", "");
  ExpectErrorObject(Curl("POST", "/v1/chat/completions", Chat(R"(,"logit_bias":{"1":101})")), 400, "logit_bias", "");
  ExpectErrorObject(Curl("POST", "/v1/chat/completions", Chat(R"(,"presence_penalty":2.5)")), 400, "presence_penalty", "");
}

TEST_F(OpenAiApiTest, HttpLayerErrorsAreOpenAiErrorObjects) {
  std::string huge = Chat("", std::string(70000, 'a'));
  ExpectErrorObject(Curl("POST", "/v1/chat/completions", huge), 413, "", "request_too_large");
  ExpectErrorObject(Curl("GET", "/v2/nothing"), 404, "", "");
  ExpectErrorObject(Curl("GET", "/v1/chat/completions"), 405, "", "");
  ExpectErrorObject(Curl("POST", "/v1/chat/completions", "{nope"), 400, "", "");
}

TEST_F(OpenAiApiTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  const std::string url = "http://127.0.0.1:" + std::to_string(F->port);
  std::string out = RunShell("curl -sv --max-time 60 " + url + "/health " + url + "/v1/models " + url + "/health 2>&1");
  EXPECT_NE(out.find("Connection: keep-alive"), std::string::npos) << out;
  EXPECT_NE(out.find("e-using existing connection"), std::string::npos) << out;  // curl: "Re-using"/"Reusing"
  const int64_t before = F->http->stats().reused;
  RunShell("curl -s --max-time 60 " + url + "/health " + url + "/health >/dev/null");
  EXPECT_GE(F->http->stats().reused, before + 1);
  // HTTP/1.0 without keep-alive, or Connection: close, still closes.
  std::string close = RunShell("curl -sv --max-time 60 -H 'Connection: close' " + url + "/health 2>&1");
  EXPECT_NE(close.find("Connection: close"), std::string::npos) << close;
}

TEST_F(OpenAiApiTest, ClientDisconnectCancelsGeneration) {
  // A long streamed request (n=8, up to 1000 tokens each) whose client gives up after a moment.
  const auto before = F->gen->stats();
  RunShell("curl -s -N --max-time 0.5 -H 'Content-Type: application/json' --data-binary '" +
           Chat(R"(,"n":8,"max_tokens":1000,"stream":true,"logit_bias":{")" +
                std::to_string(F->tok->SpecialId(text::kImEnd)) + R"(":-100})") +
           "' http://127.0.0.1:" + std::to_string(F->port) + "/v1/chat/completions >/dev/null");
  // Non-streaming as well.
  RunShell("curl -s --max-time 0.5 -H 'Content-Type: application/json' --data-binary '" +
           Chat(R"(,"n":8,"max_tokens":1000,"logit_bias":{")" + std::to_string(F->tok->SpecialId(text::kImEnd)) +
                R"(":-100})") +
           "' http://127.0.0.1:" + std::to_string(F->port) + "/v1/chat/completions >/dev/null");
  // Both requests leave the generator well before their 16000 tokens were produced.
  for (int i = 0; i < 600 && (F->gen->stats().running > 0 || F->gen->stats().queued > 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto after = F->gen->stats();
  EXPECT_EQ(after.running, 0);
  EXPECT_LT(after.decode_tokens - before.decode_tokens, 2 * 8 * 999);
}

// Constrained decoding: 50 sampled outputs each of response_format json_schema and tool_choice required
// (random weights at temperature 1: the adversarial case) all parse and validate; named and json_object too.
TEST_F(OpenAiApiTest, JsonSchemaAndRequiredToolCallsValidateOnEverySample) {
  const json schema = json::parse(R"({"type":"object","properties":{"city":{"type":"string","maxLength":8},
    "days":{"type":"integer"},"units":{"enum":["C","F"]},"temp":{"type":"number"},
    "tags":{"type":"array","items":{"type":"string","maxLength":4},"maxItems":2},"ok":{"type":"boolean"},
    "where":{"type":"object","properties":{"lat":{"type":"number"},"note":{"type":"string","maxLength":4}}}},
    "required":["city","days"],"additionalProperties":false})");
  auto validator = toolgen::Schema::Compile(schema, "test");
  ASSERT_TRUE(validator.ok()) << validator.status().ToString();
  const json rf = {{"type", "json_schema"}, {"json_schema", {{"name", "weather"}, {"schema", schema}, {"strict", true}}}};
  int valid = 0;
  std::vector<std::string> bodies;
  for (int r = 0; r < 10; ++r) bodies.push_back(Chat(R"(,"temperature":1,"n":5,"max_tokens":160,"response_format":)" + rf.dump()));
  for (auto& out : CurlMany(bodies)) {
    ASSERT_EQ(out.status, 200) << out.body;
    for (auto& ch : out.j["choices"]) {
      json v = json::parse(ch["message"]["content"].get<std::string>(), nullptr, false);
      EXPECT_FALSE(v.is_discarded()) << ch.dump();
      Status st = (*validator)->Validate(v);
      EXPECT_TRUE(st.ok()) << st.ToString() << " " << v.dump();
      valid += !v.is_discarded() && st.ok();
    }
  }
  EXPECT_EQ(valid, 50);
  const json tools = json::parse(R"([
    {"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
      "properties":{"city":{"type":"string","minLength":1,"maxLength":8},"days":{"type":"integer"}},"required":["city"]}}},
    {"type":"function","function":{"name":"book","parameters":{"type":"object",
      "properties":{"seats":{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3},"vip":{"type":"boolean"}}}}}])");
  std::map<std::string, std::shared_ptr<const toolgen::Schema>> params;
  for (auto& t : tools) params[t["function"]["name"]] = *toolgen::Schema::Compile(t["function"]["parameters"], "p");
  int calls = 0;
  bodies.clear();
  for (int r = 0; r < 10; ++r)
    bodies.push_back(Chat(R"(,"temperature":1,"n":5,"max_tokens":160,"tool_choice":"required","tools":)" + tools.dump()));
  for (auto& out : CurlMany(bodies)) {
    ASSERT_EQ(out.status, 200) << out.body;
    for (auto& ch : out.j["choices"]) {
      EXPECT_EQ(ch["finish_reason"], "tool_calls") << ch.dump();
      ASSERT_TRUE(ch["message"].contains("tool_calls")) << ch.dump();
      ASSERT_EQ(ch["message"]["tool_calls"].size(), 1u);
      const json& f = ch["message"]["tool_calls"][0]["function"];
      ASSERT_TRUE(params.count(f["name"])) << f.dump();
      json args = json::parse(f["arguments"].get<std::string>(), nullptr, false);
      Status st = params[f["name"]]->Validate(args);
      EXPECT_TRUE(st.ok()) << st.ToString() << " " << f.dump();
      calls += st.ok();
    }
  }
  EXPECT_EQ(calls, 50);
  auto named = Curl("POST", "/v1/chat/completions",
                    Chat(R"(,"temperature":1,"n":4,"max_tokens":240,"tool_choice":{"type":"function","function":{"name":"book"}},"tools":)" +
                         tools.dump()));
  ASSERT_EQ(named.status, 200) << named.body;
  for (auto& ch : named.j["choices"]) EXPECT_EQ(ch["message"]["tool_calls"][0]["function"]["name"], "book");
  auto obj = Curl("POST", "/v1/chat/completions",
                  Chat(R"(,"temperature":1,"n":4,"max_tokens":240,"response_format":{"type":"json_object"})"));
  ASSERT_EQ(obj.status, 200) << obj.body;
  for (auto& ch : obj.j["choices"]) {
    json v = json::parse(ch["message"]["content"].get<std::string>(), nullptr, false);
    EXPECT_TRUE(v.is_object()) << ch.dump();
  }
  ExpectErrorObject(Curl("POST", "/v1/chat/completions",
                         Chat(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"a+"}}})")),
                    400, "response_format", "");
}

// The official OpenAI Node SDK (npm `openai`, installed by scripts/setup.sh) exercises each item above.
TEST_F(OpenAiApiTest, OfficialOpenAiNodeSdkConforms) {
  if (system("node --version >/dev/null 2>&1") != 0 || system("npm --version >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "node/npm not installed: the OpenAI Node SDK check needs them (scripts/setup.sh)";
  const std::string modules = std::string(K2GYM_SOURCE_DIR) + "/third_party/mcp/node_modules";
  ASSERT_TRUE(fs::exists(modules + "/openai/package.json")) << "npm package openai missing: run scripts/setup.sh";
  const auto before = F->http->stats();
  const int64_t decoded_before = F->gen->stats().decode_tokens;
  const std::string out =
      RunShell("node " + std::string(K2GYM_SOURCE_DIR) + "/tests/engine_gen/openai_sdk_check.cjs " + modules +
               " http://127.0.0.1:" + std::to_string(F->port) + "/v1 " + std::to_string(F->tok->Encode("Paris")[0]) +
               " " + std::to_string(F->tok->SpecialId(text::kImEnd)) + " 2>&1");
  std::set<std::string> passed;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("check")) continue;
    EXPECT_TRUE(j["ok"].get<bool>()) << line;
    if (j["ok"].get<bool>()) passed.insert(j["check"]);
  }
  for (const char* c : {"models", "unknown_model_404", "invalid_utf8_400_names_field", "developer_role",
                        "fresh_seed_returned", "logprobs", "logprobs_stream", "logit_bias", "penalties",
                        "http_layer_error_object", "keep_alive_sequential", "abort_cancels"})
    EXPECT_TRUE(passed.count(c)) << c << " did not pass; output:\n" << out;
  // The SDK's requests shared connections (keep-alive), and the aborted stream left the generator.
  EXPECT_GT(F->http->stats().reused, before.reused);
  for (int i = 0; i < 600 && (F->gen->stats().running > 0 || F->gen->stats().queued > 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(F->gen->stats().running, 0);
  // Everything the script asked for is ~200 tokens besides the aborted 8 x 1000.
  EXPECT_LT(F->gen->stats().decode_tokens - decoded_before, 8 * 999);
}

}  // namespace
}  // namespace k2

namespace k2 {
namespace {

// Token fidelity: a dialog sent back with the server's own (malformed, non-round-tripping) reply
// continues on the ids the model generated, as an in-process engine session does: the second turn's
// prompt is turn 1's prompt + its generated ids (+ <|im_end|>) + the template's rendering of what follows,
// and the greedy reply is the one generated from exactly those ids.
TEST_F(OpenAiApiTest, ADialogContinuesOnTheTokensTheServerGenerated) {
  const std::string body1 = R"({"model":"k2gym","messages":[{"role":"user","content":"Weather in Paris?"}],"temperature":0,"max_tokens":12})";
  Reply r1 = Curl("POST", "/v1/chat/completions", body1);
  ASSERT_EQ(r1.status, 200) << r1.body;
  const json reply1 = r1.j["choices"][0]["message"];
  // The same turn in process: its ids.
  std::vector<Message> ms = {{"user", "Weather in Paris?"}};
  text::RenderOptions gen_prompt;
  gen_prompt.add_generation_prompt = true;
  auto p1 = text::RenderChat(ms, json(), &*F->tok, gen_prompt);
  ASSERT_TRUE(p1.ok());
  const int32_t im_end = F->tok->SpecialId(text::kImEnd);
  auto greedy = [&](const std::vector<int>& prompt, int64_t max) {
    gen::GenerateRequest g;
    g.tokens.assign(prompt.begin(), prompt.end());
    g.sampling.temperature = 0;
    g.sampling.max_new_tokens = max;
    g.sampling.stop_tokens = {im_end};
    auto d = F->gen->Generate(std::move(g));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? d->samples[0].tokens : std::vector<int32_t>();
  };
  std::vector<int32_t> gen1 = greedy(p1->tokens, 12);
  Message a1;
  a1.role = "assistant";
  a1.content = reply1.value("content", json("")).is_string() ? reply1["content"].get<std::string>() : "";
  ms.push_back(a1);
  // The template's rendering of that reply is not what the model generated (this is the case that matters).
  auto hist = text::RenderChat(ms, json(), &*F->tok, text::RenderOptions{});
  ASSERT_TRUE(hist.ok());
  std::vector<int> raw(p1->tokens);
  raw.insert(raw.end(), gen1.begin(), gen1.end());
  if (gen1.empty() || gen1.back() != im_end) raw.push_back(im_end);
  EXPECT_NE(hist->tokens, raw) << "the reply re-tokenizes to its own ids: nothing to test";
  ms.push_back({"user", "And in Rome?"});
  auto full = text::RenderChat(ms, json(), &*F->tok, gen_prompt);
  ASSERT_TRUE(full.ok());
  std::vector<int> want = raw;
  want.insert(want.end(), full->tokens.begin() + static_cast<std::ptrdiff_t>(hist->tokens.size()), full->tokens.end());
  json req2 = {{"model", "k2gym"}, {"temperature", 0}, {"max_tokens", 12},
               {"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}, reply1,
                             {{"role", "user"}, {"content", "And in Rome?"}}}}};
  Reply r2 = Curl("POST", "/v1/chat/completions", req2.dump());
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(r2.j["usage"]["prompt_tokens"].get<int64_t>(), static_cast<int64_t>(want.size())) << r2.body;
  std::vector<int32_t> gen2 = greedy(want, 12);
  std::string text2;
  for (int32_t id : gen2)
    if (id != im_end) text2 += F->tok->TokenBytes(id);
  std::vector<int> ids2(gen2.begin(), gen2.end());
  auto parsed = text::ParseAssistantTokens(*F->tok, ids2, json());
  const std::string expect2 = parsed.ok() ? parsed.message.content
                                          : json::parse(json(text2).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
  EXPECT_EQ(r2.j["choices"][0]["message"].value("content", json("")), json(expect2)) << r2.body;
}

}  // namespace
}  // namespace k2
