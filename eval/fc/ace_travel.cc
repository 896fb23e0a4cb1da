// ACEBench's Travel class (agent_multi_turn): users with cash and bank balances, flights, reservations;
// booking, modification and cancellation with ACEBench's prices, baggage fees, refunds and reply texts.
#include <algorithm>

#include "eval/fc/method.h"

namespace k2::eval::fc {

namespace {

json& St(json& s) { return s["Travel"]; }

json Flight(const char* no, const char* from, const char* to, const char* dep, const char* arr, int seats, int eco, int bus) {
  return {{"flight_no", no}, {"origin", from}, {"destination", to}, {"depart_time", dep}, {"arrival_time", arr},
          {"status", "available"}, {"seats_available", seats}, {"economy_price", eco}, {"business_price", bus}};
}

json Reservation(const char* id, const char* user, const char* no, const char* cabin, const char* from, const char* to) {
  return {{"reservation_id", id}, {"user_id", user}, {"flight_no", no}, {"payment_method", "bank"},
          {"cabin", cabin}, {"baggage", 1}, {"origin", from}, {"destination", to}};
}

// Python's a * b, max(a, b) (the first unless the second is greater) and a < b on numbers; other
// operands raise (TypeError) through json's accessors.
json Mul(const json& a, const json& b) {
  if (a.is_number_integer() && b.is_number_integer()) return a.get<int64_t>() * b.get<int64_t>();
  return a.get<double>() * b.get<double>();
}
bool Less(const json& a, const json& b) {
  if (!a.is_number() || !b.is_number()) throw PyError("'<' not supported between instances of '" + std::string(a.type_name()) + "' and '" + b.type_name() + "'");
  if (a.is_number_integer() && b.is_number_integer()) return a.get<int64_t>() < b.get<int64_t>();
  return a.get<double>() < b.get<double>();
}
json Max(const json& a, const json& b) { return Less(a, b) ? b : a; }

// Python's truth of an optional argument (None, "", 0 are false).
bool Given(const json& a, const char* k) { return a.contains(k) && Truthy(a[k]); }

json* FirstFlight(json& s, const json& no, bool available_only) {
  for (auto& f : St(s)["_flights"])
    if (f["flight_no"] == no && (!available_only || f["status"] == "available")) return &f;
  return nullptr;
}

json* FindReservation(json& s, const json& rid, const json& uid) {
  for (auto& r : St(s)["reservations"])
    if (r["reservation_id"] == rid && r["user_id"] == uid) return &r;
  return nullptr;
}

// Seconds since 0001-01-01 of a "%Y-%m-%d %H:%M:%S" time (days from the civil calendar).
int64_t Seconds(const json& t) {
  int p[6];
  if (!t.is_string() || !PyStrptime(t.get<std::string>(), true, p)) throw PyError("time data " + t.dump() + " does not match format '%Y-%m-%d %H:%M:%S'");
  int64_t y = p[0], m = p[1], d = p[2];
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return days * 86400 + p[3] * 3600 + p[4] * 60 + p[5];
}

const json& FreeBaggage() {
  static const json kFree = {{"regular", {{"Economy Class", 1}, {"Business Class", 2}}},
                             {"silver", {{"Economy Class", 2}, {"Business Class", 3}}},
                             {"gold", {{"Economy Class", 3}, {"Business Class", 3}}}};
  return kFree;
}

// get_baggage_allowance: .get with defaults (0 for an unknown level or cabin).
json Allowance(const json& level, const json& cabin) {
  if (!level.is_string() || !FreeBaggage().contains(level.get<std::string>())) return 0;
  const json& l = FreeBaggage()[level.get<std::string>()];
  if (!cabin.is_string() || !l.contains(cabin.get<std::string>())) return 0;
  return l[cabin.get<std::string>()];
}

// calculate_baggage_fee: indexing (KeyError for an unknown level or cabin).
json BaggageFee(const json& level, const json& cabin, const json& count) {
  const json& limit = At(At(FreeBaggage(), level.is_string() ? level.get<std::string>() : level.dump()),
                         cabin.is_string() ? cabin.get<std::string>() : cabin.dump());
  return Mul(Max(PyAdd(count, limit, /*subtract=*/true), json(0)), json(50));
}

// update_balance: false when the balance would go negative.
bool UpdateBalance(json& user, const json& method, const json& amount) {
  for (const char* m : {"cash", "bank"}) {
    if (method != m) continue;
    json& bal = At(user, std::string(m) + "_balance");
    if (Less(PyAdd(bal, amount), json(0))) return false;
    bal = PyAdd(bal, amount);
  }
  return true;
}

json PriceDifference(const json& flight, const json& old_cabin, const json& new_cabin) {
  auto price = [&](const json& cabin) -> json {
    if (cabin == "Economy Class") return At(flight, "economy_price");
    if (cabin == "Business Class") return At(flight, "business_price");
    return 0;
  };
  return PyAdd(price(new_cabin), price(old_cabin), /*subtract=*/true);
}

Result Reserve(json& s, const json& a) {
  json& users = St(s)["users"];
  const json& uid = a["user_id"];
  // authenticate_user returns the user or an error dict (never falsy): a bad login fails below, on the
  // error dict's missing "membership_level".
  json user = {{"status", "error"}, {"message", "Incorrect username or password."}};
  if (uid.is_string() && users.contains(uid.get<std::string>()) && users[uid.get<std::string>()]["password"] == a["password"])
    user = users[uid.get<std::string>()];
  json* flight = FirstFlight(s, a["flight_no"], true);
  if (!flight) throw PyError("'NoneType' object is not subscriptable");
  json total = a["cabin"] == "Economy Class" ? (*flight)["economy_price"] : (*flight)["business_price"];
  total = PyAdd(total, BaggageFee(At(user, "membership_level"), a["cabin"], a["baggage_count"]));
  if (a["payment_method"] != "cash" && a["payment_method"] != "bank") return json("Invalid payment method");
  json& bal = users[uid.get<std::string>()][a["payment_method"].get<std::string>() + "_balance"];
  if (Less(bal, total))
    return json("Your " + a["payment_method"].get<std::string>() + " balance is insufficient. Please consider using another payment method.");
  bal = PyAdd(bal, total, /*subtract=*/true);
  (*flight)["seats_available"] = PyAdd((*flight)["seats_available"], json(1), /*subtract=*/true);
  std::string rid = "res_" + std::to_string(St(s)["reservations"].size() + 1);
  St(s)["reservations"].push_back({{"reservation_id", rid}, {"user_id", uid}, {"flight_no", a["flight_no"]}, {"payment_method", a["payment_method"]},
                                   {"cabin", a["cabin"]}, {"baggage", a["baggage_count"]}});
  return json("Booking successful. Reservation ID: " + rid + ". Total cost: " + PyStr(total) + " yuan (including baggage fees).");
}

Result Modify(json& s, const json& a) {
  json* r = FindReservation(s, a["reservation_id"], a["user_id"]);
  if (!r) return json("Reservation not found or user ID does not match.");
  json* current = FirstFlight(s, (*r)["flight_no"], false);
  if (!current) return json("Flight information not found.");
  json method = Given(a, "new_payment_method") ? a["new_payment_method"] : (*r)["payment_method"];
  json& user = At(St(s)["users"], a["user_id"].get<std::string>());
  std::vector<std::string> said;
  if (Given(a, "new_flight_no") && a["new_flight_no"] != (*r)["flight_no"]) {
    json* next = FirstFlight(s, a["new_flight_no"], false);
    if (!next || (*next)["origin"] != (*current)["origin"] || (*next)["destination"] != (*current)["destination"])
      return json("Flight change failed: Invalid new flight number or destination does not match.");
    (*r)["flight_no"] = a["new_flight_no"];
    said.push_back("Flight number has been changed.");
  }
  if (Given(a, "new_cabin") && a["new_cabin"] != r->value("cabin", json())) {
    // The difference is priced on the reservation's flight before any change above, as ACEBench does.
    json diff = PriceDifference(*current, At(*r, "cabin"), a["new_cabin"]);
    (*r)["cabin"] = a["new_cabin"];
    if (Less(json(0), diff)) {
      said.push_back(UpdateBalance(user, method, PyAdd(json(0), diff, true)) ? "Cabin change successful. Price difference paid: " + PyStr(diff) + "."
                                                                             : "Insufficient balance to pay the cabin price difference.");
    } else if (Less(diff, json(0))) {
      json refund = PyAdd(json(0), diff, true);
      UpdateBalance(user, method, refund);
      said.push_back("Cabin change successful. Price difference refunded: " + PyStr(refund) + ".");
    }
  }
  json add = a.contains("add_baggage") ? a["add_baggage"] : json(0);
  if (Less(json(0), add)) {
    json max_free = Allowance(user["membership_level"], (*r)["cabin"]);
    json total = PyAdd(r->value("baggage", json(0)), add);
    json cost = Mul(Max(json(0), PyAdd(total, max_free, true)), json(50));
    if (Less(json(0), cost))
      said.push_back(UpdateBalance(user, method, PyAdd(json(0), cost, true)) ? "Baggage has been added. Additional fee to be paid: " + PyStr(cost) + "."
                                                                             : "Insufficient balance to pay the additional baggage fees.");
    (*r)["baggage"] = total;
  }
  if (said.empty()) said.push_back("Modification completed with no additional fees.");
  std::string out;
  for (auto& m : said) out += (out.empty() ? "" : " ") + m;
  return json(out);
}

Result Cancel(json& s, const json& a) {
  const json& uid = a["user_id"];
  json& users = St(s)["users"];
  if (!uid.is_string() || !users.contains(uid.get<std::string>())) return json("Invalid user ID.");
  json& user = users[uid.get<std::string>()];
  json* r = FindReservation(s, a["reservation_id"], uid);
  if (!r) return json("Invalid reservation ID or it does not belong to the user.");
  json* flight = FirstFlight(s, (*r)["flight_no"], false);
  if (!flight) return json("Invalid flight information.");
  const int64_t now = Seconds(json("2024-07-14 06:00:00"));  // ACEBench's fixed current time
  int64_t depart = Seconds((*flight)["depart_time"]);
  if (now > depart) return json("The flight segment has been used and cannot be canceled.");
  json price = (*r)["cabin"] == "Economy Class" ? (*flight)["economy_price"] : (*flight)["business_price"];
  // process_refund: the refund goes to the cash balance.
  auto refund = [&](const json& amount) { user["cash_balance"] = PyAdd(At(user, "cash_balance"), amount); };
  if (a["reason"] == "The airline has canceled the flight.") {
    refund(price);
    return json("The flight has been canceled. Your reservation will be canceled free of charge, and " + PyStr(price) + " yuan has been refunded.");
  }
  if (depart - now > 86400) {
    refund(price);
    return json("More than 24 hours before departure. Free cancellation successful, " + PyStr(price) + " yuan has been refunded.");
  }
  json fee = Mul(price, json(0.1));
  json back = PyAdd(price, fee, /*subtract=*/true);
  refund(back);
  return json("Less than 24 hours before departure. A cancellation fee of " + PyStr(fee) + " yuan has been deducted, and " + PyStr(back) +
              " yuan has been refunded.");
}

}  // namespace

Expected<json> LoadAceTravel(const json& own, const json& base, const std::string& where) {
  // Travel's _load_scenario ignores its configs.
  if (!own.is_object()) return InvalidArgument(where + ".Travel: expected object");
  if (!base.is_object()) return InvalidArgument(where + ".BaseApi: expected object");
  json st;
  st["users"] = {
      {"user1", {{"user_name", "Eve"}, {"password", "password123"}, {"cash_balance", 2000.0}, {"bank_balance", 50000.0}, {"membership_level", "regular"}}},
      {"user2", {{"user_name", "Frank"}, {"password", "password456"}, {"cash_balance", 8000.0}, {"bank_balance", 8000.0}, {"membership_level", "silver"}}},
      {"user3", {{"user_name", "Grace"}, {"password", "password789"}, {"cash_balance", 1000.0}, {"bank_balance", 5000.0}, {"membership_level", "gold"}}}};
  st["_flights"] = json::array({
      Flight("CA1234", "Beijing", "Shanghai", "2024-07-15 08:00:00", "2024-07-15 10:30:00", 5, 1200, 3000),
      Flight("MU5678", "Shanghai", "Beijing", "2024-07-16 09:00:00", "2024-07-16 11:30:00", 3, 1900, 3000),
      Flight("CZ4321", "Shanghai", "Beijing", "2024-07-16 20:00:00", "2024-07-16 22:00:00", 8, 2500, 4000),
      Flight("CZ4352", "Shanghai", "Beijing", "2024-07-17 20:00:00", "2024-07-17 22:00:00", 8, 1600, 2500),
      Flight("MU3561", "Beijing", "Nanjing", "2024-07-18 08:00:00", "2024-07-18 10:00:00", 8, 1500, 4000),
      Flight("MU1566", "Beijing", "Nanjing", "2024-07-18 20:00:00", "2024-07-18 22:00:00", 8, 1500, 4000),
      Flight("CZ1765", "Nanjing", "Shenzhen", "2024-07-17 20:30:00", "2024-07-17 22:00:00", 8, 1500, 2500),
      Flight("CZ1765", "Nanjing", "Shenzhen", "2024-07-18 12:30:00", "2024-07-18 15:00:00", 8, 1500, 2500),
      Flight("MH1765", "Xiamen", "Chengdu", "2024-07-17 12:30:00", "2024-07-17 15:00:00", 8, 1500, 2500),
      Flight("MH2616", "Chengdu", "Xiamen", "2024-07-18 18:30:00", "2024-07-18 21:00:00", 8, 1500, 2500),
      Flight("MH2616", "Chengdu", "Fuzhou", "2024-07-16 18:30:00", "2024-07-16 21:00:00", 8, 1500, 2500)});
  st["reservations"] = json::array({Reservation("res_1", "user1", "CA1234", "Economy Class", "Beijing", "Shanghai"),
                                    Reservation("res_2", "user1", "MU5678", "Business Class", "Shanghai", "Beijing"),
                                    Reservation("res_3", "user2", "MH1765", "Business Class", "Xiamen", "Chengdu"),
                                    Reservation("res_4", "user2", "MU2616", "Business Class", "Chengdu", "Xiamen")});
  return st;
}

std::vector<Method> AceTravelMethods() {
  return {
      {"Travel", "get_flight_details", "Flights by origin and/or destination.",
       {{"origin", "string", "Departure city.", false}, {"destination", "string", "Arrival city.", false}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json out = json::array();
         for (auto& f : St(s)["_flights"])
           if ((!Given(a, "origin") || f["origin"] == a["origin"]) && (!Given(a, "destination") || f["destination"] == a["destination"]))
             out.push_back(f);
         if (out.empty()) return json("There are no direct flights that meet the criteria.");
         return out;
       }},
      {"Travel", "get_user_details", "A user's details (without the password).",
       {{"user_id", "string", "User ID.", true}, {"password", "string", "Password.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& users = St(s)["users"];
         if (a["user_id"].is_string() && users.contains(a["user_id"].get<std::string>()) && users[a["user_id"].get<std::string>()]["password"] == a["password"]) {
           json out = users[a["user_id"].get<std::string>()];
           out.erase("password");
           return out;
         }
         return json{{"status", "error"}, {"message", "Incorrect username or password."}};
       }},
      {"Travel", "get_reservation_details", "Reservations by reservation ID or user ID, with their flights.",
       {{"reservation_id", "string", "Reservation ID.", false}, {"user_id", "string", "User ID.", false}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         const char* by = Given(a, "reservation_id") ? "reservation_id" : Given(a, "user_id") ? "user_id" : nullptr;
         if (!by) return json{{"status", "error"}, {"message", "Please provide a valid reservation ID or user ID"}};
         json out = json::array();
         for (auto& r : St(s)["reservations"]) {
           if (r[by] != a[by]) continue;
           json d = r;
           json* f = FirstFlight(s, r["flight_no"], false);
           d["flight_info"] = f ? *f : json();
           out.push_back(std::move(d));
         }
         return out;
       }},
      {"Travel", "authenticate_user", "The user record when the password matches.",
       {{"user_id", "string", "User ID.", true}, {"password", "string", "Password.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& users = St(s)["users"];
         if (a["user_id"].is_string() && users.contains(a["user_id"].get<std::string>()) && users[a["user_id"].get<std::string>()]["password"] == a["password"])
           return users[a["user_id"].get<std::string>()];
         return json{{"status", "error"}, {"message", "Incorrect username or password."}};
       }},
      {"Travel", "get_baggage_allowance", "Free checked bags for a membership level and cabin.",
       {{"membership_level", "string", "regular, silver or gold.", true}, {"cabin_class", "string", "Economy Class or Business Class.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result { return Allowance(a["membership_level"], a["cabin_class"]); }},
      {"Travel", "find_transfer_flights", "Connecting flights through a transfer city.",
       {{"origin_city", "string", "Departure city.", true}, {"transfer_city", "string", "Transfer city.", true},
        {"destination_city", "string", "Arrival city.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json out = json::array();
         json& flights = St(s)["_flights"];
         for (auto& f1 : flights) {
           if (f1["origin"] != a["origin_city"] || f1["destination"] != a["transfer_city"] || f1["status"] != "available") continue;
           for (auto& f2 : flights) {
             if (f2["origin"] != a["transfer_city"] || f2["destination"] != a["destination_city"] || f2["status"] != "available") continue;
             if (Seconds(f1["arrival_time"]) < Seconds(f2["depart_time"])) out.push_back({{"first_leg", f1}, {"second_leg", f2}});
           }
         }
         if (out.empty()) return json("No connecting flights that meet the criteria were found.");
         return out;
       }},
      {"Travel", "calculate_baggage_fee", "Fee for checked bags beyond the free allowance.",
       {{"membership_level", "string", "regular, silver or gold.", true}, {"cabin_class", "string", "Economy Class or Business Class.", true},
        {"baggage_count", "integer", "Checked bags.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result { return BaggageFee(a["membership_level"], a["cabin_class"], a["baggage_count"]); }},
      {"Travel", "calculate_price_difference", "Price difference between two cabins of a flight.",
       {{"flight", "dict", "The flight record.", true}, {"old_cabin", "string", "Current cabin.", true}, {"new_cabin", "string", "New cabin.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result { return PriceDifference(a["flight"], a["old_cabin"], a["new_cabin"]); }},
      {"Travel", "reserve_flight", "Book a flight.",
       {{"user_id", "string", "User ID.", true}, {"password", "string", "Password.", true}, {"flight_no", "string", "Flight number.", true},
        {"cabin", "string", "Economy Class or Business Class.", true}, {"payment_method", "string", "cash or bank.", true},
        {"baggage_count", "integer", "Checked bags.", true}},
       [](json& s, std::vector<std::string>&, const json& a) { return Reserve(s, a); }},
      {"Travel", "modify_flight", "Change a reservation's flight, cabin, baggage or payment method.",
       {{"user_id", "string", "User ID.", true}, {"reservation_id", "string", "Reservation ID.", true},
        {"new_flight_no", "string", "New flight number.", false}, {"new_cabin", "string", "New cabin.", false},
        {"add_baggage", "integer", "Bags to add.", false}, {"new_payment_method", "string", "cash or bank.", false}},
       [](json& s, std::vector<std::string>&, const json& a) { return Modify(s, a); }},
      {"Travel", "cancel_reservation", "Cancel a reservation (refund by ACEBench's policy).",
       {{"user_id", "string", "User ID.", true}, {"reservation_id", "string", "Reservation ID.", true},
        {"reason", "string", "Reason for cancelling.", true}},
       [](json& s, std::vector<std::string>&, const json& a) { return Cancel(s, a); }},
  };
}

}  // namespace k2::eval::fc
