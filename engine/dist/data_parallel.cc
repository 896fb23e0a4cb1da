// Gradient buckets reduced on a comm thread while Backward continues, the flat reference reduction and
// the QK-Clip / router-load statistics reductions (see data_parallel.h).
#include "engine/dist/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace k2::engine::dist {

namespace {
double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GradReducer::GradReducer(Communicator* comm, std::vector<Param<float>>* params, BucketOptions opt)
    : comm_(comm), params_(params), opt_(opt) {
  cap_elems_ = std::max<int64_t>(1, static_cast<int64_t>(opt_.bucket_mb * 1024.0 * 1024.0 / sizeof(float)));
  announced_.assign(params_->size(), 0);
  pool_.resize(1);
  if (opt_.overlap) worker_ = std::thread([this] { Loop(); });
}

GradReducer::~GradReducer() {
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
}

void GradReducer::OnGradReady(int64_t i) {
  if (i < 0 || i >= static_cast<int64_t>(params_->size()) || announced_[i] || !(*params_)[i].trainable) return;
  announced_[i] = 1;
  pool_[open_].params.push_back(i);
  open_elems_ += (*params_)[i].numel();
  if (open_elems_ >= cap_elems_) Launch();
}

void GradReducer::Launch() {
  if (pool_[open_].params.empty()) return;
  const size_t b = open_;
  ++open_;
  if (open_ == pool_.size()) pool_.emplace_back();
  pool_[open_].params.clear();
  open_elems_ = 0;
  if (!opt_.overlap) return;  // reduced inline by Finish, in launch order
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(b);
    ++inflight_;
  }
  cv_.notify_all();
}

Status GradReducer::Reduce(Bucket& b) {
  int64_t n = 0;
  for (int64_t i : b.params) n += (*params_)[i].numel();
  b.flat.resize(static_cast<size_t>(n));  // capacity is kept across steps
  float* f = b.flat.data();
  for (int64_t i : b.params) {
    const auto& g = (*params_)[i].g;
    std::memcpy(f, g.data(), g.size() * sizeof(float));
    f += g.size();
  }
  const auto t0 = std::chrono::steady_clock::now();
  Status st = comm_->AllReduce(b.flat.data(), n, ReduceOp::kSum);
  const double dt = Since(t0);
  if (!st.ok()) return st;
  f = b.flat.data();
  for (int64_t i : b.params) {
    auto& g = (*params_)[i].g;
    std::memcpy(g.data(), f, g.size() * sizeof(float));
    f += g.size();
  }
  std::lock_guard<std::mutex> lk(mu_);  // stats are read by the training thread after Finish
  stats_.comm_s += dt;
  stats_.bytes += n * static_cast<int64_t>(sizeof(float));
  stats_.buckets += 1;
  return Status::Ok();
}

void GradReducer::Loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ with nothing left
    const size_t b = queue_.front();
    queue_.pop_front();
    const bool skip = !error_.ok();
    lk.unlock();
    Status st = skip ? Status::Ok() : Reduce(pool_[b]);
    lk.lock();
    if (!st.ok() && error_.ok()) error_ = st;
    --inflight_;
    cv_.notify_all();
  }
}

Status GradReducer::Finish() {
  // Parameters Backward did not announce (none with Model's hooks) are still reduced, in index order.
  for (size_t i = 0; i < params_->size(); ++i)
    if (!announced_[i] && (*params_)[i].trainable) OnGradReady(static_cast<int64_t>(i));
  Launch();
  const size_t launched = open_;
  Status result;
  if (opt_.overlap) {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return inflight_ == 0; });
    stats_.finish_wait_s += Since(t0);
    result = error_;
    error_ = Status::Ok();
  } else {
    for (size_t b = 0; b < launched && result.ok(); ++b) result = Reduce(pool_[b]);
  }
  // The next step starts with empty buckets (their buffers are kept).
  std::fill(announced_.begin(), announced_.end(), 0);
  open_ = 0;
  pool_[0].params.clear();
  open_elems_ = 0;
  return result;
}

ModelSync::ModelSync(Communicator* comm, Model<float>* model, BucketOptions opt)
    : comm_(comm), model_(model), reducer_(comm, &model->params(), opt) {
  Model<float>::DistHooks hooks;
  hooks.grad_ready = [this](int64_t i) { reducer_.OnGradReady(i); };
  hooks.reduce_stats = [this](std::vector<std::vector<double>>& ml, std::vector<std::vector<int64_t>>& ld) {
    if (!error_.ok()) return;  // broken: later collectives would fail anyway
    error_ = ReduceMaxLogits(comm_, &ml);
    if (error_.ok()) error_ = ReduceExpertLoad(comm_, &ld);
  };
  hooks.reduce_layer_max = [this](std::vector<double>& hm) {
    if (error_.ok()) error_ = comm_->AllReduce(hm.data(), static_cast<int64_t>(hm.size()), ReduceOp::kMax);
  };
  model_->SetDistHooks(std::move(hooks));
}

ModelSync::~ModelSync() { model_->SetDistHooks({}); }

Status ModelSync::FinishBackward() {
  Status st = reducer_.Finish();
  if (!error_.ok()) return error_;
  return st;
}

Status AllReduceGradsFlat(Communicator* comm, std::vector<Param<float>>* params) {
  int64_t n = 0;
  for (const auto& p : *params)
    if (p.trainable) n += p.numel();
  std::vector<float> flat(static_cast<size_t>(n));
  float* f = flat.data();
  for (const auto& p : *params)
    if (p.trainable) f = std::copy(p.g.begin(), p.g.end(), f);
  K2_RETURN_IF_ERROR(comm->AllReduce(flat.data(), n, ReduceOp::kSum));
  f = flat.data();
  for (auto& p : *params)
    if (p.trainable) {
      std::copy(f, f + p.g.size(), p.g.begin());
      f += p.g.size();
    }
  return Status::Ok();
}

Status BroadcastString(Communicator* comm, std::string* s, int root) {
  int64_t n = static_cast<int64_t>(s->size());
  K2_RETURN_IF_ERROR(comm->Broadcast(&n, sizeof n, root));
  s->resize(static_cast<size_t>(n));
  return comm->Broadcast(s->data(), n, root);
}

Expected<std::vector<std::string>> AllGatherStrings(Communicator* comm, const std::string& mine) {
  std::vector<std::string> out(static_cast<size_t>(comm->world_size()));
  for (int r = 0; r < comm->world_size(); ++r) {
    if (r == comm->rank()) out[r] = mine;
    K2_RETURN_IF_ERROR(BroadcastString(comm, &out[r], r));
  }
  return out;
}

Status CheckSameWeights(Communicator* comm, const Model<float>& model, const std::string& what) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& p : model.params()) {
    const auto* b = reinterpret_cast<const unsigned char*>(p.w.data());
    for (size_t i = 0; i < p.w.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  // Two 32-bit halves (exact in doubles); max of x and of -x agree with x on every rank iff all equal.
  const double lo = static_cast<double>(h & 0xffffffffu), hi = static_cast<double>(h >> 32);
  double v[4] = {lo, hi, -lo, -hi};
  K2_RETURN_IF_ERROR(comm->AllReduce(v, 4, ReduceOp::kMax));
  if (v[0] != lo || v[1] != hi || -v[2] != lo || -v[3] != hi)
    return FailedPrecondition(what + ": the ranks' weights differ (rank " + std::to_string(comm->rank()) +
                              "); every rank must run the same build, threads and settings");
  return Status::Ok();
}

Status ReduceMaxLogits(Communicator* comm, std::vector<std::vector<double>>* ml) {
  std::vector<double> flat;
  for (const auto& l : *ml) flat.insert(flat.end(), l.begin(), l.end());
  K2_RETURN_IF_ERROR(comm->AllReduce(flat.data(), static_cast<int64_t>(flat.size()), ReduceOp::kMax));
  size_t k = 0;
  for (auto& l : *ml)
    for (double& v : l) v = flat[k++];
  return Status::Ok();
}

Status ReduceExpertLoad(Communicator* comm, std::vector<std::vector<int64_t>>* load) {
  // Counts travel as doubles: exact below 2^53 tokens.
  std::vector<double> flat;
  for (const auto& l : *load)
    for (int64_t v : l) flat.push_back(static_cast<double>(v));
  K2_RETURN_IF_ERROR(comm->AllReduce(flat.data(), static_cast<int64_t>(flat.size()), ReduceOp::kSum));
  size_t k = 0;
  for (auto& l : *load)
    for (int64_t& v : l) v = static_cast<int64_t>(flat[k++]);
  return Status::Ok();
}

}  // namespace k2::engine::dist
