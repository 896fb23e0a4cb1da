// HttpPolicy against a fake OpenAI-compatible server of ours on loopback (core/http): malformed JSON,
// 500s, 429s (Retry-After), timeouts, truncated SSE, bad tool-call arguments; nothing crashes, every
// failure is recorded with its kind, retries and backoff follow the config, the rate limit spaces starts.
#include "agents/http_policy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <thread>

#include "agents/scripted_user.h"
#include "core/http/server.h"
#include "tests/agents/test_world.h"

namespace k2::agents {
namespace {

// Replies in script order (the last entry repeats); records every request it saw.
class FakeOpenAI {
 public:
  explicit FakeOpenAI(std::vector<std::string> script) : script_(std::move(script)) {
    auto s = http::Server::Start({.port = 0, .max_concurrent = 4}, [this](const http::Request& r) { return Handle(r); });
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }
  std::string url() const { return "http://" + server_->address() + "/v1"; }
  int requests() const { return n_.load(); }
  json last_body() const {
    std::lock_guard<std::mutex> l(mu_);
    return last_body_;
  }
  std::string last_auth() const {
    std::lock_guard<std::mutex> l(mu_);
    return last_auth_;
  }

  static std::string Reply(const json& message, const char* finish = "stop") {
    return json{{"id", "x"}, {"object", "chat.completion"},
                {"choices", {{{"index", 0}, {"message", message}, {"finish_reason", finish}}}},
                {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 3}}}}
        .dump();
  }

 private:
  http::Response Handle(const http::Request& r) {
    int i = n_++;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto j = ParseJson(r.body, "request");
      last_body_ = j.ok() ? *j : json(nullptr);
      last_auth_ = r.Header("authorization");
    }
    if (r.Path() != "/v1/chat/completions") return http::Response::Text(404, "no such path " + r.Path());
    const std::string& what = script_[std::min<size_t>(i, script_.size() - 1)];
    if (what == "ok") return http::Response::Json(200, Reply({{"role", "assistant"}, {"content", "Hello!"}}));
    if (what == "length") return http::Response::Json(200, Reply({{"role", "assistant"}, {"content", "Hel"}}, "length"));
    if (what == "tool_call")
      return http::Response::Json(200, Reply({{"role", "assistant"}, {"content", nullptr},
                                              {"tool_calls", {{{"id", "c1"}, {"type", "function"},
                                                               {"function", {{"name", "lookup"}, {"arguments", "{\"id\":\"A-1\"}"}}}}}}}));
    if (what == "bad_args")
      return http::Response::Json(200, Reply({{"role", "assistant"}, {"content", ""},
                                              {"tool_calls", {{{"id", "c1"}, {"type", "function"},
                                                               {"function", {{"name", "lookup"}, {"arguments", "{\"id\": A-1"}}}}}}}));
    if (what == "malformed") return http::Response::Json(200, "{\"choices\": [{\"message\": {\"content\": \"hi\"");
    if (what == "no_choices") return http::Response::Json(200, "{\"object\": \"chat.completion\"}");
    if (what == "500") return http::Response::Json(500, "{\"error\": \"boom\"}");
    if (what == "400") return http::Response::Json(400, "{\"error\": \"bad request\"}");
    if (what == "429") {
      auto resp = http::Response::Json(429, "{\"error\": \"slow down\"}");
      resp.headers.push_back({"Retry-After", "3"});
      return resp;
    }
    if (what == "slow") {
      std::this_thread::sleep_for(std::chrono::milliseconds(800));
      return http::Response::Json(200, Reply({{"role", "assistant"}, {"content", "late"}}));
    }
    if (what == "sse" || what == "sse_truncated") {
      const bool done = what == "sse";
      return http::Response::Sse([done](const http::ChunkWriter& w) {
        w("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n");
        w("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\",\"tool_calls\":[{\"index\":0,\"id\":\"c9\","
          "\"function\":{\"name\":\"look\",\"arguments\":\"{\\\"id\\\":\"}}]}}]}\n\n");
        w("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"up\","
          "\"arguments\":\"\\\"A-1\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,"
          "\"completion_tokens\":2}}\n\n");
        if (done) w("data: [DONE]\n\n");
      });
    }
    return http::Response::Text(500, "unknown script entry " + what);
  }

  std::vector<std::string> script_;
  std::atomic<int> n_{0};
  mutable std::mutex mu_;
  json last_body_;
  std::string last_auth_;
  std::unique_ptr<http::Server> server_;
};

// Fake time: sleeping advances the clock and is recorded, so backoff and rate limits are checked exactly.
struct FakeTime {
  std::mutex mu;
  double t = 1000;
  std::vector<double> sleeps;
  HttpClock Clock() {
    return {[this] {
              std::lock_guard<std::mutex> l(mu);
              return t;
            },
            [this](double s) {
              std::lock_guard<std::mutex> l(mu);
              sleeps.push_back(s);
              t += s;
            }};
  }
};

std::unique_ptr<HttpPolicy> Make(const FakeOpenAI& server, FakeTime& time, HttpPolicyConfig cfg = {}) {
  cfg.base_url = server.url();
  if (cfg.timeout_s == HttpPolicyConfig{}.timeout_s) cfg.timeout_s = 5;
  auto p = HttpPolicy::Create(cfg, time.Clock());
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(*p);
}

PolicyRequest Req() {
  PolicyRequest r;
  r.messages = {{.role = "system", .content = "sys"}, {.role = "user", .content = "hi"}};
  r.tools = json::array({{{"type", "function"}, {"function", {{"name", "lookup"}, {"parameters", {{"type", "object"}}}}}}});
  r.temperature = 0.5;
  r.max_tokens = 64;
  r.seed = 77;
  return r;
}

TEST(HttpPolicy, SendsTheOpenAIRequestWithTheKeyFromTheEnvironment) {
  FakeOpenAI server({"ok"});
  FakeTime time;
  ::setenv("K2GYM_TEST_KEY", "sk-test-123", 1);
  auto p = Make(server, time, {.model = "m1", .api_key_env = "K2GYM_TEST_KEY"});
  auto t = p->Act(Req());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->message.content, "Hello!");
  EXPECT_EQ(t->prompt_tokens, 11);
  EXPECT_EQ(t->completion_tokens, 3);
  EXPECT_FALSE(t->failure);
  json body = server.last_body();
  EXPECT_EQ(body["model"], "m1");
  EXPECT_EQ(body["messages"][1]["content"], "hi");
  EXPECT_EQ(body["tools"][0]["function"]["name"], "lookup");
  EXPECT_EQ(body["temperature"], 0.5);
  EXPECT_EQ(body["max_tokens"], 64);
  EXPECT_EQ(body["seed"], 77);
  EXPECT_FALSE(body.contains("top_p"));
  EXPECT_EQ(server.last_auth(), "Bearer sk-test-123");
}

TEST(HttpPolicy, RetriesServerErrorsWithExponentialBackoff) {
  FakeOpenAI server({"500", "500", "500", "ok"});
  FakeTime time;
  auto p = Make(server, time, {.max_retries = 3, .backoff_s = 0.5, .backoff_max_s = 1.5});
  auto t = p->Act(Req());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(server.requests(), 4);
  EXPECT_EQ(time.sleeps, (std::vector<double>{0.5, 1.0, 1.5}));  // doubled, capped
  ASSERT_EQ(t->retries.size(), 3u);
  EXPECT_EQ(t->retries[0].rfind("http_500: ", 0), 0u) << t->retries[0];
  EXPECT_EQ(p->stats().failures.at("http_500"), 3);
  EXPECT_EQ(p->stats().succeeded, 1);
}

TEST(HttpPolicy, GivesUpAfterMaxRetriesAndHonoursRetryAfter) {
  FakeOpenAI server({"429"});
  FakeTime time;
  auto p = Make(server, time, {.max_retries = 2, .backoff_s = 0.1, .backoff_max_s = 10});
  auto t = p->Act(Req());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kUnavailable);
  EXPECT_NE(t.status().message().find("http_429 after 3 attempt(s)"), std::string::npos) << t.status().ToString();
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(time.sleeps, (std::vector<double>{3.0, 3.0}));  // Retry-After: 3 beats the 0.1/0.2 backoff
  EXPECT_EQ(p->stats().failed, 1);
}

TEST(HttpPolicy, ClientErrorsAreNotRetried) {
  FakeOpenAI server({"400", "ok"});
  FakeTime time;
  auto p = Make(server, time, {.max_retries = 3});
  auto t = p->Act(Req());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
  EXPECT_NE(t.status().message().find("http_400"), std::string::npos);
  EXPECT_EQ(server.requests(), 1);
}

TEST(HttpPolicy, MalformedRepliesAreRetriedAndRecorded) {
  FakeOpenAI server({"malformed", "no_choices", "ok"});
  FakeTime time;
  auto p = Make(server, time, {.max_retries = 2, .backoff_s = 0});
  auto t = p->Act(Req());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->retries.size(), 2u);
  EXPECT_EQ(t->retries[0].rfind("malformed_response: ", 0), 0u) << t->retries[0];
  EXPECT_NE(t->retries[1].find("choices"), std::string::npos) << t->retries[1];
  EXPECT_EQ(p->stats().failures.at("malformed_response"), 2);
}

TEST(HttpPolicy, TimeoutsAreRetriedThenReported) {
  FakeOpenAI server({"slow"});
  FakeTime time;
  auto p = Make(server, time, {.max_retries = 1, .backoff_s = 0, .timeout_s = 0.2});
  auto t = p->Act(Req());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("timeout after 2 attempt(s)"), std::string::npos) << t.status().ToString();
  EXPECT_EQ(p->stats().failures.at("timeout"), 2);
}

TEST(HttpPolicy, ConnectionRefusedIsAFailureNotACrash) {
  FakeTime time;
  auto p = HttpPolicy::Create({.base_url = "http://127.0.0.1:1/v1", .max_retries = 1, .backoff_s = 0}, time.Clock());
  ASSERT_TRUE(p.ok());
  auto t = (*p)->Act(Req());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("connect after 2 attempt(s)"), std::string::npos) << t.status().ToString();
}

TEST(HttpPolicy, BadToolCallArgumentsAreAFailureOfTheTurnNotAnError) {
  FakeOpenAI server({"bad_args"});
  FakeTime time;
  auto p = Make(server, time);
  auto t = p->Act(Req());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_TRUE(t->failure);
  EXPECT_EQ(*t->failure, "malformed_tool_call: arguments of call 0 (lookup) are not a JSON object");
  ASSERT_EQ(t->message.tool_calls.size(), 1u);  // kept: the environment answers it with an error
  EXPECT_EQ(t->message.tool_calls[0].arguments, "{\"id\": A-1");
  EXPECT_EQ(server.requests(), 1);
}

TEST(HttpPolicy, StreamsAssembleDeltasAndTruncatedStreamsAreRetried) {
  FakeOpenAI server({"sse_truncated", "sse"});
  FakeTime time;
  auto p = Make(server, time, {.max_retries = 1, .backoff_s = 0, .stream = true});
  auto t = p->Act(Req());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(server.last_body()["stream"], true);
  EXPECT_EQ(t->message.content, "Hello");
  ASSERT_EQ(t->message.tool_calls.size(), 1u);
  EXPECT_EQ(t->message.tool_calls[0].id, "c9");
  EXPECT_EQ(t->message.tool_calls[0].name, "lookup");
  EXPECT_EQ(t->message.tool_calls[0].arguments, "{\"id\":\"A-1\"}");
  EXPECT_EQ(t->completion_tokens, 2);
  ASSERT_EQ(t->retries.size(), 1u);
  EXPECT_EQ(t->retries[0].rfind("truncated_stream: ", 0), 0u) << t->retries[0];
}

TEST(HttpPolicy, LengthFinishMarksTheTurnTruncated) {
  FakeOpenAI server({"length"});
  FakeTime time;
  auto t = Make(server, time)->Act(Req());
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->truncated);
}

TEST(HttpPolicy, RateLimitSpacesRequestStarts) {
  FakeOpenAI server({"ok"});
  FakeTime time;
  auto p = Make(server, time, {.rate_limit_rps = 4});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(p->Act(Req()).ok());
  // Fake time only moves when the policy sleeps: starts at t, t+0.25, ..., t+1.0.
  double total = 0;
  for (double s : time.sleeps) total += s;
  EXPECT_DOUBLE_EQ(total, 1.0);
  EXPECT_EQ(time.sleeps.size(), 4u);
}

TEST(HttpPolicy, RejectsANonHttpBaseUrl) {
  auto p = HttpPolicy::Create({.base_url = "ftp://x"});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("openai.base_url"), std::string::npos);
}

TEST(HttpPolicy, EpisodesAgainstAFlakyServerRecordEveryFailure) {
  // 500, then a bad tool call (an invalid call for the environment), then a plain reply -> the scripted
  // user stops. Repeats for every episode; concurrency included.
  FakeOpenAI flaky({"500", "bad_args", "malformed", "ok", "ok"});
  FakeTime time;
  auto p = Make(flaky, time, {.max_retries = 2, .backoff_s = 0});
  ScriptedUser user;
  auto env = testing::Maker()();
  ASSERT_TRUE(env.ok());
  auto t = RunEpisode(testing::TestWorld().tasks[0], **env, *p, &user, {}, 1);
  EXPECT_EQ(t.end_reason, "user_stop") << t.error;
  ASSERT_EQ(t.failures.size(), 3u) << json(t.failures).dump();
  EXPECT_NE(t.failures[0].find("turn 0: retried: http_500"), std::string::npos) << t.failures[0];
  EXPECT_NE(t.failures[1].find("turn 0: malformed_tool_call"), std::string::npos) << t.failures[1];
  EXPECT_NE(t.failures[2].find("turn 1: retried: malformed_response"), std::string::npos) << t.failures[2];
  ASSERT_EQ(t.tool_calls.size(), 1u);
  EXPECT_FALSE(t.tool_calls[0].valid);
  EXPECT_NE(t.tool_calls[0].observation.find("unknown tool"), std::string::npos) << t.tool_calls[0].observation;
}

}  // namespace
}  // namespace k2::agents
