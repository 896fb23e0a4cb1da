// Data-parallel gradient reduction: the GradReducer packs parameters into buckets as Backward announces
// their gradients final (Model::DistHooks::grad_ready) and all-reduces each bucket on a comm thread while
// backward continues; plus the flat one-shot reference and the step-statistics reductions.
//
// Threads: OnGradReady/Finish are called by the training thread; with overlap the Communicator is used
// only by the reducer's comm thread between the first OnGradReady of a step and Finish (callers must not
// use the communicator in that window). A bucket touches only Param::g of its own parameters, which
// Backward no longer writes. Failure: the first collective error is kept and returned by Finish; later
// buckets of that step are skipped (the communicator is broken anyway). Nothing throws.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/dist/comm.h"
#include "engine/engine.h"

namespace k2::engine::dist {

struct BucketOptions {
  double bucket_mb = 4.0;  // bucket capacity in MiB of fp32 gradients (a larger parameter is its own bucket)
  bool overlap = true;     // reduce buckets on a comm thread during Backward; false = after Backward, inline
};

// Cumulative since construction.
struct ReduceStats {
  int64_t buckets = 0;        // buckets reduced
  int64_t bytes = 0;          // gradient bytes reduced
  double comm_s = 0;          // seconds inside all-reduce calls (comm thread or inline)
  double finish_wait_s = 0;   // seconds Finish blocked waiting for outstanding buckets (overlap)
};

class GradReducer {
 public:
  // params must outlive the reducer and keep its size (Model::params()).
  GradReducer(Communicator* comm, std::vector<Param<float>>* params, BucketOptions opt);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Backward's grad_ready hook: adds parameter i to the open bucket; a full bucket is launched.
  void OnGradReady(int64_t i);
  // After Backward: launches the rest (including any trainable parameter never announced), waits for
  // every bucket and returns the first error. Every trainable Param::g then holds the sum over ranks.
  Status Finish();
  const ReduceStats& stats() const { return stats_; }

 private:
  struct Bucket {
    std::vector<int64_t> params;
    std::vector<float> flat;
  };
  void Launch();
  Status Reduce(Bucket& b);
  void Loop();

  Communicator* comm_;
  std::vector<Param<float>>* params_;
  BucketOptions opt_;
  int64_t cap_elems_;
  std::vector<char> announced_;
  std::deque<Bucket> pool_;  // reused across steps; a deque so that growing it never moves a bucket in flight
  size_t open_ = 0;           // index in pool_ of the bucket being filled
  int64_t open_elems_ = 0;
  ReduceStats stats_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> queue_;
  size_t inflight_ = 0;
  bool stop_ = false;
  Status error_;
  std::thread worker_;
};

// Wires a model into data parallelism for the object's lifetime: Backward's grad_ready feeds a
// GradReducer, the end-of-Forward statistics (max logits, expert loads) and QK-Clip's replay maxima are
// reduced over the ranks. The hooks' collectives cannot return a Status through the model: the first
// error is kept (error()) and returned by FinishBackward / Check. Detaches the hooks on destruction.
class ModelSync {
 public:
  ModelSync(Communicator* comm, Model<float>* model, BucketOptions opt);
  ~ModelSync();
  ModelSync(const ModelSync&) = delete;
  ModelSync& operator=(const ModelSync&) = delete;

  // After Backward: every bucket reduced (gradients summed over ranks), or the first error.
  Status FinishBackward();
  // The first error a hook collective met (after Forward or Step), or Ok.
  Status Check() const { return error_; }
  const ReduceStats& stats() const { return reducer_.stats(); }
  Communicator* comm() const { return comm_; }

 private:
  Communicator* comm_;
  Model<float>* model_;
  GradReducer reducer_;
  Status error_;
};

// Reference path: every trainable gradient in one flat buffer, one all-reduce (sum), unpacked.
Status AllReduceGradsFlat(Communicator* comm, std::vector<Param<float>>* params);

// Variable-length bytes: `s` of rank `root` on every rank (its length first, then the bytes).
Status BroadcastString(Communicator* comm, std::string* s, int root);
// Every rank's `mine`, in rank order, on every rank (one BroadcastString per rank).
Expected<std::vector<std::string>> AllGatherStrings(Communicator* comm, const std::string& mine);
// A hash of every parameter's weights, compared over the ranks: FailedPrecondition naming `what` when
// any rank's weights differ from another's (one all-reduce of 4 doubles).
Status CheckSameWeights(Communicator* comm, const Model<float>& model, const std::string& what);

// Max over ranks of per-layer, per-head maxima ([L][H]) and sum over ranks of per-layer expert loads
// ([L][E], dense layers empty); one all-reduce each.
Status ReduceMaxLogits(Communicator* comm, std::vector<std::vector<double>>* max_logits);
Status ReduceExpertLoad(Communicator* comm, std::vector<std::vector<int64_t>>* load);

}  // namespace k2::engine::dist
