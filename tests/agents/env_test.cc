// ToolEnv loop and EnvRegistry: API misuse is a Status, bad model output is an error observation,
// step limits truncate, the injected scorer runs once at termination, a broken env needs a reset.
#include "agents/env.h"

#include <gtest/gtest.h>

namespace k2::agents {
namespace {

// A trivially correct in-test environment: one tool `inc` {by: integer >= 1}; `boom` breaks the env.
class CounterEnv : public ToolEnv {
 public:
  explicit CounterEnv(int max_steps) : ToolEnv(max_steps) {
    json by = {{"type", "object"}, {"properties", {{"by", {{"type", "integer"}, {"minimum", 1}}}}}, {"required", {"by"}}};
    Status s = SetTools({{.name = "inc", .input_schema = by},
                         {.name = "boom", .input_schema = {{"type", "object"}}},
                         {.name = "fail", .input_schema = {{"type", "object"}}}});
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  int count = 0;

 protected:
  Expected<std::vector<Message>> OnReset(uint64_t, const json& task) override {
    count = 0;
    return TaskMessages(task, "count");
  }
  Expected<ToolOutcome> Invoke(const std::string& tool, const json& args) override {
    if (tool == "boom") return Unavailable("server gone");
    if (tool == "fail") return ToolOutcome{"nope", std::nullopt, true};
    count += args["by"].get<int>();
    return ToolOutcome{std::to_string(count)};
  }
  double OnFinish(const Message&) override { return count == 3 ? 1.0 : 0.0; }
};

Message Call(std::vector<std::pair<std::string, std::string>> calls) {
  Message m{.role = "assistant"};
  int i = 0;
  for (auto& [name, args] : calls) m.tool_calls.push_back({.id = "c" + std::to_string(i++), .name = name, .arguments = args});
  return m;
}

TEST(ToolEnv, RunsAnEpisodeAndScoresOnce) {
  CounterEnv env(10);
  int scored = 0;
  env.set_scorer([&](const json& task, const std::vector<Message>& transcript) -> Expected<double> {
    ++scored;
    EXPECT_EQ(task["prompt"], "go");
    EXPECT_EQ(transcript.size(), 6u);  // system, user, call, result, call... see below
    return 0.5;
  });
  auto first = env.Reset(1, {{"prompt", "go"}});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].role, "system");
  EXPECT_EQ((*first)[1].content, "go");
  auto r = env.Step(Call({{"inc", R"({"by":2})"}, {"inc", R"({"by":1})"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->observation.size(), 2u);
  EXPECT_EQ(r->observation[0].role, "tool");
  EXPECT_EQ(r->observation[0].tool_call_id, "c0");
  EXPECT_EQ(r->observation[1].content, "3");
  EXPECT_FALSE(r->terminated);
  auto fin = env.Step({.role = "assistant", .content = "done"});
  ASSERT_TRUE(fin.ok());
  EXPECT_TRUE(fin->terminated);
  EXPECT_DOUBLE_EQ(fin->reward, 1.5);  // own reward 1 + scorer 0.5
  EXPECT_EQ(scored, 1);
  EXPECT_EQ(env.Step({.role = "assistant"}).status().code(), Code::kFailedPrecondition);
}

TEST(ToolEnv, BadModelOutputIsAnObservationNotAStatus) {
  CounterEnv env(10);
  ASSERT_TRUE(env.Reset(0, json::object()).ok());
  auto r = env.Step(Call({{"nope", "{}"}, {"inc", "{not json"}, {"inc", R"({"by":"2"})"}, {"inc", R"({"by":0})"}, {"fail", "{}"}}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->observation.size(), 5u);
  EXPECT_EQ(r->observation[0].content.rfind("error: unknown tool \"nope\"; available: boom, fail, inc", 0), 0u) << r->observation[0].content;
  EXPECT_EQ(r->observation[1].content.rfind("error: arguments of inc are not a JSON object", 0), 0u);
  EXPECT_EQ(r->observation[2].content, "error: invalid arguments for inc: /by: expected integer, got string");
  EXPECT_EQ(r->observation[3].content.rfind("error: invalid arguments for inc: /by:", 0), 0u);
  EXPECT_EQ(r->observation[4].content, "nope");
  EXPECT_EQ(r->info["invalid_calls"], 4);
  EXPECT_EQ(r->info["tool_errors"], 1);
  EXPECT_EQ(env.count, 0);
}

TEST(ToolEnv, MisuseIsAStatus) {
  CounterEnv env(10);
  EXPECT_EQ(env.Step(Call({{"inc", R"({"by":1})"}})).status().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(env.Reset(0, json::object()).ok());
  EXPECT_EQ(env.Step({.role = "user", .content = "hi"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(env.Reset(0, json::array()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(env.Reset(0, {{"prompt", 3}}).status().code(), Code::kInvalidArgument);
}

TEST(ToolEnv, StepLimitTruncates) {
  CounterEnv env(2);
  ASSERT_TRUE(env.Reset(0, json::object()).ok());
  auto a = env.Step(Call({{"inc", R"({"by":1})"}}));
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->truncated);
  auto b = env.Step(Call({{"inc", R"({"by":1})"}}));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->truncated);
  EXPECT_EQ(b->info["truncated_by"], "max_steps");
  EXPECT_FALSE(env.Step(Call({{"inc", R"({"by":1})"}})).ok());
  ASSERT_TRUE(env.Reset(0, json::object()).ok());  // a new episode starts clean
  EXPECT_TRUE(env.Step(Call({{"inc", R"({"by":1})"}})).ok());
}

TEST(ToolEnv, BrokenEnvironmentTruncatesUntilReset) {
  CounterEnv env(10);
  ASSERT_TRUE(env.Reset(0, json::object()).ok());
  auto r = env.Step(Call({{"boom", "{}"}, {"inc", R"({"by":1})"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->truncated);
  EXPECT_NE(r->info["env_error"].get<std::string>().find("server gone"), std::string::npos);
  EXPECT_EQ(r->observation[1].content.rfind("error: not executed", 0), 0u);
  EXPECT_EQ(env.count, 0);
  EXPECT_EQ(env.Step(Call({{"inc", R"({"by":1})"}})).status().code(), Code::kFailedPrecondition);
  ASSERT_TRUE(env.Reset(0, json::object()).ok());
  EXPECT_TRUE(env.Step(Call({{"inc", R"({"by":1})"}})).ok());
}

TEST(ToolEnv, ScorerErrorIsReportedNotFatal) {
  CounterEnv env(10);
  env.set_scorer([](const json&, const std::vector<Message>&) -> Expected<double> { return Internal("judge down"); });
  ASSERT_TRUE(env.Reset(0, json::object()).ok());
  auto r = env.Step({.role = "assistant", .content = "done"});
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->reward, 0.0);
  EXPECT_NE(r->info["scorer_error"].get<std::string>().find("judge down"), std::string::npos);
}

TEST(ToolEnv, DuplicateToolNamesAreRejected) {
  struct Dup : ToolEnv {
    Dup() : ToolEnv(1) {}
    Status Try() { return SetTools({{.name = "a", .input_schema = {{"type", "object"}}}, {.name = "a", .input_schema = {{"type", "object"}}}}); }
    Expected<std::vector<Message>> OnReset(uint64_t, const json&) override { return std::vector<Message>{}; }
    Expected<ToolOutcome> Invoke(const std::string&, const json&) override { return ToolOutcome{}; }
  } d;
  EXPECT_EQ(d.Try().code(), Code::kAlreadyExists);
}

TEST(EnvRegistry, RegisterMakeListAndErrors) {
  EnvRegistry reg;
  ASSERT_TRUE(reg.Register({.name = "counter", .description = "test"},
                           [](const json& c) -> Expected<std::unique_ptr<Env>> {
                             return std::unique_ptr<Env>(new CounterEnv(c.value("max_steps", 5)));
                           }).ok());
  EXPECT_EQ(reg.Register({.name = "counter"}, [](const json&) -> Expected<std::unique_ptr<Env>> { return Internal("x"); }).code(),
            Code::kAlreadyExists);
  auto e = reg.Make("counter", {{"max_steps", 3}});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->Tools().size(), 3u);
  EXPECT_EQ((*e)->OpenAITools()[0]["type"], "function");
  auto missing = reg.Make("nope", json::object());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("registered: counter"), std::string::npos);
  EXPECT_EQ(reg.List().size(), 1u);
  EXPECT_TRUE(EnvRegistry::Global().Has("mcp"));  // the built-in kind
}

}  // namespace
}  // namespace k2::agents
