// Packed one-pass policy update (rl/update.h): trainer log-probs, K2/GRPO weights, PTX mixing, one
// MuonClip step.
#include "rl/update.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/dist/data_parallel.h"

namespace k2::rl {
namespace {

// Where a rollout's positions went (position j predicts rollout token j+1): the first prefix_len sit at
// prefix_offset + j (its group's shared prompt, laid once per row), the rest at offset + (j - prefix_len).
struct Placement {
  int64_t row = -1, prefix_offset = 0, prefix_len = 0, offset = 0, len = 0;
  int64_t at(int64_t j) const { return j < prefix_len ? prefix_offset + j : offset + (j - prefix_len); }
};

Status CheckRollouts(std::span<const Rollout> rs) {
  for (size_t i = 0; i < rs.size(); ++i) {
    const Rollout& r = rs[i];
    const std::string at = "rollout " + std::to_string(i) + ": ";
    if (r.mask.size() != r.tokens.size() || r.old_logp.size() != r.tokens.size())
      return InvalidArgument(at + "tokens, mask and old_logp must have equal lengths (got " +
                             std::to_string(r.tokens.size()) + ", " + std::to_string(r.mask.size()) + ", " +
                             std::to_string(r.old_logp.size()) + ")");
    if (!std::isfinite(r.reward)) return InvalidArgument(at + "reward is not finite");
  }
  return Status::Ok();
}

// Positions a group's members can share: the longest L such that every member's tokens[0..L] agree,
// none of tokens[1..L] is a policy token (so no prefix position carries a member's own weight), and
// each member keeps at least one position of its own. 0 for a group of one.
int64_t SharedPrefix(std::span<const Rollout> rs, const std::vector<size_t>& members, int64_t T) {
  if (members.size() < 2) return 0;
  const Rollout& a = rs[members[0]];
  int64_t L = std::min<int64_t>(static_cast<int64_t>(a.tokens.size()) - 2, T - 1);
  for (size_t i : members) L = std::min<int64_t>(L, static_cast<int64_t>(rs[i].tokens.size()) - 2);
  if (L <= 0) return 0;
  for (int64_t j = 0; j <= L; ++j) {
    bool same = true;
    for (size_t i : members) same = same && rs[i].tokens[j] == a.tokens[j] && (j == 0 || rs[i].mask[j] == 0);
    if (!same) return std::max<int64_t>(0, j - 1);
  }
  return L;
}

// Lays rollouts greedily into rows of T (like sft::PackExamples) and remembers where each went. With
// `share`, a group's common prompt is laid once per row as a parent segment and each member's own
// positions follow as a child segment (engine::Batch::segment_parents): the same log-probs and gradient
// as one copy per member, without computing the copies. `laid` (may be null): positions written.
std::vector<sft::Row> Pack(std::span<const Rollout> rs, int64_t T, bool share, std::vector<Placement>* where,
                           int64_t* truncated, int64_t* laid = nullptr) {
  std::vector<sft::Row> rows;
  int64_t fill = T;
  int32_t seg = 0;
  where->assign(rs.size(), Placement{});
  *truncated = 0;
  int64_t written = 0;
  auto new_row = [&] {
    sft::Row row;
    row.tokens.assign(T, 0);
    row.targets.assign(T, 0);
    row.positions.assign(T, 0);
    row.segment_ids.assign(T, -1);
    row.weights.assign(T, 0.0f);
    if (share) row.segment_parents.assign(T, -1);
    rows.push_back(std::move(row));
    fill = 0;
    seg = 0;
  };
  // Rollout positions [j0, j1) at the current fill as one segment.
  auto lay = [&](const Rollout& r, int64_t j0, int64_t j1, int32_t parent) {
    sft::Row& row = rows.back();
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t at = fill + (j - j0);
      row.tokens[at] = r.tokens[j];
      row.targets[at] = r.tokens[j + 1];
      row.positions[at] = static_cast<int32_t>(j);
      row.segment_ids[at] = seg;
      if (share) row.segment_parents[at] = parent;
    }
    fill += j1 - j0;
    written += j1 - j0;
    return seg++;
  };
  // Groups in order of first appearance; members in rollout order.
  std::vector<std::vector<size_t>> groups;
  std::map<int64_t, size_t> gi;
  for (size_t i = 0; i < rs.size(); ++i) {
    auto [it, added] = gi.try_emplace(rs[i].group, groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  for (const auto& members : groups) {
    const int64_t L = share ? SharedPrefix(rs, members, T) : 0;
    int64_t prefix_row = -1, prefix_offset = 0;
    int32_t prefix_seg = -1;
    for (size_t i : members) {
      const Rollout& r = rs[i];
      if (r.tokens.size() < 2) continue;
      int64_t n = static_cast<int64_t>(r.tokens.size()) - 1;
      if (n > T) {
        n = T;
        ++*truncated;
      }
      if (L == 0) {
        if (fill + n > T) new_row();
        (*where)[i] = Placement{static_cast<int64_t>(rows.size()) - 1, 0, 0, fill, n};
        lay(r, 0, n, -1);
        continue;
      }
      // The prefix is in this row already (prefix_row) or is laid with the member's own positions.
      const bool here = prefix_row == static_cast<int64_t>(rows.size()) - 1;
      if (fill + (here ? 0 : L) + (n - L) > T) new_row();
      if (prefix_row != static_cast<int64_t>(rows.size()) - 1) {
        prefix_row = static_cast<int64_t>(rows.size()) - 1;
        prefix_offset = fill;
        prefix_seg = lay(r, 0, L, -1);
      }
      (*where)[i] = Placement{prefix_row, prefix_offset, L, fill, n};
      lay(r, L, n, prefix_seg);
    }
  }
  if (laid) *laid = written;
  return rows;
}

// Trainer log-probs and entropies per row position (forward only; RolloutLogprobs).
Status ScoreRows(engine::Model<float>* model, std::vector<sft::Row>& rows, int64_t micro, double aux,
                 std::vector<float>* logp, std::vector<float>* ent) {
  if (rows.empty()) return Status::Ok();
  const int64_t T = static_cast<int64_t>(rows[0].tokens.size());
  logp->assign(rows.size() * T, 0.0f);
  ent->assign(rows.size() * T, 0.0f);
  engine::ForwardOptions fo;
  fo.loss_normalizer = 1.0;  // weights are all zero: only the log-probs are wanted
  fo.aux_loss_alpha = aux;
  for (size_t s = 0; s < rows.size(); s += static_cast<size_t>(micro)) {
    std::vector<int64_t> idx;
    for (size_t i = s; i < std::min(rows.size(), s + static_cast<size_t>(micro)); ++i)
      idx.push_back(static_cast<int64_t>(i));
    engine::Batch b = sft::MakeBatch(rows, idx, true);
    std::fill(b.weights.begin(), b.weights.end(), 0.0f);
    K2_ASSIGN_OR_RETURN(engine::ForwardResult f, model->Forward(b, fo));
    (void)f;
    const auto& lp = model->token_logprobs();
    const auto& en = model->token_entropy();
    std::copy(lp.begin(), lp.end(), logp->begin() + static_cast<int64_t>(s) * T);
    std::copy(en.begin(), en.end(), ent->begin() + static_cast<int64_t>(s) * T);
  }
  return Status::Ok();
}

double LoadImbalance(const engine::Model<float>& m) {
  double worst = 0;
  for (const auto& layer : m.expert_load()) {
    double sum = 0, mx = 0;
    for (int64_t c : layer) {
      sum += static_cast<double>(c);
      mx = std::max(mx, static_cast<double>(c));
    }
    if (!layer.empty() && sum > 0) worst = std::max(worst, mx / (sum / static_cast<double>(layer.size())));
  }
  return worst;
}

}  // namespace

Expected<std::vector<std::vector<float>>> RolloutLogprobs(engine::Model<float>* model,
                                                          const std::vector<Rollout>& rollouts,
                                                          const UpdateConfig& cfg) {
  K2_RETURN_IF_ERROR(CheckRollouts(rollouts));
  std::vector<Placement> where;
  int64_t truncated = 0;
  std::vector<sft::Row> rows = Pack(rollouts, cfg.seq_len, cfg.share_prefix, &where, &truncated);
  std::vector<float> lp, ent;
  K2_RETURN_IF_ERROR(ScoreRows(model, rows, cfg.micro_batch, cfg.aux_loss_alpha, &lp, &ent));
  std::vector<std::vector<float>> out(rollouts.size());
  for (size_t i = 0; i < rollouts.size(); ++i) {
    out[i].assign(rollouts[i].tokens.size(), 0.0f);
    const Placement& p = where[i];
    for (int64_t j = 0; j < p.len; ++j) out[i][j + 1] = lp[p.row * cfg.seq_len + p.at(j)];
  }
  return out;
}

Expected<UpdateStats> PolicyUpdate(engine::Model<float>* model, engine::Optimizer<float>* opt, int64_t step,
                                   std::span<const Rollout> rollouts, const std::vector<sft::Row>* ptx,
                                   double ptx_coef, const UpdateConfig& cfg, engine::Model<float>* reference,
                                   engine::dist::Communicator* comm) {
  K2_RETURN_IF_ERROR(CheckRollouts(rollouts));
  const bool use_kl = cfg.objective == "grpo" && cfg.kl_coef > 0;
  if (use_kl && !reference) return InvalidArgument("rl.update.kl_coef > 0 needs a reference model");
  if (use_kl && reference == model) return InvalidArgument("rl.update: the reference model must be a separate copy");
  const int64_t T = cfg.seq_len;
  UpdateStats st;
  st.ptx_coef = ptx_coef;
  std::vector<Placement> where;
  std::vector<sft::Row> rows = Pack(rollouts, T, cfg.share_prefix, &where, &st.truncated_rollouts, &st.packed_positions);
  for (const Placement& p : where) st.shared_positions += p.len;  // every rollout's positions, less those laid
  st.shared_positions -= st.packed_positions;
  const int64_t n_policy_rows = static_cast<int64_t>(rows.size());

  // PTX rows: weights lambda / N over their assistant tokens (a mean CE scaled by lambda).
  if (ptx && !ptx->empty() && ptx_coef > 0) {
    if (static_cast<int64_t>((*ptx)[0].tokens.size()) != T)
      return InvalidArgument("ptx rows have length " + std::to_string((*ptx)[0].tokens.size()) +
                             ", the update packs rows of seq_len " + std::to_string(T));
    for (const auto& r : *ptx)
      for (float w : r.weights) st.ptx_tokens += w > 0 ? 1 : 0;
    for (const auto& r : *ptx) {
      rows.push_back(r);
      for (float& w : rows.back().weights) w = w > 0 ? static_cast<float>(ptx_coef / st.ptx_tokens) : 0.0f;
    }
  }

  // Per-rollout views over target positions (entry j is rollout token j+1). `cur` starts as old_logp and
  // takes the trainer's log-probs when the rollout's row has been through the forward; a rollout's
  // gradient depends only on its own log-probs and the group's rewards (K2: rbar; GRPO: advantages and
  // the group's policy-token count), so members not yet scored do not change it.
  std::vector<std::vector<float>> cur(rollouts.size()), old(rollouts.size()), ref(rollouts.size());
  std::vector<std::vector<uint8_t>> mask(rollouts.size());
  std::map<int64_t, std::vector<size_t>> groups;
  std::vector<std::vector<size_t>> in_row(rows.size());
  for (size_t i = 0; i < rollouts.size(); ++i) {
    const Placement& p = where[i];
    const Rollout& r = rollouts[i];
    groups[r.group].push_back(i);
    if (p.row >= 0) in_row[p.row].push_back(i);
    if (p.len > 0) {  // (a rollout of < 2 tokens has no position: empty views)
      old[i].assign(r.old_logp.begin() + 1, r.old_logp.begin() + 1 + p.len);
      mask[i].assign(r.mask.begin() + 1, r.mask.begin() + 1 + p.len);
    }
    cur[i] = old[i];
    if (use_kl) ref[i] = old[i];
  }
  std::vector<size_t> group_of(rollouts.size());  // rollout index -> position within its group
  for (const auto& [g, members] : groups)
    for (size_t k = 0; k < members.size(); ++k) group_of[members[k]] = k;
  const double G = std::max<double>(1.0, static_cast<double>(groups.size()));
  auto group_loss = [&](const std::vector<size_t>& members) -> Expected<LossResult> {
    std::vector<SampleView> views;
    for (size_t i : members) views.push_back({cur[i], old[i], mask[i], rollouts[i].reward, ref[i]});
    return cfg.objective == "grpo"
               ? GrpoLoss(views, GrpoOptions{.clip_eps = cfg.clip_eps, .kl_coef = use_kl ? cfg.kl_coef : 0.0})
               : K2Loss(views, cfg.tau);
  };

  // One pass: each micro-batch goes forward (policy weights 0), its rollouts' weights are computed from
  // that forward's log-probs, set on the model, and the backward accumulates the gradient of
  // mean_groups L_policy + lambda * CE_ptx (normalizer 1).
  model->ZeroGrad();
  engine::ForwardOptions fo;
  fo.loss_normalizer = 1.0;
  fo.aux_loss_alpha = cfg.aux_loss_alpha;
  double ptx_num = 0, mismatch = 0, entropy = 0;
  bool any_weight = false;
  // Data parallel: this rank's contiguous block [mb0, mb1) of the micro-batches.
  const int W = comm ? comm->world_size() : 1, R = comm ? comm->rank() : 0;
  const size_t micro = static_cast<size_t>(cfg.micro_batch);
  const size_t n_micro = (rows.size() + micro - 1) / micro;
  const size_t mb0 = static_cast<size_t>(R) * n_micro / static_cast<size_t>(W);
  const size_t mb1 = static_cast<size_t>(R + 1) * n_micro / static_cast<size_t>(W);
  std::vector<uint8_t> scored_here(rollouts.size(), 0);
  int64_t last_backward = -1;  // micro-batch index of this rank's last backward
  for (size_t s = mb0 * micro; s < std::min(rows.size(), mb1 * micro); s += micro) {
    std::vector<int64_t> idx;
    for (size_t i = s; i < std::min(rows.size(), s + static_cast<size_t>(cfg.micro_batch)); ++i)
      idx.push_back(static_cast<int64_t>(i));
    engine::Batch b = sft::MakeBatch(rows, idx, true);
    if (use_kl) {
      K2_ASSIGN_OR_RETURN(engine::ForwardResult rf, reference->Forward(b, fo));
      (void)rf;
    }
    const std::vector<float>* ref_lp = use_kl ? &reference->token_logprobs() : nullptr;
    K2_ASSIGN_OR_RETURN(engine::ForwardResult f, model->Forward(b, fo));
    (void)f;
    const auto& lp = model->token_logprobs();
    const auto& en = model->token_entropy();
    std::map<int64_t, std::vector<size_t>> touched;  // group -> its rollouts scored in this micro-batch
    for (size_t k = 0; k < idx.size(); ++k) {
      if (idx[k] >= n_policy_rows) {
        for (int64_t t = 0; t < T; ++t)
          if (rows[idx[k]].weights[t] > 0) ptx_num -= lp[k * T + t];
        continue;
      }
      for (size_t i : in_row[idx[k]]) {
        const Placement& p = where[i];
        const Rollout& r = rollouts[i];
        touched[r.group].push_back(i);
        scored_here[i] = 1;
        for (int64_t j = 0; j < p.len; ++j) {
          const int64_t at = static_cast<int64_t>(k) * T + p.at(j);
          // Sampler/trainer float noise is not a policy change (see UpdateConfig::logratio_floor).
          const bool m = r.mask[j + 1] != 0;
          const float c = m && std::fabs(static_cast<double>(lp[at]) - r.old_logp[j + 1]) < cfg.logratio_floor
                              ? r.old_logp[j + 1]
                              : lp[at];
          cur[i][j] = c;
          if (use_kl) {  // same float-noise floor against the reference (at the start it equals the policy)
            const float rv = (*ref_lp)[at];
            ref[i][j] = m && std::fabs(static_cast<double>(rv) - lp[at]) < cfg.logratio_floor ? c : rv;
          }
          if (m) {
            ++st.policy_tokens;
            mismatch += std::fabs(static_cast<double>(lp[at]) - r.old_logp[j + 1]);
            entropy += en[at];
          }
        }
      }
    }
    bool nonzero = false;
    for (const auto& [g, scored] : touched) {
      Expected<LossResult> loss = group_loss(groups.at(g));
      if (!loss.ok()) return loss.status().Context("group " + std::to_string(g));
      for (size_t i : scored) {
        const Placement& p = where[i];
        const size_t row_in_batch = static_cast<size_t>(p.row - idx[0]);
        const auto& gr = loss->grad[group_of[i]];
        // += : a shared prefix position gets every member's weight (0 there: prompts hold no policy token).
        for (int64_t j = 0; j < p.len; ++j) b.weights[row_in_batch * T + p.at(j)] += static_cast<float>(-gr[j] / G);
      }
    }
    for (float w : b.weights) nonzero = nonzero || w != 0.0f;
    if (!nonzero) continue;  // zero weights: no gradient (e.g. a group whose rewards are all equal)
    any_weight = true;
    K2_RETURN_IF_ERROR(model->SetLossWeights(b.weights));
    model->Backward();
    st.load_imbalance = LoadImbalance(*model);
    last_backward = static_cast<int64_t>(s / micro);
  }
  if (W > 1) {
    // The last forward decides QK-Clip (its max logits, or its batch replayed after the step) and the
    // router bias (its loads): every rank forwards the global last micro-batch unless it just did.
    if (n_micro > 0 && !(mb0 < mb1 && mb1 == n_micro)) {
      std::vector<int64_t> idx;
      for (size_t i = (n_micro - 1) * micro; i < rows.size(); ++i) idx.push_back(static_cast<int64_t>(i));
      engine::Batch b = sft::MakeBatch(rows, idx, true);
      std::fill(b.weights.begin(), b.weights.end(), 0.0f);
      K2_ASSIGN_OR_RETURN(engine::ForwardResult f, model->Forward(b, fo));
      (void)f;
    }
    // Gradients and counts summed over the ranks.
    K2_RETURN_IF_ERROR(engine::dist::AllReduceGradsFlat(comm, &model->params()));
    double sums[5] = {static_cast<double>(st.policy_tokens), mismatch, entropy, ptx_num, any_weight ? 1.0 : 0.0};
    K2_RETURN_IF_ERROR(comm->AllReduce(sums, 5, engine::dist::ReduceOp::kSum));
    st.policy_tokens = static_cast<int64_t>(sums[0]);
    mismatch = sums[1], entropy = sums[2], ptx_num = sums[3], any_weight = sums[4] > 0;
    // The trainer log-probs (and reference log-probs) of every rollout: each was scored by exactly one
    // rank, the others contribute zeros, so the sum is exact.
    std::vector<float> lp;
    for (size_t i = 0; i < rollouts.size(); ++i)
      for (size_t j = 0; j < cur[i].size(); ++j) {
        lp.push_back(scored_here[i] ? cur[i][j] : 0.0f);
        if (use_kl) lp.push_back(scored_here[i] ? ref[i][j] : 0.0f);
      }
    K2_RETURN_IF_ERROR(comm->AllReduce(lp.data(), static_cast<int64_t>(lp.size()), engine::dist::ReduceOp::kSum));
    size_t k = 0;
    for (size_t i = 0; i < rollouts.size(); ++i)
      for (size_t j = 0; j < cur[i].size(); ++j) {
        if (where[i].row >= 0) cur[i][j] = lp[k];
        ++k;
        if (use_kl) {
          if (where[i].row >= 0) ref[i][j] = lp[k];
          ++k;
        }
      }
    // load_imbalance is that of the last backward over all ranks (as in one process).
    double last[2] = {static_cast<double>(last_backward), 0};
    K2_RETURN_IF_ERROR(comm->AllReduce(last, 1, engine::dist::ReduceOp::kMax));
    last[1] = last_backward >= 0 && static_cast<double>(last_backward) == last[0] ? st.load_imbalance : -1.0;
    K2_RETURN_IF_ERROR(comm->AllReduce(last + 1, 1, engine::dist::ReduceOp::kMax));
    st.load_imbalance = std::max(0.0, last[1]);
  }
  if (st.policy_tokens > 0) {
    st.logp_mismatch = mismatch / static_cast<double>(st.policy_tokens);
    st.entropy = entropy / static_cast<double>(st.policy_tokens);
  }
  st.groups = static_cast<int64_t>(groups.size());
  for (const auto& [g, members] : groups) {  // the objective over every member's trainer log-probs
    Expected<LossResult> loss = group_loss(members);
    if (!loss.ok()) return loss.status().Context("group " + std::to_string(g));
    st.policy_loss += loss->loss / G;
    st.clip_fraction += loss->clip_fraction / G;
    st.kl += loss->kl / G;
  }
  if (st.ptx_tokens > 0) st.ptx_loss = ptx_num / static_cast<double>(st.ptx_tokens);
  if (any_weight) st.opt = opt->Step(step);
  return st;
}

}  // namespace k2::rl
