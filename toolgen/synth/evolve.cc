// Domain evolution (see evolve.h): planning the sub-domain paths and growing each sub-domain's entity
// model, lifecycle and policies from the seed vocabularies.
#include "toolgen/synth/evolve.h"

#include <algorithm>
#include <set>

#include "core/rng.h"
#include "toolgen/synth/vocab.h"

namespace k2::toolgen::synth {
namespace {

std::string Plural(const std::string& s) {
  auto ends = [&](const char* suf) {
    std::string x(suf);
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (ends("y") && s.size() > 1 && std::string("aeiou").find(s[s.size() - 2]) == std::string::npos)
    return s.substr(0, s.size() - 1) + "ies";
  if (ends("s") || ends("x") || ends("ch") || ends("sh")) return s + "es";
  return s + "s";
}

std::string Upper3(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != '_' && out.size() < 3) out += static_cast<char>(c - 'a' + 'A');
  while (out.size() < 3) out += 'X';
  return out;
}

// Parses "role:name:kind[:a|b|c]" (vocab.h) into a field; role is returned through *role.
Field ParseExtra(const char* spec, int* role) {
  std::string s(spec);
  std::vector<std::string> parts;
  size_t p = 0;
  for (int i = 0; i < 3; ++i) {
    size_t q = s.find(':', p);
    if (q == std::string::npos) q = s.size();
    parts.push_back(s.substr(p, q - p));
    p = q + 1;
  }
  std::string rest = p <= s.size() ? s.substr(p) : "";
  *role = parts[0] == "a" ? kActor : parts[0] == "i" ? kItem : kRecordRole;
  Field f;
  f.name = parts[1];
  const std::string& k = parts[2];
  if (k == "str") f.kind = FieldKind::kString;
  else if (k == "int") { f.kind = FieldKind::kInt; f.min = 0; f.max = 500; }
  else if (k == "bool") f.kind = FieldKind::kBool;
  else if (k == "money") { f.kind = FieldKind::kMoney; f.min = 0; f.max = 100000; }
  else if (k == "date") f.kind = FieldKind::kDate;
  else if (k == "email") f.kind = FieldKind::kEmail;
  else if (k == "phone") f.kind = FieldKind::kPhone;
  else if (k == "enum") {
    f.kind = FieldKind::kEnum;
    size_t a = 0;
    while (a <= rest.size()) {
      size_t b = rest.find('|', a);
      if (b == std::string::npos) b = rest.size();
      f.choices.push_back(rest.substr(a, b - a));
      a = b + 1;
    }
  } else {
    K2_CHECK(false) << "vocab: bad extra field kind in " << spec;
  }
  std::string words = f.name;
  std::replace(words.begin(), words.end(), '_', ' ');
  f.doc = words;
  return f;
}

void AddField(Entity& e, Field f) {
  if (e.Find(f.name)) return;  // vocabularies overlap: the first definition wins
  e.fields.push_back(std::move(f));
}

Field Simple(std::string name, FieldKind kind, std::string doc, int64_t min = 0, int64_t max = 0) {
  Field f;
  f.name = std::move(name);
  f.kind = kind;
  f.doc = std::move(doc);
  f.min = min;
  f.max = max;
  return f;
}

std::string Money(int64_t cents) {
  std::string s = std::to_string(cents / 100);
  if (cents % 100) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%02lld", static_cast<long long>(cents % 100));
    s += buf;
  }
  return s;
}

std::string Words(std::string s) {
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

}  // namespace

std::string DomainKey::Path() const {
  const auto& c = SeedCategories()[category];
  return std::string(c.slug) + "/" + c.themes[theme].slug + "/" + Segments()[segment].slug + "-" +
         Regions()[region].slug;
}

Expected<DomainKey> KeyFromPath(const std::string& path) {
  const auto& cats = SeedCategories();
  for (int c = 0; c < static_cast<int>(cats.size()); ++c) {
    for (int t = 0; t < static_cast<int>(cats[c].themes.size()); ++t) {
      std::string prefix = std::string(cats[c].slug) + "/" + cats[c].themes[t].slug + "/";
      if (path.rfind(prefix, 0) != 0) continue;
      std::string leaf = path.substr(prefix.size());
      for (int s = 0; s < static_cast<int>(Segments().size()); ++s) {
        std::string sp = std::string(Segments()[s].slug) + "-";
        if (leaf.rfind(sp, 0) != 0) continue;
        for (int r = 0; r < static_cast<int>(Regions().size()); ++r)
          if (leaf.substr(sp.size()) == Regions()[r].slug) return DomainKey{c, t, s, r};
      }
      return NotFound("synthetic domain \"" + path + "\": unknown variant \"" + leaf +
                      "\" (expected <segment>-<region>)");
    }
  }
  return NotFound("synthetic domain \"" + path + "\": unknown category/theme (expected e.g. travel/airline/budget-nordic)");
}

std::vector<DomainKey> PlanDomains(uint64_t seed, int64_t min_tools) {
  const auto& cats = SeedCategories();
  std::vector<DomainKey> themes;
  for (int c = 0; c < static_cast<int>(cats.size()); ++c)
    for (int t = 0; t < static_cast<int>(cats[c].themes.size()); ++t) themes.push_back({c, t, 0, 0});
  const int ns = static_cast<int>(Segments().size()), nr = static_cast<int>(Regions().size());
  // Per theme: a seeded permutation of its segment x region variants.
  std::vector<std::vector<int>> perms(themes.size());
  Rng root(seed);
  for (size_t i = 0; i < themes.size(); ++i) {
    Rng r = root.Fork("plan/" + std::to_string(i));
    auto& p = perms[i];
    p.resize(ns * nr);
    for (int k = 0; k < ns * nr; ++k) p[k] = k;
    for (int k = ns * nr - 1; k > 0; --k) std::swap(p[k], p[r.Below(k + 1)]);
  }
  std::vector<DomainKey> out;
  int64_t tools = 0;
  for (int round = 0; round < ns * nr && tools < min_tools; ++round) {
    for (size_t i = 0; i < themes.size() && tools < min_tools; ++i) {
      DomainKey k = themes[i];
      k.segment = perms[i][round] / nr;
      k.region = perms[i][round] % nr;
      out.push_back(k);
      tools += kToolsPerDomain;
    }
  }
  return out;
}

Domain BuildDomain(const DomainKey& key, uint64_t seed) {
  const CategorySeed& cat = SeedCategories()[key.category];
  const ThemeSeed& theme = cat.themes[key.theme];
  const Qualifier& seg = Segments()[key.segment];
  const Qualifier& reg = Regions()[key.region];
  Domain d;
  d.path = key.Path();
  d.category = cat.name;
  d.display = std::string(reg.adjective) + " " + seg.adjective + " " + theme.display;
  d.seed = Rng(seed).Fork(d.path).Next();
  Rng rng(d.seed);

  for (auto* t : cat.tiers) d.tiers.push_back(t);
  for (auto* c : cat.classes) d.item_classes.push_back(c);
  d.life.states = {cat.states[0], cat.states[1], cat.states[2]};
  d.life.advance = {cat.advance[0], cat.advance[1]};
  d.life.create_verb = cat.create_verb;
  d.life.cancel_verb = cat.cancel_verb;
  d.life.refund_verb = cat.refund_verb;

  const char* names[3] = {theme.actor, theme.item, theme.record};
  std::set<std::string> prefixes;
  for (int r = 0; r < 3; ++r) {
    Entity& e = d.entities[r];
    e.name = names[r];
    e.plural = Plural(e.name);
    std::string pfx = Upper3(e.name);
    // Distinct id prefixes per domain so an id alone tells its entity type.
    for (int k = 0; prefixes.count(pfx); ++k) pfx = pfx.substr(0, 2) + static_cast<char>('A' + k);
    prefixes.insert(pfx);
    e.id_prefix = pfx;
    Field id = Simple(e.name + "_id", FieldKind::kId, "unique " + Words(e.name) + " id");
    id.ref = r;
    e.fields.push_back(id);
  }
  // Fixed fields per role: they carry the semantics that tools and policies interpret.
  Entity& a = d.entities[kActor];
  AddField(a, Simple("name", FieldKind::kString, "full name"));
  AddField(a, Simple("email", FieldKind::kEmail, "contact email"));
  AddField(a, Simple("phone", FieldKind::kPhone, "phone number in E.164 form"));
  {
    Field tier = Simple("tier", FieldKind::kEnum, "membership tier, ascending");
    tier.choices = d.tiers;
    AddField(a, tier);
  }
  AddField(a, Simple("balance", FieldKind::kMoney, "prepaid credit available for payments", 0, 100000000));
  {
    Field home = Simple("home", FieldKind::kRecord, "home address");
    home.sub = {Simple("street", FieldKind::kString, "street and number"), Simple("city", FieldKind::kString, "city"),
                Simple("geo", FieldKind::kGeo, "coordinates")};
    AddField(a, home);
  }
  Entity& it = d.entities[kItem];
  AddField(it, Simple("title", FieldKind::kString, "display title"));
  {
    Field cls = Simple("class", FieldKind::kEnum, "kind of " + Words(it.name));
    cls.choices = d.item_classes;
    AddField(it, cls);
  }
  AddField(it, Simple("price", FieldKind::kMoney, "price per unit", 100, 5000000));
  AddField(it, Simple("capacity", FieldKind::kInt, "units available per date", 1, 20));
  AddField(it, Simple("city", FieldKind::kString, "city where it is offered"));
  AddField(it, Simple("location", FieldKind::kGeo, "coordinates"));
  AddField(it, Simple("premium", FieldKind::kBool, "premium offer (may need a higher tier)"));
  AddField(it, Simple("active", FieldKind::kBool, "can be booked"));
  Entity& rec = d.entities[kRecordRole];
  {
    Field ar = Simple(d.ActorRef(), FieldKind::kRef, "the " + Words(a.name) + " it belongs to");
    ar.ref = kActor;
    AddField(rec, ar);
    Field ir = Simple(d.ItemRef(), FieldKind::kRef, "the " + Words(it.name) + " it is for");
    ir.ref = kItem;
    AddField(rec, ir);
    Field st = Simple("status", FieldKind::kEnum, "lifecycle state");
    st.choices = {d.life.states[0], d.life.states[1], d.life.states[2], Lifecycle::kCancelled, Lifecycle::kRefunded};
    AddField(rec, st);
  }
  AddField(rec, Simple("date", FieldKind::kDate, "date of service"));
  AddField(rec, Simple("created_on", FieldKind::kDate, "date it was created"));
  AddField(rec, Simple("quantity", FieldKind::kInt, "units", 1, 10));
  AddField(rec, Simple("amount", FieldKind::kMoney, "amount paid (price x quantity)", 0, 100000000));
  AddField(rec, Simple("notes", FieldKind::kString, "free-text notes"));
  {
    Field contact = Simple("contact", FieldKind::kRecord, "on-site contact");
    Field ch = Simple("channel", FieldKind::kEnum, "preferred channel");
    ch.choices = {"email", "sms", "phone"};
    contact.sub = {Simple("name", FieldKind::kString, "contact name"), Simple("phone", FieldKind::kPhone, "contact phone"), ch};
    AddField(rec, contact);
  }

  // Evolution of the field vocabulary: a seeded subset of the category's extras, the segment's and the
  // region's extra, and one generic extra.
  std::vector<const char*> extras = cat.extras;
  for (size_t k = extras.size(); k > 1; --k) std::swap(extras[k - 1], extras[rng.Below(k)]);
  extras.resize(std::min<size_t>(extras.size(), 2 + rng.Below(3)));
  extras.push_back(seg.extra);
  extras.push_back(reg.extra);
  extras.push_back(GenericExtras()[rng.Below(GenericExtras().size())]);
  for (const char* spec : extras) {
    int role = 0;
    Field f = ParseExtra(spec, &role);
    AddField(d.entities[role], f);
  }

  // Policies: a refund window and a cancellation notice always; others by chance.
  const std::string rn = Words(rec.name), an = Words(a.name), in = Words(it.name);
  auto pick = [&](std::initializer_list<int64_t> v) { return *(v.begin() + rng.Below(v.size())); };
  {
    int64_t n = pick({7, 14, 30, 45, 60, 90});
    d.policies.push_back({PolicyKind::kRefundWindow, n,
                          "A " + d.life.states[2] + " " + rn + " can be " + Words(d.life.refund_verb) +
                              "ed only within " + std::to_string(n) + " days after its date; later requests must be refused."});
  }
  {
    int64_t n = pick({1, 2, 3, 7, 14});
    d.policies.push_back({PolicyKind::kCancelNotice, n,
                          "A " + rn + " can be " + Words(d.life.cancel_verb) + "ed only if its date is at least " +
                              std::to_string(n) + " day(s) away."});
  }
  if (rng.Bernoulli(0.75))
    d.policies.push_back({PolicyKind::kNoDoubleBooking, 0,
                          "No double booking: a " + an + " may hold only one active " + rn + " per " + in + " and date."});
  if (rng.Bernoulli(0.5)) {
    int64_t n = pick({50000, 100000, 250000, 500000});
    d.policies.push_back({PolicyKind::kMaxAmount, n,
                          "A single " + rn + " may not exceed " + Money(n) + " in amount."});
  }
  if (rng.Bernoulli(0.5)) {
    int64_t n = pick({2, 3, 4, 5});
    d.policies.push_back({PolicyKind::kMaxActive, n,
                          "A " + an + " may hold at most " + std::to_string(n) + " active " + Words(rec.plural) + " at a time."});
  }
  {
    int64_t n = pick({20000, 50000, 100000, 200000});
    d.policies.push_back({PolicyKind::kTransferLimit, n,
                          "Credit transfers between " + Words(a.plural) + " are limited to " + Money(n) + " per transfer."});
  }
  if (rng.Bernoulli(0.6)) {
    int64_t n = 1 + static_cast<int64_t>(rng.Below(d.tiers.size() - 1));
    d.policies.push_back({PolicyKind::kPremiumTier, n,
                          "Premium " + Words(it.plural) + " are reserved for " + Words(a.plural) + " of tier " +
                              d.tiers[n] + " or higher."});
  }
  BuildOps(d, d.seed);
  return d;
}

json FieldSchema(const Domain& d, const Field& f) {
  json s;
  switch (f.kind) {
    case FieldKind::kId:
    case FieldKind::kRef:
      s = {{"type", "string"}, {"pattern", "^" + d.entities[f.ref].id_prefix + "-[0-9]+$"}};
      break;
    case FieldKind::kString: s = {{"type", "string"}, {"maxLength", 200}}; break;
    case FieldKind::kEmail: s = {{"type", "string"}, {"format", "email"}}; break;
    case FieldKind::kPhone: s = {{"type", "string"}, {"pattern", "^\\+[0-9]{7,15}$"}}; break;
    case FieldKind::kEnum: s = {{"type", "string"}, {"enum", f.choices}}; break;
    case FieldKind::kMoney: s = {{"type", "number"}, {"minimum", 0}}; break;
    case FieldKind::kDate: s = {{"type", "string"}, {"format", "date"}}; break;
    case FieldKind::kInt: s = {{"type", "integer"}, {"minimum", f.min}, {"maximum", f.max}}; break;
    case FieldKind::kBool: s = {{"type", "boolean"}}; break;
    case FieldKind::kGeo:
      s = {{"type", "object"},
           {"properties", {{"lat", {{"type", "number"}, {"minimum", -90}, {"maximum", 90}}},
                           {"lon", {{"type", "number"}, {"minimum", -180}, {"maximum", 180}}}}},
           {"required", {"lat", "lon"}},
           {"additionalProperties", false}};
      break;
    case FieldKind::kRecord: {
      json props = json::object(), req = json::array();
      for (auto& sf : f.sub) {
        props[sf.name] = FieldSchema(d, sf);
        req.push_back(sf.name);
      }
      s = {{"type", "object"}, {"properties", props}, {"required", req}, {"additionalProperties", false}};
      break;
    }
  }
  if (!f.doc.empty()) s["description"] = f.doc;
  return s;
}

json EntitySchema(const Domain& d, int role) {
  json props = json::object(), req = json::array();
  for (auto& f : d.entities[role].fields) {
    props[f.name] = FieldSchema(d, f);
    req.push_back(f.name);
  }
  return {{"type", "object"}, {"properties", props}, {"required", req}, {"additionalProperties", false}};
}

}  // namespace k2::toolgen::synth
