// The text commands as a user runs them: tokenizer train/encode/decode and chat-template render/parse,
// their exit codes, one-line errors naming the file, and --json output that parses.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "core/json.h"
#include "tests/engine/text/checkpoint_tokenizers.h"
#include "tests/engine/text/corpus_gen.h"

namespace k2 {
namespace {

struct Result {
  int code;
  std::string out, err;
};

class TextCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("k2gym_textcli_" + std::to_string(getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result Run(const std::string& args) {
    std::string out = Path("stdout"), err = Path("stderr");
    std::string cmd = "cd " + dir_.string() + " && " + std::string(K2GYM_BINARY_DIR) + "/apps/k2gym " + args + " >" +
                      out + " 2>" + err;
    int st = std::system(cmd.c_str());
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, *ReadFile(out), *ReadFile(err)};
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void Write(const std::string& name, const std::string& data) { ASSERT_TRUE(WriteFileAtomic(Path(name), data).ok()); }

  std::filesystem::path dir_;
};

TEST_F(TextCliTest, TrainEncodeDecodeRoundTrip) {
  Write("corpus.txt", text::testing::GenerateCorpus(3, 60000));
  auto t = Run("--json --quiet tokenizer train --corpus corpus.txt --vocab-size 1024 --out tok");
  ASSERT_EQ(t.code, 0) << t.err;
  auto summary = ParseJson(t.out, "stdout");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ((*summary)["vocab_size"], 1024);
  EXPECT_TRUE(std::filesystem::exists(Path("tok/tiktoken.model")));
  EXPECT_TRUE(std::filesystem::exists(Path("tok/tokenizer.json")));

  std::string text = "Hello, 世界! naïve <|im_end|>\n";
  Write("in.txt", text);
  auto e = Run("--json tokenizer encode --tokenizer tok --file in.txt");
  ASSERT_EQ(e.code, 0) << e.err;
  auto ids = ParseJson(e.out, "stdout");
  ASSERT_TRUE(ids.ok());
  std::string id_text;
  for (auto& id : (*ids)["ids"]) {
    EXPECT_LT(id.get<int>(), 1024 - 256);  // no special token from user text
    id_text += std::to_string(id.get<int>()) + " ";
  }
  Write("ids.txt", id_text);
  auto d = Run("tokenizer decode --tokenizer tok --file ids.txt");
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out, text);
  // With --special, "<|im_end|>" is the special token (id ranks + 2).
  auto s = Run("--json tokenizer encode --tokenizer tok --special --text '<|im_end|>'");
  ASSERT_EQ(s.code, 0) << s.err;
  auto sid = ParseJson(s.out, "stdout");
  ASSERT_TRUE(sid.ok());
  EXPECT_EQ((*sid)["ids"], json::array({1024 - 256 + 2}));
}

// --split-digits stores the digit pattern with the tokenizer: every digit is its own token after
// loading, however often longer numbers occur in the corpus; without it frequent numbers merge.
TEST_F(TextCliTest, SplitDigitsKeepsOneTokenPerDigit) {
  std::string corpus;
  for (int i = 0; i < 400; ++i) corpus += "order 1001 paid 41.00 by TRA-1005\n";
  Write("corpus.txt", corpus);
  for (bool split : {true, false}) {
    std::string dir = split ? "tokd" : "tok3";
    auto t = Run(std::string("--quiet tokenizer train --corpus corpus.txt --vocab-size 600 --out ") + dir +
                 (split ? " --split-digits" : ""));
    ASSERT_EQ(t.code, 0) << t.err;
    auto e = Run("--json tokenizer encode --tokenizer " + dir + " --text 1001");
    ASSERT_EQ(e.code, 0) << e.err;
    auto ids = ParseJson(e.out, "stdout");
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ((*ids)["ids"].size(), split ? 4u : 2u) << dir << ": " << e.out;  // "100" "1" without the flag
  }
}

// encode/decode on the tokenizer directories checkpoints ship: Kimi-K2-style (tiktoken.model +
// tokenizer_config.json, ids 163584+) and a Hugging Face tokenizer.json.
TEST_F(TextCliTest, EncodeDecodeOnCheckpointTokenizerDirectories) {
  text::testing::WriteKimiStyleDir(Path("kimi"), /*finetuned=*/true);
  std::vector<int> perm;
  std::filesystem::create_directories(Path("hf"));
  Write("hf/tokenizer.json", text::testing::HfTokenizerJson(&perm).dump());
  const std::string text = "Hello, 世界! naïve <|im_end|> 1234\n\xff";
  Write("in.txt", text);
  const int R = text::testing::SmallTokenizer().num_ranks();
  for (auto [dir, im_end] : {std::pair<std::string, int>{"kimi", 163884}, {"hf", R + 12}}) {
    auto e = Run("tokenizer encode --tokenizer " + dir + " --file in.txt");
    ASSERT_EQ(e.code, 0) << e.err;
    Write("ids.txt", e.out);
    auto d = Run("tokenizer decode --tokenizer " + dir + " --file ids.txt");
    ASSERT_EQ(d.code, 0) << d.err;
    EXPECT_EQ(d.out, text) << dir;
    auto s = Run("--json tokenizer encode --tokenizer " + dir + " --special --text 'a<|im_end|>'");
    ASSERT_EQ(s.code, 0) << s.err;
    auto sid = ParseJson(s.out, "stdout");
    ASSERT_TRUE(sid.ok());
    EXPECT_EQ((*sid)["ids"].back(), im_end) << dir;
  }
}

TEST_F(TextCliTest, ErrorsAreOneLineAndNameTheProblem) {
  auto missing = Run("tokenizer train --corpus nope.txt --out tok");
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("nope.txt"), std::string::npos) << missing.err;
  Write("c.txt", "abc abc");
  auto small = Run("tokenizer train --corpus c.txt --vocab-size 100 --out tok");
  EXPECT_EQ(small.code, 2);
  EXPECT_NE(small.err.find("vocab_size"), std::string::npos) << small.err;
  Write("c.jsonl", "{\"text\": \"a\"}\n[1]\n");
  auto jl = Run("tokenizer train --corpus c.jsonl --jsonl-field text --out tok");
  EXPECT_EQ(jl.code, 2);
  EXPECT_NE(jl.err.find("c.jsonl:2"), std::string::npos) << jl.err;
  auto notok = Run("tokenizer encode --tokenizer nodir --text hi");
  EXPECT_EQ(notok.code, 2);
  EXPECT_NE(notok.err.find("--tokenizer: Directory does not exist: nodir"), std::string::npos) << notok.err;
  std::filesystem::create_directories(dir_ / "emptydir");
  auto empty = Run("tokenizer encode --tokenizer emptydir --text hi");
  EXPECT_NE(empty.code, 0);
  EXPECT_NE(empty.err.find("emptydir/tiktoken.model"), std::string::npos) << empty.err;
  Write("m.json", R"([{"role": "robot", "content": "x"}])");
  auto bad = Run("chat-template render --messages m.json");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("m.json: messages[0].role"), std::string::npos) << bad.err;
}

TEST_F(TextCliTest, RenderAndParseAssistantOutput) {
  Write("corpus.txt", text::testing::GenerateCorpus(4, 40000));
  ASSERT_EQ(Run("--quiet tokenizer train --corpus corpus.txt --vocab-size 800 --out tok").code, 0);
  Write("chat.json", R"({"messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "18C"}],
    "tools": [{"type": "function", "function": {"name": "get_weather"}}]})");
  auto r = Run("--json chat-template render --messages chat.json --tokenizer tok --add-generation-prompt");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["tokens"].size(), (*j)["loss_mask"].size());
  EXPECT_GT((*j)["assistant_tokens"].get<int>(), 0);
  std::string text = (*j)["text"];
  EXPECT_NE(text.find("## Return of functions.get_weather:0\n18C<|im_end|>"), std::string::npos);
  EXPECT_TRUE(text.ends_with("<|im_assistant|>assistant<|im_middle|>"));

  Write("tools.json", R"([{"type": "function", "function": {"name": "get_weather"}}])");
  Write("good.txt", "Sure<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:1"
                    "<|tool_call_argument_begin|>{\"city\":\"Rome\"}<|tool_call_end|><|tool_calls_section_end|><|im_end|>");
  auto g = Run("--json chat-template parse --output good.txt --tools tools.json --first-call-index 1 --require-end");
  ASSERT_EQ(g.code, 0) << g.err;
  auto gj = ParseJson(g.out, "stdout");
  ASSERT_TRUE(gj.ok());
  EXPECT_EQ((*gj)["message"]["tool_calls"][0]["id"], "functions.get_weather:1");

  Write("bad.txt", "Sure<|tool_calls_section_begin|><|tool_call_begin|>functions.fly:1"
                   "<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|><|im_end|>");
  auto b = Run("--json chat-template parse --output bad.txt --tools tools.json");
  EXPECT_EQ(b.code, 1);
  auto bj = ParseJson(b.out, "stdout");
  ASSERT_TRUE(bj.ok());
  EXPECT_EQ((*bj)["failure"]["kind"], "unknown_tool");
}

}  // namespace
}  // namespace k2
