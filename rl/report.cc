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

std::string RenderSvg(const RunMetrics& metrics, const std::vector<std::string>& keys, int cols) {
  const double W = 300, H = 170, pl = 48, pr = 10, pt = 22, pb = 24;
  cols = std::max(1, cols);
  const int n = static_cast<int>(keys.size());
  const int rows = (n + cols - 1) / cols;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W * cols << "\" height=\"" << H * std::max(1, rows)
    << "\" font-family=\"sans-serif\" font-size=\"10\">\n";
  for (int i = 0; i < n; ++i) {
    const double x0 = (i % cols) * W, y0 = (i / cols) * H;
    o << "<g transform=\"translate(" << x0 << "," << y0 << ")\" class=\"chart\">\n";
    o << "<text x=\"" << pl << "\" y=\"14\" font-size=\"12\" font-weight=\"bold\">" << HtmlEscape(keys[i]) << "</text>\n";
    auto it = metrics.find(keys[i]);
    std::vector<std::pair<double, double>> pts;
    if (it != metrics.end())
      for (auto [s, v] : it->second)
        if (std::isfinite(v)) pts.push_back({static_cast<double>(s), v});
    o << "<rect x=\"" << pl << "\" y=\"" << pt << "\" width=\"" << W - pl - pr << "\" height=\"" << H - pt - pb
      << "\" fill=\"none\" stroke=\"#999\"/>\n";
    if (pts.empty()) {
      o << "<text x=\"" << pl + 10 << "\" y=\"" << H / 2 << "\">no data</text>\n</g>\n";
      continue;
    }
    double xmin = pts.front().first, xmax = pts.front().first, ymin = pts.front().second, ymax = ymin;
    for (auto [x, y] : pts) {
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
    const double xs = xmax > xmin ? xmax - xmin : 1, ys = ymax > ymin ? ymax - ymin : 1;
    auto X = [&](double x) { return pl + (x - xmin) / xs * (W - pl - pr); };
    auto Y = [&](double y) { return ymax > ymin ? H - pb - (y - ymin) / ys * (H - pt - pb) : (pt + H - pb) / 2; };
    o << "<text x=\"" << pl - 4 << "\" y=\"" << pt + 8 << "\" text-anchor=\"end\">" << Num(ymax) << "</text>\n";
    o << "<text x=\"" << pl - 4 << "\" y=\"" << H - pb << "\" text-anchor=\"end\">" << Num(ymin) << "</text>\n";
    o << "<text x=\"" << pl << "\" y=\"" << H - 8 << "\">" << Num(xmin) << "</text>\n";
    o << "<text x=\"" << W - pr << "\" y=\"" << H - 8 << "\" text-anchor=\"end\">" << Num(xmax) << "</text>\n";
    o << "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
    for (auto [x, y] : pts) o << Px(X(x)) << "," << Px(Y(y)) << " ";
    o << "\"/>\n";
    if (pts.size() == 1) o << "<circle cx=\"" << Px(X(pts[0].first)) << "\" cy=\"" << Px(Y(pts[0].second)) << "\" r=\"2\"/>\n";
    o << "</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string RenderReportHtml(const std::string& title, const RunMetrics& metrics, const std::vector<json>& trajectories) {
  std::vector<std::string> keys;
  // The headline curves first, then the rest alphabetically (per-head max logits are left out).
  const char* first[] = {"success_rate", "reward_mean", "reward_std", "loss_policy", "loss_ptx", "eval_loss", "loss",
                         "temperature", "ptx_coef", "budget_penalty", "response_length", "entropy"};
  for (const char* k : first)
    if (metrics.count(k)) keys.push_back(k);
  // Per task source (a mixture run: "source.<name>.<metric>"): a section of their own.
  std::vector<std::string> source_keys;
  for (const auto& [k, s] : metrics) {
    if (k.rfind("source.", 0) == 0) {
      source_keys.push_back(k);
      continue;
    }
    if (std::find(keys.begin(), keys.end(), k) == keys.end() && k.rfind("max_logit/", 0) != 0) keys.push_back(k);
  }
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << HtmlEscape(title) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:20px;max-width:1300px}table{border-collapse:collapse}"
    << "td,th{border:1px solid #ccc;padding:2px 8px;font-size:12px;text-align:right}th{background:#eee}"
    << ".msg{border-left:4px solid #ccc;margin:6px 0;padding:4px 8px;white-space:pre-wrap;font-size:12px}"
    << ".user{border-color:#2ca02c}.assistant{border-color:#1f77b4}.tool{border-color:#ff7f0e}.system{border-color:#999}"
    << ".role{font-weight:bold}\n</style></head><body>\n";
  o << "<h1>" << HtmlEscape(title) << "</h1>\n<h2>Summary</h2>\n<table id=\"summary\"><tr><th>metric</th><th>first</th>"
    << "<th>last</th><th>points</th></tr>\n";
  for (const auto& k : keys) {
    const Series& s = metrics.at(k);
    if (s.empty()) continue;
    o << "<tr><td style=\"text-align:left\">" << HtmlEscape(k) << "</td><td>" << Num(s.front().second) << "</td><td>"
      << Num(s.back().second) << "</td><td>" << s.size() << "</td></tr>\n";
  }
  o << "</table>\n<h2>Curves</h2>\n" << RenderSvg(metrics, keys, 4);
  if (!source_keys.empty()) {
    // One row per source: its reward, success and length, first and last iteration.
    std::map<std::string, std::map<std::string, const Series*>> by_source;
    for (const auto& k : source_keys) {
      const size_t dot = k.rfind('.');
      by_source[k.substr(7, dot - 7)][k.substr(dot + 1)] = &metrics.at(k);
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
    o << "</table>\n" << RenderSvg(metrics, source_keys, 4);
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
  o << "<script>\nconst T = " << safe << ";\n"
    << "const pick = document.getElementById('pick'), view = document.getElementById('view'),"
    << " meta = document.getElementById('meta');\n"
    << "function esc(s){return String(s).replace(/[&<>\"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','\"':'&quot;'}[c]));}\n"
    << "T.forEach((t,i)=>{const o=document.createElement('option');o.value=i;"
    << "const it=(t.provenance||{}).rl_iteration;o.textContent=(it!==undefined?'iter '+it+' ':'')+t.task_id+' #'+t.trial+"
    << "' reward '+t.reward+' ('+t.end_reason+')';pick.appendChild(o);});\n"
    << "function show(i){const t=T[i];if(!t){view.textContent='no trajectories';return;}"
    << "meta.textContent='turns '+t.turns+', tool calls '+(t.tool_calls||[]).length+', reward '+t.reward;"
    << "view.innerHTML=(t.messages||[]).map(m=>{let h='<div class=\"msg '+esc(m.role)+'\"><span class=\"role\">'+esc(m.role)+"
    << "(m.name?' '+esc(m.name):'')+'</span>\\n'+esc(m.content||'');"
    << "(m.tool_calls||[]).forEach(c=>{h+='\\n&rarr; '+esc(c.function.name)+'('+esc(c.function.arguments)+')';});"
    << "return h+'</div>';}).join('');}\n"
    << "pick.onchange=()=>show(pick.value);show(0);\n</script>\n</body></html>\n";
  return o.str();
}

}  // namespace k2::rl
