// BFCL's multi-turn classes ported in eval/fc/ (TwitterAPI, TicketAPI, TradingBot, TravelAPI,
// VehicleControlAPI): scenario loading, results and state as BFCL's Python classes give them, including
// the ids and timestamps BFCL draws from its seeded random.Random.
#include <gtest/gtest.h>

#include "eval/fc_backend.h"

namespace k2::eval {
namespace {

FcBackend Make(const std::string& cls, const json& config) {
  auto b = FcBackend::Create({cls}, {{cls, config}}, "test");
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? std::move(*b) : *FcBackend::Create({}, json::object(), "empty");
}

TEST(BfclTradingBot, TimestampsAndOrdersAreBfclsWhateverTheClock) {
  FcBackend b = Make("TradingBot", {{"authenticated", true}, {"market_status", "Open"}});
  EXPECT_EQ(b.Call("fund_account", {{"amount", 500}}), json::parse(R"({"status": "Account funded successfully", "new_balance": 10500.0})"));
  EXPECT_EQ(b.Call("withdraw_funds", {{"amount", 100.5}})["new_balance"], 10399.5);
  // random.Random(1053520).randint over the day after 2024-09-01 10:30, as BFCL draws it.
  EXPECT_EQ(b.State()["TradingBot"]["transaction_history"],
            json::parse(R"([{"type": "deposit", "amount": 500, "timestamp": "2024-09-02 05:40:15"},
                            {"type": "withdrawal", "amount": 100.5, "timestamp": "2024-09-01 12:26:34"}])"));
  // The default order_counter (12446) is an existing order's id: BFCL overwrites that order.
  EXPECT_EQ(b.Call("place_order", {{"order_type", "Buy"}, {"symbol", "AAPL"}, {"price", 150}, {"amount", 3}}),
            json::parse(R"({"order_id": 12446, "order_type": "Buy", "status": "Pending", "price": 150.0, "amount": 3})"));
  EXPECT_EQ(b.Call("get_order_history", json::object()), json::parse(R"({"history": [12345, 12446]})"));
  EXPECT_EQ(b.Call("get_order_details", {{"order_id", 1}})["error"], "Order with ID 1 not found.Here is the list of orders_id: [12345, 12446]");
  // The generator is private (BFCL's _random): not part of the compared state.
  EXPECT_FALSE(b.State()["TradingBot"].contains("_random_used"));
  // Withdrawing while the market is closed is refused and changes nothing.
  FcBackend closed = Make("TradingBot", {{"authenticated", true}});
  json before = closed.State();
  EXPECT_EQ(closed.Call("withdraw_funds", {{"amount", 1.0}})["error"], "Market is closed. Transactions are not allowed.");
  EXPECT_EQ(closed.State(), before);
}

TEST(BfclTravelApi, IdsComeFromTheSeededGeneratorInBfclsOrder) {
  FcBackend b = Make("TravelAPI", json::object());
  json auth = b.Call("authenticate_travel", {{"client_id", "c"}, {"client_secret", "s"}, {"refresh_token", "r"}, {"grant_type", "read_write"},
                                             {"user_first_name", "Ada"}, {"user_last_name", "Lovelace"}});
  EXPECT_EQ(auth, json::parse(R"({"expires_in": 2, "access_token": "251675", "token_type": "Bearer", "scope": "read_write"})"));
  json card = b.Call("register_credit_card", {{"access_token", "251675"}, {"card_number", "4111"}, {"expiration_date", "12/2030"},
                                              {"cardholder_name", "Ada"}, {"card_verification_number", 123}});
  EXPECT_EQ(card, json::parse(R"({"card_id": "391310425148"})"));  // a 12-digit draw: two 32-bit words
  EXPECT_EQ(b.State()["TravelAPI"]["credit_card_list"]["391310425148"]["balance"], 58617);
  json booked = b.Call("book_flight", {{"access_token", "251675"}, {"card_id", "391310425148"}, {"travel_date", "2024-12-01"},
                                       {"travel_from", "SFO"}, {"travel_to", "LAX"}, {"travel_class", "business"}});
  EXPECT_EQ(booked, json::parse(R"({"booking_id": "4191922", "transaction_id": "56121276", "booking_status": true, "booking_history": {}})"));
  EXPECT_EQ(b.Call("purchase_insurance", {{"access_token", "251675"}, {"insurance_type", "basic"}, {"booking_id", "4191922"},
                                          {"insurance_cost", 50.5}, {"card_id", "391310425148"}}),
            json::parse(R"({"insurance_id": "789652479", "insurance_status": true})"));
  // 58617 - 800 (SFO-LAX 200, business x2, even digit sum x2) - 50.5
  EXPECT_EQ(b.State()["TravelAPI"]["credit_card_list"]["391310425148"]["balance"], 57766.5);
  EXPECT_EQ(b.Call("compute_exchange_rate", {{"base_currency", "EUR"}, {"target_currency", "USD"}, {"value", 100}})["exchanged_value"], 125.0);
  EXPECT_EQ(b.Call("compute_exchange_rate", {{"base_currency", "USD"}, {"target_currency", "JPY"}, {"value", 3}})["exchanged_value"], 330.0);
  // An unknown route is BFCL's ValueError: an error, nothing changed.
  json before = b.State();
  EXPECT_TRUE(b.Call("get_flight_cost", {{"travel_from", "SFO"}, {"travel_to", "PEK"}, {"travel_date", "2024-12-01"}, {"travel_class", "economy"}})
                  .contains("error"));
  EXPECT_EQ(b.Call("book_flight", {{"access_token", "251675"}, {"card_id", "391310425148"}, {"travel_date", "2024-13-01"},
                                   {"travel_from", "SFO"}, {"travel_to", "LAX"}, {"travel_class", "economy"}})["error"],
            "Invalid date format. Use YYYY-MM-DD.");
  EXPECT_EQ(b.State(), before);
}

TEST(BfclVehicleControl, DrawsSpeedsAndKeepsBfclsPartialUpdates) {
  FcBackend b = Make("VehicleControlAPI", json::object());
  EXPECT_DOUBLE_EQ(b.Call("get_current_speed", json::object())["currentSpeed"].get<double>(), 111.92365689097284);
  EXPECT_DOUBLE_EQ(b.Call("get_outside_temperature_from_google", json::object())["outsideTemperature"].get<double>(), 31.29968928699752);
  EXPECT_EQ(b.Call("startEngine", {{"ignitionMode", "START"}})["error"],
            "All doors must be locked before starting the engine. Here are the unlocked doors: driver, passenger, rear_left, rear_right");
  EXPECT_EQ(b.Call("lockDoors", {{"unlock", false}, {"door", {"driver", "passenger", "rear_left", "rear_right"}}}),
            json::parse(R"({"lockStatus": "locked", "remainingUnlockedDoors": 0})"));
  EXPECT_EQ(b.Call("pressBrakePedal", {{"pedalPosition", 1}})["brakePedalForce"], 1000.0);
  EXPECT_EQ(b.Call("startEngine", {{"ignitionMode", "START"}}), json::parse(R"({"engineState": "running", "fuelLevel": 0.0, "batteryVoltage": 12.6})"));
  // BFCL sets the distance before it rejects the speed.
  EXPECT_EQ(b.Call("setCruiseControl", {{"speed", 62.5}, {"activate", true}, {"distanceToNextVehicle", 30}})["error"], "Invalid speed");
  EXPECT_EQ(b.State()["VehicleControlAPI"]["distanceToNextVehicle"], 30.0);
  EXPECT_EQ(b.State()["VehicleControlAPI"]["cruiseStatus"], "inactive");
  // The brake force is private in BFCL: shown by displayCarStatus, not compared.
  EXPECT_FALSE(b.State()["VehicleControlAPI"].contains("_brakePedalForce"));
  EXPECT_EQ(b.Call("displayCarStatus", {{"option", "brakePedal"}})["brakePedalForce"], 1000);
  // An unknown door is a KeyError after the doors before it changed, as in Python.
  json r = b.Call("lockDoors", {{"unlock", true}, {"door", {"driver", "trunk"}}});
  EXPECT_TRUE(r.contains("error")) << r;
  EXPECT_EQ(b.State()["VehicleControlAPI"]["doorStatus"]["driver"], "unlocked");
  EXPECT_EQ(b.State()["VehicleControlAPI"]["remainingUnlockedDoors"], 1);
  // The scenario's engineState / parkingBrakeForce keys map to BFCL's attributes; the unlocked-door count
  // is recomputed from the doors.
  FcBackend c = Make("VehicleControlAPI", {{"engineState", "running"}, {"remainingUnlockedDoors", 4},
                                           {"doorStatus", {{"driver", "locked"}, {"passenger", "locked"}, {"rear_left", "unlocked"}, {"rear_right", "locked"}}}});
  EXPECT_EQ(c.State()["VehicleControlAPI"]["engine_state"], "running");
  EXPECT_EQ(c.State()["VehicleControlAPI"]["remainingUnlockedDoors"], 1);
}

// post_tweet's default `mentions` list is one Python object: mention() on a tweet posted without
// mentions extends it, so every such tweet shows the names — in the model's and the ground truth's
// instances alike (one process in BFCL); a tweet posted with its own list, or a backend of another
// process, is untouched.
TEST(BfclTwitterApi, TweetsWithoutMentionsShareOneDefaultListAsInPython) {
  json cfg = {{"username", "john"}, {"password", "john123"}, {"authenticated", true}, {"tweets", json::object()}, {"tweet_counter", 0}};
  FcBackend model = Make("TwitterAPI", cfg), truth = Make("TwitterAPI", cfg), other = Make("TwitterAPI", cfg);
  truth.SharePythonDefaults(model);
  EXPECT_EQ(model.Call("post_tweet", {{"content", "a"}})["mentions"], json::array());
  EXPECT_EQ(model.Call("post_tweet", {{"content", "b"}, {"mentions", {"@x"}}})["mentions"], json({"@x"}));
  EXPECT_EQ(model.Call("post_tweet", {{"content", "c"}})["id"], 2);
  truth.Call("post_tweet", {{"content", "a"}});
  other.Call("post_tweet", {{"content", "a"}});
  EXPECT_EQ(model.Call("mention", {{"tweet_id", 0}, {"mentioned_usernames", {"@bob"}}}), json({{"mention_status", "Users mentioned successfully"}}));
  EXPECT_EQ(model.Call("get_tweet", {{"tweet_id", 2}})["mentions"], json({"@bob"}));
  EXPECT_EQ(model.State()["TwitterAPI"]["tweets"]["1"]["mentions"], json({"@x"}));
  EXPECT_EQ(truth.State()["TwitterAPI"]["tweets"]["0"]["mentions"], json({"@bob"}));
  EXPECT_EQ(truth.Call("get_tweet", {{"tweet_id", 0}})["mentions"], json({"@bob"}));
  EXPECT_EQ(other.State()["TwitterAPI"]["tweets"]["0"]["mentions"], json::array());
  // A tweet posted after the mention starts with the grown list.
  EXPECT_EQ(truth.Call("post_tweet", {{"content", "d"}})["mentions"], json({"@bob"}));
  EXPECT_FALSE(model.State()["TwitterAPI"].contains("_default_mentions"));
}

TEST(BfclTwitterApi, ScenarioCommentKeysStayStringsAsInPython) {
  json tweets = json::parse(R"({"1": {"id": 1, "username": "john", "content": "Trip to LA", "tags": ["#LA"], "mentions": []}})");
  FcBackend b = Make("TwitterAPI", {{"tweets", tweets}, {"tweet_counter", 2}, {"comments", {{"1", {{{"user", "jane"}, {"comment", "Hi"}}}}}}});
  // Python looks the int 1 up among string keys: the scenario's comments are not found.
  EXPECT_EQ(b.Call("get_tweet_comments", {{"tweet_id", 1}}), json::array());
  EXPECT_EQ(b.Call("comment", {{"tweet_id", 1}, {"comment_content", "x"}})["error"], "User not authenticated. Please authenticate before commenting.");
  EXPECT_EQ(b.Call("authenticate_twitter", {{"username", "john"}, {"password", "john123"}}), json::parse(R"({"authentication_status": true})"));
  EXPECT_EQ(b.Call("comment", {{"tweet_id", 1}, {"comment_content", "x"}}), json::parse(R"({"comment_status": "Comment added successfully"})"));
  EXPECT_EQ(b.State()["TwitterAPI"]["comments"], json::parse(R"({"'1'": [{"user": "jane", "comment": "Hi"}], "1": [{"username": "john", "content": "x"}]})"));
  EXPECT_EQ(b.Call("post_tweet", {{"content", "Hello #LA"}, {"tags", {"#la"}}})["id"], 2);
  EXPECT_EQ(b.Call("search_tweets", {{"keyword", "#la"}}).size(), 2u);  // content or a tag, case-insensitive
  EXPECT_EQ(b.Call("retweet", {{"tweet_id", 1}}), json::parse(R"({"retweet_status": "Successfully retweeted"})"));
  EXPECT_EQ(b.Call("retweet", {{"tweet_id", 1}}), json::parse(R"({"retweet_status": "Already retweeted"})"));
  // Any number is a tweet id, as in Python: 1.0 finds the int key 1 (1.0 == 1 in a dict), 1.5 finds
  // nothing and the text echoes it.
  EXPECT_EQ(b.Call("get_tweet", {{"tweet_id", 1.0}})["content"], "Trip to LA");
  EXPECT_EQ(b.Call("get_tweet", {{"tweet_id", 1.5}})["error"], "Tweet with ID 1.5 not found.");
  EXPECT_EQ(b.Call("get_user_stats", {{"username", "john"}}), json::parse(R"({"tweet_count": 2, "following_count": 2, "retweet_count": 1})"));
}

TEST(BfclTicketApi, TicketIdsCompareAsPythonComparesThem) {
  json queue = json::parse(R"([{"id": "ticket_001", "status": "Open", "created_by": "amy"}, {"id": 2, "status": "Open", "created_by": "bo"}])");
  FcBackend b = Make("TicketAPI", {{"ticket_queue", queue}, {"ticket_counter", 3}});
  EXPECT_EQ(b.Call("get_user_tickets", json::object()),
            json::parse(R"([{"error": "User not authenticated. Please log in to view tickets."}])"));
  // BFCL's own answers close a scenario's string id.
  EXPECT_EQ(b.Call("close_ticket", {{"ticket_id", "ticket_001"}}), json::parse(R"({"status": "Ticket ticket_001 has been closed successfully."})"));
  EXPECT_EQ(b.Call("close_ticket", {{"ticket_id", "ticket_001"}})["error"], "Ticket with ID ticket_001 is already closed.");
  EXPECT_EQ(b.Call("edit_ticket", {{"ticket_id", 2}, {"updates", {{"owner", "x"}}}})["error"], "Invalid fields for update: owner");
  EXPECT_EQ(b.Call("create_ticket", {{"title", "t"}})["error"], "User not authenticated. Please log in to create a ticket.");
  EXPECT_EQ(b.Call("ticket_login", {{"username", "bo"}, {"password", "pw"}}), json::parse(R"({"success": true})"));
  EXPECT_EQ(b.Call("create_ticket", {{"title", "t"}, {"priority", 6}})["error"], "Invalid priority. Priority must be between 1 and 5.");
  EXPECT_EQ(b.Call("create_ticket", {{"title", "t"}, {"description", nullptr}}),
            json::parse(R"({"id": 3, "title": "t", "description": "", "status": "Open", "priority": 1, "created_by": "bo"})"));
  EXPECT_EQ(b.Call("get_user_tickets", {{"status", "OPEN"}}).size(), 2u);
  // A ticket without the key a method needs is Python's KeyError: an error result.
  FcBackend odd = Make("TicketAPI", {{"ticket_queue", json::parse(R"([{"ticket_001": {"status": "Open"}}])")}});
  EXPECT_TRUE(odd.Call("get_ticket", {{"ticket_id", 1}}).contains("error"));
}

TEST(BfclClasses, BadScenariosAreLocatedErrors) {
  auto e = FcBackend::Create({"TwitterAPI"}, {{"TwitterAPI", {{"tweets", {{"x", json::object()}}}}}}, "q.jsonl:7");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("q.jsonl:7: initial_config.TwitterAPI.tweets: key \"x\" is not an integer"), std::string::npos)
      << e.status().message();
  e = FcBackend::Create({"VehicleControlAPI"}, {{"VehicleControlAPI", {{"fuelLevel", "full"}}}}, "q");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("initial_config.VehicleControlAPI.fuelLevel: expected number"), std::string::npos) << e.status().message();
  e = FcBackend::Create({"TravelAPI"}, {{"TravelAPI", {{"credit_card_list", json::array()}}}}, "q");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("credit_card_list: expected"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace k2::eval
