// Tokenizer throughput: encode MB/s of the fast BPE (array scan / heap merges) against the reference
// string-vector merge, on the same generated multilingual text, in the same run (STYLE.md habit 13).
// Usage: tokenizer_bench [MEGABYTES=4] [VOCAB=8192]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "engine/text/bpe_train.h"
#include "tests/engine/text/corpus_gen.h"

namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

template <class F>
double BestSeconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace k2::text;
  double mb = argc > 1 ? std::atof(argv[1]) : 4.0;
  int vocab = argc > 2 ? std::atoi(argv[2]) : 8192;
  std::string train = testing::GenerateCorpus(1, 4 << 20);
  // The generated corpus repeats a small lexicon; interleave unseen words (random Latin, Cyrillic and Han
  // letters) so that a realistic share of pieces needs merging rather than one lookup.
  std::string text;
  {
    std::string base = testing::GenerateCorpus(2, static_cast<size_t>(mb * (1 << 20)));
    k2::Rng rng(3);
    static const char* kLetters[] = {"a", "e", "i", "o", "n", "r", "s", "t", "l", "k", "z", "q", "а", "е", "л", "н",
                                     "ж", "水", "火", "山", "人", "é", "ü"};
    size_t pos = 0;
    while (pos < base.size()) {
      size_t take = std::min<size_t>(base.size() - pos, 20 + rng.Below(40));
      while (pos + take < base.size() && (static_cast<unsigned char>(base[pos + take]) & 0xC0) == 0x80) ++take;
      text.append(base, pos, take);
      pos += take;
      text += ' ';
      for (uint64_t k = 0, n = 3 + rng.Below(9); k < n; ++k) text += kLetters[rng.Below(std::size(kLetters))];
    }
  }

  BpeTrainOptions opt;
  opt.vocab_size = vocab;
  opt.threads = 1;
  auto t0 = std::chrono::steady_clock::now();
  auto tok = TrainBpe(train, opt);
  double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!tok.ok()) {
    std::fprintf(stderr, "train failed: %s\n", tok.status().ToString().c_str());
    return 1;
  }
  std::vector<int> fast, ref;
  double fast_s = BestSeconds(3, [&] { fast = tok->Encode(text); });
  double ref_s = BestSeconds(1, [&] { ref = tok->EncodeReference(text); });  // PCRE2 + string merges
  if (fast != ref) {
    std::fprintf(stderr, "MISMATCH: fast and reference encodings differ\n");
    return 1;
  }
  // Pre-tokenization alone (the PCRE2 share of the fast path).
  std::vector<std::string_view> pieces;
  double split_s = BestSeconds(3, [&] {
    pieces.clear();
    tok->pretokenizer().Split(text, &pieces);
  });
  std::vector<std::string_view> ref_pieces;
  double split_ref_s = BestSeconds(1, [&] {
    ref_pieces.clear();
    tok->pretokenizer().SplitReference(text, &ref_pieces);
  });
  if (ref_pieces != pieces) {
    std::fprintf(stderr, "MISMATCH: hand-written and PCRE2 pre-tokenization differ\n");
    return 1;
  }
  // The BPE stage alone, on the same pieces: whole-token pieces are one hash lookup in both encoders,
  // so also on the pieces that need merging (the part the two algorithms differ on).
  std::vector<std::string_view> merged;
  double merged_bytes = 0;
  for (auto p : pieces)
    if (tok->Rank(p) < 0) merged.push_back(p), merged_bytes += p.size();
  std::vector<int> a, b;
  double bpe_fast_s = BestSeconds(3, [&] {
    a.clear();
    for (auto p : merged) tok->EncodePiece(p, &a);
  });
  double bpe_ref_s = BestSeconds(1, [&] {
    b.clear();
    for (auto p : merged) tok->EncodePieceReference(p, &b);
  });
  if (a != b) {
    std::fprintf(stderr, "MISMATCH: fast and reference merges differ\n");
    return 1;
  }
  double bytes = static_cast<double>(text.size());
  std::printf("machine: %s, %u hardware threads; encode runs on 1 thread\n", CpuModel().c_str(),
              std::thread::hardware_concurrency());
  std::printf("tokenizer: Kimi-K2 pattern, %d ranks + %d specials (trained on 4 MiB in %.2fs, 1 thread)\n",
              tok->num_ranks(), tok->num_reserved(), train_s);
  std::printf("text: %.2f MiB generated multilingual + unseen words, %zu pieces, %zu tokens (%.2f bytes/token)\n", bytes / (1 << 20),
              pieces.size(), fast.size(), bytes / fast.size());
  std::printf("pre-tokenize fast (hand-written Kimi splitter): %8.2f MB/s\n", bytes / split_s / 1e6);
  std::printf("pre-tokenize reference (PCRE2 JIT)           : %8.2f MB/s   ratio %.2fx (pieces identical)\n",
              bytes / split_ref_s / 1e6, split_ref_s / split_s);
  std::printf("encode fast       : %8.2f MB/s\n", bytes / fast_s / 1e6);
  std::printf("encode reference  : %8.2f MB/s\n", bytes / ref_s / 1e6);
  std::printf("ratio fast/reference (whole encode): %.2fx (outputs identical)\n", ref_s / fast_s);
  std::printf("BPE merges only, %zu pieces that are not tokens (%.2f MB): fast %.2f MB/s, reference %.2f MB/s, "
              "ratio %.2fx\n",
              merged.size(), merged_bytes / 1e6, merged_bytes / bpe_fast_s / 1e6, merged_bytes / bpe_ref_s / 1e6,
              bpe_ref_s / bpe_fast_s);
  return 0;
}
