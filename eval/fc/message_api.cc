// BFCL's MessageAPI class: a workspace of users (user_map), an inbox of {receiver_id: message} entries
// and a logged-in user, with BFCL's result keys and error texts; message ids drawn as BFCL draws them.
#include <algorithm>
#include <set>

#include "eval/fc/method.h"
#include "rewards/ast_match.h"

namespace k2::eval::fc {

json MessageApiDefaultState() {
  return {{"generated_ids", json::array()},
          {"user_count", 4},
          {"user_map", {{"Alice", "USR001"}, {"Bob", "USR002"}, {"Catherine", "USR003"}, {"Daniel", "USR004"}}},
          {"inbox", json::array({{{"USR002", "My name is Alice. I want to connect."}}, {{"USR003", "Could you upload the file?"}},
                                 {{"USR004", "Could you upload the file?"}}})},
          {"message_count", 3},
          {"current_user", nullptr},
          {"random_seed", 200191}};
}

namespace {

json& St(json& s) { return s["MessageAPI"]; }

bool LoggedIn(json& s) { return !St(s)["current_user"].is_null() && St(s)["current_user"] != ""; }

bool KnownId(json& s, const std::string& id) {
  for (auto& [name, uid] : St(s)["user_map"].items())
    if (uid == id) return true;
  return false;
}

// The next unused id in [10000, 99999], drawn as BFCL draws it. The generator is not kept in the state
// (which stays plain JSON): it is replayed from the seed over the `draws` made so far.
int64_t NewId(json& s) {
  json& st = St(s);
  PyRandom rng(st.value("random_seed", uint64_t{200191}));
  int64_t draws = st.value("_draws", int64_t{0});
  for (int64_t d = 0; d < draws; ++d) rng.RandInt(10000, 99999);
  std::set<int64_t> used;
  for (auto& x : st["generated_ids"]) used.insert(x.get<int64_t>());
  int64_t id = rng.RandInt(10000, 99999);
  ++draws;
  while (used.count(id)) {
    id = rng.RandInt(10000, 99999);
    ++draws;
  }
  used.insert(id);
  st["_draws"] = draws;  // private: BFCL keeps its generator in _random, not compared
  st["generated_ids"] = std::vector<int64_t>(used.begin(), used.end());  // a set in BFCL
  return id;
}

std::pair<std::string, json> Entry(const json& m) { return {m.begin().key(), m.begin().value()}; }

}  // namespace

std::vector<Method> MessageApiMethods() {
  return {
      {"MessageAPI", "list_users", "List the users of the workspace.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         json names = json::array();
         for (auto& [k, v] : St(s)["user_map"].items()) names.push_back(k);
         return json{{"user_list", names}};
       }},
      {"MessageAPI", "get_user_id", "The id of a user.", {{"user", "string", "User name.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         std::string u = a["user"];
         if (!St(s)["user_map"].contains(u)) return Err("User '" + u + "' not found in the workspace.");
         return json{{"user_id", St(s)["user_map"][u]}};
       }},
      {"MessageAPI", "message_login", "Log in as a user id.", {{"user_id", "string", "User id.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         std::string id = a["user_id"];
         if (!KnownId(s, id)) return json{{"login_status", false}, {"message", "User ID '" + id + "' not found."}};
         St(s)["current_user"] = id;
         return json{{"login_status", true}, {"message", "User '" + id + "' logged in successfully."}};
       }},
      {"MessageAPI", "message_get_login_status", "Whether a user is logged in.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result { return json{{"login_status", LoggedIn(s)}}; }},
      {"MessageAPI", "send_message", "Send a message to a user id.",
       {{"receiver_id", "string", "Receiver's id.", true}, {"message", "string", "The message.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (!LoggedIn(s)) return Err("No user is currently logged in.");
         std::string r = a["receiver_id"];
         if (!KnownId(s, r)) return Err("Receiver ID '" + r + "' not found.");
         int64_t id = NewId(s);
         St(s)["inbox"].push_back({{r, a["message"]}});
         St(s)["message_count"] = St(s)["message_count"].get<int64_t>() + 1;
         return json{{"sent_status", true}, {"message_id", {{"new_id", id}}}, {"message", "Message sent to '" + r + "' successfully."}};
       }},
      {"MessageAPI", "delete_message", "Delete the latest message sent to a receiver.", {{"receiver_id", "string", "Receiver's id.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (!LoggedIn(s)) return Err("No user is currently logged in.");
         std::string r = a["receiver_id"];
         json& inbox = St(s)["inbox"];
         for (size_t i = inbox.size(); i-- > 0;)
           if (Entry(inbox[i]).first == r) {
             inbox.erase(i);
             return json{{"deleted_status", true}, {"receiver_id", r}, {"message", "Receiver " + r + "'s latest message deleted successfully."}};
           }
         return Err("Receiver ID " + r + " not found.");
       }},
      {"MessageAPI", "view_messages_sent", "Messages sent, by receiver.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (!LoggedIn(s)) return Err("No user is currently logged in.");
         json out = json::object();
         for (auto& m : St(s)["inbox"]) {
           auto [r, text] = Entry(m);
           out[r].push_back(text);
         }
         return json{{"messages", out}};
       }},
      {"MessageAPI", "add_contact", "Add a user to the workspace.", {{"user_name", "string", "User name.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         std::string n = a["user_name"];
         if (St(s)["user_map"].contains(n)) return Err("User name '" + n + "' already exists.");
         int64_t count = St(s)["user_count"].get<int64_t>() + 1;
         std::string id = std::to_string(count);
         while (id.size() < 3) id = "0" + id;
         id = "USR" + id;
         if (KnownId(s, id)) return Err("User ID '" + id + "' already exists.");
         St(s)["user_count"] = count;
         St(s)["user_map"][n] = id;
         return json{{"added_status", true}, {"user_id", id}, {"message", "Contact '" + n + "' added successfully."}};
       }},
      {"MessageAPI", "search_messages", "Messages that contain a keyword (case-insensitive).", {{"keyword", "string", "Keyword.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (!LoggedIn(s)) return Err("No user is currently logged in.");
         std::string k = rewards::UnicodeLower(a["keyword"].get<std::string>());
         json out = json::array();
         for (auto& m : St(s)["inbox"]) {
           auto [r, text] = Entry(m);
           if (text.is_string() && rewards::UnicodeLower(text.get<std::string>()).find(k) != std::string::npos)
             out.push_back({{"receiver_id", r}, {"message", text}});
         }
         return json{{"results", out}};
       }},
      {"MessageAPI", "get_message_stats", "Counts of messages and contacts.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (!LoggedIn(s)) return Err("No user is currently logged in.");
         std::set<std::string> contacts;
         for (auto& m : St(s)["inbox"]) contacts.insert(Entry(m).first);
         return json{{"stats", {{"received_count", St(s)["inbox"].size()}, {"total_contacts", contacts.size()}}}};
       }},
  };
}

}  // namespace k2::eval::fc
