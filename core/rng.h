// Deterministic RNG: xoshiro256** seeded through splitmix64. Every component owns its own Rng
// (envpool habit); Fork(stream) derives independent reproducible streams. State is 4 words, so it
// can be saved in checkpoints and restored bit-exactly.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <string>

namespace k2 {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { Seed(seed); }
  void Seed(uint64_t seed);

  uint64_t Next();                              // 64 random bits
  double Uniform() { return (Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  uint64_t Below(uint64_t n);                   // [0, n), unbiased; n > 0
  int64_t Range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo + 1))); }  // [lo, hi]
  double Normal();                              // standard normal (Box–Muller, no cached spare)
  bool Bernoulli(double p) { return Uniform() < p; }
  // A new generator whose stream depends on this one's seed and `stream` only.
  Rng Fork(uint64_t stream) const;
  Rng Fork(const std::string& name) const;

  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
  uint64_t seed_ = 0;
};

uint64_t SplitMix64(uint64_t& x);
uint64_t HashString(const std::string& s);  // FNV-1a 64, stable across runs and machines

}  // namespace k2
