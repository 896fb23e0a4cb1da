// Domain database generation and the invariant checker (see database.h).
#include "toolgen/synth/database.h"

#include <map>
#include <set>

#include "core/hash.h"
#include "core/rng.h"
#include "toolgen/synth/vocab.h"

namespace k2::toolgen::synth {
namespace {

constexpr int64_t kToday = 20500;  // 2026-02-14 plus a per-domain offset below

std::string Id(const Entity& e, int64_t n) { return e.id_prefix + "-" + std::to_string(n); }

std::string Phone(Rng& r) {
  std::string s = "+";
  s += std::to_string(1 + r.Below(98));
  for (int i = 0; i < 9; ++i) s += static_cast<char>('0' + r.Below(10));
  return s;
}

std::string Lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

json RandomValue(const Domain& d, const Field& f, Rng& r, int64_t today) {
  switch (f.kind) {
    case FieldKind::kString: {
      static const char* kWords[] = {"north", "quiet", "blue", "corner", "late", "window", "garden", "fast",
                                     "old town", "harbor", "second", "main"};
      return std::string(kWords[r.Below(12)]) + " " + kWords[r.Below(12)];
    }
    case FieldKind::kEmail: return "user" + std::to_string(r.Below(100000)) + "@example.com";
    case FieldKind::kPhone: return Phone(r);
    case FieldKind::kEnum: return f.choices[r.Below(f.choices.size())];
    case FieldKind::kMoney: return MoneyJson(f.min + static_cast<int64_t>(r.Below(std::max<int64_t>(1, std::min<int64_t>(f.max, 50000) - f.min))));
    case FieldKind::kDate: return DateString(today - 400 + static_cast<int64_t>(r.Below(800)));
    case FieldKind::kInt: return f.min + static_cast<int64_t>(r.Below(static_cast<uint64_t>(f.max - f.min + 1)));
    case FieldKind::kBool: return r.Bernoulli(0.5);
    case FieldKind::kGeo: {
      const City& c = Cities()[r.Below(Cities().size())];
      return json{{"lat", c.lat}, {"lon", c.lon}};
    }
    case FieldKind::kRecord: {
      json o = json::object();
      for (auto& s : f.sub) o[s.name] = RandomValue(d, s, r, today);
      return o;
    }
    case FieldKind::kId:
    case FieldKind::kRef: break;
  }
  return nullptr;
}

const char* kStatusFieldsCheck = "status";

}  // namespace

json DefaultValue(const Domain& d, const Field& f, const json& rec) {
  switch (f.kind) {
    case FieldKind::kString: return "";
    case FieldKind::kEmail: return "unknown@example.com";
    case FieldKind::kPhone: return "+10000000000";
    case FieldKind::kEnum: return f.choices[0];
    case FieldKind::kMoney: return MoneyJson(0);
    case FieldKind::kDate: return rec.contains("date") ? rec["date"] : json("1970-01-01");
    case FieldKind::kInt: return f.min;
    case FieldKind::kBool: return false;
    case FieldKind::kGeo: return json{{"lat", 0.0}, {"lon", 0.0}};
    case FieldKind::kRecord: {
      json o = json::object();
      for (auto& s : f.sub) o[s.name] = DefaultValue(d, s, rec);
      return o;
    }
    case FieldKind::kId:
    case FieldKind::kRef: break;
  }
  return nullptr;
}

json GenerateDatabase(const Domain& d, uint64_t seed, const DbSize& size) {
  Rng r = Rng(seed).Fork(d.path + "/db");
  const int64_t today = kToday + static_cast<int64_t>(r.Below(300));
  json db = json::object();
  db["today"] = DateString(today);
  const Entity& A = d.entities[kActor];
  const Entity& I = d.entities[kItem];
  const Entity& R = d.entities[kRecordRole];
  json actors = json::object(), items = json::object(), records = json::object();
  for (int k = 0; k < size.actors; ++k) {
    json a = json::object();
    std::string id = Id(A, 1001 + k);
    std::string first = FirstNames()[r.Below(FirstNames().size())], last = LastNames()[r.Below(LastNames().size())];
    const City& c = Cities()[r.Below(Cities().size())];
    for (auto& f : A.fields) a[f.name] = RandomValue(d, f, r, today);
    a[A.fields[0].name] = id;
    a["name"] = first + " " + last;
    a["email"] = Lower(first) + "." + Lower(last) + std::to_string(k) + "@example.com";
    a["tier"] = d.tiers[r.Below(d.tiers.size())];
    a["balance"] = MoneyJson(20000 + static_cast<int64_t>(r.Below(400000)));
    a["home"] = {{"street", std::to_string(1 + r.Below(200)) + " " + LastNames()[r.Below(LastNames().size())] + " Street"},
                 {"city", c.name},
                 {"geo", {{"lat", c.lat}, {"lon", c.lon}}}};
    actors[id] = a;
  }
  for (int k = 0; k < size.items; ++k) {
    json it = json::object();
    std::string id = Id(I, 2001 + k);
    const City& c = Cities()[r.Below(Cities().size())];
    for (auto& f : I.fields) it[f.name] = RandomValue(d, f, r, today);
    it[I.fields[0].name] = id;
    static const char* kAdj[] = {"Aurora", "Summit", "Harbor", "Meadow", "Granite", "Cedar", "Coral", "Orbit", "Willow", "Atlas"};
    it["title"] = std::string(kAdj[r.Below(10)]) + " " + std::string(d.item_classes[r.Below(d.item_classes.size())]) + " " +
                  std::to_string(k + 1);
    it["price"] = MoneyJson(1000 + 500 * static_cast<int64_t>(r.Below(60)));
    it["capacity"] = 1 + static_cast<int64_t>(r.Below(4));
    it["city"] = c.name;
    it["location"] = {{"lat", c.lat}, {"lon", c.lon}};
    it["premium"] = r.Bernoulli(0.3);
    it["active"] = k == 0 || r.Bernoulli(0.85);
    items[id] = it;
  }
  db[A.plural] = actors;
  db[I.plural] = items;
  // Records: built one by one, skipping any that would break an invariant, so the initial state is valid.
  const Policy* max_active = d.FindPolicy(PolicyKind::kMaxActive);
  const bool no_double = d.FindPolicy(PolicyKind::kNoDoubleBooking) != nullptr;
  std::map<std::pair<std::string, std::string>, int64_t> used;  // (item, date) -> quantity of active records
  std::set<std::tuple<std::string, std::string, std::string>> held;  // active (actor, item, date)
  std::map<std::string, int> active_count;
  int64_t n = 0;
  for (int k = 0; k < size.records * 3 && n < size.records; ++k) {
    std::string aid = Id(A, 1001 + static_cast<int64_t>(r.Below(size.actors)));
    std::string iid = Id(I, 2001 + static_cast<int64_t>(r.Below(size.items)));
    int si = static_cast<int>(r.Below(5));
    std::string status = si < 3 ? d.life.states[si] : si == 3 ? Lifecycle::kCancelled : Lifecycle::kRefunded;
    bool active = d.life.IsActive(status);
    // Active records lie ahead; finished ones lie behind, some inside and some outside refund windows.
    int64_t date = active ? today + 1 + static_cast<int64_t>(r.Below(60)) : today - 1 - static_cast<int64_t>(r.Below(120));
    std::string ds = DateString(date);
    int64_t qty = 1 + static_cast<int64_t>(r.Below(2));
    const json& item = items[iid];
    if (active) {
      if (used[{iid, ds}] + qty > item["capacity"].get<int64_t>()) continue;
      if (no_double && held.count({aid, iid, ds})) continue;
      if (max_active && active_count[aid] + 1 > max_active->n) continue;
      used[{iid, ds}] += qty;
      held.insert({aid, iid, ds});
      active_count[aid]++;
    }
    json rec = json::object();
    for (auto& f : R.fields)
      if (f.kind != FieldKind::kId && f.kind != FieldKind::kRef) rec[f.name] = RandomValue(d, f, r, today);
    std::string id = Id(R, 3001 + n);
    rec[R.fields[0].name] = id;
    rec[d.ActorRef()] = aid;
    rec[d.ItemRef()] = iid;
    rec["status"] = status;
    rec["date"] = ds;
    rec["created_on"] = DateString(std::min(date, today) - 1 - static_cast<int64_t>(r.Below(30)));
    rec["quantity"] = qty;
    rec["amount"] = MoneyJson(MoneyCents(item["price"]) * qty);
    rec["contact"]["name"] = actors[aid]["name"];
    records[id] = rec;
    ++n;
  }
  db[R.plural] = records;
  db["next_id"] = {{A.plural, 1001 + size.actors}, {I.plural, 2001 + size.items}, {R.plural, 3001 + n}};
  return db;
}

namespace {

Status CheckValue(const Domain& d, const Field& f, const json& v, const std::string& where, const json& db) {
  auto bad = [&](const std::string& what) { return Corruption(where + ": expected " + what + ", got " + v.dump()); };
  switch (f.kind) {
    case FieldKind::kId:
    case FieldKind::kRef: {
      if (!v.is_string()) return bad("string id");
      std::string s = v.get<std::string>();
      const Entity& e = d.entities[f.ref];
      if (s.rfind(e.id_prefix + "-", 0) != 0) return bad(e.id_prefix + "-<n>");
      if (f.kind == FieldKind::kRef && !db[e.plural].contains(s)) return Corruption(where + ": dangling reference " + s);
      return Status::Ok();
    }
    case FieldKind::kString: return v.is_string() ? Status::Ok() : bad("string");
    case FieldKind::kEmail:
      return v.is_string() && v.get<std::string>().find('@') != std::string::npos ? Status::Ok() : bad("email");
    case FieldKind::kPhone: return v.is_string() && v.get<std::string>().rfind("+", 0) == 0 ? Status::Ok() : bad("phone");
    case FieldKind::kEnum:
      if (!v.is_string()) return bad("enum string");
      for (auto& c : f.choices)
        if (c == v.get<std::string>()) return Status::Ok();
      return bad("one of the enum values");
    case FieldKind::kMoney:
      if (!v.is_number() || v.get<double>() < -1e-9) return bad("non-negative amount");
      return Status::Ok();
    case FieldKind::kDate: {
      int64_t days;
      return v.is_string() && ParseDate(v.get<std::string>(), &days) ? Status::Ok() : bad("YYYY-MM-DD");
    }
    case FieldKind::kInt:
      if (!v.is_number_integer()) return bad("integer");
      if (v.get<int64_t>() < f.min || v.get<int64_t>() > f.max) return bad("integer in range");
      return Status::Ok();
    case FieldKind::kBool: return v.is_boolean() ? Status::Ok() : bad("boolean");
    case FieldKind::kGeo:
      return v.is_object() && v.contains("lat") && v.contains("lon") && v["lat"].is_number() && v["lon"].is_number()
                 ? Status::Ok()
                 : bad("{lat, lon}");
    case FieldKind::kRecord:
      if (!v.is_object()) return bad("object");
      for (auto& s : f.sub) {
        if (!v.contains(s.name)) return Corruption(where + "." + s.name + ": missing");
        K2_RETURN_IF_ERROR(CheckValue(d, s, v[s.name], where + "." + s.name, db));
      }
      return Status::Ok();
  }
  return Status::Ok();
}

}  // namespace

Status CheckInvariants(const Domain& d, const json& db) {
  if (!db.is_object() || !db.contains("today")) return Corruption("database: missing \"today\"");
  int64_t today;
  if (!db["today"].is_string() || !ParseDate(db["today"].get<std::string>(), &today))
    return Corruption("database: today: expected YYYY-MM-DD");
  for (int role = 0; role < 3; ++role) {
    const Entity& e = d.entities[role];
    if (!db.contains(e.plural) || !db[e.plural].is_object()) return Corruption("database: missing collection " + e.plural);
    for (auto& [id, rec] : db[e.plural].items()) {
      std::string where = e.plural + "/" + id;
      if (!rec.is_object()) return Corruption(where + ": expected object");
      if (rec.size() != e.fields.size()) return Corruption(where + ": expected " + std::to_string(e.fields.size()) + " fields");
      for (auto& f : e.fields) {
        if (!rec.contains(f.name)) return Corruption(where + "." + f.name + ": missing");
        K2_RETURN_IF_ERROR(CheckValue(d, f, rec[f.name], where + "." + f.name, db));
      }
      if (rec[e.fields[0].name] != id) return Corruption(where + ": id field differs from its key");
    }
  }
  const Entity& R = d.entities[kRecordRole];
  const bool no_double = d.FindPolicy(PolicyKind::kNoDoubleBooking) != nullptr;
  const Policy* max_active = d.FindPolicy(PolicyKind::kMaxActive);
  std::map<std::pair<std::string, std::string>, int64_t> used;
  std::map<std::tuple<std::string, std::string, std::string>, int> held;
  std::map<std::string, int> active;
  for (auto& [id, rec] : db[R.plural].items()) {
    std::string st = rec[kStatusFieldsCheck];
    if (!d.life.IsActive(st)) continue;
    std::string a = rec[d.ActorRef()], i = rec[d.ItemRef()], date = rec["date"];
    used[{i, date}] += rec["quantity"].get<int64_t>();
    if (++held[{a, i, date}] > 1 && no_double)
      return Corruption(R.plural + "/" + id + ": double booking of " + i + " on " + date + " by " + a);
    if (++active[a] > (max_active ? max_active->n : 1 << 30))
      return Corruption(R.plural + "/" + id + ": " + a + " holds more active records than allowed");
  }
  const Entity& I = d.entities[kItem];
  for (auto& [key, q] : used) {
    int64_t cap = db[I.plural][key.first]["capacity"].get<int64_t>();
    if (q > cap) return Corruption(I.plural + "/" + key.first + ": capacity " + std::to_string(cap) + " exceeded on " + key.second);
  }
  return Status::Ok();
}

std::string StateHash(const json& db) { return Sha256Hex(CanonicalJson(db)); }

}  // namespace k2::toolgen::synth
