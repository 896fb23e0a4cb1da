// Training checkpoints: weights, optimizer moments, trainer state (step, data position, RNG) in one
// directory, published and recovered by the crash-safe protocol of engine/checkpoint.h.
#include "engine/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/fault.h"

namespace k2::engine {
namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "manifest.json";
constexpr const char* kFiles[] = {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"};

Status Fsync(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return IoError(path + ": cannot open to fsync: " + std::strerror(errno));
  const bool ok = ::fsync(fd) == 0;
  const std::string err = ok ? "" : std::strerror(errno);
  ::close(fd);
  if (!ok) return IoError(path + ": fsync failed: " + err);
  return Status::Ok();
}

std::string Parent(const std::string& dir) {
  std::string p = fs::path(dir).parent_path().string();
  return p.empty() ? "." : p;
}

Status Rename(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) return IoError("cannot rename " + from + " to " + to + ": " + ec.message());
  return Fsync(Parent(to), true);
}

Expected<int64_t> ReadStep(const std::string& dir) {
  const std::string sp = dir + "/trainer_state.json";
  K2_ASSIGN_OR_RETURN(json js, ReadJsonFile(sp));
  if (!js.is_object() || !js.contains("step") || !js["step"].is_number_integer())
    return Corruption(sp + ": expected an object with an integer \"step\"");
  return js["step"].get<int64_t>();
}

// What one of DIR, DIR.tmp, DIR.old holds.
struct Slot {
  bool exists = false;
  bool complete = false;
  CheckpointInfo info;
};

Slot Inspect(const std::string& path, bool legacy_ok) {
  Slot s;
  s.info.path = path;
  s.exists = fs::exists(path);
  if (!s.exists) return s;
  const std::string mp = path + "/" + kManifest;
  if (fs::exists(mp)) {
    auto m = ReadJsonFile(mp);
    if (!m.ok() || !m->is_object() || m->value("format", "") != "k2gym-checkpoint" || !m->contains("files") ||
        !(*m)["files"].is_object() || !m->contains("step") || !(*m)["step"].is_number_integer())
      return s;
    for (const auto& [name, size] : (*m)["files"].items()) {
      std::error_code ec;
      const auto got = fs::file_size(path + "/" + name, ec);
      if (ec || !size.is_number_integer() || static_cast<int64_t>(got) != size.get<int64_t>()) return s;
    }
    s.info.step = (*m)["step"].get<int64_t>();
    s.info.meta = m->value("meta", json::object());
    s.complete = true;
    return s;
  }
  // Before manifests: DIR and DIR.old only ever came from a rename of a complete directory, and
  // trainer_state.json was written last. (A new-protocol DIR.old being retired loses trainer_state.json
  // right after its manifest, before any other file.)
  if (!legacy_ok || !fs::exists(path + "/trainer_state.json")) return s;
  auto step = ReadStep(path);
  if (!step.ok()) return s;
  s.info.step = *step;
  s.complete = true;
  return s;
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return IoError(path + ": cannot remove: " + ec.message());
  return Status::Ok();
}

// Removes a checkpoint directory so that no crash during the removal leaves it looking complete:
// the manifest goes first (and is made durable), trainer_state.json second.
Status Retire(const std::string& path) {
  if (!fs::exists(path)) return Status::Ok();
  std::error_code ec;
  fs::remove(path + "/" + kManifest, ec);
  if (ec) return IoError(path + "/" + kManifest + ": cannot remove: " + ec.message());
  fs::remove(path + "/trainer_state.json", ec);
  if (ec) return IoError(path + "/trainer_state.json: cannot remove: " + ec.message());
  K2_RETURN_IF_ERROR(Fsync(path, true));
  CrashPoint("ckpt.retiring");
  K2_RETURN_IF_ERROR(RemoveAll(path));
  return Fsync(Parent(path), true);
}

}  // namespace

Expected<std::optional<CheckpointInfo>> RecoverCheckpoint(const std::string& dir) {
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  Slot d = Inspect(dir, true), t = Inspect(tmp, false), o = Inspect(old, true);
  if (d.exists && !d.complete)
    return Corruption(dir + ": not a complete checkpoint (no valid manifest.json or trainer_state.json); move it away "
                            "or start without --resume");
  if (t.exists && !t.complete) K2_RETURN_IF_ERROR(RemoveAll(tmp));  // a save that never finished writing
  if (o.exists && !o.complete) K2_RETURN_IF_ERROR(RemoveAll(old));  // a retirement that never finished
  if (t.complete && d.complete && t.info.step < d.info.step) {
    // Older than the published one: not produced by the protocol (a save always moves forward); the
    // published one wins and this one is put aside rather than removed.
    K2_RETURN_IF_ERROR(RemoveAll(tmp + ".stale"));
    K2_RETURN_IF_ERROR(Rename(tmp, tmp + ".stale"));
    t = Slot{};
  }
  if (t.complete) {
    // A save interrupted after DIR.tmp was complete: finish its swap.
    if (d.complete) {
      if (o.complete) K2_RETURN_IF_ERROR(Retire(old));  // three complete ones: not produced by the protocol
      K2_RETURN_IF_ERROR(Rename(dir, old));
    }
    K2_RETURN_IF_ERROR(Rename(tmp, dir));
    d = Inspect(dir, true);
  } else if (!d.exists && o.complete) {
    K2_RETURN_IF_ERROR(Rename(old, dir));
    d = Inspect(dir, true);
  }
  if (!d.complete) return std::optional<CheckpointInfo>();
  d.info.path = dir;
  return std::optional<CheckpointInfo>(d.info);
}

Status DiscardCheckpoint(const std::string& dir) {
  for (const std::string& p : {dir + ".tmp", dir, dir + ".old"}) K2_RETURN_IF_ERROR(Retire(p));
  return Status::Ok();
}

Status SaveCheckpointWithMeta(const std::string& dir, const Model<float>& model, Optimizer<float>& opt,
                              const TrainerState& st, const json& meta) {
  // 1. A clean start: the newest complete checkpoint at DIR, nothing else but an older DIR.old.
  K2_RETURN_IF_ERROR(RecoverCheckpoint(dir).status());
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  K2_RETURN_IF_ERROR(Retire(old));
  // 2. Every file into DIR.tmp, each fsynced.
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) return IoError(tmp + ": cannot create checkpoint directory: " + ec.message());
  K2_RETURN_IF_ERROR(model.SaveSafetensors(tmp + "/model.safetensors", "F32"));  // also writes config.json
  StFile f;
  f.metadata["format"] = "k2gym-optimizer";
  f.metadata["version"] = "1";
  std::vector<double> buf;
  for (auto& [name, vec] : opt.StateTensors()) {
    buf.assign(vec->begin(), vec->end());
    f.tensors.emplace(name, StFromFloats({static_cast<int64_t>(vec->size())}, buf.data(),
                                         static_cast<int64_t>(vec->size()), "F32"));
  }
  K2_RETURN_IF_ERROR(WriteSafetensors(tmp + "/optimizer.safetensors", f));
  json js = {{"format", "k2gym-trainer-state"}, {"version", 1},       {"step", st.step},
             {"data_position", st.data_position},  {"rng", st.rng}, {"extra", st.extra}};
  K2_RETURN_IF_ERROR(WriteFileAtomic(tmp + "/trainer_state.json", js.dump(2) + "\n"));
  json files = json::object();
  for (const char* name : kFiles) {
    const std::string p = tmp + "/" + name;
    K2_RETURN_IF_ERROR(Fsync(p, false));
    files[name] = static_cast<int64_t>(fs::file_size(p, ec));
    if (ec) return IoError(p + ": cannot stat: " + ec.message());
  }
  CrashPoint("ckpt.tmp_files");
  // 3. The manifest makes DIR.tmp complete.
  json manifest = {{"format", "k2gym-checkpoint"}, {"version", 1}, {"step", st.step}, {"files", files}, {"meta", meta}};
  K2_RETURN_IF_ERROR(WriteFileAtomic(tmp + "/" + kManifest, manifest.dump(2) + "\n"));
  K2_RETURN_IF_ERROR(Fsync(tmp, true));
  K2_RETURN_IF_ERROR(Fsync(Parent(tmp), true));
  CrashPoint("ckpt.tmp_complete");
  // 4-5. Swap.
  if (fs::exists(dir)) {
    K2_RETURN_IF_ERROR(Rename(dir, old));
    CrashPoint("ckpt.moved_aside");
  }
  K2_RETURN_IF_ERROR(Rename(tmp, dir));
  CrashPoint("ckpt.published");
  // 6. The previous checkpoint is no longer needed.
  K2_RETURN_IF_ERROR(Retire(old));
  CrashPoint("ckpt.saved");
  return Status::Ok();
}

Status SaveCheckpoint(const std::string& dir, const Model<float>& model, Optimizer<float>& opt,
                      const TrainerState& st) {
  return SaveCheckpointWithMeta(dir, model, opt, st, json::object());
}

Status LoadCheckpoint(const std::string& dir, Model<float>* model, Optimizer<float>* opt, TrainerState* st) {
  if (!fs::is_directory(dir)) return NotFound(dir + ": no checkpoint directory");
  if (fs::exists(dir + "/" + kManifest) && !Inspect(dir, false).complete)
    return Corruption(dir + "/" + kManifest + ": the checkpoint's files do not match its manifest (truncated or edited)");
  K2_ASSIGN_OR_RETURN(ModelConfig saved, LoadModelConfig(dir + "/config.json"));
  if (ModelConfigToJson(saved) != ModelConfigToJson(model->config()))
    return InvalidArgument(dir + "/config.json: the checkpoint's model config differs from the requested model");
  K2_RETURN_IF_ERROR(model->LoadSafetensors(dir + "/model.safetensors"));
  const std::string op = dir + "/optimizer.safetensors";
  K2_ASSIGN_OR_RETURN(StFile f, ReadSafetensors(op));
  for (auto& [name, vec] : opt->StateTensors()) {
    auto it = f.tensors.find(name);
    if (it == f.tensors.end()) return Corruption(op + ": missing optimizer state \"" + name + "\"");
    if (it->second.numel() != static_cast<int64_t>(vec->size()))
      return Corruption(op + ": optimizer state \"" + name + "\" has the wrong size");
    K2_ASSIGN_OR_RETURN(std::vector<double> v, StToDouble(it->second, name));
    for (size_t i = 0; i < v.size(); ++i) (*vec)[i] = static_cast<float>(v[i]);
  }
  const std::string sp = dir + "/trainer_state.json";
  K2_ASSIGN_OR_RETURN(json js, ReadJsonFile(sp));
  if (!js.is_object() || js.value("format", "") != "k2gym-trainer-state" || !js.contains("step") ||
      !js["step"].is_number_integer() || !js.contains("data_position") || !js["data_position"].is_number_integer() ||
      !js.contains("rng") || !js["rng"].is_array() || js["rng"].size() != 4)
    return Corruption(sp + ": expected {format: k2gym-trainer-state, step, data_position, rng[4]}");
  st->step = js["step"].get<int64_t>();
  st->data_position = js["data_position"].get<int64_t>();
  for (int i = 0; i < 4; ++i) {
    if (!js["rng"][i].is_number_unsigned()) return Corruption(sp + ": rng[" + std::to_string(i) + "]: expected uint64");
    st->rng[i] = js["rng"][i].get<uint64_t>();
  }
  st->extra = js.value("extra", json::object());
  return Status::Ok();
}

// ---- TrainingRun ----

namespace {
constexpr const char* kRunFile = "store_run.json";
}  // namespace

Expected<std::unique_ptr<TrainingRun>> TrainingRun::Open(const TrainingRunOptions& o) {
  std::unique_ptr<TrainingRun> tr(new TrainingRun());
  tr->o_ = o;
  std::error_code ec;
  if (!o.out_dir.empty()) {
    fs::create_directories(o.out_dir, ec);
    if (ec) return IoError(o.out_dir + ": cannot create: " + ec.message());
  }
  if (o.db) K2_RETURN_IF_ERROR(MarkDeadRuns(o.db).status());
  const std::string run_file = o.out_dir.empty() ? "" : o.out_dir + "/" + kRunFile;
  {
    const std::string& c = o.checkpoint_dir;
    const bool has_run = !run_file.empty() && fs::exists(run_file, ec);
    const bool has_ckpt = !c.empty() && (fs::exists(c, ec) || fs::exists(c + ".tmp", ec) || fs::exists(c + ".old", ec));
    const bool has_metrics = !o.metrics_csv.empty() && fs::exists(o.metrics_csv, ec) && fs::file_size(o.metrics_csv, ec) > 0;
    const std::string where = !o.out_dir.empty() ? o.out_dir : !c.empty() ? c : o.metrics_csv;
    if (!o.resume && !o.overwrite && (has_run || has_ckpt || has_metrics))
      return InvalidArgument(where + ": holds a previous run (" +
                             std::string(has_ckpt ? "a checkpoint" : has_run ? kRunFile : "metrics") +
                             "); continue it with --resume or replace it with --overwrite");
    if (o.resume && !where.empty() && !has_run && !has_ckpt)
      return InvalidArgument(where + ": --resume: there is no run to continue here (no checkpoint, no " +
                             std::string(kRunFile) + "); start it without --resume");
  }
  bool have_run = false;
  if (o.resume && o.db && !run_file.empty() && fs::exists(run_file)) {
    K2_ASSIGN_OR_RETURN(json rf, ReadJsonFile(run_file));
    if (!rf.is_object() || !rf.contains("run") || !rf["run"].is_number_integer())
      return Corruption(run_file + ": expected {\"run\": <store run id>}");
    tr->run_ = rf["run"].get<int64_t>();
    auto info = GetRun(o.db, tr->run_);
    if (!info.ok())
      return info.status().Context(run_file + " names run " + std::to_string(tr->run_) +
                                   ": resume with the --db the run started with");
    if (info->kind != o.kind)
      return FailedPrecondition(run_file + ": run " + std::to_string(tr->run_) + " is a " + info->kind + " run, not " +
                                o.kind);
    K2_RETURN_IF_ERROR(ClaimRun(o.db, tr->run_));
    have_run = true;
  }
  if (o.resume) {
    if (!o.checkpoint_dir.empty()) {
      K2_ASSIGN_OR_RETURN(tr->ckpt_, RecoverCheckpoint(o.checkpoint_dir));
    }
    // Whatever was logged after the checkpoint (or, without one, at all) is logged again by the re-run.
    if (have_run || !o.db) {
      if (tr->ckpt_ && tr->ckpt_->meta.contains("metrics")) {
        K2_ASSIGN_OR_RETURN(MetricsMark mark,
                            MetricsMark::FromJson(tr->ckpt_->meta["metrics"], tr->ckpt_->path + "/manifest.json: meta.metrics"));
        K2_RETURN_IF_ERROR(TruncateMetrics(o.db, tr->run_, o.metrics_csv, mark));
      } else if (tr->ckpt_) {
        K2_RETURN_IF_ERROR(TruncateMetricsFromStep(o.db, tr->run_, o.metrics_csv, tr->ckpt_->step));
      } else {
        K2_RETURN_IF_ERROR(TruncateMetrics(o.db, tr->run_, o.metrics_csv, MetricsMark{}));
      }
    } else if (!o.metrics_csv.empty()) {
      // A run from before store_run.json: a new store run; the CSV keeps the checkpoint's steps.
      K2_RETURN_IF_ERROR(TruncateMetricsFromStep(nullptr, 0, o.metrics_csv, tr->ckpt_ ? tr->ckpt_->step : 0));
    }
  } else {
    if (!o.checkpoint_dir.empty()) K2_RETURN_IF_ERROR(DiscardCheckpoint(o.checkpoint_dir));
    if (!o.metrics_csv.empty()) {
      fs::remove(o.metrics_csv, ec);
      if (ec) return IoError(o.metrics_csv + ": cannot remove the previous run's metrics: " + ec.message());
    }
  }
  if (!have_run && o.db) {
    K2_ASSIGN_OR_RETURN(tr->run_, CreateRun(o.db, o.kind, o.name, o.config));
    if (!run_file.empty()) K2_RETURN_IF_ERROR(WriteFileAtomic(run_file, json{{"run", tr->run_}, {"kind", o.kind}}.dump() + "\n"));
  }
  tr->log_ = std::make_unique<MetricsLogger>(o.db, tr->run_, o.metrics_csv);
  return tr;
}

TrainingRun::~TrainingRun() {
  if (finished_ || !o_.db) return;
  // Left without Finish: an error return. The rows logged so far stay (a resume cuts them back).
  Status s = Finish("failed");
  if (!s.ok()) std::fprintf(stderr, "run %lld: %s\n", static_cast<long long>(run_), s.ToString().c_str());
}

Expected<json> TrainingRun::CommitMetrics() {
  K2_ASSIGN_OR_RETURN(MetricsMark m, log_->Commit());
  return json{{"metrics", m.ToJson()}, {"run", run_}};
}

Status TrainingRun::Save(const Model<float>& model, Optimizer<float>& opt, const TrainerState& st) {
  if (o_.checkpoint_dir.empty()) return Status::Ok();
  K2_ASSIGN_OR_RETURN(json meta, CommitMetrics());
  return SaveCheckpointWithMeta(o_.checkpoint_dir, model, opt, st, meta);
}

Status TrainingRun::Finish(const std::string& status) {
  finished_ = true;
  // Without a logger Open failed before the run was ready (nothing logged; maybe no run row either).
  Status s = log_ ? log_->Commit().status() : Status::Ok();
  if (o_.db && run_ > 0) {
    Status f = FinishRun(o_.db, run_, status);
    if (s.ok()) s = f;
  }
  return s;
}

}  // namespace k2::engine
