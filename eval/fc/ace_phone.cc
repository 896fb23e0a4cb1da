// ACEBench's phone-platform classes of its agent categories (BaseApi, MessageApi, ReminderApi,
// FoodPlatform) with ACEBench's data, result dicts, error texts and state changes; the class table.
#include <algorithm>

#include "eval/fc/method.h"
#include "rewards/ast_match.h"

namespace k2::eval::fc {

namespace {

// Every phone class has its own wifi / logged_in (ACEBench makes one instance per involved class);
// BaseApi's are compared, the others' are private.
std::string Key(const std::string& cls, const char* attr) { return (cls == "BaseApi" ? "" : "_") + std::string(attr); }

// Python's `x == False` on a loaded flag: only false (or 0) is off.
bool Off(const json& v) { return v.is_boolean() ? !v.get<bool>() : (v.is_number() && v.get<double>() == 0); }

json Fail(const std::string& m) { return json{{"status", false}, {"message", m}}; }

// Python's str.lower() on an argument: anything but a string raises (AttributeError).
std::string Lower(const json& v) {
  if (!v.is_string()) throw PyError("'" + std::string(v.type_name()) + "' object has no attribute 'lower'");
  return rewards::UnicodeLower(v.get<std::string>());
}

// Python's `name in d` for a dict keyed by names: only a string can be there.
bool HasName(const json& dict, const json& name) { return name.is_string() && dict.contains(name.get<std::string>()); }

const json& Users() {
  static const json kUsers = {
      {"Eve", {{"user_id", "USR100"}, {"phone_number", "123-456-7890"}, {"occupation", "Software Engineer"}}},
      {"Frank", {{"user_id", "USR101"}, {"phone_number", "234-567-8901"}, {"occupation", "Data Scientist"}}},
      {"Grace", {{"user_id", "USR102"}, {"phone_number", "345-678-9012"}, {"occupation", "Product Manager"}}},
      {"Helen", {{"user_id", "USR103"}, {"phone_number", "456-789-0123"}, {"occupation", "UX Designer"}}},
      {"Isaac", {{"user_id", "USR104"}, {"phone_number", "567-890-1234"}, {"occupation", "DevOps Engineer"}}},
      {"Jack", {{"user_id", "USR105"}, {"phone_number", "678-901-2345"}, {"occupation", "Marketing Specialist"}}}};
  return kUsers;
}

// Merchants in ACEBench's order: name -> menu of {product, price}.
const std::vector<std::pair<std::string, json>>& Merchants() {
  static const std::vector<std::pair<std::string, json>> kMerchants = {
      {"Domino's", json::array({{{"product", "Margherita Pizza"}, {"price", 68.0}}, {{"product", "Super Supreme Pizza"}, {"price", 88.0}}})},
      {"Rice Village Bibimbap",
       json::array({{{"product", "Stone Pot Bibimbap"}, {"price", 35.0}}, {{"product", "Korean Beef Bibimbap"}, {"price", 45.0}}})},
      {"Haidilao", json::array({{{"product", "Beef Rolls"}, {"price", 68.0}}, {{"product", "Seafood Platter"}, {"price", 88.0}}})},
      {"Heytea",
       json::array({{{"product", "Cheese Milk Tea"}, {"price", 25.0}}, {{"product", "Four Seasons Spring Milk Tea"}, {"price", 22.0}}})},
      {"Hema Fresh", json::array({{{"product", "Organic Vegetable Pack"}, {"price", 15.0}}, {{"product", "Fresh Gift Pack"}, {"price", 99.0}}})},
      {"Jiutian BBQ", json::array({{{"product", "Korean Grilled Beef"}, {"price", 128.0}}, {{"product", "Grilled Pork Belly"}, {"price", 78.0}}})}};
  return kMerchants;
}

const json* Menu(const json& merchant) {
  if (!merchant.is_string()) return nullptr;
  for (auto& [name, menu] : Merchants())
    if (name == merchant.get_ref<const std::string&>()) return &menu;
  return nullptr;
}

// Wifi and device login: the same two methods on every phone class (they are BaseApi's, inherited).
std::vector<Method> BaseMethods(const char* cls) {
  std::string c = cls;
  return {
      {cls, "turn_on_wifi", "Turn on WiFi connection.", {},
       [c](json& s, std::vector<std::string>&, const json&) -> Result {
         s[c][Key(c, "wifi")] = true;
         return json{{"status", true}, {"message", "Wi-Fi has been turned on"}};
       }},
      {cls, "login_device", "Log in to the device.", {},
       [c](json& s, std::vector<std::string>&, const json&) -> Result {
         s[c][Key(c, "logged_in")] = true;
         return json{{"status", true}, {"message", "Device has been logged in"}};
       }},
  };
}

// ---- MessageApi -------------------------------------------------------------------------------------------

json& Inbox(json& s) { return s["MessageApi"]["inbox"]; }
bool MsgLoggedOut(json& s) { return Off(s["MessageApi"]["_logged_in"]); }

// The message time as a date (strptime "%Y-%m-%d"); a message without one (sent ones) is a KeyError.
std::string MsgDate(const json& m) {
  const json& t = At(m, "time");
  int parts[6];
  if (!t.is_string() || !PyStrptime(t.get<std::string>(), false, parts)) throw PyError("time data " + t.dump() + " does not match format '%Y-%m-%d'");
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d", parts[0], parts[1], parts[2]);
  return buf;
}

Result ExtremeMessage(json& s, bool latest) {
  const char* which = latest ? "latest" : "earliest";
  if (MsgLoggedOut(s)) return Fail(std::string("Device not logged in, unable to retrieve the ") + which + " sent message ID.");
  json& inbox = Inbox(s);
  if (inbox.empty()) return Fail("No message records found");
  std::string best_key, best_date;
  for (auto& k : IntKeyOrder(inbox)) {
    std::string d = MsgDate(inbox[k]);
    if (best_key.empty() || (latest ? d > best_date : d < best_date)) {
      best_key = k;
      best_date = d;
    }
  }
  int64_t id = std::stoll(best_key);
  return json{{"status", true}, {"message", std::string("The ") + which + " message ID is " + best_key}, {"message_id", id}};
}

std::vector<Method> MessageMethods() {
  std::vector<Method> out = BaseMethods("MessageApi");
  std::vector<Method> own = {
      {"MessageApi", "send_message", "Send a message from one user to another.",
       {{"sender_name", "string", "The name of the user sending the message.", true},
        {"receiver_name", "string", "The name of the user receiving the message.", true},
        {"message", "string", "The content of the message to be sent.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = s["MessageApi"];
         if (MsgLoggedOut(s)) return Fail("Device not logged in, unable to send message");
         if (Off(st["_wifi"])) return Fail("Wi-Fi is turned off, cannot send messages at this time");
         if (Inbox(s).size() >= 6) return Fail("Inbox capacity is full. You need to ask the user which message to delete.");
         if (!HasName(Users(), a["sender_name"]) || !HasName(Users(), a["receiver_name"])) return Fail("Sender or receiver does not exist");
         int64_t id = st["_message_id_counter"].get<int64_t>() + 1;
         st["_message_id_counter"] = id;
         Inbox(s)[std::to_string(id)] = {{"sender_id", Users()[a["sender_name"].get<std::string>()]["user_id"]},
                                          {"receiver_id", Users()[a["receiver_name"].get<std::string>()]["user_id"]},
                                          {"message", a["message"]}};
         return json{{"status", true}, {"message", "Message successfully sent to " + a["receiver_name"].get<std::string>() + "."}};
       }},
      {"MessageApi", "delete_message", "Delete a message based on its message ID.",
       {{"message_id", "integer", "The ID of the message to be deleted.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (MsgLoggedOut(s)) return Fail("Device not logged in, unable to delete message");
         std::string k = IdKey(a["message_id"]);
         if (k.empty() || !Inbox(s).contains(k)) return Fail("Message ID does not exist");
         Inbox(s).erase(k);
         return json{{"status", true}, {"message", "Message ID " + PyStr(a["message_id"]) + " has been successfully deleted."}};
       }},
      {"MessageApi", "view_messages_between_users", "Get all the messages sent from one user to another.",
       {{"sender_name", "string", "The name of the user sending the messages.", true},
        {"receiver_name", "string", "The name of the user receiving the messages.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (MsgLoggedOut(s)) return Fail("Device not logged in, unable to view message information");
         if (!HasName(Users(), a["sender_name"])) return Fail("Sender does not exist");
         if (!HasName(Users(), a["receiver_name"])) return Fail("Receiver does not exist");
         const json& from = Users()[a["sender_name"].get<std::string>()]["user_id"];
         const json& to = Users()[a["receiver_name"].get<std::string>()]["user_id"];
         json found = json::array();
         json& inbox = Inbox(s);
         for (auto& k : IntKeyOrder(inbox))
           if (inbox[k]["sender_id"] == from && inbox[k]["receiver_id"] == to)
             found.push_back({{"id", std::stoll(k)}, {"sender", a["sender_name"]}, {"receiver", a["receiver_name"]}, {"message", inbox[k]["message"]}});
         if (found.empty()) return Fail("No related message records found");
         return json{{"status", true}, {"messages", found}};
       }},
      {"MessageApi", "search_messages", "Search for messages from a specific user that contain a particular keyword.",
       {{"user_name", "string", "The name of the user whose messages are being searched.", true},
        {"keyword", "string", "The keyword to search for within the messages.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (!HasName(Users(), a["user_name"])) return Fail("User does not exist");
         const json& uid = Users()[a["user_name"].get<std::string>()]["user_id"];
         json found = json::array();
         json& inbox = Inbox(s);
         for (auto& k : IntKeyOrder(inbox)) {
           const json& m = inbox[k];
           if ((m["sender_id"] == uid || m["receiver_id"] == uid) && Lower(m["message"]).find(Lower(a["keyword"])) != std::string::npos)
             found.push_back({{"id", std::stoll(k)}, {"sender_id", m["sender_id"]}, {"receiver_id", m["receiver_id"]}, {"message", m["message"]}});
         }
         if (found.empty()) return Fail("No messages found containing the keyword");
         return json{{"status", true}, {"messages", found}};
       }},
      {"MessageApi", "get_all_message_times_with_ids", "The time of every message by message ID.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (MsgLoggedOut(s))
           return Fail("Device not logged in, unable to retrieve all message times and their corresponding message IDs.");
         json out = json::object();
         for (auto& [k, m] : Inbox(s).items()) out[k] = At(m, "time");
         return out;
       }},
      {"MessageApi", "get_latest_message_id", "Get the ID of the most recently sent message.", {},
       [](json& s, std::vector<std::string>&, const json&) { return ExtremeMessage(s, true); }},
      {"MessageApi", "get_earliest_message_id", "Get the ID of the earliest sent message.", {},
       [](json& s, std::vector<std::string>&, const json&) { return ExtremeMessage(s, false); }},
  };
  for (auto& m : own) out.push_back(std::move(m));
  return out;
}

// ---- ReminderApi ------------------------------------------------------------------------------------------

json& Reminders(json& s) { return s["ReminderApi"]["reminder_list"]; }
bool RemLoggedOut(json& s) { return Off(s["ReminderApi"]["_logged_in"]); }

std::vector<Method> ReminderMethods() {
  std::vector<Method> out = BaseMethods("ReminderApi");
  std::vector<Method> own = {
      {"ReminderApi", "view_reminder_by_title", "View a reminder by its title.", {{"title", "string", "The title of the reminder.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (RemLoggedOut(s)) return Fail("The device is not logged in, so you cannot view notifications");
         json& list = Reminders(s);
         for (auto& k : IntKeyOrder(list))
           if (list[k]["title"] == a["title"]) return json{{"status", true}, {"reminder", list[k]}};
         return Fail("No reminder found with the title '" + PyStr(a["title"]) + "'.");
       }},
      {"ReminderApi", "add_reminder", "Add a new reminder.",
       {{"title", "string", "The title of the reminder.", true},
        {"description", "string", "The description of the reminder.", true},
        {"time", "string", "The time of the reminder, in the format YYYY-MM-DD HH:MM.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = s["ReminderApi"];
         if (RemLoggedOut(s)) return Fail("Device not logged in. Unable to add a new reminder.");
         if (Reminders(s).size() >= 6) return Fail("Reminder capacity is full. Unable to add a new reminder.");
         int64_t id = st["_reminder_id_counter"].get<int64_t>() + 1;
         st["_reminder_id_counter"] = id;
         Reminders(s)[std::to_string(id)] = {
             {"reminder_id", id}, {"title", a["title"]}, {"description", a["description"]}, {"time", a["time"]}, {"notified", false}};
         return json{{"status", true}, {"message", "Reminder '" + PyStr(a["title"]) + "' was successfully added."}};
       }},
      {"ReminderApi", "delete_reminder", "Delete a reminder by its ID.", {{"reminder_id", "integer", "The ID of the reminder.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (RemLoggedOut(s)) return Fail("Device not logged in. Unable to delete the specified reminder.");
         std::string k = IdKey(a["reminder_id"]);
         if (k.empty() || !Reminders(s).contains(k)) return Fail("Reminder ID does not exist.");
         Reminders(s).erase(k);
         return json{{"status", true}, {"message", "Reminder ID " + PyStr(a["reminder_id"]) + " was successfully deleted."}};
       }},
      {"ReminderApi", "view_all_reminders", "View all reminders.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         json& list = Reminders(s);
         if (list.empty()) return Fail("No reminders found.");
         json out = json::array();
         for (auto& k : IntKeyOrder(list))
           out.push_back({{"title", list[k]["title"]}, {"description", list[k]["description"]}, {"time", list[k]["time"]}, {"notified", list[k]["notified"]}});
         return json{{"status", true}, {"reminders", out}};
       }},
  };
  for (auto& m : own) out.push_back(std::move(m));
  return out;
}

// ---- FoodPlatform -----------------------------------------------------------------------------------------

json& Food(json& s) { return s["FoodPlatform"]; }

bool Listed(const json& list, const json& v) { return std::find(list.begin(), list.end(), v) != list.end(); }

Result AddOrder(json& s, const json& a) {
  json& st = Food(s);
  const json& user = a["username"];
  if (!Listed(st["logged_in_users"], user)) return Fail("User " + PyStr(user) + " is not logged in to the food platform");
  const json* menu = Menu(a["merchant_name"]);
  if (!menu) return Fail("Merchant does not exist");
  const json& items = a["items"];
  if (!items.is_array() && !items.is_string() && !items.is_object()) throw PyError("'" + std::string(items.type_name()) + "' object is not iterable");
  // A string or dict iterates over characters / keys, and item.get() then raises.
  if (!items.is_array() && !items.empty()) throw PyError("'str' object has no attribute 'get'");
  double total = 0;
  json lines = json::array();
  for (auto& item : items) {
    if (!item.is_object()) throw PyError("'" + std::string(item.type_name()) + "' object has no attribute 'get'");
    json product = item.value("product", json());
    json qty = item.value("quantity", json(1));
    // isinstance(quantity, int): Python's bool is an int too.
    bool is_int = qty.is_number_integer() || qty.is_boolean();
    int64_t q = qty.is_boolean() ? (qty.get<bool>() ? 1 : 0) : (qty.is_number_integer() ? qty.get<int64_t>() : 0);
    if (!is_int || q <= 0) return Fail("Invalid quantity " + PyStr(qty) + " for product " + PyStr(product));
    const json* found = nullptr;
    for (auto& p : *menu)
      if (p["product"] == product) {
        found = &p;
        break;
      }
    if (!found) return Fail("Product " + PyStr(product) + " does not exist in " + a["merchant_name"].get<std::string>() + "'s menu");
    total += (*found)["price"].get<double>() * static_cast<double>(q);
    lines.push_back({{"product", product}, {"quantity", qty}, {"price_per_unit", (*found)["price"]}});
  }
  json& account = At(At(st["users"], PyStr(user)), "balance");
  if (total > account.get<double>()) return Fail("Insufficient balance to place the order");
  account = account.get<double>() - total;
  st["orders"].push_back({{"user_name", user}, {"merchant_name", a["merchant_name"]}, {"items", lines}, {"total_price", total}});
  return json{{"status", true}, {"message", "Food delivery order successfully placed with " + a["merchant_name"].get<std::string>() +
                                                ". Total amount: " + json(total).dump() + " yuan"}};
}

std::vector<Method> FoodMethods() {
  std::vector<Method> out = BaseMethods("FoodPlatform");
  std::vector<Method> own = {
      {"FoodPlatform", "login_food_platform", "Log in to the food platform.",
       {{"username", "string", "The user name.", true}, {"password", "string", "The password.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = Food(s);
         if (Off(st["_wifi"])) return Fail("Wi-Fi is not enabled, unable to login");
         if (!HasName(st["users"], a["username"])) return Fail("User does not exist");
         const std::string& u = a["username"].get_ref<const std::string&>();
         if (st["users"][u]["password"] != a["password"]) return Fail("Incorrect password");
         if (Listed(st["logged_in_users"], a["username"])) return Fail(u + " is already logged in");
         st["logged_in_users"].push_back(u);
         return json{{"status", true}, {"message", "User " + u + " has successfully logged in!"}};
       }},
      {"FoodPlatform", "view_logged_in_users", "View the users logged in to the food platform.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (Food(s)["logged_in_users"].empty()) return Fail("No users are currently logged in to the food platform");
         return json{{"status", true}, {"logged_in_users", Food(s)["logged_in_users"]}};
       }},
      {"FoodPlatform", "check_balance", "Check a user's balance.", {{"user_name", "string", "The user name.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (HasName(Food(s)["users"], a["user_name"])) return Food(s)["users"][a["user_name"].get<std::string>()]["balance"];
         return json(0.0);  // ACEBench prints a notice and returns 0.0
       }},
      {"FoodPlatform", "add_food_delivery_order", "Place a food delivery order.",
       {{"username", "string", "The user placing the order.", true},
        {"merchant_name", "string", "The merchant.", true},
        {"items", "array", "Items: [{\"product\": name, \"quantity\": count}].", true}},
       [](json& s, std::vector<std::string>&, const json& a) { return AddOrder(s, a); }},
      {"FoodPlatform", "get_products", "The menu of a merchant.", {{"merchant_name", "string", "The merchant.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         if (const json* menu = Menu(a["merchant_name"])) return *menu;
         return Fail("Merchant '" + PyStr(a["merchant_name"]) + "' does not exist");
       }},
      {"FoodPlatform", "view_orders", "View a user's orders.", {{"user_name", "string", "The user name.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json mine = json::array();
         for (auto& o : Food(s)["orders"])
           if (o["user_name"] == a["user_name"]) mine.push_back(o);
         if (mine.empty()) return Fail("User has no order records");
         return json{{"status", true}, {"orders", mine}};
       }},
      {"FoodPlatform", "search_orders", "Search orders by keyword (merchant or product).", {{"keyword", "string", "The keyword.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json found = json::array();
         for (auto& o : Food(s)["orders"]) {
           std::string kw = Lower(a["keyword"]);
           bool hit = Lower(o["merchant_name"]).find(kw) != std::string::npos;
           for (auto& it : o["items"]) hit = hit || Lower(it["product"]).find(kw) != std::string::npos;
           if (hit) found.push_back(o);
         }
         if (found.empty()) return Fail("No matching orders found");
         return json{{"status", true}, {"orders", found}};
       }},
  };
  for (auto& m : own) out.push_back(std::move(m));
  return out;
}

// ---- loading ----------------------------------------------------------------------------------------------

Status CheckFlags(const json& c, const std::string& w) {
  if (!c.is_object()) return InvalidArgument(w + ": expected object");
  for (const char* k : {"wifi", "logged_in"})
    if (c.contains(k) && !c[k].is_boolean()) return InvalidArgument(w + "." + k + ": expected boolean");
  return Status::Ok();
}

// _load_scenario(own config) then _load_scenario(BaseApi config): the second call decides.
Expected<json> Flags(const std::string& cls, const json& own, const json& base, const std::string& where) {
  K2_RETURN_IF_ERROR(CheckFlags(own, where + "." + cls));
  K2_RETURN_IF_ERROR(CheckFlags(base, where + ".BaseApi"));
  return json{{Key(cls, "wifi"), base.value("wifi", false)}, {Key(cls, "logged_in"), base.value("logged_in", true)}};
}

Expected<json> LoadBase(const json& own, const json& base, const std::string& where) { return Flags("BaseApi", own, base, where); }

Expected<json> LoadMessage(const json& own, const json& base, const std::string& where) {
  K2_ASSIGN_OR_RETURN(json st, Flags("MessageApi", own, base, where));
  st["inbox"] = {
      {"1", {{"sender_id", "USR100"}, {"receiver_id", "USR101"},
             {"message", "Hey Frank, don't forget about our meeting on 2024-06-11 at 4 PM in Conference Room 1."}, {"time", "2024-06-09"}}},
      {"2", {{"sender_id", "USR101"}, {"receiver_id", "USR102"},
             {"message", "Can you help me order a \"Margherita Pizza\" delivery? The merchant is Domino's."}, {"time", "2024-03-09"}}},
      {"3", {{"sender_id", "USR102"}, {"receiver_id", "USR103"},
             {"message", "Please check the milk tea delivery options available from Heytea and purchase a cheaper milk tea for me. After "
                         "making the purchase, remember to reply to me with \"Already bought.\""},
             {"time", "2023-12-05"}}},
      {"4", {{"sender_id", "USR103"}, {"receiver_id", "USR102"}, {"message", "No problem Helen, I can assist you."}, {"time", "2024-09-09"}}},
      {"5", {{"sender_id", "USR104"}, {"receiver_id", "USR105"}, {"message", "Isaac, are you available for a call?"}, {"time", "2024-06-06"}}},
      {"6", {{"sender_id", "USR105"}, {"receiver_id", "USR104"}, {"message", "Yes Jack, let's do it in 30 minutes."}, {"time", "2024-01-15"}}}};
  st["_message_id_counter"] = 6;
  return st;
}

Expected<json> LoadReminder(const json& own, const json& base, const std::string& where) {
  K2_ASSIGN_OR_RETURN(json st, Flags("ReminderApi", own, base, where));
  st["reminder_list"] = {
      {"1", {{"reminder_id", 1001}, {"title", "Doctor's Appointment"}, {"description", "Visit Dr. Smith for a checkup."},
             {"time", "2024-07-15 09:30"}, {"notified", false}}},
      {"2", {{"reminder_id", 1002}, {"title", "Team Meeting"}, {"description", "Monthly project review with the team."},
             {"time", "2024-07-17 11:00"}, {"notified", false}}},
      {"3", {{"reminder_id", 1003}, {"title", "To-do list"},
             {"description", "First, help Frank place a food delivery order at \"Hema Fresh,\" ordering two \"Fresh Gift Packs.\" Then, send a "
                             "message to Frank saying, \"The price of the purchased goods is () yuan.\" Replace the parentheses with the "
                             "actual amount, keeping one decimal place."},
             {"time", "2024-07-16 11:00"}, {"notified", false}}}};
  st["_reminder_id_counter"] = 3;
  return st;
}

Expected<json> LoadFood(const json& own, const json& base, const std::string& where) {
  K2_ASSIGN_OR_RETURN(json st, Flags("FoodPlatform", own, base, where));
  for (auto [c, w] : {std::pair{&own, where + ".FoodPlatform"}, std::pair{&base, where + ".BaseApi"}}) {
    if (!c->contains("logged_in_users")) continue;
    const json& l = (*c)["logged_in_users"];
    bool ok = l.is_array() && std::all_of(l.begin(), l.end(), [](const json& x) { return x.is_string(); });
    if (!ok) return InvalidArgument(w + ".logged_in_users: expected an array of user names");
  }
  st["logged_in_users"] = base.value("logged_in_users", json::array());
  st["users"] = {{"Eve", {{"user_id", "U100"}, {"password", "password123"}, {"balance", 500.0}}},
                 {"Frank", {{"user_id", "U101"}, {"password", "password456"}, {"balance", 300.0}}},
                 {"Grace", {{"user_id", "U102"}, {"password", "password789"}, {"balance", 150.0}}},
                 {"Helen", {{"user_id", "U103"}, {"password", "password321"}, {"balance", 800.0}}},
                 {"Isaac", {{"user_id", "U104"}, {"password", "password654"}, {"balance", 400.0}}},
                 {"Jack", {{"user_id", "U105"}, {"password", "password654"}, {"balance", 120.0}}}};
  st["orders"] = json::array();
  return st;
}

std::vector<Method> BaseOnly() { return BaseMethods("BaseApi"); }

}  // namespace

const std::vector<AceClass>& AceClasses() {
  static const std::vector<AceClass> kClasses = {
      {"BaseApi", LoadBase, BaseOnly, {"wifi", "logged_in"}},
      {"MessageApi", LoadMessage, MessageMethods, {"inbox"}},
      {"ReminderApi", LoadReminder, ReminderMethods, {"reminder_list"}},
      {"FoodPlatform", LoadFood, FoodMethods, {"users", "logged_in_users", "orders"}},
      {"Travel", LoadAceTravel, AceTravelMethods, {"users", "reservations"}}};
  return kClasses;
}

}  // namespace k2::eval::fc
