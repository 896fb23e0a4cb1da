// BFCL's TwitterAPI (posting_api): a user's tweets, comments, retweets and following list, loaded from a
// scenario as BFCL's _load_scenario loads it, with BFCL's result dicts and error texts.
//
// Tweet ids are Python ints; the JSON state keeps them as decimal keys. Comments from a scenario keep the
// string keys JSON gave them while comment() adds int keys, so in BFCL a scenario's comments are not
// found by get_tweet_comments(id) and a new comment opens a second entry: the state writes a scenario's
// string keys as Python writes them ('1', quoted) beside int keys (1) to keep that difference.
#include <algorithm>

#include "eval/fc/method.h"
#include "rewards/ast_match.h"

namespace k2::eval::fc {
namespace {

json& St(json& s) { return s["TwitterAPI"]; }

// The tweets key of a tweet_id ("" when none can match).
std::string Key(const json& id) { return IdKey(id); }

}  // namespace

void SyncDefaultMentions(json& st) {
  if (!st.contains("_default_mentions_ids")) return;
  json shared = st.value("_default_mentions", json::array());
  for (auto& k : st["_default_mentions_ids"])
    if (st["tweets"].contains(k.get<std::string>())) st["tweets"][k.get<std::string>()]["mentions"] = shared;
}

namespace {

bool Has(json& st, const std::string& key) { return !key.empty() && st["tweets"].contains(key); }

Result NotAuthenticated(const char* action) {
  return json{{"error", std::string("User not authenticated. Please authenticate before ") + action + "."}};
}

json NotFound(const json& id) { return {{"error", "Tweet with ID " + PyStr(id) + " not found."}}; }

// tweets.values() in Python order.
std::vector<json*> Tweets(json& st) {
  std::vector<json*> out;
  for (auto& k : IntKeyOrder(st["tweets"])) out.push_back(&st["tweets"][k]);
  return out;
}

bool Contains(const json& list, const json& x) {
  for (auto& v : list)
    if (v == x) return true;
  return false;
}

}  // namespace

Expected<json> LoadTwitterApi(const json& c, const std::string& w) {
  json st = {{"username", "john"},     {"password", "john123"},
             {"authenticated", false}, {"tweets", json::object()},
             {"comments", json::object()}, {"retweets", json::object()},
             {"following_list", json::array({"alice", "bob"})}, {"tweet_counter", 0}};
  for (const char* k : {"username", "password", "authenticated", "comments", "retweets", "following_list", "tweet_counter"})
    if (c.contains(k)) st[k] = c[k];
  if (!st["tweet_counter"].is_number_integer()) return InvalidArgument(w + ".tweet_counter: expected integer");
  if (!st["following_list"].is_array()) return InvalidArgument(w + ".following_list: expected array");
  if (!st["retweets"].is_object()) return InvalidArgument(w + ".retweets: expected {username: [tweet ids]}");
  for (auto& [u, ids] : st["retweets"].items())
    if (!ids.is_array()) return InvalidArgument(w + ".retweets." + u + ": expected array of tweet ids");
  // _load_scenario converts tweet keys with int(); comment keys stay strings. Tweets are not checked
  // (BFCL's scenarios have tweets without "mentions"): a method that needs a missing key fails there.
  if (c.contains("tweets")) {
    if (!c["tweets"].is_object()) return InvalidArgument(w + ".tweets: expected {id: tweet}");
    for (auto& [k, v] : c["tweets"].items()) {
      if (!IsIntKey(k)) return InvalidArgument(w + ".tweets: key \"" + k + "\" is not an integer");
      st["tweets"][std::to_string(std::stoll(k))] = v;
    }
  }
  if (!st["comments"].is_object()) return InvalidArgument(w + ".comments: expected {tweet id: [comments]}");
  json comments = json::object();
  for (auto& [k, v] : st["comments"].items()) {
    if (!v.is_array()) return InvalidArgument(w + ".comments." + k + ": expected array");
    comments[PyRepr(k)] = v;
  }
  st["comments"] = std::move(comments);
  return st;
}

std::vector<Method> TwitterApiMethods() {
  const char* C = "TwitterAPI";
  return {
      {C, "authenticate_twitter", "Authenticate a user with username and password.",
       {{"username", "string", "Username of the user.", true}, {"password", "string", "Password of the user.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (a["username"] == st["username"] && a["password"] == st["password"]) {
           st["authenticated"] = true;
           return json{{"authentication_status", true}};
         }
         return json{{"authentication_status", false}};
       }},
      {C, "posting_get_login_status", "Get the login status of the current user.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result { return json{{"login_status", Truthy(St(s)["authenticated"])}}; }},
      {C, "post_tweet", "Post a tweet for the authenticated user.",
       {{"content", "string", "Content of the tweet.", true},
        {"tags", "array", "List of tags for the tweet.", false},
        {"mentions", "array", "List of users mentioned in the tweet.", false}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return json{{"error", "User not authenticated. Please authenticate before posting."}};
         int64_t id = st["tweet_counter"].get<int64_t>();
         // Without mentions the tweet holds Python's one default list (see DefaultMentions).
         const bool shared = !a.contains("mentions");
         json tweet = {{"id", id},
                       {"username", st["username"]},
                       {"content", a["content"]},
                       {"tags", a.value("tags", json::array())},
                       {"mentions", shared ? st.value("_default_mentions", json::array()) : a["mentions"]}};
         st["tweets"][std::to_string(id)] = tweet;
         if (shared) st["_default_mentions_ids"].push_back(std::to_string(id));
         st["tweet_counter"] = id + 1;
         return tweet;
       }},
      {C, "retweet", "Retweet a tweet for the authenticated user.", {{"tweet_id", "integer", "ID of the tweet to retweet.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("retweeting");
         const json& id = a["tweet_id"];
         if (!Has(st, Key(id))) return NotFound(id);
         if (!st["username"].is_string()) return Err("retweets: username is not a string");
         json& mine = st["retweets"][st["username"].get<std::string>()];
         if (mine.is_null()) mine = json::array();
         if (Contains(mine, id)) return json{{"retweet_status", "Already retweeted"}};
         mine.push_back(id);
         return json{{"retweet_status", "Successfully retweeted"}};
       }},
      {C, "comment", "Comment on a tweet for the authenticated user.",
       {{"tweet_id", "integer", "ID of the tweet to comment on.", true}, {"comment_content", "string", "Content of the comment.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("commenting");
         const json& id = a["tweet_id"];
         if (!Has(st, Key(id))) return NotFound(id);
         st["comments"][Key(id)].push_back({{"username", st["username"]}, {"content", a["comment_content"]}});
         return json{{"comment_status", "Comment added successfully"}};
       }},
      {C, "mention", "Mention specified users in a tweet.",
       {{"tweet_id", "integer", "ID of the tweet where users are mentioned.", true},
        {"mentioned_usernames", "array", "List of usernames to be mentioned.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         const json& id = a["tweet_id"];
         if (!Has(st, Key(id))) return NotFound(id);
         json& mentions = At(st["tweets"][Key(id)], "mentions");
         const json& marked = st.value("_default_mentions_ids", json::array());
         if (std::find(marked.begin(), marked.end(), json(Key(id))) == marked.end()) {
           for (auto& u : a["mentioned_usernames"]) mentions.push_back(u);
         } else {
           // The shared default list grows: every tweet posted without mentions shows the names.
           json& shared = st["_default_mentions"];
           if (shared.is_null()) shared = json::array();
           for (auto& u : a["mentioned_usernames"]) shared.push_back(u);
           SyncDefaultMentions(st);
         }
         return json{{"mention_status", "Users mentioned successfully"}};
       }},
      {C, "follow_user", "Follow a user for the authenticated user.", {{"username_to_follow", "string", "Username of the user to follow.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("following");
         if (Contains(st["following_list"], a["username_to_follow"])) return json{{"follow_status", false}};
         st["following_list"].push_back(a["username_to_follow"]);
         return json{{"follow_status", true}};
       }},
      {C, "list_all_following", "List all users that the authenticated user is following.", {},
       [](json& s, std::vector<std::string>&, const json&) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("listing following");
         return json{{"following_list", st["following_list"]}};
       }},
      {C, "unfollow_user", "Unfollow a user for the authenticated user.", {{"username_to_unfollow", "string", "Username of the user to unfollow.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         if (!Truthy(st["authenticated"])) return NotAuthenticated("unfollowing");
         json& list = st["following_list"];
         for (size_t i = 0; i < list.size(); ++i)
           if (list[i] == a["username_to_unfollow"]) {
             list.erase(i);
             return json{{"unfollow_status", true}};
           }
         return json{{"unfollow_status", false}};
       }},
      {C, "get_tweet", "Retrieve a specific tweet.", {{"tweet_id", "integer", "ID of the tweet to retrieve.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         const json& id = a["tweet_id"];
         if (!Has(st, Key(id))) return NotFound(id);
         return st["tweets"][Key(id)];
       }},
      {C, "get_user_tweets", "Retrieve all tweets from a specific user.", {{"username", "string", "Username of the user whose tweets to retrieve.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json out = json::array();
         for (json* t : Tweets(St(s)))
           if (At(*t, "username") == a["username"]) out.push_back(*t);
         return out;
       }},
      {C, "search_tweets", "Search for tweets containing a specific keyword.", {{"keyword", "string", "Keyword to search for in the content of the tweets.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         std::string k = rewards::UnicodeLower(a["keyword"].get<std::string>());
         json out = json::array();
         for (json* t : Tweets(St(s))) {
           bool hit = rewards::UnicodeLower(At(*t, "content").get<std::string>()).find(k) != std::string::npos;
           for (auto& tag : At(*t, "tags"))
             if (!hit && tag.is_string() && rewards::UnicodeLower(tag.get<std::string>()) == k) hit = true;
           if (hit) out.push_back(*t);
         }
         return out;
       }},
      {C, "get_tweet_comments", "Retrieve all comments for a specific tweet.", {{"tweet_id", "integer", "ID of the tweet to retrieve comments for.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         const json& id = a["tweet_id"];
         if (!Has(st, Key(id))) return NotFound(id);
         auto it = st["comments"].find(Key(id));
         return it == st["comments"].end() ? json::array() : *it;
       }},
      {C, "get_user_stats", "Get statistics for a specific user.", {{"username", "string", "Username of the user to get statistics for.", true}},
       [](json& s, std::vector<std::string>&, const json& a) -> Result {
         json& st = St(s);
         int64_t tweets = 0;
         for (json* t : Tweets(st)) tweets += At(*t, "username") == a["username"];
         int64_t following = a["username"] == st["username"] ? static_cast<int64_t>(st["following_list"].size()) : 0;
         auto it = st["retweets"].find(a["username"].get<std::string>());
         int64_t retweets = it == st["retweets"].end() ? 0 : static_cast<int64_t>(it->size());
         return json{{"tweet_count", tweets}, {"following_count", following}, {"retweet_count", retweets}};
       }},
  };
}

}  // namespace k2::eval::fc
