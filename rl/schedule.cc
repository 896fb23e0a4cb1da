// Scalar schedules over RL iterations (rl/schedule.h).
#include "rl/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace k2::rl {

Status ScheduleConfig::Validate(const std::string& where) const {
  if (kind == "exponential" && !(start > 0 && end > 0))
    return InvalidArgument(where + ": exponential schedule needs start > 0 and end > 0 (got start " +
                           std::to_string(start) + ", end " + std::to_string(end) + ")");
  return Status::Ok();
}

double ScheduleValue(const ScheduleConfig& s, int64_t iteration) {
  if (s.kind == "constant") return s.start;
  const double p = std::clamp(static_cast<double>(iteration) / static_cast<double>(std::max<int64_t>(1, s.steps)),
                              0.0, 1.0);
  if (s.kind == "linear") return s.start + (s.end - s.start) * p;
  if (s.kind == "cosine") return s.end + (s.start - s.end) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  if (s.kind == "exponential") return s.start * std::pow(s.end / s.start, p);
  return s.start;  // unreachable after config validation (choices)
}

}  // namespace k2::rl
