// A scripted MCP stdio server for the hostile-input tests: replays a file of reply lines, one per request.
// Usage: scripted_mcp_server FILE. FILE holds one reply per line, each prefixed by '@' (the framing of the
// mcp_* files in shared/data/hostile_inputs); for each request read on stdin (a line with an "id") the
// next reply is written with that id spliced in as its first member, byte for byte otherwise, so that
// replies the client must refuse (1e999, 200k levels of nesting) reach it unchanged. Notifications get
// no reply; once the script is spent, requests go unanswered until stdin closes.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: scripted_mcp_server FILE\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::cerr << "scripted_mcp_server: cannot open " << argv[1] << "\n";
    return 2;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> replies;
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty() && line[0] == '@') replies.push_back(line.substr(1));
  size_t next = 0;
  while (std::getline(std::cin, line)) {
    // Requests come from our own client: well-formed and small.
    auto m = nlohmann::json::parse(line, nullptr, false);
    if (m.is_discarded() || !m.is_object() || !m.contains("id") || next >= replies.size()) continue;
    const std::string& r = replies[next++];
    std::string out = r.size() > 1 && r[0] == '{' ? "{\"id\":" + m["id"].dump() + "," + r.substr(1) : r;
    out += "\n";
    for (size_t off = 0; off < out.size();) {
      ssize_t n = write(1, out.data() + off, out.size() - off);
      if (n <= 0) return 1;
      off += static_cast<size_t>(n);
    }
  }
  return 0;
}
