// The retail domain's agent tools over τ²-bench's retail db.json (products, users, orders), with
// τ²-bench's checks, state changes and error messages (including its quirks, noted where they matter).
#include <algorithm>
#include <cmath>

#include "agents/tau2/domain.h"

namespace k2::agents::tau2::detail {

namespace {

json& Order(State& s, const std::string& id) {
  auto it = s.db["orders"].find(id);
  if (it == s.db["orders"].end()) Fail("Order not found");
  return *it;
}
json& User(State& s, const std::string& id) {
  auto it = s.db["users"].find(id);
  if (it == s.db["users"].end()) Fail("User not found");
  return *it;
}
json& Product(State& s, const std::string& id) {
  auto it = s.db["products"].find(id);
  if (it == s.db["products"].end()) Fail("Product not found");
  return *it;
}
json& Variant(State& s, const std::string& product_id, const std::string& variant_id) {
  json& p = Product(s, product_id);
  auto it = p["variants"].find(variant_id);
  if (it == p["variants"].end()) Fail("Variant not found");
  return *it;
}
json& PaymentMethod(State& s, const std::string& user_id, const std::string& pm_id) {
  json& u = User(s, user_id);
  auto it = u["payment_methods"].find(pm_id);
  if (it == u["payment_methods"].end()) Fail("Payment method not found");
  return *it;
}
bool IsGiftCard(const json& pm) { return pm.value("source", "") == "gift_card"; }

std::vector<std::string> StrList(const json& args, const char* key) {
  const json& v = Arg(args, key);
  std::vector<std::string> out;
  for (auto& e : v) out.push_back(e.get<std::string>());
  return out;
}
long Count(const std::vector<std::string>& v, const std::string& x) { return std::count(v.begin(), v.end(), x); }
std::vector<std::string> ItemIds(const json& order) {
  std::vector<std::string> out;
  for (auto& it : order["items"]) out.push_back(it["item_id"].get<std::string>());
  return out;
}
json* FindItem(json& order, const std::string& item_id) {
  for (auto& it : order["items"])
    if (it["item_id"] == item_id) return &it;
  return nullptr;
}
json Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}
json Address(const json& a) {
  return {{"address1", StrArg(a, "address1")}, {"address2", StrArg(a, "address2")}, {"city", StrArg(a, "city")},
          {"state", StrArg(a, "state")},       {"country", StrArg(a, "country")},   {"zip", StrArg(a, "zip")}};
}
json Payment(const std::string& type, double amount, const std::string& pm) {
  return {{"transaction_type", type}, {"amount", amount}, {"payment_method_id", pm}};
}
std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

json CancelPendingOrder(State& s, const json& a) {
  json& order = Order(s, StrArg(a, "order_id"));
  if (order["status"] != "pending") Fail("Non-pending order cannot be cancelled");
  std::string reason = StrArg(a, "reason");
  if (reason != "no longer needed" && reason != "ordered by mistake") Fail("Invalid reason");
  json refunds = json::array();
  for (auto& p : order["payment_history"]) {
    std::string pm_id = p["payment_method_id"];
    refunds.push_back(Payment("refund", p["amount"].get<double>(), pm_id));
    json& pm = PaymentMethod(s, order["user_id"], pm_id);
    if (IsGiftCard(pm)) pm["balance"] = Round2(pm["balance"].get<double>() + p["amount"].get<double>());
  }
  order["status"] = "cancelled";
  order["cancel_reason"] = reason;
  for (auto& r : refunds) order["payment_history"].push_back(r);
  return order;
}

json ExchangeDeliveredOrderItems(State& s, const json& a) {
  json& order = Order(s, StrArg(a, "order_id"));
  if (order["status"] != "delivered") Fail("Non-delivered order cannot be exchanged");
  auto item_ids = StrList(a, "item_ids");
  auto new_ids = StrList(a, "new_item_ids");
  auto all = ItemIds(order);
  for (auto& id : item_ids)
    if (Count(item_ids, id) > Count(all, id)) Fail("Number of " + id + " not found.");
  if (item_ids.size() != new_ids.size()) Fail("The number of items to be exchanged should match.");
  double diff = 0;
  for (size_t i = 0; i < item_ids.size(); ++i) {
    json* item = FindItem(order, item_ids[i]);
    if (!item) Fail("Item " + item_ids[i] + " not found");
    json& v = Variant(s, (*item)["product_id"], new_ids[i]);
    if (!v["available"].get<bool>()) Fail("New item " + new_ids[i] + " not found or available");
    diff += v["price"].get<double>() - (*item)["price"].get<double>();
  }
  diff = Round2(diff);
  std::string pm_id = StrArg(a, "payment_method_id");
  json& pm = PaymentMethod(s, order["user_id"], pm_id);
  if (IsGiftCard(pm) && pm["balance"].get<double>() < diff) Fail("Insufficient gift card balance to pay for the price difference");
  order["status"] = "exchange requested";
  order["exchange_items"] = Sorted(item_ids);
  order["exchange_new_items"] = Sorted(new_ids);
  order["exchange_payment_method_id"] = pm_id;
  order["exchange_price_difference"] = diff;
  return order;
}

json FindUserIdByNameZip(State& s, const json& a) {
  std::string fn = Lower(StrArg(a, "first_name")), ln = Lower(StrArg(a, "last_name")), zip = StrArg(a, "zip");
  for (auto& [id, u] : s.db["users"].items())
    if (Lower(u["name"]["first_name"]) == fn && Lower(u["name"]["last_name"]) == ln && u["address"]["zip"] == zip) return id;
  Fail("User not found");
}

json FindUserIdByEmail(State& s, const json& a) {
  std::string email = Lower(StrArg(a, "email"));
  for (auto& [id, u] : s.db["users"].items())
    if (Lower(u["email"]) == email) return id;
  Fail("User not found");
}

json GetItemDetails(State& s, const json& a) {
  std::string id = StrArg(a, "item_id");
  for (auto& [pid, p] : s.db["products"].items()) {
    auto it = p["variants"].find(id);
    if (it != p["variants"].end()) return *it;
  }
  Fail("Item not found");
}

json ListAllProductTypes(State& s, const json&) {
  json m = json::object();  // name -> product_id, keys sorted (json.dumps(sort_keys=True))
  for (auto& [pid, p] : s.db["products"].items()) m[p["name"].get<std::string>()] = pid;
  return m.dump(-1, ' ', false);
}

json ModifyPendingOrderAddress(State& s, const json& a) {
  json& order = Order(s, StrArg(a, "order_id"));
  if (order["status"].get<std::string>().find("pending") == std::string::npos) Fail("Non-pending order cannot be modified");
  order["address"] = Address(a);
  return order;
}

json ModifyPendingOrderItems(State& s, const json& a) {
  json& order = Order(s, StrArg(a, "order_id"));
  if (order["status"] != "pending") Fail("Non-pending order cannot be modified");
  auto item_ids = StrList(a, "item_ids");
  auto new_ids = StrList(a, "new_item_ids");
  auto all = ItemIds(order);
  for (auto& id : item_ids)
    if (Count(item_ids, id) > Count(all, id)) Fail(id + " not found");
  if (item_ids.size() != new_ids.size()) Fail("The number of items to be exchanged should match");
  double diff = 0;
  json* last_variant = nullptr;
  for (size_t i = 0; i < item_ids.size(); ++i) {
    if (item_ids[i] == new_ids[i]) Fail("The new item id should be different from the old item id");
    json* item = FindItem(order, item_ids[i]);
    if (!item) Fail("Item " + item_ids[i] + " not found");
    json& v = Variant(s, (*item)["product_id"], new_ids[i]);
    if (!v["available"].get<bool>()) Fail("New item " + new_ids[i] + " not found or available");
    diff += v["price"].get<double>() - (*item)["price"].get<double>();
    last_variant = &v;
  }
  std::string pm_id = StrArg(a, "payment_method_id");
  json& pm = PaymentMethod(s, order["user_id"], pm_id);
  if (IsGiftCard(pm) && pm["balance"].get<double>() < diff) Fail("Insufficient gift card balance to pay for the new item");
  order["payment_history"].push_back(Payment(diff > 0 ? "payment" : "refund", std::fabs(diff), pm_id));
  if (IsGiftCard(pm)) pm["balance"] = Round2(pm["balance"].get<double>() - diff);
  // τ²-bench gives every modified item the price and options of the LAST new variant of the loop (its
  // loop variable outlives the loop); kept, since gold DB states are computed that way.
  for (size_t i = 0; i < item_ids.size(); ++i) {
    json* item = FindItem(order, item_ids[i]);
    if (!item) Fail("Item " + item_ids[i] + " not found");
    (*item)["item_id"] = new_ids[i];
    if (last_variant) {
      (*item)["price"] = (*last_variant)["price"];
      (*item)["options"] = (*last_variant)["options"];
    }
  }
  order["status"] = "pending (item modified)";
  return order;
}

json ModifyPendingOrderPayment(State& s, const json& a) {
  json& order = Order(s, StrArg(a, "order_id"));
  if (order["status"].get<std::string>().find("pending") == std::string::npos) Fail("Non-pending order cannot be modified");
  std::string pm_id = StrArg(a, "payment_method_id");
  json& pm = PaymentMethod(s, order["user_id"], pm_id);
  json& ph = order["payment_history"];
  if (ph.size() != 1 || ph[0]["transaction_type"] != "payment") Fail("There should be exactly one payment for a pending order");
  if (ph[0]["payment_method_id"] == pm_id) Fail("The new payment method should be different from the current one");
  double amount = ph[0]["amount"].get<double>();
  if (IsGiftCard(pm) && pm["balance"].get<double>() < amount) Fail("Insufficient gift card balance to pay for the order");
  std::string old_id = ph[0]["payment_method_id"];
  ph.push_back(Payment("payment", amount, pm_id));
  ph.push_back(Payment("refund", amount, old_id));
  if (IsGiftCard(pm)) pm["balance"] = Round2(pm["balance"].get<double>() - amount);
  json& old_pm = PaymentMethod(s, order["user_id"], old_id);
  if (IsGiftCard(old_pm)) old_pm["balance"] = Round2(old_pm["balance"].get<double>() + amount);
  return order;
}

json ModifyUserAddress(State& s, const json& a) {
  json& u = User(s, StrArg(a, "user_id"));
  u["address"] = Address(a);
  return u;
}

json ReturnDeliveredOrderItems(State& s, const json& a) {
  json& order = Order(s, StrArg(a, "order_id"));
  if (order["status"] != "delivered") Fail("Non-delivered order cannot be returned");
  std::string pm_id = StrArg(a, "payment_method_id");
  json& pm = PaymentMethod(s, User(s, order["user_id"])["user_id"], pm_id);
  if (!IsGiftCard(pm) && pm_id != order["payment_history"][0]["payment_method_id"]) Fail("Payment method should be the original payment method");
  auto item_ids = StrList(a, "item_ids");
  auto all = ItemIds(order);
  for (auto& id : item_ids)
    if (Count(item_ids, id) > Count(all, id)) Fail("Some item not found");
  order["status"] = "return requested";
  order["return_items"] = Sorted(item_ids);
  order["return_payment_method_id"] = pm_id;
  return order;
}

json AddressParams(const char* who_key, const char* who_desc) {
  return Params({{who_key, StrProp(who_desc)},
                 {"address1", StrProp("First line of the address, e.g. '123 Main St'.")},
                 {"address2", StrProp("Second line of the address, e.g. 'Apt 1' or ''.")},
                 {"city", StrProp("City.")},
                 {"state", StrProp("State, e.g. 'CA'.")},
                 {"country", StrProp("Country, e.g. 'USA'.")},
                 {"zip", StrProp("Zip code, e.g. '12345'.")}},
                {who_key, "address1", "address2", "city", "state", "country", "zip"});
}

}  // namespace

void AddRetail(Domain& d) {
  const json order_id = StrProp("Order id starting with '#', e.g. '#W0000000'.");
  const json pm_id = StrProp("Payment method id from the user's details, e.g. 'gift_card_0000000' or 'credit_card_0000000'.");
  d.tools = {
      {"calculate", "Evaluate an arithmetic expression (numbers, + - * / and parentheses); the result is rounded to 2 decimals.",
       Params({{"expression", StrProp("The expression, e.g. '2 * (3 + 4)'.")}}, {"expression"}), false,
       [](State&, const json& a) { return Calculate(StrArg(a, "expression")); }},
      {"cancel_pending_order",
       "Cancel a pending order. Payments are refunded: gift cards at once, other methods in 5-7 business days. "
       "Confirm the order id and the reason ('no longer needed' or 'ordered by mistake') with the user first.",
       Params({{"order_id", order_id}, {"reason", StrProp("'no longer needed' or 'ordered by mistake'.")}}, {"order_id", "reason"}), true,
       CancelPendingOrder},
      {"exchange_delivered_order_items",
       "Request an exchange of items of a delivered order for other variants of the same products; the price difference is "
       "settled with the given payment method. Confirm the details with the user first.",
       Params({{"order_id", order_id},
               {"item_ids", StrListProp("Item ids to exchange (may repeat).")},
               {"new_item_ids", StrListProp("New item ids, in the same order as item_ids.")},
               {"payment_method_id", pm_id}},
              {"order_id", "item_ids", "new_item_ids", "payment_method_id"}),
       true, ExchangeDeliveredOrderItems},
      {"find_user_id_by_name_zip", "Find a user id by first name, last name and zip code.",
       Params({{"first_name", StrProp("First name.")}, {"last_name", StrProp("Last name.")}, {"zip", StrProp("Zip code.")}},
              {"first_name", "last_name", "zip"}),
       false, FindUserIdByNameZip},
      {"find_user_id_by_email", "Find a user id by email.", Params({{"email", StrProp("Email address.")}}, {"email"}), false,
       FindUserIdByEmail},
      {"get_order_details", "Get the status and details of an order.", Params({{"order_id", order_id}}, {"order_id"}), false,
       [](State& s, const json& a) { return Order(s, StrArg(a, "order_id")); }},
      {"get_product_details", "Get the inventory details (variants) of a product.",
       Params({{"product_id", StrProp("Product id, e.g. '6086499569'.")}}, {"product_id"}), false,
       [](State& s, const json& a) { return Product(s, StrArg(a, "product_id")); }},
      {"get_item_details", "Get the details of an item (a product variant).",
       Params({{"item_id", StrProp("Item id, e.g. '1008292230'.")}}, {"item_id"}), false, GetItemDetails},
      {"get_user_details", "Get a user's details, including their orders and payment methods.",
       Params({{"user_id", StrProp("User id, e.g. 'sara_doe_496'.")}}, {"user_id"}), false,
       [](State& s, const json& a) { return User(s, StrArg(a, "user_id")); }},
      {"list_all_product_types", "List the name and product id of every product type.", Params({}, {}), false, ListAllProductTypes},
      {"modify_pending_order_address", "Change the shipping address of a pending order. Confirm the details with the user first.",
       AddressParams("order_id", "Order id starting with '#'."), true, ModifyPendingOrderAddress},
      {"modify_pending_order_items",
       "Replace items of a pending order with other variants of the same products (only once per order); the price "
       "difference is settled with the given payment method. Confirm the details with the user first.",
       Params({{"order_id", order_id},
               {"item_ids", StrListProp("Item ids to modify (may repeat).")},
               {"new_item_ids", StrListProp("New item ids, in the same order as item_ids.")},
               {"payment_method_id", pm_id}},
              {"order_id", "item_ids", "new_item_ids", "payment_method_id"}),
       true, ModifyPendingOrderItems},
      {"modify_pending_order_payment", "Change the payment method of a pending order. Confirm the details with the user first.",
       Params({{"order_id", order_id}, {"payment_method_id", pm_id}}, {"order_id", "payment_method_id"}), true,
       ModifyPendingOrderPayment},
      {"modify_user_address", "Change a user's default address. Confirm the details with the user first.",
       AddressParams("user_id", "User id, e.g. 'sara_doe_496'."), true, ModifyUserAddress},
      {"return_delivered_order_items",
       "Request a return of items of a delivered order; the refund goes to the original payment method or a gift card. "
       "Confirm the details with the user first.",
       Params({{"order_id", order_id}, {"item_ids", StrListProp("Item ids to return (may repeat).")}, {"payment_method_id", pm_id}},
              {"order_id", "item_ids", "payment_method_id"}),
       true, ReturnDeliveredOrderItems},
      {"transfer_to_human_agents",
       "Transfer the user to a human agent with a summary of the issue; only when the user asks for one or the request "
       "cannot be handled within the policy and tools.",
       Params({{"summary", StrProp("A summary of the user's issue.")}}, {"summary"}), false,
       [](State&, const json&) -> json { return "Transfer successful"; }},
  };
}

}  // namespace k2::agents::tau2::detail
