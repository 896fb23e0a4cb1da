// The airline domain's agent tools over τ²-bench's airline db.json (flights, users, reservations), with
// τ²-bench's checks, state changes, fixed ids and clock, and error messages.
#include <algorithm>

#include "agents/tau2/domain.h"

namespace k2::agents::tau2::detail {

namespace {

json& User(State& s, const std::string& id) {
  auto it = s.db["users"].find(id);
  if (it == s.db["users"].end()) Fail("User " + id + " not found");
  return *it;
}
json& Reservation(State& s, const std::string& id) {
  auto it = s.db["reservations"].find(id);
  if (it == s.db["reservations"].end()) Fail("Reservation " + id + " not found");
  return *it;
}
json& Flight(State& s, const std::string& n) {
  auto it = s.db["flights"].find(n);
  if (it == s.db["flights"].end()) Fail("Flight " + n + " not found");
  return *it;
}
json& FlightInstance(State& s, const std::string& n, const std::string& date) {
  json& f = Flight(s, n);
  auto it = f["dates"].find(date);
  if (it == f["dates"].end()) Fail("Flight " + n + " not found on date " + date);
  return *it;
}

int64_t IntArg(const json& a, const char* k) {
  const json& v = Arg(a, k);
  if (!v.is_number()) Fail(std::string("argument ") + k + " must be an integer");
  return static_cast<int64_t>(v.get<double>());
}

json SearchDirect(State& s, const std::string& date, const std::string* origin, const std::string* dest,
                  const std::string* leave_after) {
  json out = json::array();
  for (auto& [n, f] : s.db["flights"].items()) {
    if (origin && f["origin"] != *origin) continue;
    if (dest && f["destination"] != *dest) continue;
    auto d = f["dates"].find(date);
    if (d == f["dates"].end() || (*d)["status"] != "available") continue;
    if (leave_after && f["scheduled_departure_time_est"].get<std::string>() < *leave_after) continue;
    out.push_back({{"flight_number", f["flight_number"]},
                   {"origin", f["origin"]},
                   {"destination", f["destination"]},
                   {"status", "available"},
                   {"scheduled_departure_time_est", f["scheduled_departure_time_est"]},
                   {"scheduled_arrival_time_est", f["scheduled_arrival_time_est"]},
                   {"date", nullptr},
                   {"available_seats", (*d)["available_seats"]},
                   {"prices", (*d)["prices"]}});
  }
  return out;
}

json Passengers(const json& a) {
  json out = json::array();
  for (auto& p : Arg(a, "passengers"))
    out.push_back({{"first_name", StrArg(p, "first_name")}, {"last_name", StrArg(p, "last_name")}, {"dob", StrArg(p, "dob")}});
  return out;
}

// τ²'s _payment_for_update: checks and charges the method; null when nothing is owed.
json PaymentForUpdate(json& user, const std::string& payment_id, int64_t total) {
  auto it = user["payment_methods"].find(payment_id);
  if (it == user["payment_methods"].end()) Fail("Payment method not found");
  json& pm = *it;
  if (pm["source"] == "certificate") Fail("Certificate cannot be used to update reservation");
  if (pm["source"] == "gift_card" && pm["amount"].get<double>() < static_cast<double>(total)) Fail("Gift card balance is not enough");
  if (pm["source"] == "gift_card") pm["amount"] = pm["amount"].get<double>() - static_cast<double>(total);
  if (total == 0) return nullptr;
  return {{"payment_id", payment_id}, {"amount", total}};
}

json BookReservation(State& s, const json& a) {
  std::string user_id = StrArg(a, "user_id"), cabin = StrArg(a, "cabin");
  json passengers = Passengers(a);
  json payments = json::array();
  for (auto& p : Arg(a, "payment_methods")) payments.push_back({{"payment_id", StrArg(p, "payment_id")}, {"amount", IntArg(p, "amount")}});
  json& user = User(s, user_id);
  std::string rid;
  for (const char* c : {"HATHAT", "HATHAU", "HATHAV"})
    if (!s.db["reservations"].contains(c)) {
      rid = c;
      break;
    }
  if (rid.empty()) Fail("Too many reservations");
  std::string insurance = StrArg(a, "insurance");
  json res = {{"reservation_id", rid},
              {"user_id", user_id},
              {"origin", StrArg(a, "origin")},
              {"destination", StrArg(a, "destination")},
              {"flight_type", StrArg(a, "flight_type")},
              {"cabin", cabin},
              {"flights", json::array()},
              {"passengers", passengers},
              {"payment_history", payments},
              {"created_at", "2024-05-15T15:00:00"},
              {"total_baggages", IntArg(a, "total_baggages")},
              {"nonfree_baggages", IntArg(a, "nonfree_baggages")},
              {"insurance", insurance},
              {"status", nullptr}};
  int64_t total = 0;
  const int64_t n = static_cast<int64_t>(passengers.size());
  std::vector<json*> instances;
  for (auto& fi : Arg(a, "flights")) {
    std::string num = StrArg(fi, "flight_number"), date = StrArg(fi, "date");
    json& f = Flight(s, num);
    json& inst = FlightInstance(s, num, date);
    if (inst["status"] != "available") Fail("Flight " + num + " not available on date " + date);
    if (inst["available_seats"][cabin].get<int64_t>() < n) Fail("Not enough seats on flight " + num);
    int64_t price = inst["prices"][cabin].get<int64_t>();
    res["flights"].push_back({{"origin", f["origin"]}, {"destination", f["destination"]}, {"flight_number", num}, {"date", date}, {"price", price}});
    instances.push_back(&inst);
    total += price * n;
  }
  if (insurance == "yes") total += 30 * n;
  total += 50 * res["nonfree_baggages"].get<int64_t>();
  for (auto& p : payments) {
    std::string pid = p["payment_id"];
    auto it = user["payment_methods"].find(pid);
    if (it == user["payment_methods"].end()) Fail("Payment method " + pid + " not found");
    if (((*it)["source"] == "gift_card" || (*it)["source"] == "certificate") && (*it)["amount"].get<double>() < p["amount"].get<double>())
      Fail("Not enough balance in payment method " + pid);
  }
  int64_t paid = 0;
  for (auto& p : payments) paid += p["amount"].get<int64_t>();
  if (paid != total)
    Fail("Payment amount does not add up, total price is " + std::to_string(total) + ", but paid " + std::to_string(paid));
  for (auto& p : payments) {
    std::string pid = p["payment_id"];
    json& pm = user["payment_methods"][pid];
    if (pm["source"] == "gift_card") pm["amount"] = pm["amount"].get<double>() - p["amount"].get<double>();
    else if (pm["source"] == "certificate") user["payment_methods"].erase(pid);
  }
  for (json* inst : instances) (*inst)["available_seats"][cabin] = (*inst)["available_seats"][cabin].get<int64_t>() - n;
  s.db["reservations"][rid] = res;
  user["reservations"].push_back(rid);
  return res;
}

json CancelReservation(State& s, const json& a) {
  json& r = Reservation(s, StrArg(a, "reservation_id"));
  json refunds = json::array();
  for (auto& p : r["payment_history"]) refunds.push_back({{"payment_id", p["payment_id"]}, {"amount", -p["amount"].get<int64_t>()}});
  for (auto& x : refunds) r["payment_history"].push_back(x);
  r["status"] = "cancelled";
  // τ²-bench does not release the seats on cancellation.
  return r;
}

json ListAllAirports(State&, const json&) {
  static const char* kAirports[][2] = {{"SFO", "San Francisco"}, {"JFK", "New York"},  {"LAX", "Los Angeles"},
                                       {"ORD", "Chicago"},       {"DFW", "Dallas"},    {"DEN", "Denver"},
                                       {"SEA", "Seattle"},       {"ATL", "Atlanta"},   {"MIA", "Miami"},
                                       {"BOS", "Boston"},        {"PHX", "Phoenix"},   {"IAH", "Houston"},
                                       {"LAS", "Las Vegas"},     {"MCO", "Orlando"},   {"EWR", "Newark"},
                                       {"CLT", "Charlotte"},     {"MSP", "Minneapolis"}, {"DTW", "Detroit"},
                                       {"PHL", "Philadelphia"},  {"LGA", "LaGuardia"}};
  json out = json::array();
  for (auto& ap : kAirports) out.push_back({{"iata", ap[0]}, {"city", ap[1]}});
  return out;
}

json SearchOnestop(State& s, const json& a) {
  std::string origin = StrArg(a, "origin"), dest = StrArg(a, "destination"), date = StrArg(a, "date");
  json out = json::array();
  for (json r1 : SearchDirect(s, date, &origin, nullptr, nullptr)) {
    r1["date"] = date;
    std::string arr = r1["scheduled_arrival_time_est"];
    std::string date2 = date;
    // τ²-bench's next-day rule: "2024-05-" + (day + 1), without zero padding.
    if (arr.find("+1") != std::string::npos) date2 = "2024-05-" + std::to_string(std::stoi(date.substr(date.size() - 2)) + 1);
    std::string mid = r1["destination"];
    for (json r2 : SearchDirect(s, date2, &mid, &dest, &arr)) {
      r2["date"] = date2;
      out.push_back(json::array({r1, r2}));
    }
  }
  return out;
}

json SendCertificate(State& s, const json& a) {
  std::string uid = StrArg(a, "user_id");
  json& user = User(s, uid);
  int64_t amount = IntArg(a, "amount");
  for (int id : {3221322, 3221323, 3221324}) {
    std::string pid = "certificate_" + std::to_string(id);
    if (!user["payment_methods"].contains(pid)) {
      user["payment_methods"][pid] = {{"source", "certificate"}, {"id", pid}, {"amount", amount}};
      return "Certificate " + pid + " added to user " + uid + " with amount " + std::to_string(amount) + ".";
    }
  }
  Fail("Too many certificates");
}

json UpdateBaggages(State& s, const json& a) {
  json& r = Reservation(s, StrArg(a, "reservation_id"));
  json& user = User(s, r["user_id"]);
  int64_t nonfree = IntArg(a, "nonfree_baggages");
  int64_t total = 50 * std::max<int64_t>(0, nonfree - r["nonfree_baggages"].get<int64_t>());
  json p = PaymentForUpdate(user, StrArg(a, "payment_id"), total);
  if (!p.is_null()) r["payment_history"].push_back(p);
  r["total_baggages"] = IntArg(a, "total_baggages");
  r["nonfree_baggages"] = nonfree;
  return r;
}

json UpdateFlights(State& s, const json& a) {
  json& r = Reservation(s, StrArg(a, "reservation_id"));
  json& user = User(s, r["user_id"]);
  std::string cabin = StrArg(a, "cabin");
  const int64_t n = static_cast<int64_t>(r["passengers"].size());
  int64_t total = 0;
  json flights = json::array();
  for (auto& fi : Arg(a, "flights")) {
    std::string num = StrArg(fi, "flight_number"), date = StrArg(fi, "date");
    const json* keep = nullptr;
    for (auto& rf : r["flights"])
      if (rf["flight_number"] == num && rf["date"] == date && cabin == r["cabin"]) {
        keep = &rf;
        break;
      }
    if (keep) {
      total += (*keep)["price"].get<int64_t>() * n;
      flights.push_back(*keep);
      continue;
    }
    json& f = Flight(s, num);
    json& inst = FlightInstance(s, num, date);
    if (inst["status"] != "available") Fail("Flight " + num + " not available on date " + date);
    if (inst["available_seats"][cabin].get<int64_t>() < n) Fail("Not enough seats on flight " + num);
    int64_t price = inst["prices"][cabin].get<int64_t>();
    flights.push_back({{"flight_number", num}, {"date", date}, {"price", price}, {"origin", f["origin"]}, {"destination", f["destination"]}});
    total += price * n;
  }
  int64_t old = 0;
  for (auto& rf : r["flights"]) old += rf["price"].get<int64_t>();
  total -= old * n;
  json p = PaymentForUpdate(user, StrArg(a, "payment_id"), total);
  if (!p.is_null()) r["payment_history"].push_back(p);
  r["flights"] = flights;
  r["cabin"] = cabin;
  // τ²-bench does not update the seat counts here.
  return r;
}

json UpdatePassengers(State& s, const json& a) {
  json passengers = Passengers(a);
  json& r = Reservation(s, StrArg(a, "reservation_id"));
  if (passengers.size() != r["passengers"].size()) Fail("Number of passengers does not match");
  r["passengers"] = passengers;
  return r;
}

}  // namespace

void AddAirline(Domain& d) {
  const json rid = StrProp("Reservation id, e.g. 'ZFA04Y'.");
  const json uid = StrProp("User id, e.g. 'sara_doe_496'.");
  const json flight_info = {{"type", "array"},
                            {"items",
                             {{"type", "object"},
                              {"properties", {{"flight_number", StrProp("Flight number, e.g. 'HAT001'.")}, {"date", StrProp("Date, 'YYYY-MM-DD'.")}}},
                              {"required", {"flight_number", "date"}}}},
                            {"description", "Each flight segment (flight number and date)."}};
  const json passengers = {{"type", "array"},
                           {"items",
                            {{"type", "object"},
                             {"properties", {{"first_name", StrProp("First name.")}, {"last_name", StrProp("Last name.")}, {"dob", StrProp("Date of birth, 'YYYY-MM-DD'.")}}},
                             {"required", {"first_name", "last_name", "dob"}}}},
                           {"description", "Passenger details."}};
  const json payments = {{"type", "array"},
                         {"items",
                          {{"type", "object"},
                           {"properties", {{"payment_id", StrProp("Payment method id, e.g. 'credit_card_7815826'.")}, {"amount", IntProp("Amount in dollars.")}}},
                           {"required", {"payment_id", "amount"}}}},
                         {"description", "How the total is paid (at most one certificate, one credit card, three gift cards)."}};
  const json cabin = EnumProp("Cabin class.", {"basic_economy", "economy", "business"});
  const json airport = StrProp("IATA airport code, e.g. 'JFK'.");
  d.tools = {
      {"book_reservation", "Book a reservation. Confirm every detail with the user first.",
       Params({{"user_id", uid},
               {"origin", airport},
               {"destination", airport},
               {"flight_type", EnumProp("Trip type.", {"one_way", "round_trip"})},
               {"cabin", cabin},
               {"flights", flight_info},
               {"passengers", passengers},
               {"payment_methods", payments},
               {"total_baggages", IntProp("Total number of bags.")},
               {"nonfree_baggages", IntProp("Number of paid bags.")},
               {"insurance", EnumProp("Travel insurance.", {"yes", "no"})}},
              {"user_id", "origin", "destination", "flight_type", "cabin", "flights", "passengers", "payment_methods",
               "total_baggages", "nonfree_baggages", "insurance"}),
       true, BookReservation},
      {"calculate", "Evaluate an arithmetic expression (numbers, + - * / and parentheses); the result is rounded to 2 decimals.",
       Params({{"expression", StrProp("The expression, e.g. '2 * (3 + 4)'.")}}, {"expression"}), false,
       [](State&, const json& a) { return Calculate(StrArg(a, "expression")); }},
      {"cancel_reservation", "Cancel a whole reservation; every payment is refunded. Confirm with the user first.",
       Params({{"reservation_id", rid}}, {"reservation_id"}), true, CancelReservation},
      {"get_reservation_details", "Get the details of a reservation.", Params({{"reservation_id", rid}}, {"reservation_id"}), false,
       [](State& s, const json& a) { return Reservation(s, StrArg(a, "reservation_id")); }},
      {"get_user_details", "Get a user's details, including their reservations and payment methods.",
       Params({{"user_id", uid}}, {"user_id"}), false, [](State& s, const json& a) { return User(s, StrArg(a, "user_id")); }},
      {"list_all_airports", "List every airport served, with its city.", Params({}, {}), false, ListAllAirports},
      {"search_direct_flight", "Search direct flights between two cities on a date.",
       Params({{"origin", airport}, {"destination", airport}, {"date", StrProp("Date, 'YYYY-MM-DD'.")}}, {"origin", "destination", "date"}),
       false,
       [](State& s, const json& a) {
         std::string o = StrArg(a, "origin"), de = StrArg(a, "destination");
         return SearchDirect(s, StrArg(a, "date"), &o, &de, nullptr);
       }},
      {"search_onestop_flight", "Search one-stop flights between two cities on a date.",
       Params({{"origin", airport}, {"destination", airport}, {"date", StrProp("Date, 'YYYY-MM-DD'.")}}, {"origin", "destination", "date"}),
       false, SearchOnestop},
      {"send_certificate", "Give a user a travel certificate (compensation). Confirm with the user first.",
       Params({{"user_id", uid}, {"amount", IntProp("Certificate amount in dollars.")}}, {"user_id", "amount"}), true, SendCertificate},
      {"transfer_to_human_agents",
       "Transfer the user to a human agent with a summary of the issue; only when the user asks for one or the request "
       "cannot be handled within the policy and tools.",
       Params({{"summary", StrProp("A summary of the user's issue.")}}, {"summary"}), false,
       [](State&, const json&) -> json { return "Transfer successful"; }},
      {"update_reservation_baggages", "Change the baggage counts of a reservation. Confirm with the user first.",
       Params({{"reservation_id", rid},
               {"total_baggages", IntProp("New total number of bags.")},
               {"nonfree_baggages", IntProp("New number of paid bags.")},
               {"payment_id", StrProp("Payment method id (not a certificate).")}},
              {"reservation_id", "total_baggages", "nonfree_baggages", "payment_id"}),
       true, UpdateBaggages},
      {"update_reservation_flights",
       "Change the flights (all segments, kept ones included) and cabin of a reservation. Confirm with the user first.",
       Params({{"reservation_id", rid}, {"cabin", cabin}, {"flights", flight_info}, {"payment_id", StrProp("Payment method id (not a certificate).")}},
              {"reservation_id", "cabin", "flights", "payment_id"}),
       true, UpdateFlights},
      {"update_reservation_passengers", "Change the passengers of a reservation (same count). Confirm with the user first.",
       Params({{"reservation_id", rid}, {"passengers", passengers}}, {"reservation_id", "passengers"}), true, UpdatePassengers},
      {"get_flight_status", "Get the status of a flight on a date.",
       Params({{"flight_number", StrProp("Flight number.")}, {"date", StrProp("Date, 'YYYY-MM-DD'.")}}, {"flight_number", "date"}), false,
       [](State& s, const json& a) { return FlightInstance(s, StrArg(a, "flight_number"), StrArg(a, "date"))["status"]; }},
  };
}

}  // namespace k2::agents::tau2::detail
