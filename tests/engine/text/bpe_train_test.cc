// Tests of engine/text/bpe_train: the incremental trainer equals the recount-everything reference,
// training is deterministic across thread counts, and bad options give clear errors.
#include "engine/text/bpe_train.h"

#include <set>

#include <gtest/gtest.h>

#include "tests/engine/text/corpus_gen.h"

namespace k2::text {
namespace {

using testing::GenerateCorpus;

TEST(BpeTrain, IncrementalTrainerEqualsReference) {
  for (uint64_t seed : {21u, 22u, 23u}) {
    std::string corpus = GenerateCorpus(seed, 30000);
    BpeTrainOptions opt;
    opt.vocab_size = 256 + 300 + 256;
    auto fast = TrainBpeRanks(corpus, opt);
    auto ref = TrainBpeRanksReference(corpus, opt);
    ASSERT_TRUE(fast.ok() && ref.ok());
    ASSERT_EQ(fast->size(), ref->size());
    for (size_t r = 0; r < fast->size(); ++r) ASSERT_EQ((*fast)[r], (*ref)[r]) << "seed " << seed << " rank " << r;
  }
}

TEST(BpeTrain, SameRanksWhateverTheThreadCount) {
  std::string corpus = GenerateCorpus(31, 400000);  // several chunks per thread
  BpeTrainOptions opt;
  opt.vocab_size = 256 + 200 + 256;
  opt.threads = 1;
  auto one = TrainBpeRanks(corpus, opt);
  opt.threads = 4;
  auto four = TrainBpeRanks(corpus, opt);
  ASSERT_TRUE(one.ok() && four.ok());
  EXPECT_EQ(*one, *four);
  auto pieces1 = CountPieces(corpus, opt);
  opt.threads = 1;
  auto pieces4 = CountPieces(corpus, opt);
  EXPECT_EQ(*pieces1, *pieces4);
}

TEST(BpeTrain, ProducesTheRequestedVocabularyWithDistinctTokens) {
  BpeTrainOptions opt;
  opt.vocab_size = 256 + 500 + 256;
  auto tok = TrainBpe(GenerateCorpus(41, 100000), opt);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->vocab_size(), opt.vocab_size);
  std::set<std::string> seen;
  for (int id = 0; id < tok->num_ranks(); ++id) ASSERT_TRUE(seen.insert(tok->TokenBytes(id)).second);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(tok->TokenBytes(b), std::string(1, char(b)));
  // The first merges are the corpus' most frequent pairs: "he" of "the" must have been learned early.
  EXPECT_GE(tok->Rank("the"), 256);
  EXPECT_GE(tok->Rank(" the"), 256);
}

TEST(BpeTrain, StopsWhenNoPairIsFrequentEnough) {
  BpeTrainOptions opt;
  opt.vocab_size = 256 + 10000 + 256;
  auto tok = TrainBpe("abcabc xyz", opt);
  ASSERT_TRUE(tok.ok());
  EXPECT_LT(tok->vocab_size(), opt.vocab_size);
  EXPECT_GE(tok->Rank("abc"), 256);
  EXPECT_EQ(tok->Rank("xy"), -1);  // seen once: below min_pair_count
}

TEST(BpeTrain, RejectsTooSmallVocabularyAndBadOptions) {
  BpeTrainOptions opt;
  opt.vocab_size = 300;
  auto a = TrainBpe("abc", opt);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("vocab_size: expected >= 512"), std::string::npos) << a.status().message();
  opt.vocab_size = 1000;
  opt.min_pair_count = 0;
  EXPECT_FALSE(TrainBpe("abc", opt).ok());
  opt.min_pair_count = 2;
  opt.pattern = "(";
  EXPECT_FALSE(TrainBpe("abc", opt).ok());
}

TEST(BpeTrain, SmallerSpecialBlockKeepsTheNamesThatFit) {
  BpeTrainOptions opt;
  opt.num_reserved = 18;
  opt.vocab_size = 256 + 50 + 18;
  auto tok = TrainBpe(GenerateCorpus(51, 20000), opt);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->SpecialId("<|im_middle|>"), tok->num_ranks() + 17);
  EXPECT_EQ(tok->SpecialId("[PAD]"), -1);
}

}  // namespace
}  // namespace k2::text
