// BFCL GorillaFileSystem methods that read files or copy trees: find, wc, sort, grep, du, tail, diff,
// rmdir and cp, with BFCL's result keys and error texts, and the directory-entry order helpers (the
// basic navigation and writes live in eval/fc_backend.cc).
#include <algorithm>
#include <cstdio>

#include "eval/fc/method.h"
#include "rewards/text_util.h"

namespace k2::eval::fc {

std::vector<std::string> FsNames(const json& dir) {
  const json& c = dir["contents"];
  std::vector<std::string> out;
  if (dir.contains("_order") && dir["_order"].is_array() && dir["_order"].size() == c.size()) {
    for (auto& k : dir["_order"])
      if (k.is_string() && c.contains(k.get<std::string>())) out.push_back(k);
    if (out.size() == c.size()) return out;
    out.clear();
  }
  for (auto& [k, v] : c.items()) out.push_back(k);
  return out;
}

void FsAdd(json& dir, const std::string& name, json node) {
  json order = json::array();
  for (auto& k : FsNames(dir))
    if (k != name) order.push_back(k);
  order.push_back(name);
  dir["contents"][name] = std::move(node);
  dir["_order"] = std::move(order);
}

void FsRemove(json& dir, const std::string& name) {
  json order = json::array();
  for (auto& k : FsNames(dir))
    if (k != name) order.push_back(k);
  dir["contents"].erase(name);
  dir["_order"] = std::move(order);
}

namespace {

// Python's str.splitlines() for \n, \r\n and \r.
std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      out.push_back(cur);
      cur.clear();
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      cur += s[i];
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "\n" : "") + v[i];
  return out;
}

// A file of the current directory, or nullptr.
const json* FileHere(json& s, const std::vector<std::string>& cwd, const std::string& name) {
  json& c = (*FsDir(s, cwd))["contents"];
  auto it = c.find(name);
  if (it == c.end() || (*it)["type"] != "file") return nullptr;
  return &*it;
}

// BFCL's _navigate_to_directory: ".", "/", or a relative / absolute path of directories.
json* Navigate(json& s, const std::vector<std::string>& cwd, const std::string& path, std::string* err) {
  if (path == ".") return FsDir(s, cwd);
  if (path == "/") return FsDir(s, {});
  json* d = FsDir(s, path[0] == '/' ? std::vector<std::string>{} : cwd);
  std::string p = path;
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  size_t b = 0;
  while (true) {
    size_t e = p.find('/', b);
    std::string part = p.substr(b, e == std::string::npos ? std::string::npos : e - b);
    json* next = nullptr;
    if (part == ".") next = d;
    else if ((*d)["contents"].contains(part) && (*d)["contents"][part]["type"] == "directory") next = &(*d)["contents"][part];
    if (!next) {
      *err = "cd: '" + path + "': No such file or directory";
      return nullptr;
    }
    d = next;
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return d;
}

void FindIn(const json& dir, const std::string& base, const std::string* name, json& out) {
  for (auto& k : FsNames(dir)) {
    const json& v = dir["contents"][k];
    std::string p = base + "/" + k;
    if (!name || k.find(*name) != std::string::npos) out.push_back(p);
    if (v["type"] == "directory") FindIn(v, p, name, out);
  }
}

int64_t SizeOf(const json& node) {
  if (node["type"] == "file") return static_cast<int64_t>(node["content"].get<std::string>().size());
  int64_t n = 0;
  for (auto& [k, v] : node["contents"].items()) n += SizeOf(v);
  return n;
}

// A directory copy shares nothing here; Python's copies its entries dict only (nested files stay shared).
Result Copy(json& s, const std::vector<std::string>& cwd, const json& a) {
  std::string src = a["source"], dst = a["destination"];
  json& d = *FsDir(s, cwd);
  json& c = d["contents"];
  if (!c.contains(src)) return Err("cp: cannot copy '" + src + "': No such file or directory");
  if (dst.find('/') != std::string::npos) return Err("cp: path not allowed in destination. Provide only a file or directory name.");
  json item = c[src];
  bool is_dir = item["type"] == "directory";
  if (c.contains(dst)) {
    if (c[dst]["type"] != "directory") return Err("cp: cannot copy '" + src + "' to '" + dst + "': Not a directory");
    // BFCL's "File exists" test looks for "dst/src" among the names and never fires: adding an existing
    // name raises instead (Directory._add_file / _add_directory).
    if (c[dst]["contents"].contains(src))
      return Err(std::string(is_dir ? "Directory" : "File") + " '" + src + "' already exists in directory '" + dst + "'.");
    FsAdd(c[dst], src, std::move(item));
    return json{{"result", "'" + src + "' copied to '" + dst + "/" + src + "'"}};
  }
  FsAdd(d, dst, std::move(item));
  return json{{"result", "'" + src + "' copied to '" + dst + "'"}};
}

}  // namespace

std::vector<Method> FileSystemMoreMethods() {
  return {
      {"GorillaFileSystem", "find", "Find files and directories whose name contains `name`, below `path`.",
       {{"path", "string", "Directory to search (default the current one).", false}, {"name", "string", "Part of the name to match.", false}},
       [](json& s, std::vector<std::string>& cwd, const json& a) -> Result {
         std::string path = a.value("path", std::string("."));
         std::string err;
         json* d = Navigate(s, cwd, path, &err);
         if (!d) return Err("find:" + err.substr(3));
         json out = json::array();
         std::string name, base = path;
         while (!base.empty() && base.back() == '/') base.pop_back();
         bool has_name = a.contains("name") && a["name"].is_string();
         if (has_name) name = a["name"];
         FindIn(*d, base, has_name ? &name : nullptr, out);
         return json{{"matches", out}};
       }},
      {"GorillaFileSystem", "wc", "Count lines (l), words (w) or characters (c) of a file.",
       {{"file_name", "string", "The file.", true}, {"mode", "string", "l, w or c (default l).", false}},
       [](json& s, std::vector<std::string>& cwd, const json& a) -> Result {
         std::string mode = a.value("mode", std::string("l")), f = a["file_name"];
         if (mode != "l" && mode != "w" && mode != "c") return Err("wc: invalid mode '" + mode + "'");
         const json* file = FileHere(s, cwd, f);
         if (!file) return Err("wc: " + f + ": No such file or directory");
         std::string content = (*file)["content"];
         if (mode == "l") return json{{"count", SplitLines(content).size()}, {"type", "lines"}};
         if (mode == "w") {
           size_t words = 0;
           bool in = false;
           for (char ch : content) {
             bool sp = std::isspace(static_cast<unsigned char>(ch)) != 0;
             if (!sp && !in) ++words;
             in = !sp;
           }
           return json{{"count", words}, {"type", "words"}};
         }
         return json{{"count", rewards::DecodeUtf8(content).size()}, {"type", "characters"}};
       }},
      {"GorillaFileSystem", "sort", "The lines of a file, sorted.", {{"file_name", "string", "The file.", true}},
       [](json& s, std::vector<std::string>& cwd, const json& a) -> Result {
         std::string f = a["file_name"];
         const json* file = FileHere(s, cwd, f);
         if (!file) return Err("sort: " + f + ": No such file or directory");
         auto lines = SplitLines((*file)["content"]);
         std::sort(lines.begin(), lines.end());
         return json{{"sorted_content", Join(lines)}};
       }},
      {"GorillaFileSystem", "grep", "Lines of a file that contain a pattern.",
       {{"file_name", "string", "The file.", true}, {"pattern", "string", "Text to look for.", true}},
       [](json& s, std::vector<std::string>& cwd, const json& a) -> Result {
         std::string f = a["file_name"], pat = a["pattern"];
         const json* file = FileHere(s, cwd, f);
         if (!file) return Err("grep: " + f + ": No such file or directory");
         json out = json::array();
         for (auto& l : SplitLines((*file)["content"]))
           if (l.find(pat) != std::string::npos) out.push_back(l);
         return json{{"matching_lines", out}};
       }},
      {"GorillaFileSystem", "du", "Disk usage of the current directory.",
       {{"human_readable", "boolean", "Sizes in B / KB / MB (default false).", false}},
       [](json& s, std::vector<std::string>& cwd, const json& a) -> Result {
         int64_t n = SizeOf(*FsDir(s, cwd));
         if (!a.value("human_readable", false)) return json{{"disk_usage", std::to_string(n) + " bytes"}};
         double x = static_cast<double>(n);
         char buf[64];
         for (const char* unit : {"B", "KB", "MB", "GB", "TB"}) {
           if (x < 1024) {
             std::snprintf(buf, sizeof buf, "%.2f %s", x, unit);
             return json{{"disk_usage", buf}};
           }
           x /= 1024;
         }
         std::snprintf(buf, sizeof buf, "%.2f PB", x);
         return json{{"disk_usage", buf}};
       }},
      {"GorillaFileSystem", "tail", "The last lines of a file.",
       {{"file_name", "string", "The file.", true}, {"lines", "integer", "How many lines (default 10).", false}},
       [](json& s, std::vector<std::string>& cwd, const json& a) -> Result {
         std::string f = a["file_name"];
         const json* file = FileHere(s, cwd, f);
         if (!file) return Err("tail: " + f + ": No such file or directory");
         auto lines = SplitLines((*file)["content"]);
         int64_t n = a.value("lines", int64_t{10}), size = static_cast<int64_t>(lines.size());
         if (n > size) n = size;
         // Python's content[-n:]: n == 0 keeps everything, a negative n drops the first -n lines.
         int64_t start = n > 0 ? size - n : n == 0 ? 0 : std::min(-n, size);
         return json{{"last_lines", Join(std::vector<std::string>(lines.begin() + start, lines.end()))}};
       }},
      {"GorillaFileSystem", "diff", "Line-by-line differences of two files.",
       {{"file_name1", "string", "First file.", true}, {"file_name2", "string", "Second file.", true}},
       [](json& s, std::vector<std::string>& cwd, const json& a) -> Result {
         std::string f1 = a["file_name1"], f2 = a["file_name2"];
         const json* x = FileHere(s, cwd, f1);
         const json* y = FileHere(s, cwd, f2);
         if (!x || !y) return Err("diff: " + f1 + " or " + f2 + ": No such file or directory");
         auto l1 = SplitLines((*x)["content"]), l2 = SplitLines((*y)["content"]);
         std::vector<std::string> d;
         for (size_t i = 0; i < std::min(l1.size(), l2.size()); ++i)
           if (l1[i] != l2[i]) d.push_back("- " + l1[i] + "\n+ " + l2[i]);
         return json{{"diff_lines", Join(d)}};
       }},
      {"GorillaFileSystem", "rmdir", "Remove an empty directory of the current directory.", {{"dir_name", "string", "The directory.", true}},
       [](json& s, std::vector<std::string>& cwd, const json& a) -> Result {
         std::string n = a["dir_name"];
         json& c = (*FsDir(s, cwd))["contents"];
         if (!c.contains(n)) return Err("rmdir: cannot remove '" + n + "': No such file or directory");
         if (c[n]["type"] != "directory") return Err("rmdir: cannot remove '" + n + "': Not a directory");
         if (!c[n]["contents"].empty()) return Err("rmdir: cannot remove '" + n + "': Directory not empty");
         FsRemove(*FsDir(s, cwd), n);
         return json{{"result", "'" + n + "' removed"}};
       }},
      {"GorillaFileSystem", "cp", "Copy a file or directory of the current directory (into a directory, or to a new name).",
       {{"source", "string", "What to copy.", true}, {"destination", "string", "A directory to copy into, or the new name.", true}}, Copy},
  };
}

}  // namespace k2::eval::fc
