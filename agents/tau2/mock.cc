// The mock domain (τ²-bench's small test domain): task tools for the agent, a notification inbox the
// user controls (dual control), and the helpers its tasks name in initialization actions and assertions.
#include "agents/tau2/domain.h"

namespace k2::agents::tau2::detail {

namespace {

json CreateTask(State& s, const json& a) {
  std::string uid = StrArg(a, "user_id");
  if (!s.db["users"].contains(uid)) Fail("User " + uid + " not found");
  std::string tid = "task_" + std::to_string(s.db["tasks"].size() + 1);
  json desc = a.contains("description") ? a["description"] : json(nullptr);
  json t = {{"task_id", tid}, {"title", StrArg(a, "title")}, {"description", desc}, {"status", "pending"}};
  s.db["tasks"][tid] = t;
  s.db["users"][uid]["tasks"].push_back(tid);
  return t;
}

json UpdateTaskStatus(State& s, const json& a) {
  std::string tid = StrArg(a, "task_id");
  if (!s.db["tasks"].contains(tid)) Fail("Task " + tid + " not found");
  std::string st = StrArg(a, "status");
  if (st != "pending" && st != "completed") Fail("status must be 'pending' or 'completed'");
  s.db["tasks"][tid]["status"] = st;
  return s.db["tasks"][tid];
}

json DismissNotification(State& s, const json& a) {
  std::string id = StrArg(a, "notification_id");
  if (!s.user_db["notifications"].contains(id)) Fail("Notification " + id + " not found");
  s.user_db["notifications"][id]["status"] = "read";
  return "Notification " + id + " dismissed";
}

}  // namespace

void AddMock(Domain& d) {
  d.tools = {
      {"create_task", "Create a new task for a user.",
       Params({{"user_id", StrProp("The user's id.")}, {"title", StrProp("Task title.")}, {"description", StrProp("Optional description.")}},
              {"user_id", "title"}),
       true, CreateTask},
      {"get_users", "List every user.", Params({}, {}), false,
       [](State& s, const json&) {
         json out = json::array();
         for (auto& [k, u] : s.db["users"].items()) out.push_back(u);
         return out;
       }},
      {"update_task_status", "Set the status of a task.",
       Params({{"task_id", StrProp("The task's id.")}, {"status", EnumProp("New status.", {"pending", "completed"})}}, {"task_id", "status"}),
       true, UpdateTaskStatus},
      {"transfer_to_human_agents", "Transfer the user to a human agent with a summary of the issue.",
       Params({{"summary", StrProp("A summary of the user's issue.")}}, {"summary"}), false,
       [](State&, const json&) -> json { return "Transfer successful"; }},
  };
  d.user_tools = {
      {"check_notifications", "List the notifications on your device.", Params({}, {}), false,
       [](State& s, const json&) {
         json out = json::array();
         for (auto& [k, n] : s.user_db["notifications"].items()) out.push_back(n);
         return out;
       }},
      {"dismiss_notification", "Mark a notification as read.", Params({{"notification_id", StrProp("The notification's id.")}}, {"notification_id"}),
       true, DismissNotification},
  };
  d.agent_functions["assert_number_of_tasks"] = [](State& s, const json& a) -> json {
    std::string uid = StrArg(a, "user_id");
    if (!s.db["users"].contains(uid)) Fail("User " + uid + " not found");
    return static_cast<int64_t>(s.db["users"][uid]["tasks"].size()) == Arg(a, "expected_number").get<int64_t>();
  };
  d.agent_functions["assert_task_status"] = [](State& s, const json& a) -> json {
    std::string tid = StrArg(a, "task_id");
    if (!s.db["tasks"].contains(tid)) Fail("Task " + tid + " not found");
    return s.db["tasks"][tid]["status"] == StrArg(a, "expected_status");
  };
  d.user_functions["add_notification"] = [](State& s, const json& a) -> json {
    std::string id = StrArg(a, "notification_id");
    json n = {{"notification_id", id}, {"message", StrArg(a, "message")}, {"status", "unread"},
              {"task_id", a.contains("task_id") ? a["task_id"] : json(nullptr)}};
    s.user_db["notifications"][id] = n;
    return n;
  };
  d.user_functions["assert_notification_status"] = [](State& s, const json& a) -> json {
    std::string id = StrArg(a, "notification_id");
    if (!s.user_db["notifications"].contains(id)) Fail("Notification " + id + " not found");
    return s.user_db["notifications"][id]["status"] == StrArg(a, "expected_status");
  };
}

}  // namespace k2::agents::tau2::detail
