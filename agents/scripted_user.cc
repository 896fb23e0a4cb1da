// ScriptedUser: keyword rules over the agent's last message, the task's scenario texts in the first
// person, a seeded choice of phrasing. Deliberately simple: it is the reference user of the benches.
#include "agents/scripted_user.h"

#include <algorithm>
#include <cctype>

#include "agents/episode.h"
#include "core/rng.h"

namespace k2::agents {

std::string FirstPerson(const std::string& s) {
  static const std::pair<const char*, const char*> kSwaps[] = {
      {"You are ", "I am "}, {"you are ", "I am "}, {"You do not ", "I do not "}, {"you do not ", "I do not "},
      {"Your ", "My "},      {"your ", "my "},      {"You ", "I "},              {" you ", " I "}};
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    bool swapped = false;
    for (const auto& [from, to] : kSwaps) {
      size_t n = std::char_traits<char>::length(from);
      if (s.compare(i, n, from) == 0) {
        out += to;
        i += n;
        swapped = true;
        break;
      }
    }
    if (!swapped) out += s[i++];
  }
  return out;
}

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool HasAny(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words)
    if (s.find(w) != std::string::npos) return true;
  return false;
}

class ScriptedSession : public UserSession {
 public:
  ScriptedSession(const toolgen::synth::Task& task, uint64_t seed, ScriptedUserConfig config,
                  std::vector<std::string> own_tools)
      : task_(task), rng_(seed), config_(config), own_tools_(std::move(own_tools)) {}

  Expected<UserTurn> Respond(const std::vector<Message>& conversation) override {
    UserTurn out;
    out.message.role = "user";
    if (turns_ > 0 && turns_ + 1 < config_.max_user_turns && OwnToolRequest(conversation, out)) {
      ++turns_;
      return out;
    }
    out.message.content = Next(conversation);
    ++turns_;
    return out;
  }

 private:
  static const Message* LastAssistant(const std::vector<Message>& conversation) {
    for (auto it = conversation.rbegin(); it != conversation.rend(); ++it)
      if (it->role == "assistant") return &*it;
    return nullptr;
  }

  // Dual control: the agent asked the user to run tools of the user's own (named in its message): the
  // user runs each named tool once, with the arguments of the task's user action of that name ({} when
  // the plan has none), in the order the message names them.
  bool OwnToolRequest(const std::vector<Message>& conversation, UserTurn& out) {
    if (own_tools_.empty()) return false;
    const Message* last = LastAssistant(conversation);
    if (!last || !last->tool_calls.empty()) return false;
    const std::string text = Lower(last->content);
    std::vector<std::pair<size_t, const std::string*>> named;
    for (const auto& tool : own_tools_)
      if (size_t at = text.find(Lower(tool)); at != std::string::npos) named.push_back({at, &tool});
    if (named.empty()) return false;
    std::sort(named.begin(), named.end());
    std::string done;
    for (const auto& [at, tool] : named) {
      json args = json::object();
      for (const auto& a : task_.actions)
        if (a.requestor == "user" && a.name == *tool) {
          args = a.arguments;
          break;
        }
      out.tool_calls.push_back({.id = "user." + *tool + ":" + std::to_string(calls_++), .name = *tool,
                                .arguments = CanonicalJson(args)});
      done += (done.empty() ? "" : ", ") + *tool;
    }
    out.message.content = std::string(Pick({"Okay, done: ", "Done. I ran ", "I did it: "})) + done + " on my phone.";
    return true;
  }

  const char* Pick(std::initializer_list<const char*> xs) { return xs.begin()[rng_.Below(xs.size())]; }

  std::string Next(const std::vector<Message>& conversation) {
    if (turns_ == 0) return std::string(Pick({"Hi. ", "Hello. ", "Good day. "})) + FirstPerson(task_.reason_for_call);
    if (turns_ + 1 >= config_.max_user_turns) return std::string("I have to go now. ") + kUserStop;
    const Message* last = nullptr;
    for (auto it = conversation.rbegin(); it != conversation.rend(); ++it)
      if (it->role == "assistant") {
        last = &*it;
        break;
      }
    const std::string text = last ? Lower(last->content) : "";
    if (HasAny(text, {"transfer you", "human agent", "transfer to"})) return std::string("Okay. ") + kUserTransfer;
    const bool question = text.find('?') != std::string::npos;
    if (question && HasAny(text, {"confirm", "proceed", "shall i", "should i", "go ahead"})) {
      bool names_other_tool = false, names_gold = false;
      for (const auto& a : task_.actions) names_gold |= text.find(Lower(a.name)) != std::string::npos;
      for (const auto& f : task_.forbidden) names_other_tool |= text.find(Lower(f.name)) != std::string::npos;
      if (names_other_tool && !names_gold) return "No, I did not ask for that. Please do not do it.";
      return Pick({"Yes, please proceed.", "Yes, go ahead.", "Yes, I confirm."});
    }
    if (question && HasAny(text, {" id", "email", "name", "details", "which", "provide", "tell me", "remember"})) {
      if (!revealed_known_) {
        revealed_known_ = true;
        return std::string(Pick({"Sure. ", "Of course. ", ""})) + FirstPerson(task_.known_info);
      }
      if (!task_.unknown_info.empty()) return FirstPerson(task_.unknown_info);
      return "I have given you everything I know.";
    }
    if (question && !HasAny(text, {"anything else"})) return "I am not sure. Please just handle my request as I described.";
    return std::string(Pick({"Thank you, that is all. ", "Great, thanks. ", "Thanks for your help. "})) + kUserStop;
  }

  const toolgen::synth::Task& task_;
  Rng rng_;
  ScriptedUserConfig config_;
  std::vector<std::string> own_tools_;  // names of the user's own tools (dual control)
  int turns_ = 0;
  int calls_ = 0;
  bool revealed_known_ = false;
};

}  // namespace

Expected<std::unique_ptr<UserSession>> ScriptedUser::Start(const EpisodeTask& task, uint64_t seed,
                                                          const std::vector<toolgen::ToolSpec>& user_tools) {
  std::vector<std::string> own;
  for (const auto& t : user_tools) own.push_back(t.name);
  if (!task.synth) return InvalidArgument("scripted user: task " + task.id + " has no user scenario (not a synthetic task)");
  // The session refers to the task; EpisodeTask outlives the episode (RunEpisode holds a shared_ptr).
  return std::unique_ptr<UserSession>(std::make_unique<ScriptedSession>(*task.synth, seed, config_, std::move(own)));
}

}  // namespace k2::agents
