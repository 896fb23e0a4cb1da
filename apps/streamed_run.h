// Streamed runs of `simulate` and `eval`: the run row is created (or, with --resume, claimed) before the
// work starts, every finished item is stored at once by the worker that finished it, and the run ends
// `done`, `failed` or `interrupted` (SIGINT/SIGTERM, core/interrupt.h) with the command that resumes it.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "apps/cli.h"
#include "core/store.h"

namespace k2::app {

class StreamedRun {
 public:
  // A new run of `kind` (resume_ref empty), or the run `resume_ref` (id or name) continued: it must be of
  // `kind`, not finished `done`, not held by a live process, and made with an equal `fingerprint` (the
  // settings that decide which items run and how; the error names the first that differs). The config
  // stored is `config` with the fingerprint under "resume_fingerprint". Installs the interrupt handlers.
  static Expected<std::unique_ptr<StreamedRun>> Start(const Context& ctx, const std::string& kind, const std::string& name,
                                                      json config, const json& fingerprint, const std::string& resume_ref);

  int64_t id() const { return id_; }
  bool resumed() const { return resumed_; }
  Db* db() { return db_.get(); }  // only from the thread that ends the run, or inside Store

  // Runs `fn` on the run's store under its lock (worker threads call it as items finish). The first
  // failure is kept and stops the work: stop() turns true. True when `fn` ran and succeeded (after a
  // failure nothing more is stored, so an item's other outputs can follow its row and never lead it).
  bool Store(const std::function<Status(Db*)>& fn);
  // Records `s` (e.g. an output file that could not be written) as the run's failure unless one is kept.
  void Fail(const Status& s);
  // For the runners' stop hooks: an interrupt arrived or storing failed.
  bool stop() const;
  Status store_error() const;
  bool interrupted() const;

  // Ends the run. Interrupted: marks it `interrupted`, prints "<done> of <total> ... resume with: <cmd>"
  // to stderr and returns the exit code 128 + signal. Else marks it `done` (or `failed` when !ok) and
  // returns kExitOk; a storing failure returns its Fail() code.
  int End(bool ok, int64_t done_items, int64_t total_items, const char* item_name);

 private:
  StreamedRun() = default;
  const Context* ctx_ = nullptr;
  std::unique_ptr<Db> db_;
  int64_t id_ = 0;
  bool resumed_ = false;
  mutable std::mutex mu_;
  Status store_error_;
  std::atomic<bool> failed_{false};
};

// The command line that resumes `run`: this command's arguments with --resume RUN (an earlier --resume
// replaced), shell-quoted.
std::string ResumeCommand(const Context& ctx, int64_t run);

// Training commands (sft, rl), whose --resume is a flag continuing OUT: the interrupted ending. Prints
// "<done> of <total> <unit> done in run <run>, checkpoint saved; resume with: <this command --resume>"
// (--overwrite dropped) and returns 128 + the signal.
int TrainingInterrupted(const Context& ctx, int64_t run, int64_t done, int64_t total, const char* unit);

}  // namespace k2::app

namespace k2::app {

// A JSON-lines output written as items finish: one line per Write, flushed. Opened for appending (a
// resumed run; a last line cut short by a kill is dropped first) or truncated.
class JsonlStream {
 public:
  static Expected<std::unique_ptr<JsonlStream>> Open(const std::string& path, bool append);
  ~JsonlStream();
  Status Write(const std::string& line);  // thread-safe; `line` without its newline

 private:
  JsonlStream() = default;
  std::string path_;
  std::FILE* f_ = nullptr;
  std::mutex mu_;
};

}  // namespace k2::app
