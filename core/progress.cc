// Progress line and process-wide verbosity.
#include "core/progress.h"

#include <unistd.h>

#include <cmath>

namespace k2 {

namespace {
std::atomic<int> g_verbosity{1};
}

void SetVerbosity(int v) { g_verbosity = v; }
int Verbosity() { return g_verbosity.load(); }
void Log(int level, const std::string& msg) {
  if (Verbosity() >= level) std::fprintf(stderr, "%s\n", msg.c_str());
}

Progress::Progress(std::string label, int64_t total, FILE* out, double period_s)
    : label_(std::move(label)), total_(total), out_(Verbosity() == 0 ? nullptr : out),
      tty_(out_ && isatty(fileno(out_))), period_s_(period_s),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

Progress::~Progress() { Finish(); }

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::FormatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

std::string Progress::FormatRate(double per_s) {
  char buf[48];
  if (per_s > 0 && per_s < 1 && std::isfinite(per_s)) std::snprintf(buf, sizeof buf, "%.1f s each", 1.0 / per_s);
  else std::snprintf(buf, sizeof buf, "%.1f/s", per_s);
  return buf;
}

void Progress::SetTotal(int64_t total) { total_.store(total); }

std::string Progress::Line() const {
  const int64_t d = done_.load(), total = total_.load();
  double el = elapsed_s();
  double rate = el > 0 ? d / el : 0;
  char buf[256];
  std::string s = label_ + " " + std::to_string(d);
  if (total > 0) {
    std::snprintf(buf, sizeof buf, "/%lld (%.1f%%)", static_cast<long long>(total), 100.0 * d / total);
    s += buf;
  }
  s += " " + FormatRate(rate);
  if (total > 0) {
    double eta = rate > 0 ? (total - d) / rate : NAN;
    s += (d >= total ? " done in " + FormatDuration(el) : " ETA " + FormatDuration(eta));
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (!note_.empty()) s += "  " + note_;
  return s;
}

void Progress::MaybePrint(bool force) {
  if (!out_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  double period = tty_ ? 0.1 : period_s_;
  if (!force && since < period) return;
  last_print_ = now;
  std::string line = Line();
  if (tty_) std::fprintf(out_, "\r\033[K%s%s", line.c_str(), force ? "\n" : "");
  else std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void Progress::Add(int64_t n) {
  done_ += n;
  std::unique_lock<std::mutex> lk(mu_, std::try_to_lock);  // never block workers on printing
  if (!lk.owns_lock()) return;
  lk.unlock();
  MaybePrint(false);
}

void Progress::Set(int64_t d) {
  done_ = d;
  MaybePrint(false);
}

void Progress::SetNote(std::string note) {
  std::lock_guard<std::mutex> lk(mu_);
  note_ = std::move(note);
}

void Progress::Finish() {
  if (finished_) return;
  finished_ = true;
  MaybePrint(true);
}

}  // namespace k2
