// The checkpoint protocol shared by pretraining, SFT and RL: how a checkpoint directory is published
// and recovered so that a process killed at any instant (kill -9, power loss) never loses or deletes
// the newest complete checkpoint, and a training run (store run id, lease, metrics) resumes with it.
//
// On disk, for a checkpoint DIR: DIR (published), DIR.tmp (being written), DIR.old (the previous one
// while it is swapped out). A directory is complete when its manifest.json (written last, after every
// file was fsynced) lists files of the sizes found; DIR and DIR.old written before manifests existed
// count as complete when they hold trainer_state.json. Save:
//   1. recover (below), retire DIR.old       4. rename DIR -> DIR.old, fsync the parent
//   2. write DIR.tmp, fsync files             5. rename DIR.tmp -> DIR, fsync the parent
//   3. write DIR.tmp/manifest.json, fsync     6. retire DIR.old (manifest removed first, then the rest)
// Recovery rolls an interrupted swap forward: a complete DIR.tmp at least as new as DIR replaces it
// (DIR moved to DIR.old), a lone complete DIR.old moves back to DIR; incomplete directories are removed;
// a complete one is never removed by recovery. Fault-injection points (core/fault.h) sit between the
// steps: ckpt.tmp_files, ckpt.tmp_complete, ckpt.moved_aside, ckpt.published, ckpt.retiring, ckpt.saved.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/json.h"
#include "core/metrics.h"
#include "core/status.h"
#include "core/store.h"
#include "engine/engine.h"

namespace k2::engine {

struct CheckpointInfo {
  std::string path;        // DIR after recovery
  int64_t step = 0;        // trainer_state.json's step
  json meta = json::object();  // the manifest's "meta" (e.g. the metrics mark); {} for older checkpoints
};

// Brings DIR, DIR.tmp and DIR.old to the state after a complete save of the newest complete checkpoint
// among them and describes it; nullopt when there is none. Corruption when DIR exists but is not a
// checkpoint (it is left alone).
Expected<std::optional<CheckpointInfo>> RecoverCheckpoint(const std::string& dir);

// SaveCheckpoint (engine.h) with `meta` stored in the manifest.
Status SaveCheckpointWithMeta(const std::string& dir, const Model<float>& model, Optimizer<float>& opt,
                              const TrainerState& st, const json& meta);

// Removes DIR, DIR.tmp and DIR.old (a fresh run in a directory that held another run's checkpoint).
Status DiscardCheckpoint(const std::string& dir);

// A training run's durable state: the store run (id kept across resumes in OUT/store_run.json, lease
// claimed by this process), its metrics logger and its checkpoint. Open() with resume recovers the
// checkpoint and cuts the metrics back to what was committed with it; Save() commits the metrics, then
// publishes the checkpoint carrying their mark.
struct TrainingRunOptions {
  Db* db = nullptr;             // may be null (CSV only, run id 0)
  std::string kind, name, config;  // the store run row
  std::string out_dir;          // holds store_run.json
  std::string checkpoint_dir;   // "" = no checkpoints
  std::string metrics_csv;      // "" = no CSV
  bool resume = false;          // continue the run of out_dir; an error when it holds none
  // A fresh run in a directory holding another run's checkpoint, store_run.json or metrics is an error
  // unless overwrite (then they are discarded): a re-run without --resume never destroys work silently.
  bool overwrite = false;
};

class TrainingRun {
 public:
  static Expected<std::unique_ptr<TrainingRun>> Open(const TrainingRunOptions& o);
  ~TrainingRun();

  int64_t run_id() const { return run_; }
  MetricsLogger& metrics() { return *log_; }
  // The checkpoint to continue from (resume only); nullopt: start at step 0.
  const std::optional<CheckpointInfo>& checkpoint() const { return ckpt_; }
  // Commits the metrics logged so far; the mark goes into the next checkpoint's manifest.
  Expected<json> CommitMetrics();
  // CommitMetrics, then publish the checkpoint.
  Status Save(const Model<float>& model, Optimizer<float>& opt, const TrainerState& st);
  // Commits the metrics and sets the run's final status ("done", "failed", "stopped").
  Status Finish(const std::string& status);

 private:
  TrainingRun() = default;
  TrainingRunOptions o_;
  int64_t run_ = 0;
  std::optional<CheckpointInfo> ckpt_;
  std::unique_ptr<MetricsLogger> log_;
  bool finished_ = false;
};

}  // namespace k2::engine
