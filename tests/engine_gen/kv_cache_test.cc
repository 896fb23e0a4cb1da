// Tests of the paged MLA KV cache: randomized alloc/fork/append/truncate/free sequences against a
// trivial model (each sequence a vector of shared pages, copied on write), checked after every step.
#include "engine/gen/kv_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "core/rng.h"

namespace k2::gen {
namespace {

KvCacheConfig SmallConfig() {
  KvCacheConfig c;
  c.num_layers = 2;
  c.kv_lora_rank = 3;
  c.rope_dim = 2;
  c.page_size = 4;
  c.num_pages = 40;
  c.max_sequences = 12;
  c.max_tokens_per_sequence = 64;
  return c;
}

TEST(KvCache, ForkSharesPagesAndAppendCopiesOnWrite) {
  auto kv = KvCache::Create(SmallConfig());
  ASSERT_TRUE(kv.ok());
  KvCache& c = *kv;
  auto a = c.NewSequence();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(c.Append(*a, 6).ok());  // 2 pages, last one half full
  EXPECT_EQ(c.free_pages(), 38);
  for (int64_t t = 0; t < 6; ++t) c.MutableRow(*a, 1, t)[0] = static_cast<float>(t);
  auto b = c.Fork(*a);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(c.free_pages(), 38) << "fork must not allocate";
  EXPECT_EQ(c.pages(*a), c.pages(*b));
  ASSERT_TRUE(c.Append(*b, 1).ok());  // partial shared page -> copied
  EXPECT_EQ(c.free_pages(), 37);
  EXPECT_EQ(c.pages(*a)[0], c.pages(*b)[0]) << "the full first page stays shared";
  EXPECT_NE(c.pages(*a)[1], c.pages(*b)[1]);
  c.MutableRow(*b, 1, 6)[0] = 99;
  EXPECT_EQ(c.Row(*b, 1, 5)[0], 5.0f) << "the copy keeps the prefix rows";
  EXPECT_EQ(c.length(*a), 6);
  c.Free(*a);
  c.Free(*b);
  EXPECT_EQ(c.free_pages(), 40);
}

TEST(KvCache, ExhaustionLeavesCacheUnchanged) {
  KvCacheConfig cfg = SmallConfig();
  cfg.num_pages = 3;
  auto kv = KvCache::Create(cfg);
  ASSERT_TRUE(kv.ok());
  auto a = kv->NewSequence();
  ASSERT_TRUE(kv->Append(*a, 10).ok());  // 3 pages
  Status s = kv->Append(*a, 3);
  EXPECT_EQ(s.code(), Code::kResourceExhausted);
  EXPECT_NE(s.message().find("pages needed"), std::string::npos) << s.message();
  EXPECT_EQ(kv->length(*a), 10);
  EXPECT_EQ(kv->free_pages(), 0);
  Status too_long = kv->Append(*a, 100);
  EXPECT_NE(too_long.message().find("max_tokens_per_sequence"), std::string::npos);
}

// The trivial model: a sequence is a list of pages; a page is a shared vector of rows. Fork copies the
// list; a write into a page whose use_count > 1 clones it first.
struct RefPage {
  std::vector<float> data;
};
struct RefSeq {
  std::vector<std::shared_ptr<RefPage>> pages;
  int64_t length = 0;
};

TEST(KvCache, RandomOperationsMatchTrivialModel) {
  const KvCacheConfig cfg = SmallConfig();
  const int64_t W = cfg.kv_lora_rank + cfg.rope_dim, P = cfg.page_size;
  const size_t page_floats = static_cast<size_t>(cfg.num_layers * P * W);
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    Rng rng(seed);
    auto kv = KvCache::Create(cfg);
    ASSERT_TRUE(kv.ok());
    KvCache& c = *kv;
    std::map<KvCache::SeqId, RefSeq> ref;
    int exhausted = 0, forks = 0, cows = 0;
    for (int step = 0; step < 1500; ++step) {
      const int op = static_cast<int>(rng.Below(10));
      std::vector<KvCache::SeqId> ids;
      for (auto& [id, s] : ref) ids.push_back(id);
      auto pick = [&] { return ids[rng.Below(ids.size())]; };
      if (op == 0 || ids.empty()) {
        auto id = c.NewSequence();
        if (static_cast<int64_t>(ref.size()) == cfg.max_sequences) {
          ASSERT_FALSE(id.ok());
          continue;
        }
        ASSERT_TRUE(id.ok());
        ref[*id] = RefSeq{};
      } else if (op == 1) {
        KvCache::SeqId p = pick();
        auto id = c.Fork(p);
        if (static_cast<int64_t>(ref.size()) == cfg.max_sequences) {
          ASSERT_FALSE(id.ok());
          continue;
        }
        ASSERT_TRUE(id.ok());
        ref[*id] = ref[p];
        ++forks;
      } else if (op == 2) {
        KvCache::SeqId s = pick();
        c.Free(s);
        ref.erase(s);
      } else if (op == 3) {
        KvCache::SeqId s = pick();
        RefSeq& r = ref[s];
        int64_t nl = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(r.length + 1)));
        c.Truncate(s, nl);
        r.length = nl;
        r.pages.resize(static_cast<size_t>((nl + P - 1) / P));
      } else {
        KvCache::SeqId s = pick();
        RefSeq& r = ref[s];
        const int64_t n = static_cast<int64_t>(rng.Below(9));
        // Expected page demand from the model alone.
        std::set<RefPage*> live;
        for (auto& [id, q] : ref)
          for (auto& pg : q.pages) live.insert(pg.get());
        const bool cow = n > 0 && r.length % P != 0 && r.pages.back().use_count() > 1;
        const int64_t need = (r.length + n + P - 1) / P - static_cast<int64_t>(r.pages.size()) + (cow ? 1 : 0);
        const int64_t free_model = cfg.num_pages - static_cast<int64_t>(live.size());
        Status st = c.Append(s, n);
        if (need > free_model || r.length + n > cfg.max_tokens_per_sequence) {
          ASSERT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
          ++exhausted;
        } else {
          ASSERT_TRUE(st.ok()) << st.ToString();
          if (cow) {
            r.pages.back() = std::make_shared<RefPage>(*r.pages.back());
            ++cows;
          }
          while (static_cast<int64_t>(r.pages.size()) < (r.length + n + P - 1) / P)
            r.pages.push_back(std::make_shared<RefPage>(RefPage{std::vector<float>(page_floats, 0.0f)}));
          for (int64_t t = r.length; t < r.length + n; ++t)
            for (int64_t l = 0; l < cfg.num_layers; ++l) {
              float* row = c.MutableRow(s, l, t);
              float* rrow = &r.pages[static_cast<size_t>(t / P)]->data[static_cast<size_t>((l * P + t % P) * W)];
              for (int64_t j = 0; j < W; ++j) row[j] = rrow[j] = static_cast<float>(rng.Normal());
            }
          r.length += n;
        }
      }
      // Check everything after every step.
      std::set<RefPage*> live;
      std::map<RefPage*, int64_t> holders;
      for (auto& [id, q] : ref)
        for (auto& pg : q.pages) live.insert(pg.get()), holders[pg.get()]++;
      ASSERT_EQ(c.free_pages(), cfg.num_pages - static_cast<int64_t>(live.size())) << "seed " << seed << " step " << step;
      ASSERT_EQ(c.live_sequences(), static_cast<int64_t>(ref.size()));
      std::map<RefPage*, int32_t> phys;  // model page -> cache page (must be a bijection)
      for (auto& [id, q] : ref) {
        ASSERT_EQ(c.length(id), q.length);
        ASSERT_EQ(c.pages(id).size(), q.pages.size());
        for (size_t i = 0; i < q.pages.size(); ++i) {
          auto [it, fresh] = phys.emplace(q.pages[i].get(), c.pages(id)[i]);
          ASSERT_EQ(it->second, c.pages(id)[i]) << "sharing structure differs";
          ASSERT_EQ(c.ref_count(c.pages(id)[i]), holders[q.pages[i].get()]);
        }
        for (int64_t t = 0; t < q.length; ++t)
          for (int64_t l = 0; l < cfg.num_layers; ++l) {
            const float* row = c.Row(id, l, t);
            const float* rrow = &q.pages[static_cast<size_t>(t / P)]->data[static_cast<size_t>((l * P + t % P) * W)];
            for (int64_t j = 0; j < W; ++j) ASSERT_EQ(row[j], rrow[j]) << "seq " << id << " pos " << t;
          }
      }
      std::set<int32_t> distinct;
      for (auto& [m, p] : phys) distinct.insert(p);
      ASSERT_EQ(distinct.size(), phys.size()) << "two model pages map to one cache page";
    }
    EXPECT_GT(forks, 50);
    EXPECT_GT(cows, 10);
    EXPECT_GT(exhausted, 0);
    for (auto& [id, q] : ref) c.Free(id);
    EXPECT_EQ(c.free_pages(), cfg.num_pages);
  }
}

}  // namespace
}  // namespace k2::gen
