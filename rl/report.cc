// Hand-written SVG curves and the self-contained HTML run report (rl/report.h).
#include "rl/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace k2::rl {
namespace {

std::string Num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}
std::string Px(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

}  // namespace

std::string HtmlEscape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

Expected<RunMetrics> ReadMetricsCsv(const std::string& path) {
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  RunMetrics m;
  std::istringstream in(text);
  std::string line;
  int64_t no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (line.empty()) continue;
    if (no == 1) {
      if (line.rfind("step,key,value", 0) != 0)
        return InvalidArgument(path + ":1: expected the header step,key,value,t, got \"" + line + "\"");
      continue;
    }
    size_t a = line.find(','), b = a == std::string::npos ? a : line.find(',', a + 1);
    if (b == std::string::npos) return InvalidArgument(path + ":" + std::to_string(no) + ": expected step,key,value,t");
    size_t c = line.find(',', b + 1);
    try {
      int64_t step = std::stoll(line.substr(0, a));
      double v = std::stod(line.substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1));
      m[line.substr(a + 1, b - a - 1)].push_back({step, v});
    } catch (...) {
      return InvalidArgument(path + ":" + std::to_string(no) + ": step or value is not a number");
    }
  }
  for (auto& [k, s] : m) std::stable_sort(s.begin(), s.end(), [](auto& x, auto& y) { return x.first < y.first; });
  return m;
}

Expected<RunMetrics> ReadRunMetrics(Db* db, int64_t run) {
  K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT key, step, value FROM metrics WHERE run = ?1 ORDER BY key, step, rowid"));
  q.Bind(1, run);
  RunMetrics m;
  while (q.Step()) m[q.Text(0)].push_back({q.Int(1), q.Double(2)});
  K2_RETURN_IF_ERROR(q.status());
  if (m.empty()) return NotFound("run " + std::to_string(run) + ": no metrics in the store");
  return m;
}

const std::vector<std::pair<std::string, std::string>>& ReportPanels() {
  static const std::vector<std::pair<std::string, std::string>> p = {
      {"reward", "Reward"},       {"success", "Success"},       {"length", "Length"},
      {"loss", "Loss"},           {"heldout", "Held-out"},      {"optimizer", "Optimizer"},
      {"throughput", "Throughput"}, {"other", "Other"}};
  return p;
}

std::string MetricPanel(const std::string& key) {
  auto has = [&](const char* part) { return key.find(part) != std::string::npos; };
  auto starts = [&](const char* pre) { return key.rfind(pre, 0) == 0; };
  if (starts("source.")) return "source";
  if (starts("eval_") || starts("heldout")) return "heldout";
  if (has("per_s") || starts("time_") || has("seconds") || has("_ms") || starts("mfu")) return "throughput";
  if (has("success") || has("pass") || has("accuracy") || has("agreement")) return "success";
  if (has("reward") || has("advantage") || has("score") || starts("budget")) return "reward";
  if (has("loss") || has("kl") || has("entropy") || has("ppl") || has("logp")) return "loss";
  if (has("length") || has("tokens") || has("turns") || has("tool_calls") || has("positions") || has("truncated"))
    return "length";
  if (starts("lr") || has("grad") || has("logit") || has("qk_") || has("clip") || has("expert") || has("temperature") ||
      has("coef") || has("update_"))
    return "optimizer";
  return "other";
}

Series Smooth(const Series& s, double w) {
  if (w <= 0) return s;
  Series out;
  out.reserve(s.size());
  double acc = 0, norm = 0;
  for (auto [x, v] : s) {
    if (!std::isfinite(v)) continue;
    acc = w * acc + (1 - w) * v;
    norm = w * norm + (1 - w);
    out.push_back({x, acc / norm});
  }
  return out;
}

bool IsConstantSeries(const std::vector<const RunMetrics*>& runs, const std::string& key) {
  bool any = false;
  double first = 0;
  for (const RunMetrics* m : runs) {
    auto it = m->find(key);
    if (it == m->end()) continue;
    for (auto [x, v] : it->second) {
      if (!std::isfinite(v)) continue;
      if (!any) {
        any = true;
        first = v;
      } else if (v != first) {
        return false;
      }
    }
  }
  return true;
}

namespace {
const char* const kRunColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
const char* RunColor(size_t i) { return kRunColors[i % (sizeof kRunColors / sizeof kRunColors[0])]; }
}  // namespace

std::string RenderCharts(const std::vector<const RunMetrics*>& runs, const std::vector<std::string>& keys,
                         const ChartOptions& opt) {
  // Plot area: x in [pl, W - pr], y in [pt, H - pb]; the y title runs up the left edge, the x title
  // under the x labels.
  const double W = 300, H = 180, pl = 56, pr = 10, pt = 22, pb = 34;
  const int cols = std::max(1, opt.cols);
  const int n = static_cast<int>(keys.size());
  const int rows = (n + cols - 1) / cols;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W * cols << "\" height=\"" << H * std::max(1, rows)
    << "\" font-family=\"sans-serif\" font-size=\"10\">\n";
  for (int i = 0; i < n; ++i) {
    const double x0 = (i % cols) * W, y0 = (i / cols) * H;
    o << "<g transform=\"translate(" << x0 << "," << y0 << ")\" class=\"chart\" data-key=\"" << HtmlEscape(keys[i]) << "\">\n";
    o << "<text x=\"" << pl << "\" y=\"14\" font-size=\"12\" font-weight=\"bold\">" << HtmlEscape(keys[i]) << "</text>\n";
    o << "<rect x=\"" << pl << "\" y=\"" << pt << "\" width=\"" << W - pl - pr << "\" height=\"" << H - pt - pb
      << "\" fill=\"none\" stroke=\"#999\"/>\n";
    o << "<text class=\"xlabel\" x=\"" << Px((pl + W - pr) / 2) << "\" y=\"" << H - 4 << "\" text-anchor=\"middle\">"
      << HtmlEscape(opt.x_title) << "</text>\n";
    o << "<text class=\"ylabel\" transform=\"translate(10," << Px((pt + H - pb) / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << HtmlEscape(keys[i]) << "</text>\n";
    std::vector<std::vector<std::pair<double, double>>> pts(runs.size());
    bool any = false;
    double xmin = 0, xmax = 0, ymin = 0, ymax = 0;
    for (size_t r = 0; r < runs.size(); ++r) {
      auto it = runs[r]->find(keys[i]);
      if (it == runs[r]->end()) continue;
      for (auto [st, v] : it->second) {
        if (!std::isfinite(v)) continue;
        const double x = static_cast<double>(st);
        if (!any) xmin = xmax = x, ymin = ymax = v;
        any = true;
        xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, v), ymax = std::max(ymax, v);
        pts[r].push_back({x, v});
      }
    }
    if (!any) {
      o << "<text x=\"" << pl + 10 << "\" y=\"" << H / 2 << "\">no data</text>\n</g>\n";
      continue;
    }
    const double xs = xmax > xmin ? xmax - xmin : 1, ys = ymax > ymin ? ymax - ymin : 1;
    auto X = [&](double x) { return pl + (x - xmin) / xs * (W - pl - pr); };
    auto Y = [&](double y) { return ymax > ymin ? H - pb - (y - ymin) / ys * (H - pt - pb) : (pt + H - pb) / 2; };
    o << "<text x=\"" << pl - 4 << "\" y=\"" << pt + 8 << "\" text-anchor=\"end\">" << Num(ymax) << "</text>\n";
    o << "<text x=\"" << pl - 4 << "\" y=\"" << H - pb << "\" text-anchor=\"end\">" << Num(ymin) << "</text>\n";
    o << "<text x=\"" << pl << "\" y=\"" << H - pb + 12 << "\">" << Num(xmin) << "</text>\n";
    o << "<text x=\"" << W - pr << "\" y=\"" << H - pb + 12 << "\" text-anchor=\"end\">" << Num(xmax) << "</text>\n";
    auto line = [&](const std::vector<std::pair<double, double>>& p, const char* cls, const char* color, const char* extra) {
      o << "<polyline class=\"" << cls << "\" fill=\"none\" stroke=\"" << color << "\"" << extra << " points=\"";
      for (auto [x, y] : p) o << Px(X(x)) << "," << Px(Y(y)) << " ";
      o << "\"/>\n";
    };
    for (size_t r = 0; r < runs.size(); ++r) {
      if (pts[r].empty()) continue;
      const bool smooth = opt.smooth > 0 && pts[r].size() > 8;
      if (smooth) {
        line(pts[r], "raw", RunColor(r), " stroke-width=\"1\" stroke-opacity=\"0.3\"");
        Series s;
        for (auto [x, y] : pts[r]) s.push_back({static_cast<int64_t>(x), y});
        std::vector<std::pair<double, double>> sm;
        for (auto [x, y] : Smooth(s, opt.smooth)) sm.push_back({static_cast<double>(x), y});
        line(sm, "smooth", RunColor(r), " stroke-width=\"1.8\"");
      } else {
        line(pts[r], "raw", RunColor(r), " stroke-width=\"1.5\"");
      }
      if (pts[r].size() == 1)
        o << "<circle cx=\"" << Px(X(pts[r][0].first)) << "\" cy=\"" << Px(Y(pts[r][0].second)) << "\" r=\"2\" fill=\""
          << RunColor(r) << "\"/>\n";
    }
    o << "</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string RenderSvg(const RunMetrics& metrics, const std::vector<std::string>& keys, int cols) {
  ChartOptions o;
  o.cols = cols;
  return RenderCharts({&metrics}, keys, o);
}

namespace {

// The held-out results of eval runs: one table per run of its pass^k rows.
void RenderHeldOut(std::ostringstream& o, const std::vector<ReportRun>& runs) {
  bool any = false;
  for (const auto& r : runs) any = any || (r.summary.is_object() && r.summary.contains("rows"));
  if (!any) return;
  o << "<h2>Held-out results</h2>\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const json& s = runs[i].summary;
    if (!s.is_object() || !s.contains("rows") || !s["rows"].is_array()) continue;
    std::vector<std::string> ks;
    for (const auto& row : s["rows"])
      if (row.contains("pass_hat") && row["pass_hat"].is_object())
        for (auto& [k, v] : row["pass_hat"].items())
          if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
    o << "<h3 style=\"color:" << RunColor(i) << "\">" << HtmlEscape(runs[i].label);
    if (s.contains("suite") && s["suite"].is_string()) o << ": " << HtmlEscape(s["suite"].get<std::string>());
    if (s.contains("policy") && s["policy"].is_string()) o << ", policy " << HtmlEscape(s["policy"].get<std::string>());
    o << "</h3>\n<table class=\"heldout\"><tr><th>group</th><th>tasks</th><th>trials</th><th>avg reward</th>";
    for (const auto& k : ks) o << "<th>pass^" << HtmlEscape(k) << "</th>";
    o << "</tr>\n";
    for (const auto& row : s["rows"]) {
      auto num = [&](const char* k) { return row.contains(k) && row[k].is_number() ? Num(row[k].get<double>()) : "-"; };
      o << "<tr><td style=\"text-align:left\">" << HtmlEscape(row.value("group", std::string())) << "</td><td>"
        << num("tasks") << "</td><td>" << num("trials") << "</td><td>" << num("avg_reward") << "</td>";
      for (const auto& k : ks) {
        const json& ph = row.contains("pass_hat") ? row["pass_hat"] : json();
        o << "<td>" << (ph.is_object() && ph.contains(k) && ph[k].is_number() ? Num(ph[k].get<double>()) : "-") << "</td>";
      }
      o << "</tr>\n";
    }
    o << "</table>\n";
  }
}

}  // namespace

std::string RenderReportHtml(const std::string& title, const std::vector<ReportRun>& runs,
                             const std::vector<json>& trajectories) {
  std::vector<const RunMetrics*> ms;
  bool rl = false;
  for (const auto& r : runs) {
    ms.push_back(&r.metrics);
    rl = rl || r.kind == "rl";
  }
  // Every key of every run, except the per-head max logits (max_logit is their maximum).
  std::vector<std::string> keys, source_keys;
  for (const RunMetrics* m : ms)
    for (const auto& [k, s] : *m) {
      if (k.rfind("max_logit/", 0) == 0) continue;
      auto& into = MetricPanel(k) == "source" ? source_keys : keys;
      if (std::find(into.begin(), into.end(), k) == into.end()) into.push_back(k);
    }
  std::sort(keys.begin(), keys.end());
  std::sort(source_keys.begin(), source_keys.end());
  ChartOptions co;
  co.cols = 4;
  co.x_title = rl ? "iteration" : "step";
  co.smooth = 0.6;

  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << HtmlEscape(title) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:20px;max-width:1300px}table{border-collapse:collapse;margin-bottom:8px}"
    << "td,th{border:1px solid #ccc;padding:2px 8px;font-size:12px;text-align:right}th{background:#eee}"
    << ".panel{margin:8px 0}.legend li{font-weight:bold}.constants{font-size:12px;color:#555}"
    << ".msg{border-left:4px solid #ccc;margin:6px 0;padding:4px 8px;white-space:pre-wrap;font-size:12px}"
    << ".user{border-color:#2ca02c}.assistant{border-color:#1f77b4}.tool{border-color:#ff7f0e}.system{border-color:#999}"
    << ".role{font-weight:bold}\n</style></head><body>\n";
  o << "<h1>" << HtmlEscape(title) << "</h1>\n";
  if (runs.size() > 1) {
    o << "<ul class=\"legend\">\n";
    for (size_t i = 0; i < runs.size(); ++i)
      o << "<li style=\"color:" << RunColor(i) << "\">" << HtmlEscape(runs[i].label) << "</li>\n";
    o << "</ul>\n";
  }
  RenderHeldOut(o, runs);
  for (size_t i = 0; i < runs.size(); ++i)
    if (runs[i].kind == "simulate" && runs[i].summary.is_object() && !runs[i].summary.empty()) {
      o << "<h2>" << HtmlEscape(runs[i].label) << "</h2>\n<table class=\"simulate\">";
      for (auto& [k, v] : runs[i].summary.items())
        o << "<tr><th style=\"text-align:left\">" << HtmlEscape(k) << "</th><td>" << HtmlEscape(v.is_string() ? v.get<std::string>() : v.dump())
          << "</td></tr>\n";
      o << "</table>\n";
    }

  if (!keys.empty()) {
    o << "<h2>Summary</h2>\n<table id=\"summary\"><tr><th>metric</th>";
    for (const auto& r : runs) {
      const std::string l = runs.size() > 1 ? " (" + HtmlEscape(r.label) + ")" : "";
      o << "<th>first" << l << "</th><th>last" << l << "</th><th>points" << l << "</th>";
    }
    o << "</tr>\n";
    for (const auto& k : keys) {
      o << "<tr><td style=\"text-align:left\">" << HtmlEscape(k) << "</td>";
      for (const RunMetrics* m : ms) {
        auto it = m->find(k);
        if (it == m->end() || it->second.empty()) {
          o << "<td>-</td><td>-</td><td>0</td>";
          continue;
        }
        o << "<td>" << Num(it->second.front().second) << "</td><td>" << Num(it->second.back().second) << "</td><td>"
          << it->second.size() << "</td>";
      }
      o << "</tr>\n";
    }
    o << "</table>\n<h2>Curves</h2>\n";
    std::vector<std::string> constants;
    for (const auto& [id, name] : ReportPanels()) {
      std::vector<std::string> drawn;
      for (const auto& k : keys) {
        if (MetricPanel(k) != id) continue;
        if (IsConstantSeries(ms, k)) constants.push_back(k);
        else drawn.push_back(k);
      }
      if (drawn.empty()) continue;
      o << "<section class=\"panel\" id=\"panel-" << id << "\"><h3>" << name << "</h3>\n" << RenderCharts(ms, drawn, co)
        << "</section>\n";
    }
    if (!constants.empty()) {
      o << "<p class=\"constants\">Constant over the run" << (runs.size() > 1 ? "s" : "") << " (not drawn): ";
      for (size_t i = 0; i < constants.size(); ++i) {
        const Series* s = nullptr;
        for (const RunMetrics* m : ms)
          if (auto it = m->find(constants[i]); it != m->end() && !it->second.empty()) s = &it->second;
        o << (i ? "; " : "") << HtmlEscape(constants[i]) << " = " << (s ? Num(s->front().second) : "-");
      }
      o << "</p>\n";
    }
  }
  if (!source_keys.empty()) {
    // One row per source: its reward, success and length, first and last iteration (the first run's).
    std::map<std::string, std::map<std::string, const Series*>> by_source;
    for (const auto& k : source_keys) {
      const size_t dot = k.rfind('.');
      for (const RunMetrics* m : ms)
        if (auto it = m->find(k); it != m->end() && !by_source[k.substr(7, dot - 7)].count(k.substr(dot + 1)))
          by_source[k.substr(7, dot - 7)][k.substr(dot + 1)] = &it->second;
    }
    o << "<h2>Per task source</h2>\n<table id=\"sources\"><tr><th>source</th><th>reward first</th><th>reward last</th>"
      << "<th>success first</th><th>success last</th><th>length last</th></tr>\n";
    auto cell = [&](const std::map<std::string, const Series*>& m, const char* key, bool last) {
      auto it = m.find(key);
      if (it == m.end() || it->second->empty()) return std::string("-");
      return Num(last ? it->second->back().second : it->second->front().second);
    };
    for (const auto& [name, m] : by_source)
      o << "<tr><td style=\"text-align:left\">" << HtmlEscape(name) << "</td><td>" << cell(m, "reward_mean", false)
        << "</td><td>" << cell(m, "reward_mean", true) << "</td><td>" << cell(m, "success_rate", false) << "</td><td>"
        << cell(m, "success_rate", true) << "</td><td>" << cell(m, "response_length", true) << "</td></tr>\n";
    o << "</table>\n";
    std::vector<std::string> drawn;
    for (const auto& k : source_keys)
      if (!IsConstantSeries(ms, k)) drawn.push_back(k);
    if (!drawn.empty()) o << "<section class=\"panel\" id=\"panel-source\">\n" << RenderCharts(ms, drawn, co) << "</section>\n";
  }
  o << "<h2>Trajectories</h2>\n<p><select id=\"pick\"></select> <span id=\"meta\"></span></p>\n<div id=\"view\"></div>\n";
  json data = json::array();
  for (const auto& t : trajectories) data.push_back(t);
  std::string js = data.dump();
  // Inside <script> the HTML parser looks for "</script" and "<!--": write every '<' as \u003c (the
  // same string to JavaScript) so trajectory text can never end or confuse the script element.
  std::string safe;
  for (char c : js) {
    if (c == '<') safe += "\\u003c";
    else safe += c;
  }
  // Tool calls come as OpenAI's {"function": {"name", "arguments": "JSON text"}} or τ²'s {"name",
  // "arguments": {...}}; content may be absent or a list of parts.
  o << "<script>\nconst T = " << safe << ";\n"
    << "const pick = document.getElementById('pick'), view = document.getElementById('view'),"
    << " meta = document.getElementById('meta');\n"
    << "function esc(s){return String(s).replace(/[&<>\"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','\"':'&quot;'}[c]));}\n"
    << "function text(c){if(c===undefined||c===null)return '';return typeof c==='string'?c:JSON.stringify(c);}\n"
    << "function call(c){const f=c.function||c;const a=f.arguments;return esc(f.name)+'('+esc(typeof a==='string'?a:JSON.stringify(a===undefined?{}:a))+')';}\n"
    << "T.forEach((t,i)=>{const o=document.createElement('option');o.value=i;"
    << "const it=(t.provenance||{}).rl_iteration;o.textContent=(it!==undefined?'iter '+it+' ':'')+t.task_id+' #'+t.trial+"
    << "' reward '+t.reward+' ('+t.end_reason+')';pick.appendChild(o);});\n"
    << "function show(i){const t=T[i];if(!t){view.textContent='no trajectories';return;}"
    << "const calls=(t.tool_calls||[]).length||(t.messages||[]).reduce((n,m)=>n+(m.tool_calls||[]).length,0);"
    << "meta.textContent='turns '+(t.turns!==undefined?t.turns:(t.messages||[]).filter(m=>m.role==='assistant').length)+"
    << "', tool calls '+calls+', reward '+t.reward;"
    << "view.innerHTML=(t.messages||[]).map(m=>{let h='<div class=\"msg '+esc(m.role)+'\"><span class=\"role\">'+esc(m.role)+"
    << "(m.name?' '+esc(m.name):'')+'</span>\\n'+esc(text(m.content));"
    << "(m.tool_calls||[]).forEach(c=>{h+='\\n&rarr; '+call(c);});"
    << "return h+'</div>';}).join('');}\n"
    << "pick.onchange=()=>show(pick.value);show(0);\n</script>\n</body></html>\n";
  return o.str();
}

std::string RenderReportHtml(const std::string& title, const RunMetrics& metrics, const std::vector<json>& trajectories) {
  ReportRun r;
  r.metrics = metrics;
  return RenderReportHtml(title, std::vector<ReportRun>{r}, trajectories);
}

}  // namespace k2::rl
