// Synthetic copy dialogs (see copy_dialogs.h).
#include "sft/copy_dialogs.h"

#include <cstdio>
#include <string>
#include <utility>

#include "core/json.h"
#include "core/rng.h"

namespace k2::sft {
namespace {

const char* const kFirst[] = {"lina", "omar", "chen", "ada", "kofi", "uma", "mateo", "rosa", "farah", "hana",
                              "felix", "ines", "viktor", "carmen", "esther", "contact", "info", "mail"};
const char* const kLast[] = {"ortiz", "fischer", "zhang", "petrov", "novak", "lindqvist",
                             "dubois", "yilmaz", "kowalski", "santos", "tanaka", "weber"};
const char* const kFields[] = {"count", "total", "balance", "price", "points", "quantity", "limit", "score", "amount", "fee"};

template <class T, size_t N> const T& Pick(Rng& r, const T (&a)[N]) { return a[r.Below(N)]; }

std::string Id(Rng& r) {
  std::string s;
  for (int i = 0; i < 3; ++i) s += static_cast<char>('A' + r.Below(26));
  return s + "-" + std::to_string(r.Range(1000, 9999));
}
std::string Email(Rng& r) {
  static const char* const kTld[] = {"com", "org", "net"};
  return RandomEmailLocal(r) + "@example." + Pick(r, kTld);
}
std::string Money(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// The user states values; the assistant repeats them.
std::vector<Message> Echo(Rng& r) {
  std::vector<std::pair<std::string, std::string>> items;
  const int64_t k = r.Range(1, 3);
  for (int64_t i = 0; i < k; ++i) {
    switch (r.Below(3)) {
      case 0: items.emplace_back("id", Id(r)); break;
      case 1: items.emplace_back("email", Email(r)); break;
      default: items.emplace_back("amount", Money(static_cast<double>(r.Range(100, 499999)) / 100.0)); break;
    }
  }
  std::string ask = "Please note: ", ans;
  for (size_t i = 0; i < items.size(); ++i) ask += (i ? " and my " : "my ") + items[i].first + " is " + items[i].second;
  ask += ".";
  switch (r.Below(3)) {
    case 0:
      ans = "Noted: ";
      for (size_t i = 0; i < items.size(); ++i) ans += (i ? ", " : "") + items[i].second;
      ans += ".";
      break;
    case 1: {
      json o = json::object();
      for (auto& [key, v] : items) o[key] = v;  // a repeated key keeps its last value, as JSON does
      ans = o.dump();
      break;
    }
    default:
      ans = "You said ";
      for (size_t i = 0; i < items.size(); ++i) ans += (i ? " and your " : "your ") + items[i].first + " is " + items[i].second;
      ans += ".";
  }
  return {Message{.role = "user", .content = ask}, Message{.role = "assistant", .content = ans}};
}

// The user shows a record; the assistant states one field.
std::vector<Message> Lookup(Rng& r) {
  std::vector<std::string> keys(std::begin(kFields), std::end(kFields));
  for (size_t i = keys.size() - 1; i > 0; --i) std::swap(keys[i], keys[r.Below(i + 1)]);
  keys.resize(static_cast<size_t>(r.Range(2, 5)));
  json rec = json::object();
  for (const auto& key : keys) {
    switch (r.Below(3)) {
      case 0: rec[key] = static_cast<double>(r.Range(1, 499999)) / 100.0; break;
      case 1: rec[key] = static_cast<double>(r.Range(1, 999)); break;
      default: rec[key] = r.Range(1, 999); break;
    }
  }
  if (r.Bernoulli(0.5)) rec[r.Bernoulli(0.5) ? "id" : "ref"] = Id(r);
  const std::string& key = keys[r.Below(keys.size())];
  const json& v = rec[key];
  const std::string shown = v.is_number_float() ? Money(v.get<double>()) : v.dump();
  return {Message{.role = "user", .content = "Here is the record: " + rec.dump() + " What is the " + key + "?"},
          Message{.role = "assistant", .content = "The " + key + " is " + shown + "."}};
}

}  // namespace

std::string RandomEmailLocal(Rng& r) {
  std::string s = Pick(r, kFirst);
  if (r.Bernoulli(0.5)) s += std::string(".") + Pick(r, kLast);
  return s + std::to_string(r.Range(0, 99999));
}

std::vector<Dialog> MakeCopyDialogs(int64_t n, uint64_t seed) {
  Rng r = Rng(seed).Fork("sft.copy_dialogs");
  std::vector<Dialog> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(0, n)));
  for (int64_t i = 0; i < n; ++i) {
    Dialog d;
    d.id = "copy:" + std::to_string(i);
    // An empty system message: without one the Kimi-K2 template puts in its default system prompt, 26 of
    // an echo dialog's ~66 tokens, none of them trained on.
    d.messages = {Message{.role = "system", .content = ""}};
    for (Message& m : r.Bernoulli(2.0 / 3.0) ? Echo(r) : Lookup(r)) d.messages.push_back(std::move(m));
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace k2::sft
