// Progress lines for long work: "label 120/1000 (12.0%) 34.5/s ETA 0:25". On a TTY one line is
// redrawn in place (at most 10 times a second); otherwise a plain line is printed every
// `period_s` seconds, plus a final one. Thread-safe: Add() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

namespace k2 {

class Progress {
 public:
  // total = 0 means unknown (no percentage, no ETA). out = nullptr disables printing (quiet).
  Progress(std::string label, int64_t total, FILE* out = stderr, double period_s = 5.0);
  ~Progress();  // prints the final line if Finish() was not called

  void Add(int64_t n = 1);
  void Set(int64_t done);
  void SetNote(std::string note);  // extra text at the end of the line ("loss 2.31")
  void SetTotal(int64_t total);     // when the total is known only after the work started
  void Finish();

  int64_t done() const { return done_.load(); }
  double elapsed_s() const;
  // The text of the current line (for tests and logs).
  std::string Line() const;

  // Formats seconds as H:MM:SS or M:SS.
  static std::string FormatDuration(double s);
  // "12.3/s", or below one item per second "24.1 s each" (slow loops: RL iterations, long episodes).
  static std::string FormatRate(double per_s);

 private:
  void MaybePrint(bool force);

  std::string label_;
  std::atomic<int64_t> total_;
  FILE* out_;
  bool tty_;
  double period_s_;
  std::atomic<int64_t> done_{0};
  std::chrono::steady_clock::time_point start_, last_print_;
  mutable std::mutex mu_;
  std::string note_;
  bool finished_ = false;
};

// Verbosity for the whole process: 0 quiet, 1 normal, 2 verbose. Set once by main.
void SetVerbosity(int v);
int Verbosity();
// Prints to stderr when Verbosity() >= level.
void Log(int level, const std::string& msg);

}  // namespace k2
