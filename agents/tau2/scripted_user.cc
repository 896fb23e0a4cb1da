// The scripted offline user of τ² episodes: follows the task's user scenario without a language model —
// reveals known_info when the agent asks for it, says it does not know unknown_info, answers the
// conditional sentences of task_instructions ("If the agent asks/says X, Y") when the agent's message
// matches X, runs the user tools (dual control) the agent's message names, and reports their results.
#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "agents/tau2/run.h"
#include "agents/user.h"

namespace k2::agents::tau2 {

namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string Content(const json& m) {
  return m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
}

const std::set<std::string>& Stopwords() {
  static const std::set<std::string> s = {
      "the",   "and",   "that",  "this",  "with",  "your",  "you",   "are",   "have",  "for",    "from",  "what",   "when",
      "will",  "would", "could", "please", "about", "they",  "them",  "their", "there", "which",  "were",  "been",   "into",
      "also",  "just",  "only",  "than",  "then",  "want",  "know",  "does",  "dont",  "don't",  "agent", "service", "asks",
      "says",  "tells", "told",  "mention", "say",  "tell",  "should", "can",  "not",   "but",    "all",   "any",    "has",
      "who",   "how",   "why",   "may",   "might", "some",  "more",  "most",  "very",  "currently", "able", "help", "today"};
  return s;
}
// Content words: lower-case alphanumeric runs of 3+ characters (or any run with a digit), minus stopwords.
std::vector<std::string> Keywords(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    bool digit = std::any_of(cur.begin(), cur.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if ((cur.size() >= 3 || digit) && !Stopwords().count(cur) &&
        std::find(out.begin(), out.end(), cur) == out.end())
      out.push_back(cur);
    cur.clear();
  };
  for (char c : Lower(text)) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') cur += c;
    else flush();
  }
  flush();
  return out;
}
size_t Overlap(const std::vector<std::string>& a, const std::set<std::string>& b) {
  size_t n = 0;
  for (auto& w : a) n += b.count(w);
  return n;
}

// Sentences of a free-text field (lines and ". " boundaries), trimmed, empty ones dropped.
std::vector<std::string> Sentences(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t start = 0;
    for (size_t p = 0; p <= line.size(); ++p) {
      bool end = p == line.size() || (line[p] == '.' && (p + 1 == line.size() || line[p + 1] == ' '));
      if (!end) continue;
      std::string s = line.substr(start, p - start + (p < line.size() ? 1 : 0));
      size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
      if (a != std::string::npos) out.push_back(s.substr(a, b - a + 1));
      start = p + 1;
    }
  }
  return out;
}

// The user speaks in the first person: "you are" -> "I am", "your" -> "my", ... (instructions address
// the user in the second person).
std::string FirstPerson(std::string s) {
  static const std::vector<std::pair<std::string, std::string>> subs = {
      {"you are", "I am"}, {"you were", "I was"}, {"you have", "I have"}, {"you don't", "I don't"}, {"you do not", "I do not"},
      {"your", "my"},      {"yourself", "myself"}, {"you", "I"}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool done = false;
    bool boundary = i == 0 || !std::isalpha(static_cast<unsigned char>(s[i - 1]));
    for (auto& [from, to] : subs) {
      if (!boundary || Lower(s.substr(i, from.size())) != from) continue;
      size_t e = i + from.size();
      if (e < s.size() && std::isalpha(static_cast<unsigned char>(s[e]))) continue;
      out += to;
      i = e;
      done = true;
      break;
    }
    if (!done) out += s[i++];
  }
  return out;
}

std::string Capitalized(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

struct Conditional {
  std::vector<std::string> when;  // keywords of the condition
  std::string reply;
  bool used = false;
};

// "If the agent asks for X, say that Y." -> {X's keywords, "Y"}.
std::vector<Conditional> Conditionals(const std::string& instructions) {
  std::vector<Conditional> out;
  for (const std::string& s : Sentences(instructions)) {
    if (Lower(s.substr(0, 3)) != "if ") continue;
    size_t comma = s.find(',');
    if (comma == std::string::npos) continue;
    Conditional c;
    c.when = Keywords(s.substr(3, comma - 3));
    std::string reply = s.substr(comma + 1);
    reply.erase(0, reply.find_first_not_of(' '));
    for (const char* lead : {"say that ", "mention that ", "tell the agent that ", "tell them that ", "say ", "mention ", "explain that "})
      if (Lower(reply).rfind(lead, 0) == 0) {
        reply = reply.substr(std::string(lead).size());
        break;
      }
    if (c.when.empty() || reply.empty()) continue;
    c.reply = Capitalized(FirstPerson(reply));
    out.push_back(std::move(c));
  }
  return out;
}

bool IdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Finds `needle` in `hay` at word boundaries; blanks the match out of `hay` so shorter names inside it
// do not match again.
bool TakeWord(std::string& hay, const std::string& needle) {
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) {
    bool left = p == 0 || !IdentChar(hay[p - 1]);
    bool right = p + needle.size() >= hay.size() || !IdentChar(hay[p + needle.size()]);
    if (left && right) {
      std::fill(hay.begin() + static_cast<long>(p), hay.begin() + static_cast<long>(p + needle.size()), ' ');
      return true;
    }
  }
  return false;
}

// The words of `words` in order in `hay`, at most two other words between consecutive ones ("check
// your status bar" names check_status_bar); the matched words are blanked out of `hay`.
bool TakeWords(std::string& hay, const std::vector<std::string>& words) {
  struct W {
    size_t pos;
    std::string text;
  };
  std::vector<W> ws;
  for (size_t i = 0; i < hay.size();) {
    if (!IdentChar(hay[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < hay.size() && IdentChar(hay[j])) ++j;
    ws.push_back({i, hay.substr(i, j - i)});
    i = j;
  }
  for (size_t start = 0; start < ws.size(); ++start) {
    if (ws[start].text != words[0]) continue;
    std::vector<size_t> hit = {start};
    size_t at = start;
    for (size_t k = 1; k < words.size(); ++k) {
      size_t found = ws.size();
      for (size_t n = at + 1; n < ws.size() && n <= at + 3; ++n)
        if (ws[n].text == words[k]) {
          found = n;
          break;
        }
      if (found == ws.size()) break;
      hit.push_back(found);
      at = found;
    }
    if (hit.size() != words.size()) continue;
    for (size_t h : hit) std::fill(hay.begin() + static_cast<long>(ws[h].pos), hay.begin() + static_cast<long>(ws[h].pos + ws[h].text.size()), ' ');
    return true;
  }
  return false;
}

// A string argument the message gives as key="v", key='v', key=v or key: v.
std::optional<std::string> KeyValue(const std::string& msg, const std::string& key) {
  for (size_t p = msg.find(key); p != std::string::npos; p = msg.find(key, p + 1)) {
    if (p > 0 && IdentChar(msg[p - 1])) continue;
    size_t i = p + key.size();
    while (i < msg.size() && msg[i] == ' ') ++i;
    if (i >= msg.size() || (msg[i] != '=' && msg[i] != ':')) continue;
    ++i;
    while (i < msg.size() && msg[i] == ' ') ++i;
    if (i < msg.size() && (msg[i] == '"' || msg[i] == '\'')) {
      char q = msg[i];
      size_t e = msg.find(q, i + 1);
      if (e != std::string::npos) return msg.substr(i + 1, e - i - 1);
      continue;
    }
    size_t e = i;
    while (e < msg.size() && (IdentChar(msg[e]) || msg[e] == '-' || msg[e] == '.')) ++e;
    if (e > i) return msg.substr(i, e - i);
  }
  return std::nullopt;
}

class ScriptedUser : public UserSim {
 public:
  ScriptedUser(const Task& task, std::vector<toolgen::ToolSpec> tools) : tools_(std::move(tools)) {
    // Longest names first: "toggle_data_saver_mode" must win over "toggle_data".
    std::sort(tools_.begin(), tools_.end(), [](auto& a, auto& b) { return a.name.size() > b.name.size(); });
    const json& ins = task.user_scenario()["instructions"];
    if (ins.is_string()) {
      opening_ = ins.get<std::string>();
      return;
    }
    opening_ = ins["reason_for_call"].get<std::string>();
    if (ins["known_info"].is_string()) facts_ = Sentences(ins["known_info"].get<std::string>());
    revealed_.assign(facts_.size(), false);
    if (ins["unknown_info"].is_string()) unknown_ = Sentences(ins["unknown_info"].get<std::string>());
    if (ins["task_instructions"].is_string()) conditionals_ = Conditionals(ins["task_instructions"].get<std::string>());
  }

  Expected<json> Respond(const json& traj) override {
    // 1. Results of the user's own tool calls: say what the phone showed.
    if (!traj.empty() && traj.back().value("role", "") == "tool" && traj.back().value("requestor", "") == "user") {
      std::string said;
      for (size_t i = traj.size(); i-- > 0 && traj[i].value("role", "") == "tool";)
        said = Content(traj[i]) + (said.empty() ? "" : "\n") + said;
      return Say("I did that. My phone shows:\n" + said);
    }
    for (auto& m : traj)
      for (auto& tc : m.value("tool_calls", json::array()))
        if (tc.value("name", "") == "transfer_to_human_agents") return Say(kUserTransfer);
    if (!opened_) {
      opened_ = true;
      return Say(opening_);
    }
    std::string last;
    for (auto it = traj.rbegin(); it != traj.rend(); ++it)
      if ((*it).value("role", "") == "assistant" && !Content(*it).empty()) {
        last = Content(*it);
        break;
      }
    const std::string low = Lower(last);
    // 2. The phone actions the agent asks for (by tool name, or the name with spaces).
    json calls = ToolCallsFor(last);
    if (!calls.empty()) return json{{"role", "user"}, {"content", ""}, {"tool_calls", calls}};
    std::vector<std::string> words = Keywords(last);
    std::set<std::string> asked(words.begin(), words.end());
    // 3. A conditional instruction whose condition the agent's message meets.
    for (auto& c : conditionals_) {
      if (c.used) continue;
      size_t need = std::min<size_t>(2, c.when.size());
      if (Overlap(c.when, asked) >= need) {
        c.used = true;
        return Say(c.reply);
      }
    }
    // 4. Known facts the agent asks about; unknown ones the user cannot give.
    std::string give;
    for (size_t i = 0; i < facts_.size(); ++i) {
      std::vector<std::string> kw = Keywords(facts_[i]);
      if (!revealed_[i] && Overlap(kw, asked) >= std::min<size_t>(1, kw.size()) && !kw.empty()) {
        revealed_[i] = true;
        give += (give.empty() ? "" : " ") + Capitalized(FirstPerson(facts_[i]));
      }
    }
    if (!give.empty()) return Say(give);
    for (auto& u : unknown_) {
      std::vector<std::string> kw = Keywords(u);
      if (!kw.empty() && Overlap(kw, asked) >= std::min<size_t>(2, kw.size())) return Say("Sorry, I don't know that.");
    }
    // 5. The agent closes; asks for a go-ahead; otherwise the next fact, then stop.
    if (low.find("anything else") != std::string::npos) return Say(kUserStop);
    for (const char* q : {"confirm", "yes/no", "(yes", "would you like", "do you want", "shall i", "should i", "may i", "proceed"})
      if (low.find(q) != std::string::npos) return Say("Yes, please go ahead.");
    for (size_t i = 0; i < facts_.size(); ++i)
      if (!revealed_[i]) {
        revealed_[i] = true;
        return Say(Capitalized(FirstPerson(facts_[i])));
      }
    return Say(kUserStop);
  }

 private:
  static json Say(const std::string& s) { return json{{"role", "user"}, {"content", s}}; }

  json ToolCallsFor(const std::string& message) {
    json calls = json::array();
    if (tools_.empty()) return calls;
    std::string hay = Lower(message);
    for (auto& t : tools_) {
      std::vector<std::string> words;
      std::stringstream parts(t.name);
      for (std::string w; std::getline(parts, w, '_');)
        if (!w.empty()) words.push_back(w);
      if (!TakeWord(hay, t.name) && (words.empty() || !TakeWords(hay, words))) continue;
      json args = json::object();
      bool complete = true;
      const json& props = t.input_schema.value("properties", json::object());
      const json& required = t.input_schema.value("required", json::array());
      for (auto& [key, prop] : props.items()) {
        std::optional<std::string> v = KeyValue(message, key);
        if (!v && prop.contains("enum"))
          for (auto& e : prop["enum"])
            if (e.is_string() && Lower(message).find(Lower(e.get<std::string>())) != std::string::npos) v = e.get<std::string>();
        if (v) args[key] = *v;
        else if (std::find(required.begin(), required.end(), key) != required.end()) complete = false;
      }
      if (!complete) continue;  // it cannot tell what to fill in: no call
      calls.push_back({{"id", "user_call_" + std::to_string(counter_++)}, {"name", t.name}, {"arguments", args}, {"requestor", "user"}});
    }
    return calls;
  }

  std::vector<toolgen::ToolSpec> tools_;
  std::string opening_;
  std::vector<std::string> facts_, unknown_;
  std::vector<bool> revealed_;
  std::vector<Conditional> conditionals_;
  bool opened_ = false;
  int counter_ = 0;
};

}  // namespace

std::unique_ptr<UserSim> MakeScriptedUser(const Task& task, std::vector<toolgen::ToolSpec> user_tools) {
  return std::make_unique<ScriptedUser>(task, std::move(user_tools));
}

}  // namespace k2::agents::tau2
