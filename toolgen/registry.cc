// Tool registry: corpus/dump import (each file one transaction), near-duplicate marking, keyword
// categories for servers that come without one, and the statistics `k2gym tools stats` prints.
#include "toolgen/registry.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "core/hash.h"
#include "core/progress.h"

namespace k2::toolgen {
namespace {

namespace fs = std::filesystem;

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (unsigned char c : text) {
    if (std::isalnum(c)) {
      cur += static_cast<char>(std::tolower(c));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// One server's worth of tools, whatever file shape it came from.
struct ServerDump {
  std::string key, name, repository, license, category;
  json secondary = json::array();
  json tools = json::array();
  json meta = json::object();
};

std::string StringField(const json& o, const char* k) {
  return o.is_object() && o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : "";
}

Expected<ServerDump> ServerFromObject(const json& o, const std::string& fallback_key, const std::string& where) {
  ServerDump s;
  const json* tools = nullptr;
  if (o.is_array()) {
    tools = &o;
  } else if (o.is_object() && o.contains("tools")) {
    tools = &o["tools"];
  } else if (o.is_object() && o.contains("result") && o["result"].is_object() && o["result"].contains("tools")) {
    tools = &o["result"]["tools"];  // a raw JSON-RPC tools/list response
  } else {
    return InvalidArgument(where + ": expected a server object with \"tools\", a tools/list result or an array of tools");
  }
  if (!tools->is_array()) return InvalidArgument(where + ".tools: expected an array, got " + JsonTypeName(*tools));
  s.tools = *tools;
  s.key = StringField(o, "id");
  if (s.key.empty()) s.key = StringField(o, "server");
  if (s.key.empty()) s.key = fallback_key;
  s.name = StringField(o, "server");
  if (s.name.empty()) s.name = s.key;
  s.repository = StringField(o, "repository");
  s.license = StringField(o, "license");
  s.category = StringField(o, "category");
  if (o.is_object() && o.contains("secondary_categories") && o["secondary_categories"].is_array())
    s.secondary = o["secondary_categories"];
  if (o.is_object() && o.contains("rank_by_usage")) s.meta["rank_by_usage"] = o["rank_by_usage"];
  if (s.category.empty()) {
    std::string text = s.name;
    for (const auto& t : s.tools) text += " " + StringField(t, "name") + " " + StringField(t, "description");
    s.category = GuessCategory(text);
    s.meta["category_guessed"] = true;
  }
  return s;
}

class Importer {
 public:
  Importer(Db* db, const ImportOptions& o, ImportReport* r) : db_(db), opt_(o), rep_(r) {}

  Status File(const std::string& path) {
    K2_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    ++rep_->files;
    const std::string base = fs::path(path).filename().string();
    const std::string stem = fs::path(path).stem().string();
    std::vector<ServerDump> servers;
    if (fs::path(path).extension() == ".jsonl") {
      size_t pos = 0;
      int line_no = 0;
      while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = base + ":" + std::to_string(line_no);
        auto j = ParseJson(line, where);
        if (!j.ok()) {
          rep_->errors.push_back(j.status().message());
          continue;
        }
        auto s = ServerFromObject(*j, stem + ":" + std::to_string(line_no), where);
        if (!s.ok()) {
          rep_->errors.push_back(s.status().message());
          continue;
        }
        servers.push_back(std::move(*s));
      }
    } else {
      auto j = ParseJson(text, path);
      if (!j.ok()) {
        rep_->errors.push_back(j.status().message());
        return Status::Ok();
      }
      auto s = ServerFromObject(*j, stem, base);
      if (!s.ok()) {
        rep_->errors.push_back(s.status().message());
        return Status::Ok();
      }
      servers.push_back(std::move(*s));
    }
    K2_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
    Progress progress("import " + base, static_cast<int64_t>(servers.size()), opt_.progress ? stderr : nullptr);
    for (auto& s : servers) {
      K2_RETURN_IF_ERROR(Server(s, base));
      progress.Add();
    }
    progress.Finish();
    return tx.Commit();
  }

 private:
  Status Server(const ServerDump& s, const std::string& source) {
    ++rep_->servers;
    int64_t server_id = 0;
    {
      K2_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT id FROM tool_servers WHERE key = ?"));
      q.Bind(1, s.key);
      if (q.Step()) server_id = q.Int(0);
      K2_RETURN_IF_ERROR(q.status());
    }
    if (server_id == 0) {
      K2_ASSIGN_OR_RETURN(auto ins, db_->Prepare(
          "INSERT INTO tool_servers(key, name, source, repository, license, category, secondary_categories, meta, "
          "imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
      ins.Bind(1, s.key).Bind(2, s.name).Bind(3, source).Bind(4, s.repository).Bind(5, s.license).Bind(6, s.category);
      ins.Bind(7, CanonicalJson(s.secondary)).Bind(8, CanonicalJson(s.meta)).Bind(9, UnixNow());
      K2_RETURN_IF_ERROR(ins.Run());
      server_id = db_->LastInsertId();
    } else {
      K2_ASSIGN_OR_RETURN(auto up, db_->Prepare(
          "UPDATE tool_servers SET name=?, source=?, repository=?, license=?, category=?, secondary_categories=?, "
          "meta=?, imported_at=? WHERE id=?"));
      up.Bind(1, s.name).Bind(2, source).Bind(3, s.repository).Bind(4, s.license).Bind(5, s.category);
      up.Bind(6, CanonicalJson(s.secondary)).Bind(7, CanonicalJson(s.meta)).Bind(8, UnixNow()).Bind(9, server_id);
      K2_RETURN_IF_ERROR(up.Run());
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < s.tools.size(); ++i) {
      const json& t = s.tools[i];
      ++rep_->tools_seen;
      std::string name = StringField(t, "name");
      if (name.empty()) name = "<unnamed:" + std::to_string(i) + ">";
      if (!seen.insert(name).second) {
        ++rep_->exact_duplicates;
        continue;
      }
      const std::string where = s.key + ".tools[" + std::to_string(i) + "]";
      auto spec = ParseToolSpec(t, where, "mcp:" + s.key);
      std::string reason = spec.ok() ? "" : spec.status().message();
      if (spec.ok()) ++rep_->valid; else ++rep_->invalid;
      int complexity = t.is_object() && t.contains("inputSchema") ? SchemaComplexity(t["inputSchema"]) : 0;
      int64_t tool_id = 0;
      {
        K2_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT id FROM tools WHERE server_id = ? AND name = ?"));
        q.Bind(1, server_id).Bind(2, name);
        if (q.Step()) tool_id = q.Int(0);
        K2_RETURN_IF_ERROR(q.status());
      }
      const char* sql = tool_id == 0
          ? "INSERT INTO tools(server_id, name, description, spec, provenance, category, valid, invalid_reason, "
            "complexity, spec_sha) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
          : "UPDATE tools SET description=?3, spec=?4, provenance=?5, category=?6, valid=?7, invalid_reason=?8, "
            "complexity=?9, spec_sha=?10 WHERE server_id=?1 AND name=?2";
      K2_ASSIGN_OR_RETURN(auto w, db_->Prepare(sql));
      const std::string canon = CanonicalJson(t);
      w.Bind(1, server_id).Bind(2, name).Bind(3, StringField(t, "description")).Bind(4, canon);
      w.Bind(5, "mcp:" + s.key).Bind(6, s.category).Bind(7, spec.ok() ? 1 : 0);
      if (reason.empty()) w.BindNull(8); else w.Bind(8, reason);
      w.Bind(9, complexity).Bind(10, Sha256Hex(canon));
      K2_RETURN_IF_ERROR(w.Run());
      if (tool_id == 0) ++rep_->inserted; else ++rep_->updated;
    }
    return Status::Ok();
  }

  Db* db_;
  const ImportOptions& opt_;
  ImportReport* rep_;
};

// Recomputes duplicate_of over the whole registry: within each group of valid tools sharing a name
// (case-insensitive), a tool whose description is a near-copy of an earlier tool of another server
// points at that earlier tool's root. Blocking by name keeps this O(sum of group sizes squared).
Expected<int64_t> MarkNearDuplicates(Db* db, double threshold) {
  K2_RETURN_IF_ERROR(db->Exec("UPDATE tools SET duplicate_of = NULL"));
  struct Row {
    int64_t id, server;
    std::string description;
    int64_t root = 0;
  };
  std::map<std::string, std::vector<Row>> groups;
  {
    K2_ASSIGN_OR_RETURN(auto q, db->Prepare("SELECT id, server_id, name, description FROM tools WHERE valid = 1 ORDER BY id"));
    while (q.Step()) {
      std::string key;
      for (unsigned char c : q.Text(2)) key += static_cast<char>(std::tolower(c));
      groups[key].push_back({q.Int(0), q.Int(1), q.Text(3)});
    }
    K2_RETURN_IF_ERROR(q.status());
  }
  K2_ASSIGN_OR_RETURN(auto up, db->Prepare("UPDATE tools SET duplicate_of = ? WHERE id = ?"));
  int64_t n = 0;
  for (auto& [name, rows] : groups) {
    for (size_t j = 1; j < rows.size(); ++j) {
      for (size_t i = 0; i < j; ++i) {
        if (rows[i].server == rows[j].server) continue;
        if (WordJaccard(rows[i].description, rows[j].description) < threshold) continue;
        rows[j].root = rows[i].root ? rows[i].root : rows[i].id;
        up.Reset();
        up.Bind(1, rows[j].root).Bind(2, rows[j].id);
        K2_RETURN_IF_ERROR(up.Run());
        ++n;
        break;
      }
    }
  }
  return n;
}

}  // namespace

const Migrations& RegistryMigrations() {
  static const Migrations m{
      "toolgen",
      {R"sql(
CREATE TABLE tool_servers(
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,            -- corpus id, dump "id"/"server", or the dump's file stem
  name TEXT NOT NULL,
  source TEXT NOT NULL,                -- file the server was imported from
  repository TEXT NOT NULL DEFAULT '',
  license TEXT NOT NULL DEFAULT '',
  category TEXT NOT NULL,
  secondary_categories TEXT NOT NULL DEFAULT '[]',
  meta TEXT NOT NULL DEFAULT '{}',
  imported_at REAL NOT NULL);
CREATE TABLE tools(
  id INTEGER PRIMARY KEY,
  server_id INTEGER NOT NULL REFERENCES tool_servers(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  spec TEXT NOT NULL,                  -- the MCP Tool object as imported (canonical JSON)
  provenance TEXT NOT NULL,
  category TEXT NOT NULL,
  valid INTEGER NOT NULL,              -- 1: ParseToolSpec and schema compilation succeeded
  invalid_reason TEXT,
  complexity INTEGER NOT NULL,         -- SchemaComplexity(inputSchema)
  spec_sha TEXT NOT NULL,
  duplicate_of INTEGER REFERENCES tools(id),
  UNIQUE(server_id, name));
CREATE INDEX tools_name ON tools(name);
CREATE INDEX tools_category ON tools(category);
)sql"}};
  return m;
}

json ImportReport::ToJson() const {
  return {{"files", files}, {"servers", servers}, {"tools_seen", tools_seen}, {"inserted", inserted},
          {"updated", updated}, {"valid", valid}, {"invalid", invalid}, {"exact_duplicates", exact_duplicates},
          {"near_duplicates", near_duplicates}, {"errors", errors}};
}

Expected<ImportReport> ImportTools(Db* db, const std::string& path, const ImportOptions& options) {
  K2_RETURN_IF_ERROR(db->Migrate(RegistryMigrations()));
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return NotFound("tools import: " + path + ": no such file or directory");
  std::vector<std::string> files;
  if (fs::is_directory(st)) {
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      auto ext = it->path().extension();
      if (it->is_regular_file() && (ext == ".json" || ext == ".jsonl")) files.push_back(it->path().string());
    }
    if (ec) return IoError("tools import: reading directory " + path + ": " + ec.message());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  ImportReport report;
  Importer imp(db, options, &report);
  for (const auto& f : files) K2_RETURN_IF_ERROR(imp.File(f));
  K2_ASSIGN_OR_RETURN(report.near_duplicates, MarkNearDuplicates(db, options.near_duplicate_jaccard));
  return report;
}

Expected<json> RegistryStats(Db* db) {
  K2_RETURN_IF_ERROR(db->Migrate(RegistryMigrations()));
  json out;
  auto scalar = [&](const char* sql) -> Expected<int64_t> {
    K2_ASSIGN_OR_RETURN(auto q, db->Prepare(sql));
    int64_t v = q.Step() ? q.Int(0) : 0;
    K2_RETURN_IF_ERROR(q.status());
    return v;
  };
  K2_ASSIGN_OR_RETURN(out["servers"], scalar("SELECT COUNT(*) FROM tool_servers"));
  K2_ASSIGN_OR_RETURN(out["tools"], scalar("SELECT COUNT(*) FROM tools"));
  K2_ASSIGN_OR_RETURN(out["valid"], scalar("SELECT COUNT(*) FROM tools WHERE valid = 1"));
  K2_ASSIGN_OR_RETURN(out["invalid"], scalar("SELECT COUNT(*) FROM tools WHERE valid = 0"));
  K2_ASSIGN_OR_RETURN(out["near_duplicates"], scalar("SELECT COUNT(*) FROM tools WHERE duplicate_of IS NOT NULL"));
  K2_ASSIGN_OR_RETURN(out["with_output_schema"], scalar("SELECT COUNT(*) FROM tools WHERE spec LIKE '%\"outputSchema\":%'"));
  out["by_source"] = json::object();
  {
    K2_ASSIGN_OR_RETURN(auto q, db->Prepare(
        "SELECT s.source, COUNT(DISTINCT s.id), COUNT(t.id), COALESCE(SUM(t.valid), 0) FROM tool_servers s "
        "LEFT JOIN tools t ON t.server_id = s.id GROUP BY s.source ORDER BY s.source"));
    while (q.Step()) out["by_source"][q.Text(0)] = {{"servers", q.Int(1)}, {"tools", q.Int(2)}, {"valid", q.Int(3)}};
    K2_RETURN_IF_ERROR(q.status());
  }
  out["by_category"] = json::object();
  {
    K2_ASSIGN_OR_RETURN(auto q, db->Prepare(
        "SELECT category, COUNT(DISTINCT server_id), COUNT(*), SUM(valid) FROM tools GROUP BY category ORDER BY COUNT(*) DESC"));
    while (q.Step()) out["by_category"][q.Text(0)] = {{"servers", q.Int(1)}, {"tools", q.Int(2)}, {"valid", q.Int(3)}};
    K2_RETURN_IF_ERROR(q.status());
  }
  json hist = json::object();
  for (const char* b : {"1", "2-3", "4-7", "8-15", "16-31", "32+"}) hist[b] = 0;
  {
    K2_ASSIGN_OR_RETURN(auto q, db->Prepare("SELECT complexity FROM tools WHERE valid = 1"));
    while (q.Step()) hist[ComplexityBucket(static_cast<int>(q.Int(0)))] = hist[ComplexityBucket(static_cast<int>(q.Int(0)))].get<int64_t>() + 1;
    K2_RETURN_IF_ERROR(q.status());
  }
  out["complexity_histogram"] = hist;
  out["invalid_tools"] = json::array();
  {
    K2_ASSIGN_OR_RETURN(auto q, db->Prepare(
        "SELECT s.key, t.name, t.invalid_reason FROM tools t JOIN tool_servers s ON s.id = t.server_id "
        "WHERE t.valid = 0 ORDER BY s.key, t.name"));
    while (q.Step()) out["invalid_tools"].push_back({{"server", q.Text(0)}, {"tool", q.Text(1)}, {"reason", q.Text(2)}});
    K2_RETURN_IF_ERROR(q.status());
  }
  return out;
}

Expected<std::vector<ToolSpec>> RegistryServerTools(Db* db, const std::string& server_key) {
  K2_RETURN_IF_ERROR(db->Migrate(RegistryMigrations()));
  K2_ASSIGN_OR_RETURN(auto q, db->Prepare(
      "SELECT t.spec, t.provenance, t.valid FROM tool_servers s LEFT JOIN tools t ON t.server_id = s.id "
      "WHERE s.key = ? ORDER BY t.id"));
  q.Bind(1, server_key);
  bool found = false;
  std::vector<ToolSpec> out;
  while (q.Step()) {
    found = true;
    if (q.IsNull(0) || q.Int(2) != 1) continue;
    auto j = ParseJson(q.Text(0), "registry tool spec");
    if (!j.ok()) return Corruption(j.status().message());
    K2_ASSIGN_OR_RETURN(auto spec, ParseToolSpec(*j, server_key + " (registry)", q.Text(1)));
    out.push_back(std::move(spec));
  }
  K2_RETURN_IF_ERROR(q.status());
  if (!found) return NotFound("tool registry: no server " + json(server_key).dump() + " (import it with `k2gym tools import`)");
  return out;
}

int SchemaComplexity(const json& s) {
  if (!s.is_object()) return s.is_boolean() ? 1 : 0;
  int n = 1;
  for (const char* k : {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
    if (s.contains(k) && s[k].is_object())
      for (const auto& [name, sub] : s[k].items()) n += SchemaComplexity(sub);
  for (const char* k : {"allOf", "anyOf", "oneOf", "prefixItems"})
    if (s.contains(k) && s[k].is_array())
      for (const auto& sub : s[k]) n += SchemaComplexity(sub);
  for (const char* k : {"items", "additionalProperties", "additionalItems", "contains", "not", "if", "then", "else",
                        "propertyNames"}) {
    if (!s.contains(k)) continue;
    if (s[k].is_array()) {
      for (const auto& sub : s[k]) n += SchemaComplexity(sub);
    } else if (s[k].is_object()) {
      n += SchemaComplexity(s[k]);
    }
  }
  return n;
}

std::string ComplexityBucket(int c) {
  if (c <= 1) return "1";
  if (c <= 3) return "2-3";
  if (c <= 7) return "4-7";
  if (c <= 15) return "8-15";
  if (c <= 31) return "16-31";
  return "32+";
}

std::string GuessCategory(const std::string& text) {
  // Keyword lists per label of the corpus taxonomy; whole words only. Ties go to the earlier label.
  static const std::vector<std::pair<std::string, std::set<std::string>>> kTable = {
      {"Weather", {"weather", "forecast", "temperature", "climate", "rain", "wind"}},
      {"Cryptocurrency & Blockchain", {"crypto", "bitcoin", "ethereum", "blockchain", "token", "wallet", "defi", "solana", "nft"}},
      {"Database Operations", {"sql", "database", "postgres", "mysql", "mongodb", "sqlite", "supabase", "table", "query"}},
      {"Browser Automation", {"browser", "click", "screenshot", "playwright", "puppeteer", "navigate", "webpage"}},
      {"Web Search & Research", {"search", "research", "google", "bing", "arxiv", "scholar", "wikipedia", "papers"}},
      {"Development Tools", {"github", "git", "code", "repository", "npm", "docker", "lint", "debug", "jira", "commit"}},
      {"File Management", {"file", "files", "directory", "folder", "upload", "download", "drive"}},
      {"Memory Management", {"memory", "remember", "knowledge", "graph", "notes", "recall"}},
      {"Financial Services", {"stock", "finance", "financial", "market", "payment", "invoice", "bank", "trading"}},
      {"News & Media", {"news", "article", "headline", "headlines", "podcast", "rss"}},
      {"Communication Tools", {"email", "slack", "message", "chat", "discord", "telegram", "sms", "whatsapp"}},
      {"Time & Calendar", {"calendar", "event", "schedule", "timezone", "meeting"}},
      {"Travel & Maps", {"map", "maps", "location", "route", "flight", "hotel", "travel", "geocode", "places"}},
      {"Social Media", {"twitter", "tweet", "reddit", "instagram", "linkedin", "youtube", "tiktok"}},
      {"E-commerce", {"product", "shop", "cart", "order", "amazon", "shopify"}},
      {"Health & Fitness", {"health", "fitness", "medical", "workout", "nutrition", "patient"}},
      {"Security & Authentication", {"security", "vulnerability", "auth", "password", "cve", "malware"}},
      {"Gaming", {"game", "games", "player", "chess", "steam", "pokemon"}},
      {"Education", {"learn", "course", "quiz", "student", "education", "lesson"}},
      {"AI/ML Tools", {"llm", "embedding", "embeddings", "ai", "huggingface", "prompt", "inference"}},
      {"Cloud Services", {"aws", "cloud", "azure", "gcp", "kubernetes", "s3"}},
      {"Daily Productivity", {"todo", "task", "tasks", "reminder", "notion", "productivity"}},
      {"Data Analysis & Processing", {"data", "csv", "analysis", "statistics", "chart", "excel", "dataset"}},
      {"Content Creation", {"image", "video", "blog", "content", "design", "generate"}},
      {"Operating System", {"shell", "command", "process", "terminal", "system"}},
      {"API Integration", {"api", "webhook", "endpoint", "integration"}},
  };
  std::map<std::string, int> counts;
  for (const auto& w : Words(text)) counts[w]++;
  std::string best = "Others";
  int best_score = 0;
  for (const auto& [label, words] : kTable) {
    int score = 0;
    for (const auto& w : words) {
      auto it = counts.find(w);
      if (it != counts.end()) score += it->second;
    }
    if (score > best_score) {
      best = label;
      best_score = score;
    }
  }
  return best;
}

double WordJaccard(const std::string& a, const std::string& b) {
  auto wa = Words(a), wb = Words(b);
  std::set<std::string> sa(wa.begin(), wa.end()), sb(wb.begin(), wb.end());
  if (sa.empty() && sb.empty()) return 1.0;
  size_t inter = 0;
  for (const auto& w : sa) inter += sb.count(w);
  return static_cast<double>(inter) / static_cast<double>(sa.size() + sb.size() - inter);
}

}  // namespace k2::toolgen
