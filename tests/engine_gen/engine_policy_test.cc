// EnginePolicy over a tiny random model and a BPE tokenizer trained here: deterministic turns, context
// tokens = the template rendering (whole dialog first, only the new messages afterwards), session
// turns equal a one-shot re-prefill of the same stream, history edits restart the session, and
// malformed output becomes a scored failure (weights edited in place, read live by the generator).
#include "agents/engine_policy.h"

#include <gtest/gtest.h>

#include "engine/text/bpe_train.h"

namespace k2::agents {
namespace {

struct World {
  text::Tokenizer tok;
  engine::ModelConfig cfg;
  std::unique_ptr<engine::Model<float>> model;
  std::unique_ptr<gen::Generator> gen;
  std::unique_ptr<EnginePolicy> policy;
};

std::unique_ptr<World> MakeWorld() {
  auto w = std::make_unique<World>();
  std::string corpus;
  for (int i = 0; i < 200; ++i)
    corpus += "The user asks for the weather in Paris and the assistant calls get_weather with {\"city\": \"Paris\"}.\n";
  text::BpeTrainOptions bo;
  bo.vocab_size = 256 + 64 + text::kKimiNumReservedSpecial;
  bo.threads = 1;
  auto tok = text::TrainBpe(corpus, bo);
  K2_CHECK(tok.ok()) << tok.status().ToString();
  w->tok = std::move(*tok);
  auto c = engine::LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  K2_CHECK(c.ok());
  w->cfg = *c;
  w->cfg.vocab_size = w->tok.vocab_size();
  w->cfg.max_position_embeddings = 1024;
  w->model = std::move(*engine::Model<float>::Create(w->cfg, 3));
  gen::GeneratorOptions go;
  go.tokenizer = &w->tok;
  go.max_sequences = 16;
  go.max_batch_sequences = 8;
  auto g = gen::Generator::Create(w->model.get(), go);
  K2_CHECK(g.ok()) << g.status().ToString();
  w->gen = std::move(*g);
  auto p = EnginePolicy::Create(w->gen.get(), &w->tok);
  K2_CHECK(p.ok()) << p.status().ToString();
  w->policy = std::move(*p);
  return w;
}

json Tools() {
  return json::parse(R"([{"type":"function","function":{"name":"get_weather","description":"Weather of a city",
    "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}])");
}

PolicyRequest Request(std::vector<Message> ms, std::string session = "") {
  PolicyRequest r;
  r.messages = std::move(ms);
  r.tools = Tools();
  r.temperature = 0.0;
  r.max_tokens = 12;
  r.seed = 1;
  r.session = std::move(session);
  return r;
}

std::vector<int32_t> Render(World& w, const std::vector<Message>& ms, bool gen_prompt) {
  text::RenderOptions o;
  o.add_generation_prompt = gen_prompt;
  auto r = text::RenderChat(ms, Tools(), &w.tok, o);
  K2_CHECK(r.ok()) << r.status().ToString();
  return std::vector<int32_t>(r->tokens.begin(), r->tokens.end());
}

// Makes the model emit `id` at every step: every token embeds to the same vector, attention and MLP
// outputs are zeroed, and lm_head favours that one id. The generator reads the edited weights in place.
void EmitAlways(World& w, int32_t id) {
  for (auto& p : w.model->params()) {
    const std::string& n = p.name;
    if (n == "model.embed_tokens.weight") {
      for (int64_t v = 0; v < p.shape[0]; ++v)
        for (int64_t d = 0; d < p.shape[1]; ++d) p.w[v * p.shape[1] + d] = d == 0 ? 1.0f : 0.0f;
    } else if (n.find("o_proj") != std::string::npos || n.find("down_proj") != std::string::npos) {
      std::fill(p.w.begin(), p.w.end(), 0.0f);
    } else if (n == "lm_head.weight") {
      for (int64_t v = 0; v < p.shape[0]; ++v)
        for (int64_t d = 0; d < p.shape[1]; ++d) p.w[v * p.shape[1] + d] = (v == id && d == 0) ? 5.0f : 0.0f;
    }
  }
}

TEST(EnginePolicy, StatelessTurnIsDeterministicAndRendersTheWholeDialog) {
  auto w = MakeWorld();
  std::vector<Message> ms = {{"user", "What is the weather in Paris?"}};
  auto a = w->policy->Act(Request(ms));
  auto b = w->policy->Act(Request(ms));
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString();
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->context_tokens, Render(*w, ms, true));
  EXPECT_EQ(a->tokens.size(), a->logprobs.size());
  EXPECT_EQ(a->tokens.size(), a->policy_logprobs.size());
  EXPECT_EQ(a->completion_tokens, static_cast<int64_t>(a->tokens.size()));
  EXPECT_EQ(a->prompt_tokens, static_cast<int64_t>(a->context_tokens.size()));
  EXPECT_EQ(a->message.role, "assistant");
  // The failure (if any) is exactly what the template parser says about these tokens.
  std::vector<int> ids(a->tokens.begin(), a->tokens.end());
  text::ParseOptions po;
  po.first_call_index = 0;
  auto parsed = text::ParseAssistantTokens(w->tok, ids, Tools(), po);
  EXPECT_EQ(a->failure.has_value(), !parsed.ok());
  if (parsed.ok()) {
    EXPECT_EQ(a->message.content, parsed.message.content);
  } else {
    // Malformed output is the text `k2gym serve` would send for these tokens: every token but
    // <|im_end|>, invalid UTF-8 replaced as JSON carries it, no tool calls.
    std::string text;
    for (int id : ids)
      if (id != w->tok.SpecialId(text::kImEnd)) text += w->tok.TokenBytes(id);
    EXPECT_EQ(a->message.content, json::parse(json(text).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>());
    EXPECT_TRUE(a->message.tool_calls.empty());
  }
}

TEST(EnginePolicy, SessionAppendsOnlyNewMessagesAndEqualsReprefill) {
  auto w = MakeWorld();
  std::vector<Message> ms = {{"system", "Be brief."}, {"user", "Weather in Paris?"}};
  auto t1 = w->policy->Act(Request(ms, "ep1"));
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  EXPECT_EQ(t1->context_tokens, Render(*w, ms, true));
  ms.push_back(t1->message);
  ms.push_back({"user", "And in Rome?"});
  auto t2 = w->policy->Act(Request(ms, "ep1"));
  ASSERT_TRUE(t2.ok()) << t2.status().ToString();
  // Only the new user turn and the assistant header were appended.
  std::vector<Message> prefix(ms.begin(), ms.end() - 1);
  auto full2 = Render(*w, ms, true);
  auto hist = Render(*w, prefix, false);
  std::vector<int32_t> want;
  if (t1->truncated) want.push_back(w->tok.SpecialId(text::kImEnd));
  want.insert(want.end(), full2.begin() + static_cast<std::ptrdiff_t>(hist.size()), full2.end());
  EXPECT_EQ(t2->context_tokens, want);
  EXPECT_LT(t2->context_tokens.size(), full2.size() / 2);
  // Reference: the stream the session holds, fed at once to a fresh one-shot request.
  std::vector<int32_t> stream = t1->context_tokens;
  stream.insert(stream.end(), t1->tokens.begin(), t1->tokens.end());
  stream.insert(stream.end(), t2->context_tokens.begin(), t2->context_tokens.end());
  EXPECT_EQ(t2->prompt_tokens, static_cast<int64_t>(stream.size()));
  gen::GenerateRequest g;
  g.tokens = stream;
  g.sampling.temperature = 0;
  g.sampling.max_new_tokens = 12;
  g.sampling.stop_tokens = {w->tok.SpecialId(text::kImEnd)};
  auto ref = w->gen->Generate(g);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->samples[0].tokens, t2->tokens);
  for (size_t i = 0; i < t2->tokens.size(); ++i)
    EXPECT_NEAR(ref->samples[0].policy_logprobs[i], t2->policy_logprobs[i], 1e-4);
  w->policy->EndSession("ep1");
  w->gen->WaitIdle();
  EXPECT_EQ(w->gen->stats().free_pages, w->gen->stats().total_pages);
}

TEST(EnginePolicy, EditedHistoryRestartsTheSession) {
  auto w = MakeWorld();
  std::vector<Message> ms = {{"user", "Weather in Paris?"}};
  auto t1 = w->policy->Act(Request(ms, "ep"));
  ASSERT_TRUE(t1.ok());
  ms.push_back(t1->message);
  ms.push_back({"user", "And Rome?"});
  ms[0].content = "Weather in Lyon?";  // the caller rewrote history
  auto t2 = w->policy->Act(Request(ms, "ep"));
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(t2->context_tokens, Render(*w, ms, true));
  EXPECT_EQ(t2->prompt_tokens, static_cast<int64_t>(t2->context_tokens.size()));
}

TEST(EnginePolicy, MalformedOutputIsAScoredFailureNotAnError) {
  auto w = MakeWorld();
  // The model emits <|tool_calls_section_begin|> at every step.
  const int32_t sec = w->tok.SpecialId(text::kSectionBegin);
  ASSERT_GE(sec, 0);
  EmitAlways(*w, sec);
  auto t = w->policy->Act(Request({{"user", "hi"}}));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->tokens, std::vector<int32_t>(12, sec));
  ASSERT_TRUE(t->failure.has_value());
  EXPECT_EQ(t->failure->rfind("unexpected_special: ", 0), 0u) << *t->failure;
  EXPECT_TRUE(t->truncated);
}

// A model that emits a lone UTF-8 continuation byte at every step: the turn's text is valid UTF-8
// (U+FFFD for each invalid byte), so the trajectory it ends up in can be stored and exported as JSON.
TEST(EnginePolicy, InvalidUtf8OutputBecomesReplacementCharacters) {
  auto w = MakeWorld();
  int32_t b7 = -1;
  for (int32_t id = 0; id < static_cast<int32_t>(w->tok.vocab_size()) && b7 < 0; ++id)
    if (w->tok.TokenBytes(id) == "\xB7") b7 = id;
  ASSERT_GE(b7, 0);
  EmitAlways(*w, b7);
  auto t = w->policy->Act(Request({{"user", "hi"}}));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->tokens, std::vector<int32_t>(12, b7));
  std::string replacement;
  for (int i = 0; i < 12; ++i) replacement += "\xEF\xBF\xBD";
  EXPECT_EQ(t->message.content, replacement);
  EXPECT_NO_THROW((void)json(t->message.content).dump()) << "strict JSON serialization";
  if (t->failure) {
    EXPECT_NO_THROW((void)json(*t->failure).dump());
  }
}

TEST(EnginePolicy, RejectsTokenizerLargerThanModel) {
  auto w = MakeWorld();
  engine::ModelConfig small = w->cfg;
  small.vocab_size = 100;
  auto m = engine::Model<float>::Create(small, 1);
  auto g = gen::Generator::Create(m->get(), {});
  ASSERT_TRUE(g.ok());
  auto p = EnginePolicy::Create(g->get(), &w->tok);
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  EXPECT_NE(p.status().message().find("vocab_size"), std::string::npos);
}

}  // namespace
}  // namespace k2::agents
