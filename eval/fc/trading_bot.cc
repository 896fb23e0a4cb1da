// BFCL's TradingBot: orders, an account, a watch list and stock quotes, loaded from a scenario as BFCL's
// _load_scenario loads it, with BFCL's result dicts and error texts. Order ids are Python ints (decimal
// keys here). Transaction timestamps are drawn as BFCL draws them: random.Random(random_seed).randint
// over the day after the fixed CURRENT_TIME (2024-09-01 10:30), so they match BFCL's whatever the clock.
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "eval/fc/method.h"
#include "rewards/ast_match.h"

namespace k2::eval::fc {
namespace {

json& St(json& s) { return s["TradingBot"]; }

json DefaultStocks() {
  auto q = [](double p, double c, double v, double ma5, double ma20) {
    return json{{"price", p}, {"percent_change", c}, {"volume", v}, {"MA(5)", ma5}, {"MA(20)", ma20}};
  };
  return {{"AAPL", q(227.16, 0.17, 2.552, 227.11, 227.09)},    {"GOOG", q(2840.34, 0.24, 1.123, 2835.67, 2842.15)},
          {"TSLA", q(667.92, -0.12, 1.654, 671.15, 668.20)},   {"MSFT", q(310.23, 0.09, 3.234, 309.88, 310.11)},
          {"NVDA", q(220.34, 0.34, 1.234, 220.45, 220.67)},    {"ALPH", q(1320.45, -0.08, 1.567, 1321.12, 1325.78)},
          {"OMEG", q(457.23, 0.12, 2.345, 456.78, 458.12)},    {"QUAS", q(725.89, -0.03, 1.789, 726.45, 728.00)},
          {"NEPT", q(88.34, 0.19, 0.654, 88.21, 88.67)},       {"SYNX", q(345.67, 0.11, 2.112, 345.34, 346.12)},
          {"ZETA", q(22.09, -0.05, 0.789, 22.12, 22.34)}};
}

json NotAuthenticated(const std::string& what) { return {{"error", "User not authenticated. Please log in to " + what + "."}}; }

// CURRENT_TIME + randint(start, start + 1 day) - start seconds, as "%Y-%m-%d %H:%M:%S".
std::string Timestamp(json& st) {
  PyRandom rng = Rng(st);
  int64_t offset = rng.RandInt(0, 86400);  // randint(a, a + 86400) draws as randint(0, 86400)
  SaveRng(st, rng);
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 8;
  t.tm_mday = 1;
  t.tm_hour = 10;
  t.tm_min = 30;
  t.tm_sec = static_cast<int>(offset);
  time_t secs = timegm(&t);
  std::tm out{};
  gmtime_r(&secs, &out);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &out);
  return buf;
}

std::string Money(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "$%.2f", x);
  return buf;
}

bool Has(const json& list, const json& x) {
  for (auto& v : list)
    if (v == x) return true;
  return false;
}

// Python's str(list(self.orders.keys())), in insertion order.
std::string KeyList(json& st) {
  std::string out = "[";
  for (auto& k : st["_orders_order"]) {
    const std::string& key = k.get_ref<const std::string&>();
    out += (out.size() > 1 ? ", " : "") + (IsIntKey(key) ? key : PyRepr(key));
  }
  return out + "]";
}

// datetime(...) as a comparable tuple; datetime.min / datetime.max as bounds.
using Stamp = std::array<int, 6>;

Result ParseDate(const std::string& s, bool with_time, Stamp& out) {
  if (!PyStrptime(s, with_time, out.data()))
    return Err("time data " + PyRepr(s) + " does not match format '" + (with_time ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d") + "'");
  return json();
}

}  // namespace

Expected<json> LoadTradingBot(const json& c, const std::string& w) {
  json st = {{"orders",
              {{"12345", {{"id", 12345}, {"order_type", "Buy"}, {"symbol", "AAPL"}, {"price", 210.65}, {"amount", 10}, {"status", "Completed"}}},
               {"12446", {{"id", 12446}, {"order_type", "Sell"}, {"symbol", "GOOG"}, {"price", 2840.56}, {"amount", 5}, {"status", "Pending"}}}}},
             {"account_info", {{"account_id", 12345}, {"balance", 10000.0}, {"binding_card", 1974202140965533}}},
             {"authenticated", false},
             {"market_status", "Closed"},
             {"order_counter", 12446},
             {"stocks", DefaultStocks()},
             {"watch_list", json::array({"NVDA"})},
             {"transaction_history", json::array()},
             {"_random_seed", 1053520}};
  for (const char* k : {"account_info", "authenticated", "market_status", "order_counter", "stocks", "watch_list", "transaction_history"})
    if (c.contains(k)) st[k] = c[k];
  if (c.contains("random_seed")) {
    if (!c["random_seed"].is_number_unsigned()) return InvalidArgument(w + ".random_seed: expected a non-negative integer");
    st["_random_seed"] = c["random_seed"];
  }
  if (c.contains("orders")) {
    // Keys that are digits become ints (decimal keys here); others stay as they are. Python keeps them in
    // file order: "_orders_order" (the suite loader reads it from the file) or, without it, ids ascending.
    if (!c["orders"].is_object()) return InvalidArgument(w + ".orders: expected {id: order}");
    st["orders"] = json::object();
    json keys = json::array();
    const json& order = c.contains("_orders_order") && c["_orders_order"].is_array() && c["_orders_order"].size() == c["orders"].size()
                            ? c["_orders_order"]
                            : json(IntKeyOrder(c["orders"]));
    for (auto& kj : order) {
      if (!kj.is_string() || !c["orders"].contains(kj.get<std::string>())) return InvalidArgument(w + "._orders_order: not the keys of orders");
      const std::string& k = kj.get_ref<const std::string&>();
      std::string key = IsIntKey(k) ? std::to_string(std::stoll(k)) : k;
      if (!st["orders"].contains(key)) keys.push_back(key);
      st["orders"][key] = c["orders"][k];
    }
    st["_orders_order"] = std::move(keys);
  } else {
    st["_orders_order"] = json::array({"12345", "12446"});
  }
  if (!st["account_info"].is_object()) return InvalidArgument(w + ".account_info: expected object");
  if (!st["stocks"].is_object()) return InvalidArgument(w + ".stocks: expected {symbol: quote}");
  if (!st["watch_list"].is_array()) return InvalidArgument(w + ".watch_list: expected array");
  if (!st["transaction_history"].is_array()) return InvalidArgument(w + ".transaction_history: expected array");
  if (!st["order_counter"].is_number_integer()) return InvalidArgument(w + ".order_counter: expected integer");
  return st;
}

std::vector<Method> TradingBotMethods() {
  const char* C = "TradingBot";
  return {
      {C, "get_current_time", "Get the current time.", {},
       [](json&, std::vector<std::string>&, const json&) -> Result { return json{{"current_time", "10:30 AM"}}; }},
      {C, "get_symbol_by_name", "Get the symbol of a stock by company name.", {{"name", "string", "Name of the company.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         static const json kMap = {{"Apple", "AAPL"},           {"Google", "GOOG"},        {"Tesla", "TSLA"},
                                   {"Microsoft", "MSFT"},       {"Nvidia", "NVDA"},        {"Zeta Corp", "ZETA"},
                                   {"Alpha Tech", "ALPH"},      {"Omega Industries", "OMEG"}, {"Quasar Ltd.", "QUAS"},
                                   {"Neptune Systems", "NEPT"}, {"Synex Solutions", "SYNX"}, {"Amazon", "AMZN"},
                                   {"Gorilla", "GORI"}};
         return json{{"symbol", kMap.value(a["name"].get<std::string>(), "Stock not found")}};
       }},
      {C, "get_stock_info", "Get the details of a stock.", {{"symbol", "string", "Symbol that uniquely identifies the stock.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         std::string sym = a["symbol"];
         if (!St(s)["stocks"].contains(sym)) return json{{"error", "Stock with symbol '" + sym + "' not found."}};
         return St(s)["stocks"][sym];
       }},
      {C, "get_order_details", "Get the details of an order.", {{"order_id", "integer", "ID of the order.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& orders = St(s)["orders"];
         std::string id = IdKey(a["order_id"]);
         if (id.empty() || !orders.contains(id))
           return json{{"error", "Order with ID " + PyStr(a["order_id"]) + " not found." + "Here is the list of orders_id: " + KeyList(St(s))}};
         return orders[id];
       }},
      {C, "cancel_order", "Cancel an order.", {{"order_id", "integer", "ID of the order to cancel.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& orders = St(s)["orders"];
         std::string id = IdKey(a["order_id"]);
         std::string shown = PyStr(a["order_id"]);
         if (id.empty() || !orders.contains(id)) return json{{"error", "Order with ID " + shown + " not found."}};
         if (At(orders[id], "status") == "Completed") return json{{"error", "Can't cancel order " + shown + ". Order is already completed."}};
         orders[id]["status"] = "Cancelled";
         return json{{"order_id", a["order_id"]}, {"status", "Cancelled"}};
       }},
      {C, "place_order", "Place an order.",
       {{"order_type", "string", "Type of the order (Buy/Sell).", true},
        {"symbol", "string", "Symbol of the stock to trade.", true},
        {"price", "float", "Price at which to place the order.", true},
        {"amount", "integer", "Number of shares to trade.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("place an order");
         std::string sym = a["symbol"];
         if (!st["stocks"].contains(sym)) return json{{"error", "Invalid stock symbol: " + sym}};
         double price = a["price"];
         const json& amount = a["amount"];  // kept as given; int(amount) only in the cost
         if (price <= 0 || amount.get<double>() <= 0) return json{{"error", "Price and amount must be positive values."}};
         if (rewards::UnicodeLower(a["order_type"].get<std::string>()) == "buy") {
           double total = price * std::trunc(amount.get<double>());
           double balance = st["account_info"].value("balance", 0.0);
           if (total > balance)
             return json{{"error", "Insufficient funds: required " + Money(total) + " but only " + Money(balance) + " available."}};
         }
         int64_t id = st["order_counter"];
         if (!st["orders"].contains(std::to_string(id))) st["_orders_order"].push_back(std::to_string(id));
         st["orders"][std::to_string(id)] = {{"id", id}, {"order_type", a["order_type"]}, {"symbol", sym}, {"price", price}, {"amount", amount}, {"status", "Open"}};
         st["order_counter"] = id + 1;
         return json{{"order_id", id}, {"order_type", a["order_type"]}, {"status", "Pending"}, {"price", price}, {"amount", amount}};
       }},
      {C, "withdraw_funds", "Withdraw funds from the account balance.", {{"amount", "float", "Amount to withdraw from the account.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("make a transaction");
         if (st["market_status"] != "Open") return json{{"error", "Market is closed. Transactions are not allowed."}};
         const json& amount = a["amount"];
         if (amount.get<double>() <= 0) return json{{"error", "Transaction amount must be positive."}};
         if (!st["account_info"].contains("balance")) return Err("'balance'");
         if (amount.get<double>() > st["account_info"]["balance"].get<double>()) return json{{"error", "Insufficient funds for withdrawal."}};
         st["account_info"]["balance"] = PyAdd(st["account_info"]["balance"], amount, /*subtract=*/true);
         st["transaction_history"].push_back({{"type", "withdrawal"}, {"amount", amount}, {"timestamp", Timestamp(st)}});
         return json{{"status", "Withdrawal successful"}, {"new_balance", st["account_info"]["balance"]}};
       }},
      {C, "get_account_info", "Get account information.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (!Truthy(St(s)["authenticated"])) return NotAuthenticated("view account information");
         return St(s)["account_info"];
       }},
      {C, "trading_login", "Handle user login.",
       {{"username", "string", "Username for authentication.", true}, {"password", "string", "Password for authentication.", true}},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (Truthy(St(s)["authenticated"])) return json{{"status", "Already logged in"}};
         St(s)["authenticated"] = true;
         return json{{"status", "Logged in successfully"}};
       }},
      {C, "trading_get_login_status", "Get the login status.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result { return json{{"status", Truthy(St(s)["authenticated"])}}; }},
      {C, "trading_logout", "Handle user logout for trading system.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (!Truthy(St(s)["authenticated"])) return json{{"status", "No user is currently logged in"}};
         St(s)["authenticated"] = false;
         return json{{"status", "Logged out successfully"}};
       }},
      {C, "fund_account", "Fund the account with the specified amount.", {{"amount", "float", "Amount to fund the account with.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("fund the account");
         const json& amount = a["amount"];
         if (amount.get<double>() <= 0) return json{{"error", "Funding amount must be positive."}};
         if (!st["account_info"].contains("balance")) return Err("'balance'");
         st["account_info"]["balance"] = PyAdd(st["account_info"]["balance"], amount);
         st["transaction_history"].push_back({{"type", "deposit"}, {"amount", amount}, {"timestamp", Timestamp(st)}});
         return json{{"status", "Account funded successfully"}, {"new_balance", st["account_info"]["balance"]}};
       }},
      {C, "remove_stock_from_watchlist", "Remove a stock from the watchlist.", {{"symbol", "string", "Symbol of the stock to remove.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("modify the watchlist");
         std::string sym = a["symbol"];
         json& list = st["watch_list"];
         for (size_t i = 0; i < list.size(); ++i)
           if (list[i] == sym) {
             list.erase(i);
             return json{{"status", "Stock " + sym + " removed from watchlist successfully."}};
           }
         return json{{"error", "Stock " + sym + " not found in watchlist."}};
       }},
      {C, "get_watchlist", "Get the watchlist.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (!Truthy(St(s)["authenticated"])) return json::array({"Error: User not authenticated. Please log in to view the watchlist."});
         return json{{"watchlist", St(s)["watch_list"]}};
       }},
      {C, "get_order_history", "Get the stock order ID history.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         if (!Truthy(St(s)["authenticated"])) return json::array({NotAuthenticated("view order history")});
         json ids = json::array();
         for (auto& k : St(s)["_orders_order"]) ids.push_back(IsIntKey(k.get<std::string>()) ? json(std::stoll(k.get<std::string>())) : k);
         return json{{"history", ids}};
       }},
      {C, "get_transaction_history", "Get the transaction history within a specified date range.",
       {{"start_date", "string", "Start date for the history (format: 'YYYY-MM-DD').", false},
        {"end_date", "string", "End date for the history (format: 'YYYY-MM-DD').", false}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return json::array({NotAuthenticated("view transaction history")});
         Stamp lo = {1, 1, 1, 0, 0, 0}, hi = {9999, 12, 31, 23, 59, 59};
         std::string from = a.contains("start_date") ? a["start_date"].get<std::string>() : "";
         std::string to = a.contains("end_date") ? a["end_date"].get<std::string>() : "";
         if (!from.empty()) {
           Result r = ParseDate(from, false, lo);
           if (std::holds_alternative<Err>(r)) return r;
         }
         if (!to.empty()) {
           Result r = ParseDate(to, false, hi);
           if (std::holds_alternative<Err>(r)) return r;
         }
         json out = json::array();
         for (auto& t : st["transaction_history"]) {
           if (!t.is_object() || !t.contains("timestamp") || !t["timestamp"].is_string()) return Err("'timestamp'");
           Stamp at;
           Result r = ParseDate(t["timestamp"].get<std::string>(), true, at);
           if (std::holds_alternative<Err>(r)) return r;
           if (lo <= at && at <= hi) out.push_back(t);
         }
         return json{{"transaction_history", out}};
       }},
      {C, "get_available_stocks", "Get a list of stock symbols in the given sector.", {{"sector", "string", "The sector to retrieve stocks from.", true}},
       [](json&, std::vector<std::string>&, const json& a) -> Result {
         static const json kSectors = {{"Technology", {"AAPL", "GOOG", "MSFT", "NVDA"}}, {"Automobile", {"TSLA", "F", "GM"}}};
         return json{{"stock_list", kSectors.value(a["sector"].get<std::string>(), json::array())}};
       }},
      {C, "filter_stocks_by_price", "Filter stocks based on a price range.",
       {{"stocks", "array", "List of stock symbols to filter.", true},
        {"min_price", "float", "Minimum stock price.", true},
        {"max_price", "float", "Maximum stock price.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json out = json::array();
         double lo = a["min_price"], hi = a["max_price"];
         for (auto& sym : a["stocks"]) {
           double p = 0;
           if (sym.is_string() && St(s)["stocks"].contains(sym.get<std::string>())) p = At(St(s)["stocks"], sym.get<std::string>()).value("price", 0.0);
           if (p >= lo && p <= hi) out.push_back(sym);
         }
         return json{{"filtered_stocks", out}};
       }},
      {C, "add_to_watchlist", "Add a stock to the watchlist.", {{"stock", "string", "The stock symbol to add to the watchlist.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Has(st["watch_list"], a["stock"]) && st["stocks"].contains(a["stock"].get<std::string>())) st["watch_list"].push_back(a["stock"]);
         return json{{"watchlist", st["watch_list"]}};
       }},
      {C, "notify_price_change", "Notify if there is a significant price change in the stocks.",
       {{"stocks", "array", "List of stock symbols to check.", true},
        {"threshold", "float", "Percentage change threshold to trigger a notification.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         std::string changed;
         double threshold = a["threshold"];
         for (auto& sym : a["stocks"]) {
           if (!sym.is_string() || !St(s)["stocks"].contains(sym.get<std::string>())) continue;
           if (std::fabs(At(At(St(s)["stocks"], sym.get<std::string>()), "percent_change").get<double>()) >= threshold)
             changed += (changed.empty() ? "" : ", ") + sym.get<std::string>();
         }
         if (changed.empty()) return json{{"notification", "No significant price changes in the selected stocks."}};
         return json{{"notification", "Stocks " + changed + " have significant price changes."}};
       }},
  };
}

}  // namespace k2::eval::fc
