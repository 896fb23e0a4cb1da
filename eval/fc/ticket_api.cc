// BFCL's TicketAPI: a queue of support tickets and a logged-in user, loaded from a scenario as BFCL's
// _load_scenario loads it, with BFCL's result dicts and error texts.
#include <set>

#include "eval/fc/method.h"
#include "rewards/ast_match.h"

namespace k2::eval::fc {
namespace {

json& St(json& s) { return s["TicketAPI"]; }

// Ticket ids are compared with == and never used as numbers, so any JSON value works as in Python
// (BFCL's own answers close 'ticket_001', a string id of a scenario).
constexpr const char* kTicketId = "any";

// _find_ticket: the first ticket whose "id" equals `id` (Python ==, so 3.0 finds 3).
json* Find(json& st, const json& id) {
  for (auto& t : st["ticket_queue"])
    if (At(t, "id") == id) return &t;
  return nullptr;
}

json NotFound(const json& id) { return {{"error", "Ticket with ID " + PyStr(id) + " not found."}}; }

}  // namespace

Expected<json> LoadTicketApi(const json& c, const std::string& w) {
  json st = {{"ticket_queue", json::array()}, {"ticket_counter", 1}, {"current_user", nullptr}};
  for (const char* k : {"ticket_queue", "ticket_counter", "current_user"})
    if (c.contains(k)) st[k] = c[k];
  if (!st["ticket_queue"].is_array()) return InvalidArgument(w + ".ticket_queue: expected array of tickets");
  // Tickets are not checked (BFCL's scenarios have tickets without "created_by" or "id"): a method that
  // reaches a missing key fails there, as in Python.
  if (!st["ticket_counter"].is_number_integer()) return InvalidArgument(w + ".ticket_counter: expected integer");
  return st;
}

std::vector<Method> TicketApiMethods() {
  const char* C = "TicketAPI";
  return {
      {C, "create_ticket", "Create a ticket in the system and queue it.",
       {{"title", "string", "Title of the ticket.", true},
        {"description", "string", "Description of the ticket.", false},
        {"priority", "integer", "Priority of the ticket, from 1 to 5.", false}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["current_user"])) return json{{"error", "User not authenticated. Please log in to create a ticket."}};
         json priority = a.contains("priority") ? a["priority"] : json(1);
         if (priority.get<double>() < 1 || priority.get<double>() > 5) return json{{"error", "Invalid priority. Priority must be between 1 and 5."}};
         json ticket = {{"id", st["ticket_counter"]},           {"title", a["title"]},
                        {"description", a.value("description", "")}, {"status", "Open"},
                        {"priority", priority},                    {"created_by", st["current_user"]}};
         st["ticket_queue"].push_back(ticket);
         st["ticket_counter"] = st["ticket_counter"].get<int64_t>() + 1;
         return ticket;
       }},
      {C, "get_ticket", "Get a specific ticket by its ID.", {{"ticket_id", kTicketId, "ID of the ticket to retrieve.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json* t = Find(St(s), a["ticket_id"]);
         if (!t) return NotFound(a["ticket_id"]);
         return *t;
       }},
      {C, "close_ticket", "Close a ticket.", {{"ticket_id", kTicketId, "ID of the ticket to be closed.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json* t = Find(St(s), a["ticket_id"]);
         std::string id = PyStr(a["ticket_id"]);
         if (!t) return NotFound(a["ticket_id"]);
         if (At(*t, "status") == "Closed") return json{{"error", "Ticket with ID " + id + " is already closed."}};
         (*t)["status"] = "Closed";
         return json{{"status", "Ticket " + id + " has been closed successfully."}};
       }},
      {C, "resolve_ticket", "Resolve a ticket with a resolution.",
       {{"ticket_id", kTicketId, "ID of the ticket to be resolved.", true}, {"resolution", "string", "Resolution details for the ticket.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json* t = Find(St(s), a["ticket_id"]);
         std::string id = PyStr(a["ticket_id"]);
         if (!t) return NotFound(a["ticket_id"]);
         if (At(*t, "status") == "Resolved") return json{{"error", "Ticket with ID " + id + " is already resolved."}};
         (*t)["status"] = "Resolved";
         (*t)["resolution"] = a["resolution"];
         return json{{"status", "Ticket " + id + " has been resolved successfully."}};
       }},
      {C, "edit_ticket", "Modify the details of an existing ticket.",
       {{"ticket_id", kTicketId, "ID of the ticket to be changed.", true}, {"updates", "dict", "Fields to update: title, description, status, priority.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json* t = Find(St(s), a["ticket_id"]);
         if (!t) return NotFound(a["ticket_id"]);
         static const std::set<std::string> kValid = {"title", "description", "status", "priority"};
         std::string invalid;
         for (auto& [k, v] : a["updates"].items())
           if (!kValid.count(k)) invalid += (invalid.empty() ? "" : ", ") + k;  // Python prints a set: order not fixed
         if (!invalid.empty()) return json{{"error", "Invalid fields for update: " + invalid}};
         for (auto& [k, v] : a["updates"].items())
           if (!v.is_null()) (*t)[k] = v;
         return json{{"status", "Ticket " + PyStr(a["ticket_id"]) + " has been updated successfully."}};
       }},
      {C, "ticket_login", "Authenticate a user for ticket system.",
       {{"username", "string", "Username of the user.", true}, {"password", "string", "Password of the user.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (Truthy(a["username"]) && Truthy(a["password"])) {
           St(s)["current_user"] = a["username"];
           return json{{"success", true}};
         }
         return json{{"success", false}};
       }},
      {C, "ticket_get_login_status", "Get the login status of the currently authenticated user.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result { return json{{"login_status", Truthy(St(s)["current_user"])}}; }},
      {C, "logout", "Log out the current user.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         json& st = St(s);
         if (!Truthy(st["current_user"])) return json{{"success", false}};
         st["current_user"] = nullptr;
         return json{{"success", true}};
       }},
      {C, "get_user_tickets", "Get all tickets created by the current user, optionally filtered by status.",
       {{"status", "string", "Status to filter tickets by.", false}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["current_user"])) return json::array({{{"error", "User not authenticated. Please log in to view tickets."}}});
         json status = a.value("status", json());
         std::string want = status.is_string() ? rewards::UnicodeLower(status.get<std::string>()) : "";
         json out = json::array();
         for (auto& t : st["ticket_queue"]) {
           if (At(t, "created_by") != st["current_user"]) continue;
           if (Truthy(status) && rewards::UnicodeLower(At(t, "status").get<std::string>()) != want) continue;
           out.push_back(t);
         }
         return out;
       }},
  };
}

}  // namespace k2::eval::fc
