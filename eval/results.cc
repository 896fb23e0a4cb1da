// Summaries (pass^k tables), their text rendering, and the "eval" store tables.
#include "eval/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <optional>
#include <set>

#include "eval/passk.h"

namespace k2::eval {

Expected<json> Summarize(const std::vector<TrialRecord>& records, const std::vector<int64_t>& ks, const json& meta) {
  std::map<std::string, TaskTrials> per;  // by case id
  std::vector<std::string> order;
  json ends = json::object();
  int64_t context_exceeded = 0;
  for (auto& r : records) {
    auto [it, fresh] = per.try_emplace(r.case_id);
    if (fresh) {
      it->second.task_id = r.case_id;
      it->second.domain = r.group;
      order.push_back(r.case_id);
    }
    ++it->second.n;
    it->second.c += r.success ? 1 : 0;
    it->second.reward_sum += r.reward;
    std::string e = r.end_reason.empty() ? "-" : r.end_reason;
    ends[e] = ends.value(e, 0) + 1;
    // A served model refusing a dialog longer than its context is a scored failure (0) that the table
    // must name, or a suite of such refusals would read as a model that cannot act.
    if (r.detail.find("context_length_exceeded") != std::string::npos) ++context_exceeded;
  }
  std::vector<TaskTrials> tasks;
  for (auto& id : order) tasks.push_back(per[id]);
  K2_ASSIGN_OR_RETURN(std::vector<PassRow> rows, PassTable(tasks, ks));
  json out = meta;
  out["ks"] = ks;
  out["rows"] = json::array();
  for (auto& r : rows) {
    json ph = json::object(), at = json::object();
    for (auto& [k, v] : r.pass_hat) ph[std::to_string(k)] = v;
    for (auto& [k, v] : r.tasks_at) at[std::to_string(k)] = v;
    out["rows"].push_back({{"group", r.domain}, {"tasks", r.tasks}, {"trials", r.trials}, {"avg_reward", r.avg_reward},
                           {"pass_hat", ph}, {"tasks_at", at}});
  }
  out["end_reasons"] = ends;
  out["context_exceeded"] = context_exceeded;
  return out;
}

namespace {

std::string Fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string Clip(const std::string& s, size_t w) { return s.size() <= w ? s : "..." + s.substr(s.size() - (w - 3)); }

}  // namespace

std::string FormatSummary(const json& s) {
  std::string out = "suite " + s.value("suite", std::string("?")) + "  policy " + s.value("policy", std::string("?")) +
                    "  trials " + std::to_string(s.value("trials", 0)) + "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-40s %6s %7s %10s", "group", "tasks", "trials", "avg_reward");
  out += line;
  for (auto& k : s["ks"]) out += Fmt("  pass^%-3.0f", k.get<double>());
  out += "\n";
  for (auto& r : s["rows"]) {
    std::snprintf(line, sizeof line, "%-40s %6lld %7lld %10.3f", Clip(r["group"].get<std::string>(), 40).c_str(),
                  static_cast<long long>(r["tasks"].get<int64_t>()), static_cast<long long>(r["trials"].get<int64_t>()),
                  r["avg_reward"].get<double>());
    out += line;
    for (auto& k : s["ks"]) {
      std::string key = std::to_string(k.get<int64_t>());
      bool any = r["tasks_at"].value(key, 0) > 0;
      out += any ? Fmt("  %8.3f", r["pass_hat"][key].get<double>()) : "         -";
    }
    out += "\n";
  }
  out += "end reasons:";
  for (auto& [e, n] : s["end_reasons"].items()) out += " " + e + "=" + std::to_string(n.get<int64_t>());
  out += "\n";
  if (int64_t n = s.value("context_exceeded", int64_t{0}); n > 0)
    out += std::to_string(n) + " trial(s) scored 0 because the dialog exceeded the served model's context "
           "(HTTP 400 context_length_exceeded): use a model with a larger max_position_embeddings\n";
  return out;
}

std::string FormatCompare(const json& a, const json& b, int64_t run_a, int64_t run_b) {
  std::string out = "A = run " + std::to_string(run_a) + ": " + a.value("suite", std::string("?")) + " / " +
                    a.value("policy", std::string("?")) + "\nB = run " + std::to_string(run_b) + ": " +
                    b.value("suite", std::string("?")) + " / " + b.value("policy", std::string("?")) + "\n";
  if (a.value("suite", std::string()) != b.value("suite", std::string()))
    out += "warning: the runs used different suites\n";
  std::set<int64_t> ks;
  for (auto& k : a["ks"]) ks.insert(k.get<int64_t>());
  for (auto& k : b["ks"]) ks.insert(k.get<int64_t>());
  std::map<std::string, std::pair<const json*, const json*>> groups;
  std::vector<std::string> order;
  for (auto* s : {&a, &b})
    for (auto& r : (*s)["rows"]) {
      std::string g = r["group"].get<std::string>();
      if (!groups.count(g) && g != "all") order.push_back(g);
      (s == &a ? groups[g].first : groups[g].second) = &r;
    }
  order.push_back("all");
  char line[512];
  std::snprintf(line, sizeof line, "%-36s %-10s", "group", "metric");
  out += std::string(line) + "         A         B       B-A\n";
  auto value = [](const json* r, const std::string& metric, const std::string& k) -> std::optional<double> {
    if (!r) return std::nullopt;
    if (metric == "avg_reward") return (*r)["avg_reward"].get<double>();
    if ((*r)["tasks_at"].value(k, 0) == 0) return std::nullopt;
    return (*r)["pass_hat"][k].get<double>();
  };
  for (auto& g : order) {
    auto [ra, rb] = groups[g];
    std::vector<std::pair<std::string, std::string>> metrics = {{"avg_reward", ""}};
    for (int64_t k : ks) metrics.push_back({"pass^" + std::to_string(k), std::to_string(k)});
    for (auto& [m, k] : metrics) {
      auto va = value(ra, m == "avg_reward" ? m : "pass", k), vb = value(rb, m == "avg_reward" ? m : "pass", k);
      std::snprintf(line, sizeof line, "%-36s %-10s", Clip(g, 36).c_str(), m.c_str());
      out += line;
      out += va ? Fmt("  %8.3f", *va) : "         -";
      out += vb ? Fmt("  %8.3f", *vb) : "         -";
      out += va && vb ? Fmt("  %+8.3f", *vb - *va) : "         -";
      out += "\n";
    }
  }
  return out;
}

Expected<json> PairedCompare(const std::vector<TrialRecord>& a, const std::vector<TrialRecord>& b, uint64_t seed,
                             int resamples) {
  struct Rate {
    std::string group;
    double wins = 0, n = 0;
  };
  auto rates = [](const std::vector<TrialRecord>& rs) {
    std::map<std::string, Rate> m;
    for (const auto& r : rs) {
      Rate& x = m[r.case_id];
      x.group = r.group;
      x.wins += r.success ? 1 : 0;
      x.n += 1;
    }
    return m;
  };
  const auto ra = rates(a), rb = rates(b);
  std::vector<std::string> shared;
  int64_t only_a = 0, only_b = 0;
  for (const auto& [c, x] : ra) (rb.count(c) ? shared.push_back(c) : (void)++only_a);
  for (const auto& [c, x] : rb) only_b += ra.count(c) ? 0 : 1;
  if (shared.empty()) return InvalidArgument("eval compare: the two runs share no case (different suites?)");
  const size_t n = shared.size();
  std::vector<double> pa(n), pb(n);
  for (size_t i = 0; i < n; ++i) {
    pa[i] = ra.at(shared[i]).wins / ra.at(shared[i]).n;
    pb[i] = rb.at(shared[i]).wins / rb.at(shared[i]).n;
  }
  auto mean = [&](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / n; };
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> ma, mb, md;
  for (int r = 0; r < resamples; ++r) {
    double sa = 0, sb = 0;
    for (size_t j = 0; j < n; ++j) {
      const size_t i = pick(rng);
      sa += pa[i];
      sb += pb[i];
    }
    ma.push_back(sa / n);
    mb.push_back(sb / n);
    md.push_back((sb - sa) / n);
  }
  auto interval = [&](std::vector<double> v, double m) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v.empty() ? m : v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))]; };
    return json{{"mean", m}, {"lo", at(0.025)}, {"hi", at(0.975)}};
  };
  json flipped = json::array();
  for (size_t i = 0; i < n; ++i)
    if (std::abs(pb[i] - pa[i]) >= 0.5 - 1e-12)
      flipped.push_back({{"case", shared[i]}, {"group", ra.at(shared[i]).group}, {"a", pa[i]}, {"b", pb[i]}});
  return json{{"cases", n}, {"only_a", only_a}, {"only_b", only_b}, {"resamples", resamples},
              {"seed", std::to_string(seed)}, {"a", interval(ma, mean(pa))}, {"b", interval(mb, mean(pb))},
              {"diff", interval(md, mean(pb) - mean(pa))}, {"flipped", flipped}};
}

std::string FormatPaired(const json& p, size_t max_listed) {
  auto iv = [](const json& x, bool sign) {
    return Fmt(sign ? "%+.3f" : "%.3f", x["mean"].get<double>()) + " [" + Fmt(sign ? "%+.3f" : "%.3f", x["lo"].get<double>()) +
           ", " + Fmt(sign ? "%+.3f" : "%.3f", x["hi"].get<double>()) + "]";
  };
  std::string out = "\npaired by case over " + std::to_string(p["cases"].get<int64_t>()) + " shared cases (pass^1, 95% " +
                    "bootstrap interval, " + std::to_string(p["resamples"].get<int64_t>()) + " resamples):\n";
  out += "  A " + iv(p["a"], false) + "\n  B " + iv(p["b"], false) + "\n  B-A " + iv(p["diff"], true) + "\n";
  if (p["only_a"].get<int64_t>() || p["only_b"].get<int64_t>())
    out += "  (left out: " + std::to_string(p["only_a"].get<int64_t>()) + " cases only in A, " +
           std::to_string(p["only_b"].get<int64_t>()) + " only in B)\n";
  int64_t gained = 0, lost = 0;
  for (const auto& f : p["flipped"]) (f["b"].get<double>() > f["a"].get<double>() ? gained : lost)++;
  out += "flipped (pass^1 moved by >= 0.5): " + std::to_string(gained) + " gained, " + std::to_string(lost) + " lost\n";
  size_t listed = 0;
  for (const auto& f : p["flipped"]) {
    if (listed++ == max_listed) {
      out += "  ... " + std::to_string(p["flipped"].size() - max_listed) + " more (--json lists all)\n";
      break;
    }
    char line[160];
    std::snprintf(line, sizeof line, "  %s %-40s %.2f -> %.2f\n", f["b"].get<double>() > f["a"].get<double>() ? "+" : "-",
                  Clip(f["case"].get<std::string>(), 40).c_str(), f["a"].get<double>(), f["b"].get<double>());
    out += line;
  }
  return out;
}

const Migrations& EvalMigrations() {
  static const Migrations m{"eval",
                            {R"sql(
CREATE TABLE eval_runs (
  run_id INTEGER PRIMARY KEY REFERENCES runs(id),
  suite TEXT NOT NULL,
  kind TEXT NOT NULL,
  policy TEXT NOT NULL,
  trials INTEGER NOT NULL,
  summary TEXT NOT NULL
);
CREATE TABLE eval_trials (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  case_id TEXT NOT NULL,
  grp TEXT NOT NULL,
  trial INTEGER NOT NULL,
  reward REAL NOT NULL,
  success INTEGER NOT NULL,
  end_reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  components TEXT NOT NULL,
  trajectory TEXT,
  PRIMARY KEY (run_id, case_id, trial)
);
)sql"}};
  return m;
}

namespace {

Status InsertSummary(Db* db, int64_t run, const json& summary) {
  K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("INSERT OR REPLACE INTO eval_runs(run_id, suite, kind, policy, trials, summary) "
                                          "VALUES (?,?,?,?,?,?)"));
  s.Bind(1, run).Bind(2, summary.value("suite", std::string())).Bind(3, summary.value("kind", std::string()))
      .Bind(4, summary.value("policy", std::string())).Bind(5, summary.value("trials", int64_t{0})).Bind(6, summary.dump());
  return s.Run();
}

Status InsertTrials(Db* db, int64_t run, const std::vector<TrialRecord>& records) {
  K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("INSERT OR REPLACE INTO eval_trials(run_id, case_id, grp, trial, reward, success, "
                                          "end_reason, detail, components, trajectory) VALUES (?,?,?,?,?,?,?,?,?,?)"));
  for (auto& r : records) {
    s.Reset();
    s.Bind(1, run).Bind(2, r.case_id).Bind(3, r.group).Bind(4, r.trial).Bind(5, r.reward).Bind(6, r.success ? 1 : 0)
        .Bind(7, r.end_reason).Bind(8, r.detail).Bind(9, r.components.dump());
    if (r.trajectory.is_null()) s.BindNull(10);
    else s.Bind(10, r.trajectory.dump());
    K2_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

}  // namespace

Status SaveEvalRun(Db* db, int64_t run, const json& summary, const std::vector<TrialRecord>& records) {
  K2_RETURN_IF_ERROR(db->Migrate(EvalMigrations()));
  K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  K2_RETURN_IF_ERROR(InsertSummary(db, run, summary));
  K2_RETURN_IF_ERROR(InsertTrials(db, run, records));
  return tx.Commit();
}

Status SaveEvalTrials(Db* db, int64_t run, const std::vector<TrialRecord>& records) {
  K2_RETURN_IF_ERROR(db->Migrate(EvalMigrations()));
  K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  K2_RETURN_IF_ERROR(InsertTrials(db, run, records));
  return tx.Commit();
}

Status SaveEvalSummary(Db* db, int64_t run, const json& summary) {
  K2_RETURN_IF_ERROR(db->Migrate(EvalMigrations()));
  return InsertSummary(db, run, summary);
}

Expected<std::vector<TrialRecord>> LoadEvalTrials(Db* db, int64_t run) {
  K2_RETURN_IF_ERROR(db->Migrate(EvalMigrations()));
  K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT case_id, grp, trial, reward, success, end_reason, detail, components, "
                                          "trajectory FROM eval_trials WHERE run_id = ? ORDER BY case_id, trial"));
  q.Bind(1, run);
  std::vector<TrialRecord> out;
  while (q.Step()) {
    TrialRecord r;
    r.case_id = q.Text(0);
    r.group = q.Text(1);
    r.trial = static_cast<int>(q.Int(2));
    r.reward = q.Double(3);
    r.success = q.Int(4) != 0;
    r.end_reason = q.Text(5);
    r.detail = q.Text(6);
    const std::string where = "eval_trials of run " + std::to_string(run) + " case " + r.case_id;
    K2_ASSIGN_OR_RETURN(r.components, ParseJson(q.Text(7), where + " components"));
    if (!q.IsNull(8)) {
      K2_ASSIGN_OR_RETURN(r.trajectory, ParseJson(q.Text(8), where + " trajectory"));
    }
    out.push_back(std::move(r));
  }
  K2_RETURN_IF_ERROR(q.status());
  return out;
}

Expected<json> LoadEvalSummary(Db* db, int64_t run) {
  K2_RETURN_IF_ERROR(db->Migrate(EvalMigrations()));
  K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT summary FROM eval_runs WHERE run_id = ?"));
  s.Bind(1, run);
  if (!s.Step()) {
    K2_RETURN_IF_ERROR(s.status());
    return NotFound(db->path() + ": run " + std::to_string(run) + " has no eval results (see `k2gym eval` output for run ids)");
  }
  return ParseJson(s.Text(0), "eval_runs.summary of run " + std::to_string(run));
}

}  // namespace k2::eval
