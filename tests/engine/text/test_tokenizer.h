// A small Kimi-layout tokenizer trained once per test binary on the generated multilingual corpus,
// shared by the tokenizer, chat-template and training tests.
#pragma once

#include "core/check.h"
#include "engine/text/bpe_train.h"
#include "tests/engine/text/corpus_gen.h"

namespace k2::text::testing {

inline const Tokenizer& SmallTokenizer() {
  static const Tokenizer* tok = [] {
    BpeTrainOptions opt;
    opt.vocab_size = 256 + 1200 + kKimiNumReservedSpecial;
    opt.threads = 2;
    auto t = TrainBpe(GenerateCorpus(/*seed=*/1, /*bytes=*/300000), opt);
    K2_CHECK(t.ok()) << t.status().ToString();
    return new Tokenizer(std::move(*t));
  }();
  return *tok;
}

}  // namespace k2::text::testing
