// Byte-level corpus loading, batch sampling and the synthetic corpus generator (see data.h).
#include "engine/data.h"

#include <array>

#include "core/json.h"

namespace k2::engine {

Expected<std::string> LoadByteCorpus(const std::string& path, int64_t T) {
  K2_ASSIGN_OR_RETURN(std::string s, ReadFile(path));
  if (static_cast<int64_t>(s.size()) <= T)
    return InvalidArgument(path + ": corpus has " + std::to_string(s.size()) + " bytes, needs more than seq_len=" +
                           std::to_string(T));
  return s;
}

void SampleByteBatch(const std::string& corpus, int64_t B, int64_t T, Rng& rng, Batch* out) {
  K2_CHECK(static_cast<int64_t>(corpus.size()) > T) << "corpus shorter than a window";
  out->B = B;
  out->T = T;
  out->tokens.resize(static_cast<size_t>(B * T));
  out->targets.resize(static_cast<size_t>(B * T));
  out->weights.assign(static_cast<size_t>(B * T), 1.0f);
  const uint64_t starts = corpus.size() - static_cast<uint64_t>(T);
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t s = rng.Below(starts);
    for (int64_t t = 0; t < T; ++t) {
      out->tokens[b * T + t] = static_cast<unsigned char>(corpus[s + t]);
      out->targets[b * T + t] = static_cast<unsigned char>(corpus[s + t + 1]);
    }
  }
}

std::string GenerateCorpus(uint64_t seed, int64_t bytes) {
  static const std::array<const char*, 12> kAdj = {"small", "red",   "quiet", "old",  "bright", "cold",
                                                   "green", "happy", "tall",  "dark", "swift",  "gentle"};
  static const std::array<const char*, 12> kNoun = {"cat",   "river", "robot", "tree",  "city", "bird",
                                                    "teacher", "boat", "garden", "engine", "child", "mountain"};
  static const std::array<const char*, 10> kVerb = {"sees", "likes", "follows", "finds", "builds",
                                                    "paints", "carries", "watches", "helps", "remembers"};
  static const std::array<const char*, 6> kPlace = {"near the sea", "in the morning", "under the bridge",
                                                    "at night", "by the old wall", "after the rain"};
  Rng rng(seed);
  std::string out;
  out.reserve(static_cast<size_t>(bytes) + 128);
  auto pick = [&](const auto& arr) { return std::string(arr[rng.Below(arr.size())]); };
  while (static_cast<int64_t>(out.size()) < bytes) {
    switch (rng.Below(3)) {
      case 0:
        out += "the " + pick(kAdj) + " " + pick(kNoun) + " " + pick(kVerb) + " the " + pick(kAdj) + " " +
               pick(kNoun) + ".";
        break;
      case 1:
        out += "a " + pick(kNoun) + " " + pick(kVerb) + " a " + pick(kNoun) + " " + pick(kPlace) + ".";
        break;
      default: {
        const uint64_t a = rng.Below(50), b = rng.Below(50);
        out += std::to_string(a) + " plus " + std::to_string(b) + " is " + std::to_string(a + b) + ".";
      }
    }
    out += rng.Below(8) == 0 ? "\n" : " ";
  }
  out.resize(static_cast<size_t>(bytes));
  return out;
}

}  // namespace k2::engine
