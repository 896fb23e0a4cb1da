// The RL iteration loop (rl/loop.h): task sampling, rollout collection, scoring with the budget,
// policy update with PTX, metrics, checkpoints and crash-consistent resume.
#include "rl/loop.h"

#include <chrono>
#include <cmath>
#include <algorithm>
#include <filesystem>

#include "core/fault.h"
#include "core/interrupt.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "engine/checkpoint.h"
#include "engine/dist/data_parallel.h"
#include "engine/pretrain.h"

namespace k2::rl {
namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

bool IsTruncation(const std::string& end) {
  return end == "max_turns" || end == "max_tool_calls" || end == "max_tokens" || end == "timeout";
}

}  // namespace

Status RlConfig::Validate() const {
  K2_RETURN_IF_ERROR(temperature.Validate("rl.temperature"));
  K2_RETURN_IF_ERROR(ptx.coef.Validate("rl.ptx.coef"));
  K2_RETURN_IF_ERROR(budget.Validate("rl.budget"));
  if (temperature.start < 0 || temperature.end < 0) return InvalidArgument("rl.temperature: values must be >= 0");
  if (!ptx.data.empty() && ptx.coef.start == 0 && ptx.coef.end == 0)
    return InvalidArgument("rl.ptx: data is set but coef is 0 at every iteration (set rl.ptx.coef.start/end)");
  if (ptx.data.empty() && (ptx.coef.start != 0 || ptx.coef.end != 0))
    return InvalidArgument("rl.ptx.coef: a PTX coefficient needs rl.ptx.data");
  if (update.kl_coef > 0 && update.objective != "grpo")
    return InvalidArgument("rl.update.kl_coef: the KL term belongs to objective \"grpo\" (K2's objective has tau)");
  return Status::Ok();
}

json PartialJob::ToJson() const {
  return {{"task_id", job.task->id}, {"trial", job.trial}, {"group", group}, {"started_iteration", started_iteration},
          {"seed", seed}, {"temperature", temperature}};
}

Expected<PartialJob> PartialJob::FromJson(const json& j, const std::vector<std::shared_ptr<const agents::EpisodeTask>>& tasks,
                                          const std::string& where) {
  if (!j.is_object() || !j.contains("task_id") || !j["task_id"].is_string() || !j.contains("trial") ||
      !j["trial"].is_number_integer() || !j.contains("group") || !j["group"].is_number_integer() ||
      !j.contains("started_iteration") || !j["started_iteration"].is_number_integer() || !j.contains("seed") ||
      !j["seed"].is_number_unsigned() || !j.contains("temperature") || !j["temperature"].is_number())
    return Corruption(where + ": expected {task_id, trial, group, started_iteration, seed, temperature}");
  PartialJob p;
  const std::string id = j["task_id"].get<std::string>();
  for (const auto& t : tasks)
    if (t->id == id) p.job.task = t;
  if (!p.job.task) return InvalidArgument(where + ".task_id: \"" + id + "\" is not among the run's tasks");
  p.job.trial = j["trial"].get<int>();
  p.group = j["group"].get<int64_t>();
  p.started_iteration = j["started_iteration"].get<int64_t>();
  p.seed = j["seed"].get<uint64_t>();
  p.temperature = j["temperature"].get<double>();
  return p;
}

Expected<Rollout> TrajectoryToRollout(const agents::Trajectory& t, const rewards::BudgetConfig& budget,
                                      const std::string& task_type, int64_t group,
                                      rewards::BudgetDecision* decision) {
  if (t.tokens.empty())
    return InvalidArgument("trajectory " + t.id + ": no engine token stream (RL needs the engine policy)");
  if (t.policy_mask.size() != t.tokens.size() || t.policy_logprobs.size() != t.tokens.size())
    return InvalidArgument("trajectory " + t.id + ": tokens, policy_mask and policy_logprobs differ in length");
  Rollout r;
  r.tokens = t.tokens;
  r.mask = t.policy_mask;
  r.old_logp = t.policy_logprobs;
  r.group = group;
  int64_t generated = 0;
  for (uint8_t m : r.mask) generated += m ? 1 : 0;
  rewards::BudgetDecision d = rewards::CheckBudget(budget, task_type, generated);
  r.reward = t.reward;
  if (d.over) {
    int64_t kept = 0;  // K2: the over-budget response is cut; tokens past the budget carry no loss
    for (auto& m : r.mask) {
      if (!m) continue;
      if (kept >= d.kept_tokens) m = 0;
      else ++kept;
    }
    r.reward = budget.over_budget == "zero" ? -d.penalty : t.reward - d.penalty;
  }
  if (decision) *decision = d;
  return r;
}

Expected<RlResult> RunRl(engine::Model<float>* model, const text::Tokenizer& tok, const RlConfig& cfg,
                         const std::vector<std::shared_ptr<const agents::EpisodeTask>>& tasks,
                         const CollectFn& collect, const RlRun& run) {
  K2_RETURN_IF_ERROR(cfg.Validate());
  if (tasks.empty()) return InvalidArgument("rl: no tasks to sample from");
  engine::SetComputeThreads(cfg.threads);
  std::unique_ptr<engine::dist::Communicator> owned;
  engine::dist::Communicator* comm = run.comm;
  if (comm == nullptr) {
    K2_ASSIGN_OR_RETURN(engine::dist::LaunchEnv env, engine::dist::LaunchEnvFromEnv());
    K2_ASSIGN_OR_RETURN(owned, engine::dist::ConnectFromEnv(env, cfg.dist, "rl"));
    comm = owned.get();
  }
  const int W = comm ? comm->world_size() : 1, R = comm ? comm->rank() : 0;
  std::error_code ec;
  if (R == 0) std::filesystem::create_directories(run.out_dir + "/trajectories", ec);
  if (ec) return IoError(run.out_dir + ": cannot create: " + ec.message());
  const std::string ckdir = run.out_dir + "/checkpoint", csv = run.out_dir + "/metrics.csv";

  // PTX rows: the supervised dialogs rendered and packed like the rollouts.
  std::vector<sft::Row> ptx_all;
  if (!cfg.ptx.data.empty()) {
    K2_ASSIGN_OR_RETURN(std::vector<sft::Dialog> dialogs, sft::LoadDialogs(cfg.ptx.data));
    std::vector<sft::Example> ex;
    for (const auto& d : dialogs) {
      K2_ASSIGN_OR_RETURN(sft::Example e, sft::RenderExample(d, tok));
      ex.push_back(std::move(e));
    }
    ptx_all = sft::PackExamples(ex, cfg.update.seq_len, true, nullptr);
    if (ptx_all.empty()) return InvalidArgument(cfg.ptx.data + ": no PTX rows (no dialog with 2+ tokens)");
  }

  engine::OptimizerConfig oc = cfg.optimizer;
  oc.total_steps = std::max<int64_t>(oc.total_steps, cfg.iterations * cfg.update.minibatches);
  engine::Optimizer<float> opt(model, oc);
  RlResult res;
  json history = json::array();
  int64_t start = 0;
  json resumed_extra = json::object();
  // The store run (kept across resumes), its metrics and the checkpoint protocol (engine/checkpoint.h):
  // a resume recovers an interrupted save and cuts the metrics back to what its checkpoint committed.
  // Rank 0 alone owns the store run, metrics and checkpoints; the other ranks learn from it where the run
  // stands (iteration and metric history) and load the same checkpoint.
  std::unique_ptr<engine::TrainingRun> tr;
  MetricsLogger* log = nullptr;
  if (R == 0) {
    engine::TrainingRunOptions tro;
    tro.db = run.db;
    tro.kind = "rl";
    tro.name = run.out_dir;
    tro.config = run.run_config;
    tro.out_dir = run.out_dir;
    tro.checkpoint_dir = ckdir;
    tro.metrics_csv = csv;
    tro.resume = run.resume;
    tro.overwrite = run.overwrite;
    K2_ASSIGN_OR_RETURN(tr, engine::TrainingRun::Open(tro));
    res.run = tr->run_id();
    if (tr->checkpoint()) {
      engine::TrainerState ts;
      K2_RETURN_IF_ERROR(engine::LoadCheckpoint(ckdir, model, &opt, &ts));
      start = ts.step;
      resumed_extra = ts.extra;
      // The metric history of the iterations before it: checkpoints before the shared protocol carried it;
      // since then it is what metrics.csv committed with the checkpoint (exact: the CSV round-trips doubles).
      if (ts.extra.contains("history")) {
        history = ts.extra["history"];
      } else {
        K2_ASSIGN_OR_RETURN(auto rows, ReadMetricHistoryCsv(csv, start));
        for (const auto& r : rows)
          if (!r.empty()) history.push_back(json(r));
      }
      if (static_cast<int64_t>(history.size()) != start)
        return Corruption(ckdir + ": the checkpoint is at iteration " + std::to_string(start) + " but " + csv + " holds " +
                          std::to_string(history.size()) + " iterations before it");
    }
    log = &tr->metrics();
  }
  if (W > 1) {
    K2_RETURN_IF_ERROR(comm->Broadcast(&start, sizeof start, 0));
    std::string h = history.dump();
    K2_RETURN_IF_ERROR(engine::dist::BroadcastString(comm, &h, 0));
    if (R != 0) {
      K2_ASSIGN_OR_RETURN(history, ParseJson(h, "rank 0's metric history"));
      if (start > 0) {
        engine::TrainerState ts;
        Status ls = engine::LoadCheckpoint(ckdir, model, &opt, &ts);
        if (!ls.ok())
          return ls.Context("rl rank " + std::to_string(R) + ": rank 0 resumes at iteration " + std::to_string(start) +
                            " (every rank reads OUT/checkpoint: a filesystem all ranks see)");
        if (ts.step != start)
          return FailedPrecondition(ckdir + ": rank " + std::to_string(R) + " read iteration " + std::to_string(ts.step) +
                                    ", rank 0 iteration " + std::to_string(start));
        resumed_extra = ts.extra;
      }
    }
    K2_RETURN_IF_ERROR(engine::dist::CheckSameWeights(
        comm, *model, "rl: start (launch every rank with the same --model/--init, config, --seed and --out)"));
  }

  // GRPO's KL reference: a frozen copy of the initial policy, allocated once. It is written beside the
  // checkpoint at the first start so a resumed run measures the KL to the same weights.
  std::unique_ptr<engine::Model<float>> reference;
  if (cfg.update.objective == "grpo" && cfg.update.kl_coef > 0) {
    K2_ASSIGN_OR_RETURN(reference, engine::Model<float>::Create(model->config(), 0));
    const std::string ref_path = run.out_dir + "/reference/model.safetensors";
    if (start == 0 && R == 0) {
      std::filesystem::create_directories(run.out_dir + "/reference", ec);
      K2_RETURN_IF_ERROR(model->SaveSafetensors(ref_path));
    }
    if (W > 1) K2_RETURN_IF_ERROR(comm->Barrier());  // rank 0 has written it
    if (start > 0 && !std::filesystem::exists(ref_path)) {
      return Corruption(ref_path + ": missing (the KL reference of this run; kl_coef > 0 was set after it started?)");
    }
    // Loaded from the file in both cases (not copied param by param), so a fresh and a resumed run
    // build the reference the same way.
    K2_RETURN_IF_ERROR(reference->LoadSafetensors(ref_path));
  }
  // Partial rollout state: ended rollouts of groups still running, episodes to restart after a resume.
  std::map<int64_t, std::vector<agents::Trajectory>> pending;
  std::vector<PartialJob> restart;
  int64_t carried = 0;
  if (start > 0 && cfg.partial_rollout.token_budget > 0) {
    const std::string where = ckdir + "/trainer_state.json: extra.";
    if (resumed_extra.contains("carried")) {
      const json& cj = resumed_extra["carried"];
      for (size_t i = 0; i < cj.size(); ++i) {
        K2_ASSIGN_OR_RETURN(PartialJob j, PartialJob::FromJson(cj[i], tasks, where + "carried[" + std::to_string(i) + "]"));
        restart.push_back(std::move(j));
      }
    }
    if (resumed_extra.contains("pending"))
      for (const auto& [g, arr] : resumed_extra["pending"].items())
        for (size_t i = 0; i < arr.size(); ++i) {
          K2_ASSIGN_OR_RETURN(agents::Trajectory t,
                              agents::Trajectory::FromJson(arr[i], where + "pending." + g + "[" + std::to_string(i) + "]"));
          pending[std::stoll(g)].push_back(std::move(t));
        }
  }

  int64_t end = cfg.iterations;
  if (run.stop_after > 0) end = std::min(end, start + run.stop_after);
  for (int64_t it = start; it < end; ++it) {
    const double temperature = ScheduleValue(cfg.temperature, it);
    const double lambda = cfg.ptx.data.empty() ? 0.0 : ScheduleValue(cfg.ptx.coef, it);
    Rng rng = Rng(run.seed).Fork("rl.iteration." + std::to_string(it));
    const bool partial = cfg.partial_rollout.token_budget > 0;
    const int64_t max_carried = cfg.partial_rollout.max_carried > 0 ? cfg.partial_rollout.max_carried
                                                                     : cfg.tasks_per_iteration * cfg.rollouts_per_task;
    // New groups (the task draws are made even when partial rollout skips them, so the per-iteration
    // stream does not depend on what is carried).
    std::vector<agents::EpisodeJob> jobs;
    for (int64_t g = 0; g < cfg.tasks_per_iteration; ++g) {
      const size_t pick = run.sample_task ? run.sample_task(rng) : rng.Below(tasks.size());
      if (pick >= tasks.size()) return Internal("rl: sample_task returned " + std::to_string(pick) + " of " + std::to_string(tasks.size()));
      const auto& task = tasks[pick];
      for (int64_t k = 0; k < cfg.rollouts_per_task; ++k)
        jobs.push_back({task, static_cast<int>(g * cfg.rollouts_per_task + k)});
    }
    const uint64_t iter_seed = rng.Next();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<agents::Trajectory> trajs;
    std::vector<int64_t> traj_group;
    PartialStep pstep;
    if (!partial && W > 1) {
      // This rank's contiguous share of the groups; every rank then holds all of them, in group order
      // (an episode's seed depends on its task and trial, not on which rank runs it).
      const int64_t G = cfg.tasks_per_iteration, K = cfg.rollouts_per_task;
      const int64_t g0 = R * (G / W) + std::min<int64_t>(R, G % W), g1 = g0 + G / W + (R < G % W ? 1 : 0);
      std::vector<agents::EpisodeJob> mine(jobs.begin() + g0 * K, jobs.begin() + g1 * K);
      std::vector<agents::Trajectory> got;
      if (!mine.empty()) {
        K2_ASSIGN_OR_RETURN(got, collect(mine, temperature, iter_seed));
      }
      if (got.size() != mine.size())
        return Internal("rl: collect returned " + std::to_string(got.size()) + " trajectories for " +
                        std::to_string(mine.size()) + " jobs");
      json arr = json::array();
      for (const auto& t : got) arr.push_back(t.ToJson());
      K2_ASSIGN_OR_RETURN(std::vector<std::string> parts, engine::dist::AllGatherStrings(comm, arr.dump()));
      for (size_t r = 0; r < parts.size(); ++r) {
        const std::string where = "rl: rank " + std::to_string(r) + "'s trajectories of iteration " + std::to_string(it);
        K2_ASSIGN_OR_RETURN(json a, ParseJson(parts[r], where));
        for (size_t i = 0; i < a.size(); ++i) {
          K2_ASSIGN_OR_RETURN(agents::Trajectory t, agents::Trajectory::FromJson(a[i], where + "[" + std::to_string(i) + "]"));
          trajs.push_back(std::move(t));
        }
      }
      if (trajs.size() != jobs.size())
        return Internal("rl: gathered " + std::to_string(trajs.size()) + " trajectories for " + std::to_string(jobs.size()) +
                        " jobs");
      for (size_t i = 0; i < trajs.size(); ++i) traj_group.push_back(static_cast<int64_t>(i) / cfg.rollouts_per_task);
    } else if (!partial) {
      K2_ASSIGN_OR_RETURN(trajs, collect(jobs, temperature, iter_seed));
      if (trajs.size() != jobs.size())
        return Internal("rl: collect returned " + std::to_string(trajs.size()) + " trajectories for " +
                        std::to_string(jobs.size()) + " jobs");
      for (size_t i = 0; i < trajs.size(); ++i) traj_group.push_back(static_cast<int64_t>(i) / cfg.rollouts_per_task);
    } else {
      if (!run.partial_collect) return InvalidArgument("rl.partial_rollout.token_budget > 0 needs a partial collector");
      // Data parallel: a rank starts its share of the new groups and keeps its paused episodes (its
      // collector holds them); the episodes paused at a resumed checkpoint restart on rank group % W.
      // The iteration's token budget is split evenly over the ranks.
      const int64_t G = cfg.tasks_per_iteration, K = cfg.rollouts_per_task;
      const int64_t g0 = R * (G / W) + std::min<int64_t>(R, G % W), g1 = g0 + G / W + (R < G % W ? 1 : 0);
      const int64_t n_restart = static_cast<int64_t>(restart.size());  // paused at the checkpoint we resumed from
      std::vector<PartialJob> pjobs;
      for (auto& j : restart)
        if (j.group % W == R) pjobs.push_back(std::move(j));
      restart.clear();
      if (carried + n_restart <= max_carried)
        for (size_t i = 0; i < jobs.size(); ++i) {
          const int64_t g = static_cast<int64_t>(i) / K;
          if (g < g0 || g >= g1) continue;
          pjobs.push_back({jobs[i], it * G + g, it, iter_seed, temperature});
        }
      const int64_t budget = (cfg.partial_rollout.token_budget + W - 1) / W;
      K2_ASSIGN_OR_RETURN(pstep, run.partial_collect(pjobs, it, budget));
      if (pstep.groups.size() != pstep.done.size()) return Internal("rl: partial collector: groups and done differ");
      if (W > 1) {  // every rank's ended episodes, groups, paused jobs and counts, in rank order
        json mine = {{"done", json::array()}, {"groups", pstep.groups}, {"carried", json::array()},
                     {"counts", {pstep.started, pstep.resumed, pstep.paused, pstep.policy_tokens}}};
        for (const auto& t : pstep.done) mine["done"].push_back(t.ToJson());
        for (const auto& c : pstep.carried) mine["carried"].push_back(c.ToJson());
        K2_ASSIGN_OR_RETURN(std::vector<std::string> parts, engine::dist::AllGatherStrings(comm, mine.dump()));
        PartialStep all;
        for (size_t r = 0; r < parts.size(); ++r) {
          const std::string where = "rl: rank " + std::to_string(r) + "'s partial rollouts of iteration " + std::to_string(it);
          K2_ASSIGN_OR_RETURN(json a, ParseJson(parts[r], where));
          for (size_t i = 0; i < a["done"].size(); ++i) {
            K2_ASSIGN_OR_RETURN(agents::Trajectory t, agents::Trajectory::FromJson(a["done"][i], where + ".done"));
            all.done.push_back(std::move(t));
            all.groups.push_back(a["groups"][i].get<int64_t>());
          }
          for (size_t i = 0; i < a["carried"].size(); ++i) {
            K2_ASSIGN_OR_RETURN(PartialJob j, PartialJob::FromJson(a["carried"][i], tasks, where + ".carried"));
            all.carried.push_back(std::move(j));
          }
          all.started += a["counts"][0].get<int64_t>(), all.resumed += a["counts"][1].get<int64_t>();
          all.paused += a["counts"][2].get<int64_t>(), all.policy_tokens += a["counts"][3].get<int64_t>();
        }
        pstep = std::move(all);
      }
      carried = static_cast<int64_t>(pstep.carried.size());
      // A group is updated on once all K of its rollouts have ended; in group order, then trial order.
      for (size_t i = 0; i < pstep.done.size(); ++i) pending[pstep.groups[i]].push_back(std::move(pstep.done[i]));
      for (auto g = pending.begin(); g != pending.end();) {
        if (static_cast<int64_t>(g->second.size()) < cfg.rollouts_per_task) {
          ++g;
          continue;
        }
        std::sort(g->second.begin(), g->second.end(), [](const auto& a, const auto& b) { return a.trial < b.trial; });
        for (auto& t : g->second) {
          trajs.push_back(std::move(t));
          traj_group.push_back(g->first);
        }
        g = pending.erase(g);
      }
    }
    std::map<std::string, double> extra_metrics;
    if (run.after_collect && R == 0) {
      K2_ASSIGN_OR_RETURN(extra_metrics, run.after_collect(it, trajs, traj_group));
    }
    if (run.after_collect && W > 1) {  // rank 0's rescoring and metrics, to every rank
      json msg = {{"metrics", extra_metrics}, {"trajectories", json::array()}};
      if (R == 0)
        for (const auto& t : trajs) msg["trajectories"].push_back(t.ToJson());
      std::string b = R == 0 ? msg.dump() : std::string();
      K2_RETURN_IF_ERROR(engine::dist::BroadcastString(comm, &b, 0));
      if (R != 0) {
        K2_ASSIGN_OR_RETURN(msg, ParseJson(b, "rl: rank 0's rescored trajectories"));
        extra_metrics = msg["metrics"].get<std::map<std::string, double>>();
        for (size_t i = 0; i < trajs.size() && i < msg["trajectories"].size(); ++i) {
          K2_ASSIGN_OR_RETURN(trajs[i], agents::Trajectory::FromJson(msg["trajectories"][i], "rl: rescored trajectory"));
        }
      }
    }
    const auto t1 = std::chrono::steady_clock::now();

    std::vector<Rollout> rollouts;
    double r_sum = 0, r_sq = 0, success = 0, trunc = 0, over = 0, penalty = 0, gen_tokens = 0, failures = 0,
           all_tokens = 0;
    std::string lines;
    for (size_t i = 0; i < trajs.size(); ++i) {
      agents::Trajectory& t = trajs[i];
      rewards::BudgetDecision d;
      K2_ASSIGN_OR_RETURN(Rollout r, TrajectoryToRollout(t, cfg.budget, cfg.task_type,
                                                         traj_group[i], &d));
      // The task's own success (judge keep) when the collector records it, else the reward threshold.
      auto ts = t.reward_components.find("task_success");
      success += (ts != t.reward_components.end() ? ts->second >= 1.0 : t.reward >= cfg.success_threshold) ? 1 : 0;
      trunc += IsTruncation(t.end_reason) ? 1 : 0;
      failures += t.failures.empty() ? 0 : 1;
      over += d.over ? 1 : 0;
      penalty += d.penalty;
      for (uint8_t m : t.policy_mask) gen_tokens += m;
      all_tokens += static_cast<double>(t.tokens.size());
      r_sum += r.reward;
      r_sq += r.reward * r.reward;
      t.reward_components["rl_reward"] = r.reward;
      t.provenance["rl_iteration"] = it;
      lines += t.ToJson().dump() + "\n";
      rollouts.push_back(std::move(r));
    }
    if (R == 0)
      K2_RETURN_IF_ERROR(
          WriteFileAtomic(run.out_dir + "/trajectories/iter_" + std::to_string(it) + ".jsonl", lines));

    // Groups whose rewards are all equal carry no gradient when their rollouts are on-policy (K2: r - rbar
    // is 0 and the log ratio is float noise; GRPO: advantage 0, unless a KL term pulls): leave them out of
    // the update instead of scoring them for nothing.
    int64_t skipped = 0;
    if (cfg.update.skip_uniform_groups && !partial && !(cfg.update.objective == "grpo" && cfg.update.kl_coef > 0)) {
      std::map<int64_t, std::pair<double, double>> range;  // group -> (min, max) reward
      for (const Rollout& r : rollouts) {
        auto [it_r, fresh] = range.try_emplace(r.group, r.reward, r.reward);
        if (!fresh) it_r->second = {std::min(it_r->second.first, r.reward), std::max(it_r->second.second, r.reward)};
      }
      for (const auto& [g, mm] : range) skipped += mm.first == mm.second ? 1 : 0;
      std::erase_if(rollouts, [&](const Rollout& r) {
        const auto& mm = range.at(r.group);
        return mm.first == mm.second;
      });
    }

    // rl.update.minibatches: the groups (in order) split into up to M parts, one optimizer step each, each
    // with its own PTX rows; step numbers it * M + m. The iteration's stats combine the steps'. A group's
    // rollouts are contiguous, so each part is a contiguous range of `rollouts` (no copy).
    const int64_t M = cfg.update.minibatches;
    std::vector<size_t> group_start;  // index of each group's first rollout, then rollouts.size()
    for (size_t i = 0; i < rollouts.size(); ++i)
      if (i == 0 || rollouts[i].group != rollouts[i - 1].group) group_start.push_back(i);
    const int64_t n_groups = static_cast<int64_t>(group_start.size());
    group_start.push_back(rollouts.size());
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(M, n_groups));
    UpdateStats st;
    double grad_norm_sum = 0;
    for (int64_t m = 0; m < parts; ++m) {
      const size_t r0 = group_start[static_cast<size_t>(m * n_groups / parts)];
      const size_t r1 = group_start[static_cast<size_t>((m + 1) * n_groups / parts)];
      const std::span<const Rollout> part(rollouts.data() + r0, r1 - r0);
      const int64_t step = it * M + m;
      std::vector<sft::Row> ptx_rows;
      if (lambda > 0 && !ptx_all.empty())
        for (int64_t k = 0; k < cfg.ptx.rows; ++k)
          ptx_rows.push_back(ptx_all[(step * cfg.ptx.rows + k) % static_cast<int64_t>(ptx_all.size())]);
      K2_ASSIGN_OR_RETURN(UpdateStats s, PolicyUpdate(model, &opt, step, part, &ptx_rows,
                                                      lambda, cfg.update, reference.get(), comm));
      // Means over steps: losses and fractions by groups, token statistics by policy tokens.
      const double g_old = static_cast<double>(st.groups), g_new = static_cast<double>(s.groups);
      const double t_old = static_cast<double>(st.policy_tokens), t_new = static_cast<double>(s.policy_tokens);
      auto by = [](double a, double wa, double b, double wb) { return wa + wb > 0 ? (a * wa + b * wb) / (wa + wb) : 0.0; };
      st.policy_loss = by(st.policy_loss, g_old, s.policy_loss, g_new);
      st.clip_fraction = by(st.clip_fraction, g_old, s.clip_fraction, g_new);
      st.kl = by(st.kl, g_old, s.kl, g_new);
      st.entropy = by(st.entropy, t_old, s.entropy, t_new);
      st.logp_mismatch = by(st.logp_mismatch, t_old, s.logp_mismatch, t_new);
      st.ptx_loss = (st.ptx_loss * static_cast<double>(m) + s.ptx_loss) / static_cast<double>(m + 1);
      st.ptx_coef = s.ptx_coef;
      st.groups += s.groups;
      st.policy_tokens += s.policy_tokens;
      st.ptx_tokens += s.ptx_tokens;
      st.truncated_rollouts += s.truncated_rollouts;
      st.packed_positions += s.packed_positions;
      st.shared_positions += s.shared_positions;
      st.load_imbalance = std::max(st.load_imbalance, s.load_imbalance);
      grad_norm_sum += s.opt.grad_norm;
      st.opt.lr = s.opt.lr;
      st.opt.clipped_heads += s.opt.clipped_heads;
      st.opt.max_logit = std::max(st.opt.max_logit, s.opt.max_logit);
      st.opt.grad_norm = grad_norm_sum / static_cast<double>(m + 1);
    }
    // Data parallel: every rank took the same step (summed gradients, the same last forward); checked.
    if (W > 1) K2_RETURN_IF_ERROR(engine::dist::CheckSameWeights(comm, *model, "rl iteration " + std::to_string(it)));
    const auto t2 = std::chrono::steady_clock::now();

    const double n = std::max<double>(1.0, static_cast<double>(trajs.size()));  // 0 rollouts: metrics 0
    const double mean = r_sum / n;
    std::map<std::string, double> m;
    m["reward_mean"] = mean;
    m["reward_std"] = std::sqrt(std::max(0.0, r_sq / n - mean * mean));
    m["success_rate"] = success / n;
    m["response_length"] = gen_tokens / n;
    m["episode_tokens"] = all_tokens / n;
    m["truncation_rate"] = trunc / n;
    m["malformed_rate"] = failures / n;
    m["budget_over_rate"] = over / n;
    m["budget_penalty"] = penalty / n;
    m["temperature"] = temperature;
    m["ptx_coef"] = lambda;
    m["loss_policy"] = st.policy_loss;
    m["loss_ptx"] = st.ptx_loss;
    m["entropy"] = st.entropy;
    m["logp_mismatch"] = st.logp_mismatch;
    m["clip_fraction"] = st.clip_fraction;
    if (reference) m["kl_ref"] = st.kl;
    m["budget_tokens"] = static_cast<double>(rewards::CheckBudget(cfg.budget, cfg.task_type, 0).budget);
    m["policy_tokens"] = static_cast<double>(st.policy_tokens);
    m["truncated_rollouts"] = static_cast<double>(st.truncated_rollouts);
    m["update_positions"] = static_cast<double>(st.packed_positions);
    m["update_shared_positions"] = static_cast<double>(st.shared_positions);
    m["lr"] = st.opt.lr;
    m["grad_norm"] = st.opt.grad_norm;
    m["max_logit"] = st.opt.max_logit;
    m["qk_clipped_heads"] = static_cast<double>(st.opt.clipped_heads);
    m["expert_load_max_over_mean"] = st.load_imbalance;
    m["time_rollout_s"] = Seconds(t0, t1);
    m["time_train_s"] = Seconds(t1, t2);
    m["rollout_tokens_per_s"] = Seconds(t0, t1) > 0 ? gen_tokens / Seconds(t0, t1) : 0;
    m["train_tokens_per_s"] = Seconds(t1, t2) > 0 ? all_tokens / Seconds(t1, t2) : 0;
    m["rollouts_updated"] = static_cast<double>(rollouts.size());
    m["update_steps"] = static_cast<double>(parts);
    if (cfg.update.skip_uniform_groups) m["groups_skipped"] = static_cast<double>(skipped);
    // Per task source (a mixture run): reward, success and length of each source's rollouts.
    {
      struct Acc {
        double n = 0, reward = 0, success = 0, length = 0;
      };
      std::map<std::string, Acc> by_source;
      for (const auto& t : trajs) {
        auto src = t.provenance.find("source");
        if (src == t.provenance.end() || !src->is_string()) continue;
        Acc& a = by_source[src->get<std::string>()];
        a.n += 1;
        a.reward += t.reward_components.count("rl_reward") ? t.reward_components.at("rl_reward") : t.reward;
        auto ts = t.reward_components.find("task_success");
        a.success += (ts != t.reward_components.end() ? ts->second >= 1.0 : t.reward >= cfg.success_threshold) ? 1 : 0;
        for (uint8_t mk : t.policy_mask) a.length += mk;
      }
      for (const auto& [name, a] : by_source) {
        m["source." + name + ".episodes"] = a.n;
        m["source." + name + ".reward_mean"] = a.reward / a.n;
        m["source." + name + ".success_rate"] = a.success / a.n;
        m["source." + name + ".response_length"] = a.length / a.n;
      }
    }
    for (const auto& [k, v] : extra_metrics) m[k] = v;
    if (partial) {
      double stale = 0, stale_max = 0, versions = 0;
      for (const auto& t : trajs) {
        const double s = t.provenance.value("rl_staleness", 0.0);
        stale += s;
        stale_max = std::max(stale_max, s);
        versions += t.provenance.value("rl_weight_versions", 1.0);
      }
      m["rollout_token_budget"] = static_cast<double>(cfg.partial_rollout.token_budget);
      m["episodes_started"] = static_cast<double>(pstep.started);
      m["episodes_resumed"] = static_cast<double>(pstep.resumed);
      m["episodes_paused"] = static_cast<double>(pstep.paused);
      m["staleness_mean"] = stale / n;
      m["staleness_max"] = stale_max;
      m["weight_versions_mean"] = versions / n;
      m["rollout_policy_tokens"] = static_cast<double>(pstep.policy_tokens);
    }
    json row = json::object();
    for (const auto& [k, v] : m) row[k] = v;
    history.push_back(row);
    res.history.push_back(m);

    // The iteration's rows first; a checkpoint commits them before it is published (engine/checkpoint.h).
    if (log)
      for (const auto& [k, v] : m) log->Log(it, k, v);
    CrashPoint("train.step");
    bool interrupt = InterruptRequested() && it + 1 < end;  // stop cleanly after this iteration
    if (W > 1) {  // every rank stops after the same iteration (a signal may reach only some of them)
      double f = interrupt ? 1.0 : 0.0;
      K2_RETURN_IF_ERROR(comm->AllReduce(&f, 1, engine::dist::ReduceOp::kMax));
      interrupt = f > 0;
    }
    if (R != 0) {  // rank 0 alone checkpoints and reports
      if (!interrupt) continue;
      res.interrupted = true;
      break;
    }
    if ((it + 1) % cfg.checkpoint_every == 0 || it + 1 == end || interrupt) {
      engine::TrainerState ts;
      ts.step = it + 1;
      ts.extra = {{"kind", "rl"}};
      if (partial) {  // what a resume restarts: the paused episodes and the ended members of open groups
        json cj = json::array(), pj = json::object();
        for (const auto& c : pstep.carried) cj.push_back(c.ToJson());
        for (const auto& [g, ts_] : pending)
          for (const auto& t : ts_) pj[std::to_string(g)].push_back(t.ToJson());
        ts.extra["carried"] = cj;
        ts.extra["pending"] = pj;
      }
      K2_RETURN_IF_ERROR(tr->Save(*model, opt, ts));
    } else {
      K2_RETURN_IF_ERROR(log->Flush());
    }
    if (run.on_iteration) run.on_iteration(it, m);
    if (interrupt) {
      res.interrupted = true;
      break;
    }
  }
  res.iterations_done = static_cast<int64_t>(history.size());
  if (tr)
    K2_RETURN_IF_ERROR(
        tr->Finish(res.interrupted ? "interrupted" : res.iterations_done >= cfg.iterations ? "done" : "stopped"));
  if (res.history.size() != history.size()) {  // a resumed call: return the whole history
    res.history.clear();
    for (const auto& h : history) {
      std::map<std::string, double> m;
      for (const auto& [k, v] : h.items()) m[k] = v.get<double>();
      res.history.push_back(m);
    }
  }
  return res;
}

}  // namespace k2::rl
