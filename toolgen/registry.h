// The tool registry in the SQLite store: imports MCP tools/list dumps and corpora (one server per JSON
// line, like ../shared/data/mcp_servers.jsonl), dedupes, categorizes, and reports statistics.
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "core/store.h"
#include "toolgen/tool_spec.h"

namespace k2::toolgen {

// Tables tool_servers and tools, module "toolgen" in schema_versions. Apply with db->Migrate().
const Migrations& RegistryMigrations();

struct ImportOptions {
  // Two tools of different servers with the same name whose description word sets have a Jaccard
  // similarity >= this are near-duplicates (the later one points at the earlier through duplicate_of).
  double near_duplicate_jaccard = 0.9;
  bool progress = false;  // a progress line on stderr
};

struct ImportReport {
  int64_t files = 0, servers = 0, tools_seen = 0, inserted = 0, updated = 0, valid = 0, invalid = 0;
  int64_t exact_duplicates = 0;  // the same (server, name) twice within one import: the first is kept
  int64_t near_duplicates = 0;   // in the whole registry after this import
  std::vector<std::string> errors;  // lines or files that could not be read at all ("a.jsonl:17: ...")
  json ToJson() const;
};

// Imports a corpus file (.jsonl: one server object per line with "tools"), a tools/list dump (.json:
// {"tools": [...]}, a JSON-RPC response with result.tools, an array of tools, or a server object with
// "tools"), or a directory of such files (recursively, sorted). Every tool is stored: a tool whose spec
// or schema is malformed is kept with valid=0 and the reason. Re-importing updates in place (same server
// key + tool name). Each file is one transaction. Errors: IoError/NotFound for an unreadable path;
// unparsable lines are listed in report.errors and skipped.
Expected<ImportReport> ImportTools(Db* db, const std::string& path, const ImportOptions& options = {});

// Counts by source and category, validity, near-duplicates, schema-complexity histogram, and every
// invalid schema with its reason. Shape documented in docs/tools.md.
Expected<json> RegistryStats(Db* db);

// The valid, non-duplicate tools of one server (by key), as ToolSpecs; NotFound for an unknown key.
Expected<std::vector<ToolSpec>> RegistryServerTools(Db* db, const std::string& server_key);

// Number of subschemas in a schema (the root counts 1): a size measure for the complexity histogram.
int SchemaComplexity(const json& schema);
// Histogram bucket of a complexity: "1", "2-3", "4-7", "8-15", "16-31", "32+".
std::string ComplexityBucket(int complexity);
// A category (one of the corpus's labels) for a server without one, from keywords in its name and tool
// descriptions; "Others" when nothing matches.
std::string GuessCategory(const std::string& text);
// Jaccard similarity of the lower-cased alphanumeric word sets of two texts (1 for two empty texts).
double WordJaccard(const std::string& a, const std::string& b);

}  // namespace k2::toolgen
