// Cached absorbed decode against the naive full Model::Forward (the reference): logits at every
// position for whole-prompt prefill, token-by-token decode, ragged chunks, batched vs one at a time,
// and forked (shared-prefix) vs unshared sequences.
#include "engine/gen/decoder.h"

#include <gtest/gtest.h>

#include <cmath>

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

// Reference: the full forward's logits [T, V] for one sequence.
std::vector<float> FullLogits(engine::Model<float>& m, const std::vector<int32_t>& toks) {
  engine::Batch b;
  b.B = 1;
  b.T = static_cast<int64_t>(toks.size());
  b.tokens = toks;
  b.targets = toks;
  b.weights.assign(toks.size(), 1.0f);
  auto r = m.Forward(b);
  K2_CHECK(r.ok()) << r.status().ToString();
  return m.logits();
}

void ExpectClose(const float* a, const float* b, int64_t n, const std::string& what) {
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  EXPECT_LT(worst, 2e-4) << what;
}

struct Fixture {
  engine::ModelConfig cfg = TinyConfig();
  std::unique_ptr<engine::Model<float>> model;
  std::optional<KvCache> kv;
  std::unique_ptr<CachedDecoder> dec;
  Fixture(int64_t page_size = 4) {
    auto m = engine::Model<float>::Create(cfg, 7);
    K2_CHECK(m.ok());
    model = std::move(*m);
    KvCacheConfig kc;
    kc.num_layers = cfg.num_hidden_layers;
    kc.kv_lora_rank = cfg.kv_lora_rank;
    kc.rope_dim = cfg.qk_rope_head_dim;
    kc.page_size = page_size;
    kc.num_pages = 256;
    kc.max_sequences = 16;
    kc.max_tokens_per_sequence = cfg.max_position_embeddings;
    auto k = KvCache::Create(kc);
    K2_CHECK(k.ok());
    kv.emplace(std::move(*k));
    dec = std::make_unique<CachedDecoder>(model.get(), &*kv, 128, 64, cfg.max_position_embeddings);
  }
  // Feeds toks[from, to) to seq as one chunk and returns its logits (all rows).
  std::vector<float> Feed(KvCache::SeqId s, const std::vector<int32_t>& toks, size_t from, size_t to) {
    K2_CHECK(kv->Append(s, static_cast<int64_t>(to - from)).ok());
    CachedDecoder::Chunk ch{s, toks.data() + from, static_cast<int64_t>(to - from), true};
    Status st = dec->Forward({ch});
    K2_CHECK(st.ok()) << st.ToString();
    return std::vector<float>(dec->logits(), dec->logits() + dec->logit_rows() * cfg.vocab_size);
  }
};

TEST(CachedDecoder, PrefillMatchesFullForwardAtEveryPosition) {
  Fixture f;
  Rng rng(1);
  auto toks = RandomTokens(rng, 37, f.cfg.vocab_size);
  auto ref = FullLogits(*f.model, toks);
  auto s = f.kv->NewSequence();
  auto got = f.Feed(*s, toks, 0, toks.size());
  ASSERT_EQ(got.size(), ref.size());
  ExpectClose(got.data(), ref.data(), static_cast<int64_t>(ref.size()), "prefill");
}

TEST(CachedDecoder, TokenByTokenDecodeMatchesFullForward) {
  Fixture f;
  Rng rng(2);
  auto toks = RandomTokens(rng, 40, f.cfg.vocab_size);
  auto ref = FullLogits(*f.model, toks);
  auto s = f.kv->NewSequence();
  const int64_t V = f.cfg.vocab_size;
  for (size_t t = 0; t < toks.size(); ++t) {
    auto got = f.Feed(*s, toks, t, t + 1);
    ExpectClose(got.data(), &ref[t * V], V, "decode position " + std::to_string(t));
  }
}

TEST(CachedDecoder, RaggedChunksMatchFullForward) {
  Fixture f(/*page_size=*/5);
  Rng rng(3);
  auto toks = RandomTokens(rng, 50, f.cfg.vocab_size);
  auto ref = FullLogits(*f.model, toks);
  auto s = f.kv->NewSequence();
  const int64_t V = f.cfg.vocab_size;
  size_t t = 0;
  while (t < toks.size()) {
    size_t n = std::min<size_t>(toks.size() - t, 1 + rng.Below(9));
    auto got = f.Feed(*s, toks, t, t + n);
    ExpectClose(got.data(), &ref[t * V], static_cast<int64_t>(n) * V, "chunk at " + std::to_string(t));
    t += n;
  }
}

TEST(CachedDecoder, BatchedEqualsOneAtATime) {
  Fixture f;
  Rng rng(4);
  const int64_t V = f.cfg.vocab_size;
  std::vector<std::vector<int32_t>> seqs;
  for (int i = 0; i < 5; ++i) seqs.push_back(RandomTokens(rng, 10 + 5 * i, V));
  std::vector<std::vector<float>> ref;
  for (auto& s : seqs) ref.push_back(FullLogits(*f.model, s));
  // All five prefilled in one call with different lengths, then decoded together for 6 steps.
  std::vector<KvCache::SeqId> ids;
  std::vector<CachedDecoder::Chunk> chunks;
  for (auto& s : seqs) {
    ids.push_back(*f.kv->NewSequence());
    ASSERT_TRUE(f.kv->Append(ids.back(), static_cast<int64_t>(s.size()) - 6).ok());
    chunks.push_back({ids.back(), s.data(), static_cast<int64_t>(s.size()) - 6, true});
  }
  ASSERT_TRUE(f.dec->Forward(chunks).ok());
  int64_t row = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const int64_t n = static_cast<int64_t>(seqs[i].size()) - 6;
    ExpectClose(f.dec->logits() + row * V, ref[i].data(), n * V, "batched prefill of " + std::to_string(i));
    row += n;
  }
  for (int step = 0; step < 6; ++step) {
    chunks.clear();
    for (size_t i = 0; i < seqs.size(); ++i) {
      const size_t t = seqs[i].size() - 6 + static_cast<size_t>(step);
      ASSERT_TRUE(f.kv->Append(ids[i], 1).ok());
      chunks.push_back({ids[i], seqs[i].data() + t, 1, false});
    }
    ASSERT_TRUE(f.dec->Forward(chunks).ok());
    ASSERT_EQ(f.dec->logit_rows(), 5);
    for (size_t i = 0; i < seqs.size(); ++i) {
      const size_t t = seqs[i].size() - 6 + static_cast<size_t>(step);
      ExpectClose(f.dec->logits() + static_cast<int64_t>(i) * V, &ref[i][t * V], V, "batched decode");
    }
  }
}

TEST(CachedDecoder, ForkedPrefixEqualsUnshared) {
  Fixture f(/*page_size=*/4);
  Rng rng(5);
  const int64_t V = f.cfg.vocab_size;
  auto prompt = RandomTokens(rng, 14, V);  // 3.5 pages: the last one is shared and partial
  auto parent = *f.kv->NewSequence();
  f.Feed(parent, prompt, 0, prompt.size());
  const int64_t free_after_prompt = f.kv->free_pages();
  const float parent_last = f.kv->Row(parent, 2, 13)[0];
  std::vector<KvCache::SeqId> kids;
  std::vector<std::vector<int32_t>> full;
  for (int k = 0; k < 4; ++k) {
    kids.push_back(*f.kv->Fork(parent));
    auto cont = RandomTokens(rng, 9, V);
    auto s = prompt;
    s.insert(s.end(), cont.begin(), cont.end());
    full.push_back(s);
  }
  EXPECT_EQ(f.kv->free_pages(), free_after_prompt) << "forks share the prompt's pages";
  for (int k = 0; k < 4; ++k) {
    auto got = f.Feed(kids[k], full[k], prompt.size(), full[k].size());
    auto ref = FullLogits(*f.model, full[k]);
    ExpectClose(got.data(), &ref[prompt.size() * V], 9 * V, "fork " + std::to_string(k));
  }
  // The parent's own rows are untouched by its children's writes.
  EXPECT_EQ(f.kv->Row(parent, 2, 13)[0], parent_last) << "children wrote into the parent's page";
  EXPECT_EQ(f.kv->pages(kids[0])[0], f.kv->pages(kids[1])[0]) << "full prefix pages stay shared";
}

TEST(CachedDecoder, RejectsOutOfVocabularyToken) {
  Fixture f;
  auto s = *f.kv->NewSequence();
  std::vector<int32_t> bad = {1, 2, static_cast<int32_t>(f.cfg.vocab_size)};
  ASSERT_TRUE(f.kv->Append(s, 3).ok());
  Status st = f.dec->Forward({{s, bad.data(), 3, false}});
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("vocab_size"), std::string::npos);
}

}  // namespace
}  // namespace k2::gen
