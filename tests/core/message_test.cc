// Messages: OpenAI JSON round trip and located errors.
#include "core/message.h"

#include <gtest/gtest.h>

namespace k2 {
namespace {

TEST(Message, RoundTripWithToolCalls) {
  Message a{"assistant", "let me check", {{"functions.get_order:0", "get_order", R"({"id":"A1"})"}}, "", ""};
  Message t{"tool", "{\"status\":\"ok\"}", {}, "functions.get_order:0", "get_order"};
  auto back = MessagesFromJson(ToJson(std::vector<Message>{a, t}), "messages");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)[0], a);
  EXPECT_EQ((*back)[1], t);
  EXPECT_EQ((*(*back)[0].tool_calls[0].ParsedArguments())["id"], "A1");
}

TEST(Message, BadArgumentsStayDataNotErrors) {
  ToolCall c{"x", "f", "{not json"};
  EXPECT_FALSE(c.ParsedArguments().has_value());
  ToolCall arr{"x", "f", "[1]"};
  EXPECT_FALSE(arr.ParsedArguments().has_value());  // arguments must be an object
}

TEST(Message, ErrorsNameThePath) {
  auto j = json::parse(R"([{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"function":{"name":3}}]}])");
  EXPECT_EQ(MessagesFromJson(j, "messages").status().message(),
            "messages[1].tool_calls[0].function.name: expected string, got integer");
  EXPECT_EQ(MessageFromJson(json::parse(R"({"role":"robot"})"), "m").status().message(),
            "m.role: expected one of \"system\", \"user\", \"assistant\", \"tool\", got \"robot\"");
  EXPECT_EQ(MessageFromJson(json::parse(R"({"content":"x"})"), "m").status().message(), "m.role: missing (expected string)");
}

TEST(Message, ContentPartsAndObjectArgumentsAccepted) {
  auto m = MessageFromJson(json::parse(R"({"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
    "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":{"x":1}}}]})"), "m");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->content, "ab");
  EXPECT_EQ(m->tool_calls[0].arguments, R"({"x":1})");
}

}  // namespace
}  // namespace k2
