// The oracle (gold plan + seeded imperfections, transient-failure retries) and the random policy.
// Both are pure functions of (task, session/seed, conversation): episodes replay byte-identically.
#include "agents/scripted_policies.h"

#include <chrono>

#include "agents/episode.h"
#include "core/rng.h"

namespace k2::agents {

namespace {

enum class StepKind { kText, kCall, kBadCall };

struct Step {
  StepKind kind = StepKind::kText;
  std::string text;  // kText
  std::string name;  // kCall / kBadCall
  std::string arguments;
  bool gold = false;  // a gold action: retried on transient/timeout
};

std::string Join(const std::vector<std::string>& xs, const std::string& sep) {
  std::string s;
  for (const auto& x : xs) s += (s.empty() ? "" : sep) + x;
  return s;
}

bool StartsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// A read-only tool outside the plan: synthetic search/report tools take no required arguments and
// change nothing, so calling one with {} is harmless noise.
std::string PickDistractor(const json& tools, const toolgen::synth::Task& t, Rng& rng) {
  std::vector<std::string> names;
  for (const auto& tool : tools) {
    if (!tool.contains("function")) continue;
    const json& f = tool["function"];
    std::string name = f.value("name", "");
    const json params = f.value("parameters", json::object());
    bool no_required = !params.contains("required") || params["required"].empty();
    bool in_plan = false;
    for (const auto& a : t.actions) in_plan |= a.name == name;
    if (no_required && !in_plan && !params.contains("minProperties")) names.push_back(name);
  }
  if (names.empty()) return "";
  return names[rng.Below(names.size())];
}

}  // namespace

struct OracleTaskPolicy::State {
  std::vector<Step> plan;
  size_t next = 0;
  int calls = 0;        // tool-call ids are functions.NAME:calls
  int retries = 0;      // of the current gold call
  int last_step = -1;   // index of the step emitted last
};

Expected<PolicyTurn> OracleTaskPolicy::Act(const PolicyRequest& request) {
  const auto t0 = std::chrono::steady_clock::now();
  if (request.session.empty()) return InvalidArgument("oracle: request.session is empty (the oracle keeps per-episode state)");
  if (!request.task || !request.task->synth)
    return InvalidArgument("oracle: request.task has no synthetic task (the oracle follows a gold plan)");
  const toolgen::synth::Task& task = *request.task->synth;

  std::shared_ptr<State> st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = sessions_[request.session];
    if (!slot) slot = std::make_shared<State>();
    st = slot;
  }
  if (st->plan.empty()) {
    // The episode's imperfections are drawn from (session, task): independent of the turn seeds.
    Rng rng(HashString(request.session) ^ HashString(task.id));
    const bool clarify = rng.Bernoulli(config_.clarify_rate);
    const bool error = rng.Bernoulli(config_.error_rate);
    const bool distract = rng.Bernoulli(config_.distractor_rate);
    const bool violate = rng.Bernoulli(config_.violation_rate) && !task.forbidden.empty();
    std::vector<const toolgen::synth::Action*> gold;
    for (const auto& a : task.actions)
      if (a.requestor == "assistant") gold.push_back(&a);
    const size_t n = gold.size();
    const size_t clarify_at = n ? rng.Below(n) : 0, error_at = n ? rng.Below(n) : 0, distract_at = rng.Below(n + 1);
    // Dual control: a user action (requestor "user") is asked of the user, in plan order, before the
    // assistant action that follows it; `user_before[i]` = user actions preceding gold[i] (i == n: the end).
    std::vector<std::vector<const toolgen::synth::Action*>> user_before(n + 1);
    {
      size_t i = 0;
      for (const auto& a : task.actions) {
        if (a.requestor == "assistant") ++i;
        else user_before[i].push_back(&a);
      }
    }
    std::vector<Step>& p = st->plan;
    p.push_back({.text = "I can help with that. To find your account, could you tell me your name, your customer id "
                         "and your email, and any booking or order details you have?"});
    for (size_t i = 0; i <= n; ++i) {
      if (violate && static_cast<size_t>(task.forbidden[0].after_actions) == i) {
        p.push_back({.kind = StepKind::kCall, .name = task.forbidden[0].name,
                     .arguments = CanonicalJson(task.forbidden[0].arguments)});
      }
      for (const auto* ua : user_before[i]) {
        std::string ask = "Please do this on your phone: " + ua->name;
        if (!ua->arguments.empty()) ask += " with " + CanonicalJson(ua->arguments);
        p.push_back({.text = ask + ". Tell me when it is done."});
      }
      if (distract && distract_at == i) {
        std::string d = PickDistractor(request.tools, task, rng);
        if (!d.empty()) p.push_back({.kind = StepKind::kCall, .name = d, .arguments = "{}"});
      }
      if (i == n) break;
      const auto& a = *gold[i];
      if (clarify && clarify_at == i) {
        p.push_back({.text = "Thank you. I am about to run " + a.name + " with " + CanonicalJson(a.arguments) +
                             ". Do you confirm that I should proceed?"});
      }
      if (error && error_at == i) {
        // A recoverable mistake: an argument of the wrong type (the schema check rejects it before
        // anything runs), or text that is not JSON when the call has no arguments.
        json bad = a.arguments;
        std::string text = "{\"" + a.name + "\": ";
        if (bad.is_object() && !bad.empty()) {
          json& v = bad.begin().value();
          v = v.is_string() ? json(12345) : json("not-a-" + std::string(JsonTypeName(v)));
          text = CanonicalJson(bad);
        }
        p.push_back({.kind = StepKind::kBadCall, .name = a.name, .arguments = text});
      }
      p.push_back({.kind = StepKind::kCall, .name = a.name, .arguments = CanonicalJson(a.arguments), .gold = true});
    }
    std::string final_text = "Everything you asked for is handled.";
    if (!task.communicate_info.empty()) final_text += " For your records: " + Join(task.communicate_info, ", ") + ".";
    if (task.refusal)
      final_text += " Part of your request I could not do: it is against our rules, so I did not make that change.";
    p.push_back({.text = final_text + " Is there anything else I can help you with?"});
  }

  // Retry the last gold call when the service failed transiently (the executor changed nothing).
  const Step* step = nullptr;
  const Message* last = request.messages.empty() ? nullptr : &request.messages.back();
  if (st->last_step >= 0 && st->plan[st->last_step].gold && last && last->role == "tool" &&
      (StartsWith(last->content, "error: transient") || StartsWith(last->content, "error: timeout")) &&
      st->retries < config_.max_retries) {
    ++st->retries;
    step = &st->plan[st->last_step];
  } else if (st->next < st->plan.size()) {
    st->retries = 0;
    st->last_step = static_cast<int>(st->next);
    step = &st->plan[st->next++];
  }
  PolicyTurn turn;
  turn.message.role = "assistant";
  if (!step) {
    turn.message.content = "Thank you for contacting us. ###STOP###";
  } else if (step->kind == StepKind::kText) {
    turn.message.content = step->text;
  } else {
    turn.message.tool_calls.push_back(
        {.id = "functions." + step->name + ":" + std::to_string(st->calls++), .name = step->name, .arguments = step->arguments});
  }
  turn.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return turn;
}

void OracleTaskPolicy::EndSession(const std::string& session) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(session);
}

size_t OracleTaskPolicy::live_sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

namespace {

// A value of the schema's declared type (enum member when there is one); no attempt at validity.
json RandomValue(const json& schema, Rng& rng) {
  if (schema.contains("enum") && schema["enum"].is_array() && !schema["enum"].empty())
    return schema["enum"][rng.Below(schema["enum"].size())];
  std::string type = schema.contains("type") && schema["type"].is_string() ? schema["type"].get<std::string>() : "string";
  if (type == "integer") return rng.Range(-5, 100);
  if (type == "number") return rng.Uniform(0, 1000);
  if (type == "boolean") return rng.Bernoulli(0.5);
  if (type == "array") return json::array();
  if (type == "object") return json::object();
  static const char* kWords[] = {"x", "ABC-1001", "2025-01-01", "someone@example.com", "premium", "42"};
  return kWords[rng.Below(6)];
}

}  // namespace

Expected<PolicyTurn> RandomPolicy::Act(const PolicyRequest& request) {
  Rng rng(request.seed);
  PolicyTurn turn;
  turn.message.role = "assistant";
  std::vector<const json*> fns;
  if (request.tools.is_array())
    for (const auto& t : request.tools)
      if (t.contains("function")) fns.push_back(&t["function"]);
  if (fns.empty() || rng.Bernoulli(text_rate_)) {
    turn.message.content = "Done.";
    return turn;
  }
  const json& f = *fns[rng.Below(fns.size())];
  json args = json::object();
  if (f.contains("parameters") && f["parameters"].contains("properties"))
    for (const auto& [k, s] : f["parameters"]["properties"].items())
      if (rng.Bernoulli(0.7)) args[k] = RandomValue(s, rng);
  turn.message.tool_calls.push_back(
      {.id = "functions." + f.value("name", "") + ":0", .name = f.value("name", ""), .arguments = CanonicalJson(args)});
  return turn;
}

}  // namespace k2::agents
