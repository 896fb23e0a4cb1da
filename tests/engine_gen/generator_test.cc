// Generator tests against slow references: greedy output equals argmax over repeated full forwards,
// both logprob streams equal what the full forward's logits give, seeded sampling reproduces,
// concurrent (continuously batched) requests equal one-at-a-time ones, forks and sessions equal
// unshared re-prefills, and bad requests fail with a Status instead of hanging.
#include "engine/gen/generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "core/rng.h"

namespace k2::gen {
namespace {

engine::ModelConfig TinyConfig() {
  auto c = engine::LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  K2_CHECK(c.ok()) << c.status().ToString();
  return *c;
}

std::vector<int32_t> RandomTokens(Rng& rng, int64_t n, int64_t V) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng.Below(static_cast<uint64_t>(V)));
  return t;
}

// A separate model instance with the same weights serves as the reference (the generator reads its
// own model in place; the reference Forward must not disturb anything the generator uses).
struct Env {
  engine::ModelConfig cfg = TinyConfig();
  std::unique_ptr<engine::Model<float>> model, ref;
  std::unique_ptr<Generator> gen;
  explicit Env(GeneratorOptions o = {}) {
    model = std::move(*engine::Model<float>::Create(cfg, 11));
    ref = std::move(*engine::Model<float>::Create(cfg, 11));
    if (o.page_size == 16) o.page_size = 4;
    auto g = Generator::Create(model.get(), o);
    K2_CHECK(g.ok()) << g.status().ToString();
    gen = std::move(*g);
  }
  // [T, V] logits of the full forward.
  std::vector<float> Logits(const std::vector<int32_t>& toks) {
    engine::Batch b;
    b.B = 1;
    b.T = static_cast<int64_t>(toks.size());
    b.tokens = toks;
    b.targets = toks;
    b.weights.assign(toks.size(), 1.0f);
    K2_CHECK(ref->Forward(b).ok());
    return ref->logits();
  }
  // Checks a sample against the full forward over prompt + sample: policy logprobs = log_softmax at
  // the sampled ids; for greedy, each token is the argmax.
  void CheckAgainstForward(const std::vector<int32_t>& prompt, const Sample& s, bool greedy) {
    auto all = prompt;
    all.insert(all.end(), s.tokens.begin(), s.tokens.end());
    all.pop_back();  // the last token was never fed
    auto lg = Logits(all);
    const int64_t V = cfg.vocab_size;
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      const float* row = &lg[(prompt.size() - 1 + i) * V];
      double m = *std::max_element(row, row + V), z = 0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - m);
      const double lp = double(row[s.tokens[i]]) - m - std::log(z);
      EXPECT_NEAR(s.policy_logprobs[i], lp, 2e-4) << "token " << i;
      if (greedy) {
        const int32_t am = static_cast<int32_t>(std::max_element(row, row + V) - row);
        EXPECT_EQ(s.tokens[i], am) << "greedy token " << i;
        EXPECT_EQ(s.logprobs[i], 0.0f);
      }
    }
  }
};

GenerateRequest Req(std::vector<int32_t> toks, double temp, int64_t max_new, uint64_t seed = 0) {
  GenerateRequest r;
  r.tokens = std::move(toks);
  r.sampling.temperature = temp;
  r.sampling.max_new_tokens = max_new;
  r.sampling.seed = seed;
  return r;
}

TEST(Generator, GreedyEqualsArgmaxOfFullForwardAndIsDeterministic) {
  Env e;
  Rng rng(1);
  auto prompt = RandomTokens(rng, 9, e.cfg.vocab_size);
  auto a = e.gen->Generate(Req(prompt, 0.0, 20));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_EQ(a->samples.size(), 1u);
  EXPECT_EQ(a->samples[0].tokens.size(), 20u);
  EXPECT_EQ(a->samples[0].finish_reason, "length");
  EXPECT_EQ(a->prompt_tokens, 9);
  e.CheckAgainstForward(prompt, a->samples[0], /*greedy=*/true);
  auto b = e.gen->Generate(Req(prompt, 0.0, 20));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->samples[0].tokens, b->samples[0].tokens);
}

// Reference sampling distribution: softmax(logits/T), top-k, top-p (smallest prefix by probability
// with mass >= p), renormalized — written independently of SampleToken.
double RefSampleLogprob(const float* row, int64_t V, double T, int64_t top_k, double top_p, int32_t tok) {
  std::vector<std::pair<double, int>> pr;
  double m = *std::max_element(row, row + V), z = 0;
  for (int64_t v = 0; v < V; ++v) z += std::exp((row[v] - m) / T);
  for (int64_t v = 0; v < V; ++v) pr.push_back({std::exp((row[v] - m) / T) / z, static_cast<int>(v)});
  std::sort(pr.begin(), pr.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  size_t keep = top_k > 0 ? std::min<size_t>(pr.size(), static_cast<size_t>(top_k)) : pr.size();
  double cum = 0;
  size_t k = 0;
  for (; k < keep; ++k) {
    cum += pr[k].first;
    if (cum >= top_p) {
      ++k;
      break;
    }
  }
  keep = std::min(keep, std::max<size_t>(k, 1));
  double mass = 0, p = -1;
  for (size_t i = 0; i < keep; ++i) {
    mass += pr[i].first;
    if (pr[i].second == tok) p = pr[i].first;
  }
  return p < 0 ? -INFINITY : std::log(p / mass);
}

TEST(Generator, BothLogprobStreamsMatchFullForward) {
  Env e;
  Rng rng(2);
  auto prompt = RandomTokens(rng, 12, e.cfg.vocab_size);
  for (auto [T, k, p] : std::vector<std::tuple<double, int64_t, double>>{{1.0, 0, 1.0}, {0.7, 20, 1.0}, {1.3, 0, 0.8}, {0.9, 12, 0.7}}) {
    auto r = Req(prompt, T, 15, 99);
    r.sampling.top_k = k;
    r.sampling.top_p = p;
    auto c = e.gen->Generate(r);
    ASSERT_TRUE(c.ok());
    const Sample& s = c->samples[0];
    e.CheckAgainstForward(prompt, s, false);
    auto all = prompt;
    all.insert(all.end(), s.tokens.begin(), s.tokens.end() - 1);
    auto lg = e.Logits(all);
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      const double want = RefSampleLogprob(&lg[(prompt.size() - 1 + i) * e.cfg.vocab_size], e.cfg.vocab_size, T, k, p,
                                           s.tokens[i]);
      ASSERT_TRUE(std::isfinite(want)) << "sampled a token outside the top-k/top-p set";
      EXPECT_NEAR(s.logprobs[i], want, 2e-4) << "T=" << T << " k=" << k << " p=" << p << " token " << i;
    }
  }
}

TEST(Generator, SeededSampleReproducesAndSeedsDiffer) {
  Env e;
  Rng rng(3);
  auto prompt = RandomTokens(rng, 6, e.cfg.vocab_size);
  auto a = e.gen->Generate(Req(prompt, 1.0, 24, 5));
  auto b = e.gen->Generate(Req(prompt, 1.0, 24, 5));
  auto c = e.gen->Generate(Req(prompt, 1.0, 24, 6));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->samples[0].tokens, b->samples[0].tokens);
  EXPECT_EQ(a->samples[0].logprobs, b->samples[0].logprobs);
  EXPECT_NE(a->samples[0].tokens, c->samples[0].tokens);
}

TEST(Generator, ConcurrentRequestsEqualOneAtATime) {
  GeneratorOptions o;
  o.max_batch_sequences = 8;
  o.max_batch_tokens = 40;
  o.prefill_chunk = 7;  // prompts span several steps, interleaved with other sequences' decode rows
  Env e(o);
  Rng rng(4);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 12; ++i) {
    auto r = Req(RandomTokens(rng, 3 + 2 * i, e.cfg.vocab_size), i % 2 ? 0.0 : 0.8, 5 + i, 100 + i);
    reqs.push_back(r);
  }
  std::vector<Completion> solo;
  for (auto& r : reqs) solo.push_back(*e.gen->Generate(r));
  std::vector<std::future<Expected<Completion>>> futs(reqs.size());
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < reqs.size(); i += 4) futs[i] = e.gen->Submit(reqs[i]);
    });
  for (auto& t : th) t.join();
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto c = futs[i].get();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->samples[0].tokens, solo[i].samples[0].tokens) << "request " << i;
    for (size_t k = 0; k < c->samples[0].tokens.size(); ++k)
      EXPECT_NEAR(c->samples[0].policy_logprobs[k], solo[i].samples[0].policy_logprobs[k], 1e-4);
  }
  e.gen->WaitIdle();
  auto st = e.gen->stats();
  EXPECT_EQ(st.free_pages, st.total_pages) << "every page returned";
  EXPECT_GT(st.steps, 0);
}

TEST(Generator, ForkedSamplesShareThePromptAndMatchFullForward) {
  Env e;
  Rng rng(5);
  auto prompt = RandomTokens(rng, 13, e.cfg.vocab_size);
  auto r = Req(prompt, 1.0, 10, 77);
  r.n = 6;
  auto c = e.gen->Generate(r);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->samples.size(), 6u);
  EXPECT_EQ(c->prompt_tokens, 13);
  std::set<std::vector<int32_t>> distinct;
  for (auto& s : c->samples) {
    e.CheckAgainstForward(prompt, s, false);
    distinct.insert(s.tokens);
  }
  EXPECT_GT(distinct.size(), 1u) << "samples use different streams";
  // Sample k of a forked request reproduces.
  auto again = e.gen->Generate(r);
  for (size_t k = 0; k < 6; ++k) EXPECT_EQ(again->samples[k].tokens, c->samples[k].tokens);
  e.gen->WaitIdle();
  EXPECT_EQ(e.gen->stats().free_pages, e.gen->stats().total_pages);
}

TEST(Generator, SessionTurnEqualsReprefillOfWholeConversation) {
  Env e;
  Rng rng(6);
  auto turn1 = RandomTokens(rng, 10, e.cfg.vocab_size);
  auto turn2 = RandomTokens(rng, 7, e.cfg.vocab_size);
  auto r1 = Req(turn1, 0.0, 8);
  r1.session = "ep";
  auto a = e.gen->Generate(r1);
  ASSERT_TRUE(a.ok());
  auto r2 = Req(turn2, 0.0, 8);
  r2.session = "ep";
  auto b = e.gen->Generate(r2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->cached_tokens, 10 + 8 - 1) << "the whole first turn was reused (last sampled token not yet fed)";
  EXPECT_EQ(b->prompt_tokens, 1 + 7);
  // Reference: the whole conversation as one fresh prompt.
  auto whole = turn1;
  whole.insert(whole.end(), a->samples[0].tokens.begin(), a->samples[0].tokens.end());
  whole.insert(whole.end(), turn2.begin(), turn2.end());
  auto c = e.gen->Generate(Req(whole, 0.0, 8));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(b->samples[0].tokens, c->samples[0].tokens);
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(b->samples[0].policy_logprobs[i], c->samples[0].policy_logprobs[i], 1e-4);
  auto len = e.gen->SessionLength("ep");
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, 10 + 8 + 7 + 8);
  // Forked sessions continue independently from the shared prefix.
  ASSERT_TRUE(e.gen->ForkSession("ep", "ep2").ok());
  EXPECT_EQ(e.gen->ForkSession("ep", "ep2").code(), Code::kAlreadyExists);
  EXPECT_EQ(e.gen->ForkSession("nope", "x").code(), Code::kNotFound);
  auto r3 = Req({1, 2, 3}, 0.0, 4);
  r3.session = "ep2";
  auto d = e.gen->Generate(r3);
  auto whole2 = whole;
  whole2.insert(whole2.end(), b->samples[0].tokens.begin(), b->samples[0].tokens.end());
  whole2.insert(whole2.end(), {1, 2, 3});
  auto f = e.gen->Generate(Req(whole2, 0.0, 4));
  ASSERT_TRUE(d.ok() && f.ok());
  EXPECT_EQ(d->samples[0].tokens, f->samples[0].tokens);
  EXPECT_EQ(*e.gen->SessionLength("ep"), 10 + 8 + 7 + 8) << "the fork did not change its parent";
  e.gen->EndSession("ep");
  e.gen->EndSession("ep2");
  EXPECT_EQ(e.gen->SessionLength("ep").status().code(), Code::kNotFound);
  e.gen->WaitIdle();
  EXPECT_EQ(e.gen->stats().free_pages, e.gen->stats().total_pages);
}

TEST(Generator, StopTokenEndsAndIsKept) {
  Env e;
  Rng rng(7);
  auto prompt = RandomTokens(rng, 8, e.cfg.vocab_size);
  auto free_run = e.gen->Generate(Req(prompt, 0.0, 12));
  ASSERT_TRUE(free_run.ok());
  const int32_t stop = free_run->samples[0].tokens[4];
  auto r = Req(prompt, 0.0, 12);
  r.sampling.stop_tokens = {stop};
  auto c = e.gen->Generate(r);
  ASSERT_TRUE(c.ok());
  const auto& t = free_run->samples[0].tokens;
  const size_t first = static_cast<size_t>(std::find(t.begin(), t.end(), stop) - t.begin());
  EXPECT_EQ(c->samples[0].tokens, std::vector<int32_t>(t.begin(), t.begin() + first + 1));
  EXPECT_EQ(c->samples[0].finish_reason, "stop");
}

TEST(Generator, BadRequestsFailWithStatus) {
  GeneratorOptions o;
  o.num_pages = 6;  // 24 tokens of pool at page size 4
  Env e(o);
  auto bad_tok = e.gen->Generate(Req({1, 9999}, 0.0, 3));
  EXPECT_EQ(bad_tok.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad_tok.status().message().find("tokens[1]"), std::string::npos);
  auto empty = e.gen->Generate(Req({}, 0.0, 3));
  EXPECT_EQ(empty.status().code(), Code::kInvalidArgument);
  std::vector<int32_t> longp(100, 1);  // tiny: max_position_embeddings 64
  auto too_long = e.gen->Generate(Req(longp, 0.0, 3));
  EXPECT_NE(too_long.status().message().find("max_context"), std::string::npos) << too_long.status().ToString();
  auto huge = e.gen->Generate(Req(std::vector<int32_t>(20, 1), 0.0, 30));  // needs more pages than the pool
  EXPECT_EQ(huge.status().code(), Code::kResourceExhausted) << huge.status().ToString();
  auto r = Req({1, 2}, 0.0, 2);
  r.n = 2;
  r.session = "s";
  EXPECT_EQ(e.gen->Generate(r).status().code(), Code::kInvalidArgument);
  auto t = Req({1, 2}, -1.0, 2);
  EXPECT_EQ(e.gen->Generate(t).status().code(), Code::kInvalidArgument);
  auto ss = Req({1, 2}, 0.0, 2);
  ss.sampling.stop_strings = {"x"};
  EXPECT_NE(e.gen->Generate(ss).status().message().find("tokenizer"), std::string::npos);
  // Still serving after all of that.
  auto ok = e.gen->Generate(Req({1, 2, 3}, 0.0, 3));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  // Output longer than the context is cut at the context ("length").
  auto edge = e.gen->Generate(Req(std::vector<int32_t>(62, 3), 0.0, 10));
  if (edge.ok()) {
    EXPECT_EQ(edge->samples[0].tokens.size(), 2u);
  } else {
    EXPECT_EQ(edge.status().code(), Code::kResourceExhausted);
  }
}

TEST(Generator, QueuedRequestsWaitForPagesInsteadOfFailing) {
  GeneratorOptions o;
  o.num_pages = 12;  // room for about two requests at once
  o.max_batch_sequences = 8;
  Env e(o);
  Rng rng(8);
  std::vector<std::future<Expected<Completion>>> futs;
  for (int i = 0; i < 10; ++i) futs.push_back(e.gen->Submit(Req(RandomTokens(rng, 10, e.cfg.vocab_size), 0.5, 8, i)));
  for (auto& f : futs) {
    auto c = f.get();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->samples[0].tokens.size(), 8u);
  }
  e.gen->WaitIdle();
  EXPECT_EQ(e.gen->stats().free_pages, 12);
}

TEST(SampleToken, TopKOneIsGreedyAndTopPKeepsTheNucleus) {
  std::vector<float> lg = {0.1f, 2.0f, 1.9f, -3.0f, 0.5f};
  SampleScratch sc;
  SamplingParams p;
  p.top_k = 1;
  float lp, plp;
  for (double u : {0.0, 0.5, 0.999}) {
    EXPECT_EQ(SampleToken(lg.data(), 5, p, u, &sc, &lp, &plp), 1);
    EXPECT_NEAR(lp, 0.0, 1e-6);
  }
  p.top_k = 0;
  p.top_p = 0.5;  // ids 1 and 2 carry ~0.44 and ~0.40: the nucleus is {1, 2}
  std::set<int32_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(SampleToken(lg.data(), 5, p, (i + 0.5) / 200, &sc, &lp, &plp));
  EXPECT_EQ(seen, (std::set<int32_t>{1, 2}));
}

}  // namespace
}  // namespace k2::gen
