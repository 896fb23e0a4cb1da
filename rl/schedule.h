// Schedules of the RL loop over iterations: sampling temperature decay (K2: explore early, exploit
// late), the PTX coefficient, and any other scalar that moves from `start` to `end`.
// Pure value types; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace k2::rl {

// value(0) = start, value(steps) = end, constant `end` afterwards.
//   constant:    start for every iteration (end ignored)
//   linear:      start + (end - start) * p,                        p = min(it, steps) / steps
//   cosine:      end + (start - end) * (1 + cos(pi p)) / 2
//   exponential: start * (end / start)^p   (start, end > 0)
struct ScheduleConfig {
  std::string kind = "constant";
  double start = 1.0;
  double end = 1.0;
  int64_t steps = 1;
  template <class V> void Visit(V& v) {
    v("kind", kind, "shape over iterations", {.choices = {"constant", "linear", "cosine", "exponential"}});
    v("start", start, "value at iteration 0");
    v("end", end, "value at iteration `steps` and after");
    v("steps", steps, "iterations from start to end", {.min = 1});
  }
  // exponential needs start, end > 0. InvalidArgument names `where`.
  Status Validate(const std::string& where) const;
};

double ScheduleValue(const ScheduleConfig& s, int64_t iteration);

}  // namespace k2::rl
