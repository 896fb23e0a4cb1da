// BFCL's TravelAPI (travel_booking): credit cards, flight bookings, an access token and a budget limit,
// loaded from a scenario as BFCL's _load_scenario loads it, with BFCL's result dicts and error texts.
// Tokens, card ids, balances, booking, transaction and insurance ids are drawn from
// random.Random(random_seed) in BFCL's order, so they equal BFCL's.
#include <ctime>
#include <map>
#include <utility>

#include "eval/fc/method.h"

namespace k2::eval::fc {
namespace {

json& St(json& s) { return s["TravelAPI"]; }

std::string Draw(json& st, int64_t lo, int64_t hi) {
  PyRandom rng = Rng(st);
  int64_t v = rng.RandInt(lo, hi);
  SaveRng(st, rng);
  return std::to_string(v);
}

bool Expired(json& st) { return st["token_expires_in"] == 0; }
bool BadToken(json& st, const json& a) { return a["access_token"] != st["access_token"]; }

const std::map<std::pair<std::string, std::string>, int>& BaseCosts() {
  static const std::map<std::pair<std::string, std::string>, int> kCosts = [] {
    std::map<std::pair<std::string, std::string>, int> m;
    auto row = [&](const char* from, std::initializer_list<std::pair<const char*, int>> tos) {
      for (auto& [to, c] : tos) m[{from, to}] = c;
    };
    row("SFO", {{"LAX", 200}, {"JFK", 500}, {"ORD", 400}, {"BOS", 450}, {"RMS", 300}, {"SBK", 350}, {"MPC", 370}, {"SVP", 320}, {"SHD", 330},
                {"SSV", 340}, {"OKD", 360}, {"WLB", 310}, {"CRH", 380}, {"ATV", 390}, {"PHV", 420}, {"GFD", 430}, {"CIA", 700}});
    row("LAX", {{"SFO", 100}, {"JFK", 600}, {"ORD", 500}, {"BOS", 550}, {"RMS", 310}, {"SBK", 320}, {"MPC", 330}, {"SVP", 340}, {"SHD", 350},
                {"SSV", 360}, {"OKD", 370}, {"WLB", 380}, {"CRH", 390}, {"ATV", 400}, {"PHV", 410}, {"GFD", 420}, {"HND", 430}});
    row("JFK", {{"ORD", 300}, {"BOS", 250}, {"RMS", 450}, {"SBK", 460}, {"MPC", 470}, {"SVP", 480}, {"SHD", 490}, {"SSV", 500}, {"OKD", 510},
                {"WLB", 520}, {"CRH", 530}, {"ATV", 540}, {"PHV", 550}, {"GFD", 560}, {"LAX", 570}, {"HND", 800}, {"PVG", 950}, {"PEK", 1000}});
    row("ORD", {{"LAX", 180}, {"BOS", 200}, {"RMS", 350}, {"SBK", 360}, {"MPC", 370}, {"SVP", 380}, {"SHD", 390}, {"SSV", 400}, {"OKD", 410},
                {"WLB", 420}, {"CRH", 430}, {"ATV", 440}, {"PHV", 450}, {"GFD", 460}});
    row("BOS", {{"RMS", 400}, {"SBK", 410}, {"MPC", 420}, {"SVP", 430}, {"SHD", 440}, {"SSV", 450}, {"OKD", 460}, {"WLB", 470}, {"CRH", 480},
                {"ATV", 490}, {"PHV", 500}, {"GFD", 510}});
    row("RMS", {{"BOS", 200}, {"JFK", 210}, {"SBK", 220}, {"MPC", 230}, {"SVP", 240}, {"SHD", 250}, {"SSV", 260}, {"OKD", 270}, {"WLB", 280},
                {"CRH", 290}, {"ATV", 300}, {"PHV", 310}, {"GFD", 320}, {"LAX", 330}});
    row("SBK", {{"MPC", 200}, {"SVP", 210}, {"SHD", 220}, {"SSV", 230}, {"OKD", 240}, {"WLB", 250}, {"CRH", 260}, {"ATV", 270}, {"PHV", 280}, {"GFD", 290}});
    row("MPC", {{"SVP", 210}, {"SHD", 220}, {"SSV", 230}, {"OKD", 240}, {"WLB", 250}, {"CRH", 260}, {"ATV", 270}, {"PHV", 280}, {"GFD", 290}});
    row("SVP", {{"SHD", 230}, {"SSV", 240}, {"OKD", 250}, {"WLB", 260}, {"CRH", 270}, {"ATV", 280}, {"PHV", 290}, {"GFD", 300}});
    row("SHD", {{"SSV", 220}, {"OKD", 230}, {"WLB", 240}, {"CRH", 250}, {"ATV", 260}, {"PHV", 270}, {"GFD", 280}});
    row("SSV", {{"OKD", 240}, {"WLB", 250}, {"CRH", 260}, {"ATV", 270}, {"PHV", 280}, {"GFD", 290}});
    row("OKD", {{"WLB", 230}, {"CRH", 240}, {"ATV", 250}, {"PHV", 260}, {"GFD", 270}, {"LAX", 220}});
    row("WLB", {{"CRH", 250}, {"ATV", 260}, {"PHV", 270}, {"GFD", 280}});
    row("CRH", {{"ATV", 240}, {"PHV", 250}, {"GFD", 260}, {"SFO", 270}, {"RMS", 280}, {"HKG", 290}, {"JFK", 300}});
    row("ATV", {{"PHV", 230}, {"GFD", 240}});
    row("PHV", {{"GFD", 220}});
    row("LHR", {{"CDG", 100}});
    return m;
  }();
  return kCosts;
}

const std::vector<std::string>& Airports() {
  static const std::vector<std::string> kAirports = {"RMS", "SBK", "MPC", "SVP", "SHD", "CDG", "LHR", "SSV", "OKD", "WLB", "PEK", "HND",
                                                     "HKG", "CIA", "CRH", "ATV", "PHV", "GFD", "SFO", "LAX", "JFK", "ORD", "BOS"};
  return kAirports;
}

// get_flight_cost's price (a ValueError in BFCL when the route or class is unknown).
Result FlightCost(const std::string& from, const std::string& to, const std::string& date, const std::string& cls) {
  auto it = BaseCosts().find({from, to});
  if (it == BaseCosts().end()) return Err("No available route for the given airports.");
  int factor = cls == "economy" ? 1 : cls == "business" ? 2 : cls == "first" ? 5 : 0;
  if (factor == 0) return Err("Invalid travel class. Options are: economy, business, first.");
  int digits = 0;
  for (char ch : date)
    if (ch >= '0' && ch <= '9') digits += ch - '0';
  int mult = digits % 2 == 0 ? 2 : 1;
  return json(static_cast<double>(it->second * factor * mult));
}

// The balance of a card as a number, or nullptr.
json* Balance(json& st, const std::string& card) {
  json& cards = st["credit_card_list"];
  if (!cards.contains(card) || !cards[card].is_object() || !cards[card].contains("balance") || !cards[card]["balance"].is_number())
    return nullptr;
  return &cards[card]["balance"];
}

std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : v.is_null() ? "None" : v.dump(); }

}  // namespace

Expected<json> LoadTravelApi(const json& c, const std::string& w) {
  json st = {{"credit_card_list", json::object()}, {"booking_record", json::object()}, {"access_token", nullptr},
             {"token_type", nullptr},               {"token_expires_in", nullptr},      {"token_scope", nullptr},
             {"user_first_name", nullptr},          {"user_last_name", nullptr},        {"budget_limit", nullptr},
             {"_random_seed", 141053}};
  for (const char* k : {"credit_card_list", "booking_record", "access_token", "token_type", "token_expires_in", "token_scope",
                        "user_first_name", "user_last_name", "budget_limit"})
    if (c.contains(k)) st[k] = c[k];
  if (c.contains("random_seed")) {
    if (!c["random_seed"].is_number_unsigned()) return InvalidArgument(w + ".random_seed: expected a non-negative integer");
    st["_random_seed"] = c["random_seed"];
  }
  for (const char* k : {"credit_card_list", "booking_record"})
    if (!st[k].is_object()) return InvalidArgument(w + "." + k + ": expected {id: {...}}");
  if (!st["budget_limit"].is_null() && !st["budget_limit"].is_number()) return InvalidArgument(w + ".budget_limit: expected number or null");
  return st;
}

std::vector<Method> TravelApiMethods() {
  const char* C = "TravelAPI";
  return {
      {C, "authenticate_travel", "Authenticate the user with the travel API.",
       {{"client_id", "string", "The client application's client_id.", true},
        {"client_secret", "string", "The client application's client_secret.", true},
        {"refresh_token", "string", "The refresh token obtained from the initial authentication.", true},
        {"grant_type", "string", "The grant type: read_write, read, write.", true},
        {"user_first_name", "string", "The first name of the user.", true},
        {"user_last_name", "string", "The last name of the user.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         st["token_expires_in"] = 2;
         st["access_token"] = Draw(st, 100000, 999999);
         st["token_type"] = "Bearer";
         st["token_scope"] = a["grant_type"];
         st["user_first_name"] = a["user_first_name"];
         st["user_last_name"] = a["user_last_name"];
         return json{{"expires_in", 2}, {"access_token", st["access_token"]}, {"token_type", "Bearer"}, {"scope", a["grant_type"]}};
       }},
      {C, "travel_get_login_status", "Get the status of the login.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         const json& e = St(s)["token_expires_in"];
         return json{{"status", !(e.is_null() || e == 0)}};
       }},
      {C, "get_budget_fiscal_year", "Get the budget fiscal year.",
       {{"lastModifiedAfter", "string", "Only fiscal years changed after this date.", false},
        {"includeRemoved", "string", "Include removed fiscal years.", false}},
       [](json&, std::vector<std::string>&, const json&) -> Result { return json{{"budget_fiscal_year", "2018"}}; }},
      {C, "register_credit_card", "Register a credit card.",
       {{"access_token", "string", "The access token.", true},
        {"card_number", "string", "The credit card number.", true},
        {"expiration_date", "string", "The expiration date (MM/YYYY).", true},
        {"cardholder_name", "string", "The name of the cardholder.", true},
        {"card_verification_number", "integer", "The card verification number.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (st["token_expires_in"].is_null()) return json{{"error", "Token not initialized"}};
         if (Expired(st)) return json{{"error", "Token expired"}};
         if (BadToken(st, a)) return json{{"error", "Invalid access token"}};
         // BFCL looks the card number up among the card ids.
         if (st["credit_card_list"].contains(a["card_number"].get<std::string>())) return json{{"error", "Card already registered"}};
         std::string id = Draw(st, 100000000000, 999999999999);
         int64_t balance = std::stoll(Draw(st, 10000, 99999));
         st["credit_card_list"][id] = {{"card_number", a["card_number"]},
                                       {"expiration_date", a["expiration_date"]},
                                       {"cardholder_name", a["cardholder_name"]},
                                       {"card_verification_number", a["card_verification_number"]},
                                       {"balance", balance}};
         return json{{"card_id", id}};
       }},
      {C, "get_flight_cost", "Get the list of cost of a flight in USD based on location, date, and class.",
       {{"travel_from", "string", "The 3 letter code of the departing airport.", true},
        {"travel_to", "string", "The 3 letter code of the arriving airport.", true},
        {"travel_date", "string", "The date of the travel (YYYY-MM-DD).", true},
        {"travel_class", "string", "economy, business or first.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         Result r = FlightCost(a["travel_from"], a["travel_to"], a["travel_date"], a["travel_class"]);
         if (std::holds_alternative<Err>(r)) return r;
         return json{{"travel_cost_list", json::array({std::get<json>(r)})}};
       }},
      {C, "get_credit_card_balance", "Get the balance of a credit card.",
       {{"access_token", "string", "The access token.", true}, {"card_id", "string", "The ID of the credit card.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (Expired(st)) return json{{"error", "Token expired"}};
         if (BadToken(st, a)) return json{{"error", "Invalid access token"}};
         std::string card = a["card_id"];
         if (!st["credit_card_list"].contains(card))
           return json{{"error", "Card not registered. Here are a list of card_id's: " + PyKeyList(st["credit_card_list"], false)}};
         if (!st["credit_card_list"][card].contains("balance")) return Err("'balance'");
         return json{{"card_balance", st["credit_card_list"][card]["balance"]}};
       }},
      {C, "book_flight", "Book a flight given the travel information.",
       {{"access_token", "string", "The access token.", true},
        {"card_id", "string", "The ID of the credit card to use for the booking.", true},
        {"travel_date", "string", "The date of the travel (YYYY-MM-DD).", true},
        {"travel_from", "string", "The airport the travel is from.", true},
        {"travel_to", "string", "The airport the travel is to.", true},
        {"travel_class", "string", "The class of the travel.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         auto fail = [](const std::string& e) { return json{{"booking_status", false}, {"error", e}}; };
         if (Expired(st)) return fail("Token expired");
         if (BadToken(st, a)) return fail("Invalid access token");
         std::string card = a["card_id"], from = a["travel_from"], to = a["travel_to"], date = a["travel_date"], cls = a["travel_class"];
         if (!st["credit_card_list"].contains(card)) return fail("Card not registered");
         if (!st["credit_card_list"][card].contains("balance")) return fail("Balance not found");
         json* balance = Balance(st, card);
         if (!balance) return Err("'<' not supported: the card's balance is not a number");
         const auto& ap = Airports();
         if (std::find(ap.begin(), ap.end(), from) == ap.end()) return fail("Invalid departure airport code: " + from);
         if (std::find(ap.begin(), ap.end(), to) == ap.end()) return fail("Invalid destination airport code: " + to);
         int parts[6];
         if (!PyStrptime(date, false, parts)) return fail("Invalid date format. Use YYYY-MM-DD.");
         if (cls != "economy" && cls != "business" && cls != "first")
           return fail("Invalid travel class. Must be one of {'economy', 'business', 'first'}");  // a Python set: order not fixed
         Result cost = FlightCost(from, to, date, cls);
         if (auto* e = std::get_if<Err>(&cost)) return fail(e->message());
         double price = std::get<json>(cost).get<double>();
         if (balance->get<double>() < price) return fail("Insufficient funds");
         if (!st["budget_limit"].is_null() && balance->get<double>() < st["budget_limit"].get<double>()) return fail("Balance is less than budget limit");
         *balance = PyAdd(*balance, price, /*subtract=*/true);
         std::string booking = Draw(st, 1000000, 9999999);
         std::string transaction = Draw(st, 10000000, 99999999);
         st["booking_record"][booking] = {{"card_id", card},     {"travel_date", date}, {"travel_from", from}, {"travel_to", to},
                                          {"travel_class", cls}, {"travel_cost", price}, {"transaction_id", transaction}};
         return json{{"booking_id", booking}, {"transaction_id", transaction}, {"booking_status", true}, {"booking_history", json::object()}};
       }},
      {C, "retrieve_invoice", "Retrieve the invoice for a booking.",
       {{"access_token", "string", "The access token.", true},
        {"booking_id", "string", "The ID of the booking.", false},
        {"insurance_id", "string", "The ID of the insurance.", false}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (Expired(st)) return json{{"error", "Token expired"}};
         if (BadToken(st, a)) return json{{"error", "Invalid access token"}};
         if (!a.contains("booking_id") || !st["booking_record"].contains(a["booking_id"].get<std::string>())) return json{{"error", "Booking not found"}};
         std::string id = a["booking_id"];
         const json& b = st["booking_record"][id];
         json invoice = {{"booking_id", id}};
         for (const char* k : {"travel_date", "travel_from", "travel_to", "travel_class", "travel_cost", "transaction_id"}) {
           if (!b.contains(k)) return Err(PyRepr(k));
           invoice[k] = b[k];
         }
         return json{{"invoice", invoice}};
       }},
      {C, "get_booking_history", "Retrieve all booking history for the user.", {{"access_token", "string", "The access token.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (Expired(st)) return json{{"error", "Token expired"}};
         if (BadToken(st, a)) return json{{"error", "Invalid access token"}};
         return json{{"booking_history", st["booking_record"]}};
       }},
      {C, "list_all_airports", "List all available airports.", {},
       [](json&, std::vector<std::string>&, const json&) -> Result { return json(Airports()); }},
      {C, "cancel_booking", "Cancel a booking.",
       {{"access_token", "string", "The access token.", true}, {"booking_id", "string", "The ID of the booking.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         auto fail = [](const std::string& e) { return json{{"cancel_status", false}, {"error", e}}; };
         if (Expired(st)) return fail("Token expired");
         if (BadToken(st, a)) return fail("Invalid access token");
         std::string id = a["booking_id"];
         if (!st["booking_record"].contains(id)) return fail("Booking not found");
         json& b = st["booking_record"][id];
         if (!b.contains("card_id") || !b["card_id"].is_string()) return Err("'card_id'");
         if (!b.contains("travel_cost") || !b["travel_cost"].is_number()) return Err("'travel_cost'");
         json* balance = Balance(st, b["card_id"].get<std::string>());
         if (!balance) return Err(PyRepr(b["card_id"].get<std::string>()));
         *balance = PyAdd(*balance, b["travel_cost"]);
         st["booking_record"].erase(id);
         return json{{"cancel_status", true}};
       }},
      {C, "compute_exchange_rate", "Compute the exchange rate between two currencies.",
       {{"base_currency", "string", "The base currency.", true},
        {"target_currency", "string", "The target currency.", true},
        {"value", "float", "The value to convert.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         static const std::vector<std::pair<std::string, double>> kRates = {{"RMB", 7},   {"EUR", 0.8}, {"JPY", 110}, {"GBP", 0.7},
                                                                            {"CAD", 1.3}, {"AUD", 1.4}, {"INR", 70},  {"RUB", 60},
                                                                            {"BRL", 3.8}, {"MXN", 20}};
         std::string base = a["base_currency"], target = a["target_currency"];
         double v = a["value"];
         for (auto& [cur, rate] : kRates) {
           if (base == "USD" && target == cur) return json{{"exchanged_value", v * rate}};
           if (base == cur && target == "USD") return json{{"exchanged_value", PyRound(v / rate, 2)}};
         }
         return Err("No available exchange rate for the given currencies.");
       }},
      {C, "verify_traveler_information", "Verify the traveler information.",
       {{"first_name", "string", "The first name of the traveler.", true},
        {"last_name", "string", "The last name of the traveler.", true},
        {"date_of_birth", "string", "The date of birth (YYYY-MM-DD).", true},
        {"passport_number", "string", "The passport number of the traveler.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         auto fail = [](const std::string& e) { return json{{"verification_status", false}, {"verification_failure", e}}; };
         if (st["user_first_name"] != a["first_name"] || st["user_last_name"] != a["last_name"])
           return fail("Cannot book flight information for another user.Expected " + Str(st["user_first_name"]) + " " + Str(st["user_last_name"]) +
                       ", got " + Str(a["first_name"]) + " " + Str(a["last_name"]));
         int b[6];
         if (!PyStrptime(a["date_of_birth"], false, b)) return fail("Invalid date of birth format. Please use YYYY-MM-DD.");
         // datetime.today(): the age is computed on the local date, as BFCL does.
         std::time_t now = std::time(nullptr);
         std::tm today{};
         localtime_r(&now, &today);
         int age = today.tm_year + 1900 - b[0] - ((today.tm_mon + 1 < b[1] || (today.tm_mon + 1 == b[1] && today.tm_mday < b[2])) ? 1 : 0);
         if (age < 18) return fail("Traveler must be at least 18 years old.");
         if (a["passport_number"].get<std::string>().rfind("US", 0) != 0) return fail("Passport must be issued by the United States.");
         return json{{"verification_status", true}};
       }},
      {C, "set_budget_limit", "Set the budget limit for the user.",
       {{"access_token", "string", "The access token.", true}, {"budget_limit", "float", "The budget limit to set in USD.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (Expired(st)) return json{{"error", "Token expired"}};
         if (BadToken(st, a)) return json{{"error", "Invalid access token"}};
         double limit = a["budget_limit"];
         st["budget_limit"] = limit;
         return json{{"budget_limit", limit}};
       }},
      {C, "get_nearest_airport_by_city", "Get the nearest airport to the given location.", {{"location", "string", "The name of the location.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         static const json kMap = {{"Rivermist", "RMS"},     {"Stonebrook", "SBK"},   {"Maplecrest", "MPC"},   {"Silverpine", "SVP"},
                                   {"Shadowridge", "SHD"},   {"London", "LHR"},       {"Paris", "CDG"},        {"Sunset Valley", "SSV"},
                                   {"Oakendale", "OKD"},     {"Willowbend", "WLB"},   {"Crescent Hollow", "CRH"}, {"Autumnville", "ATV"},
                                   {"Pinehaven", "PHV"},     {"Greenfield", "GFD"},   {"San Francisco", "SFO"}, {"Los Angeles", "LAX"},
                                   {"New York", "JFK"},      {"Chicago", "ORD"},      {"Boston", "BOS"},       {"Beijing", "PEK"},
                                   {"Hong Kong", "HKG"},     {"Rome", "CIA"},         {"Tokyo", "HND"}};
         return json{{"nearest_airport", kMap.value(a["location"].get<std::string>(), "Unknown")}};
       }},
      {C, "purchase_insurance", "Purchase insurance.",
       {{"access_token", "string", "The access token.", true},
        {"insurance_type", "string", "The type of insurance to purchase.", true},
        {"booking_id", "string", "The ID of the booking.", true},
        {"insurance_cost", "float", "The cost of the insurance.", true},
        {"card_id", "string", "The ID of the credit card to use.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         auto fail = [](const std::string& e) { return json{{"insurance_status", false}, {"error", e}}; };
         if (Expired(st)) return fail("Token expired");
         if (BadToken(st, a)) return fail("Invalid access token");
         if (!st["budget_limit"].is_null() && st["budget_limit"].get<double>() < a["insurance_cost"].get<double>()) return fail("Exceeded budget limit");
         if (!st["booking_record"].contains(a["booking_id"].get<std::string>())) return fail("Booking not found");
         std::string card = a["card_id"];
         if (!st["credit_card_list"].contains(card)) return fail("Credit card not registered");
         json* balance = Balance(st, card);
         if (!balance) return Err("'balance'");
         *balance = PyAdd(*balance, a["insurance_cost"], /*subtract=*/true);
         return json{{"insurance_id", Draw(st, 100000000, 999999999)}, {"insurance_status", true}};
       }},
      {C, "contact_customer_support", "Contact travel booking customer support.",
       {{"booking_id", "string", "The ID of the booking.", true}, {"message", "string", "The message to send to customer support.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         if (!St(s)["booking_record"].contains(a["booking_id"].get<std::string>())) return json{{"error", "Booking not found"}};
         return json{{"customer_support_message",
                      "Thank you for contacting customer support. Your message has been received and we will get back to you shortly."}};
       }},
      {C, "get_all_credit_cards", "Get all registered credit cards.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result { return json{{"credit_card_list", St(s)["credit_card_list"]}}; }},
  };
}

}  // namespace k2::eval::fc
