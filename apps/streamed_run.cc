// StreamedRun (apps/streamed_run.h): run creation/claiming with a fingerprint check, per-item storing
// under one lock, and the interrupted/done/failed ending with the resume command.
#include "apps/streamed_run.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/interrupt.h"

namespace k2::app {
namespace {

std::string ShellQuote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,+@%") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The first key where two fingerprints differ, as "key: stored X, given Y".
std::string FirstDifference(const json& stored, const json& given) {
  for (auto& [k, v] : given.items()) {
    const json s = stored.contains(k) ? stored[k] : json();
    if (s != v) return k + ": the run has " + s.dump() + ", this command gives " + v.dump();
  }
  for (auto& [k, v] : stored.items())
    if (!given.contains(k)) return k + ": the run has " + v.dump() + ", this command gives none";
  return "";
}

}  // namespace

std::string ResumeCommand(const Context& ctx, int64_t run) {
  std::string out;
  for (size_t i = 0; i < ctx.argv.size(); ++i) {
    const std::string& a = ctx.argv[i];
    if (a == "--resume") {
      ++i;  // and its value
      continue;
    }
    if (a.rfind("--resume=", 0) == 0) continue;
    out += (out.empty() ? "" : " ") + ShellQuote(i == 0 ? std::string("k2gym") : a);
  }
  return out + " --resume " + std::to_string(run);
}

int TrainingInterrupted(const Context& ctx, int64_t run, int64_t done, int64_t total, const char* unit) {
  std::string cmd;
  bool has_resume = false;
  for (size_t i = 0; i < ctx.argv.size(); ++i) {
    const std::string& a = ctx.argv[i];
    if (a == "--overwrite") continue;  // the resumed run continues OUT; it must not replace it
    has_resume = has_resume || a == "--resume";
    cmd += (cmd.empty() ? "" : " ") + ShellQuote(i == 0 ? std::string("k2gym") : a);
  }
  if (!has_resume) cmd += " --resume";
  std::fprintf(stderr, "k2gym: interrupted: %lld of %lld %s done in run %lld, checkpoint saved; resume with: %s\n",
               static_cast<long long>(done), static_cast<long long>(total), unit, static_cast<long long>(run),
               cmd.c_str());
  return 128 + (InterruptSignal() > 0 ? InterruptSignal() : 2);
}

Expected<std::unique_ptr<StreamedRun>> StreamedRun::Start(const Context& ctx, const std::string& kind,
                                                          const std::string& name, json config, const json& fingerprint,
                                                          const std::string& resume_ref) {
  std::unique_ptr<StreamedRun> r(new StreamedRun());
  r->ctx_ = &ctx;
  K2_ASSIGN_OR_RETURN(r->db_, ctx.OpenDb());
  if (resume_ref.empty()) {
    config["resume_fingerprint"] = fingerprint;
    K2_ASSIGN_OR_RETURN(r->id_, CreateRun(r->db_.get(), kind, name, config.dump()));
  } else {
    (void)MarkDeadRuns(r->db_.get());
    K2_ASSIGN_OR_RETURN(RunInfo info, FindRun(r->db_.get(), resume_ref));
    const std::string what = "--resume " + resume_ref;
    if (info.kind != kind)
      return InvalidArgument(what + ": run " + std::to_string(info.id) + " is a " + info.kind + " run, not " + kind);
    if (info.status == "done")
      return InvalidArgument(what + ": run " + std::to_string(info.id) + " is complete (status done); nothing to resume");
    auto stored = ParseJson(info.config, "config of run " + std::to_string(info.id));
    const json old = stored.ok() && stored->is_object() ? stored->value("resume_fingerprint", json()) : json();
    if (old.is_null())
      return InvalidArgument(what + ": run " + std::to_string(info.id) + " was not made by a resumable " + kind);
    if (std::string d = FirstDifference(old, fingerprint); !d.empty())
      return InvalidArgument(what + ": run " + std::to_string(info.id) + " was made with other settings (" + d + ")");
    K2_RETURN_IF_ERROR(ClaimRun(r->db_.get(), info.id));
    r->id_ = info.id;
    r->resumed_ = true;
  }
  InstallInterruptHandlers();
  return r;
}

bool StreamedRun::Store(const std::function<Status(Db*)>& fn) {
  std::lock_guard<std::mutex> lk(mu_);
  if (failed_.load()) return false;
  Status s = fn(db_.get());
  if (!s.ok()) {
    store_error_ = s.Context("storing the results of run " + std::to_string(id_));
    failed_.store(true);
    return false;
  }
  return true;
}

void StreamedRun::Fail(const Status& s) {
  std::lock_guard<std::mutex> lk(mu_);
  if (s.ok()) return;
  if (failed_.load()) {
    // The first failure is the one reported; a later one (often its consequence) is still shown.
    std::fprintf(stderr, "k2gym: also: %s\n", s.ToString().c_str());
    return;
  }
  store_error_ = s;
  failed_.store(true);
}

bool StreamedRun::stop() const { return failed_.load(std::memory_order_relaxed) || InterruptRequested(); }

Status StreamedRun::store_error() const {
  std::lock_guard<std::mutex> lk(mu_);
  return store_error_;
}

bool StreamedRun::interrupted() const { return InterruptRequested(); }

int StreamedRun::End(bool ok, int64_t done_items, int64_t total_items, const char* item_name) {
  const Status err = store_error();
  if (!err.ok()) {
    (void)FinishRun(db_.get(), id_, "failed");
    (void)done_items;
    std::fprintf(stderr, "k2gym: the %s finished before the failure are stored in run %lld (of %lld planned); resume with: %s\n",
                 item_name, static_cast<long long>(id_), static_cast<long long>(total_items),
                 ResumeCommand(*ctx_, id_).c_str());
    return app::Fail(err);
  }
  if (InterruptRequested() && done_items < total_items) {
    (void)FinishRun(db_.get(), id_, "interrupted");
    std::fprintf(stderr, "k2gym: interrupted: %lld of %lld %s stored in run %lld; resume with: %s\n",
                 static_cast<long long>(done_items), static_cast<long long>(total_items), item_name,
                 static_cast<long long>(id_), ResumeCommand(*ctx_, id_).c_str());
    return 128 + (InterruptSignal() > 0 ? InterruptSignal() : 2);
  }
  if (Status s = FinishRun(db_.get(), id_, ok ? "done" : "failed"); !s.ok()) return app::Fail(s);
  return kExitOk;
}

}  // namespace k2::app

namespace k2::app {

Expected<std::unique_ptr<JsonlStream>> JsonlStream::Open(const std::string& path, bool append) {
  std::unique_ptr<JsonlStream> s(new JsonlStream());
  s->path_ = path;
  if (append) {
    // Drop a last line cut short (the process was killed while writing it).
    std::FILE* r = std::fopen(path.c_str(), "rb");
    if (r) {
      std::fseek(r, 0, SEEK_END);
      long size = std::ftell(r);
      long keep = size;
      while (keep > 0) {
        std::fseek(r, keep - 1, SEEK_SET);
        if (std::fgetc(r) == '\n') break;
        --keep;
      }
      std::fclose(r);
      if (keep != size && ::truncate(path.c_str(), keep) != 0)
        return IoError(path + ": cannot drop its incomplete last line: " + std::strerror(errno));
    }
  }
  s->f_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (!s->f_) return IoError(path + ": cannot open for writing: " + std::strerror(errno));
  return s;
}

JsonlStream::~JsonlStream() {
  if (f_) std::fclose(f_);
}

Status JsonlStream::Write(const std::string& line) {
  std::lock_guard<std::mutex> lk(mu_);
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fputc('\n', f_) == EOF ||
      std::fflush(f_) != 0)
    return IoError(path_ + ": write failed: " + std::strerror(errno));
  return Status();
}

}  // namespace k2::app
