// Seed vocabularies of domain evolution: the seed categories with their application themes, record
// lifecycles, tier and class enums, extra-field vocabularies, and the cross-category qualifier pools.
// Static data only; evolve.cc combines it.
#pragma once

#include <vector>

namespace k2::toolgen::synth {

struct ThemeSeed {
  const char* slug;     // "hotel"
  const char* display;  // "hotels"
  const char* actor;    // "guest"
  const char* item;     // "room"
  const char* record;   // "booking"
};

struct CategorySeed {
  const char* slug;  // "travel"
  const char* name;  // "Travel booking"
  const char* states[3];
  const char* advance[2];
  const char* create_verb;
  const char* cancel_verb;
  const char* refund_verb;
  std::vector<const char*> tiers;    // ascending
  std::vector<const char*> classes;  // item classes
  // Extra fields, "role:name:kind[:choice|choice]" with role a(ctor) i(tem) r(ecord) and kind one of
  // str, int, bool, money, date, enum, email, phone.
  std::vector<const char*> extras;
  std::vector<ThemeSeed> themes;
};

const std::vector<CategorySeed>& SeedCategories();

// Qualifiers evolve an application theme into sub-domains: a market segment and a region.
struct Qualifier {
  const char* slug;
  const char* adjective;
  const char* extra;  // an extra field it brings, same syntax as CategorySeed::extras
};
const std::vector<Qualifier>& Segments();
const std::vector<Qualifier>& Regions();
// Generic extra fields any domain may draw (same syntax).
const std::vector<const char*>& GenericExtras();
// Verb synonyms per naming grammar slot.
const std::vector<const char*>& GetVerbs();
const std::vector<const char*>& SearchVerbs();
const std::vector<const char*>& ListVerbs();
const std::vector<const char*>& UpdateVerbs();
const std::vector<const char*>& AggregateVerbs();
const std::vector<const char*>& TransferNames();
// Person names and cities for databases and personas.
const std::vector<const char*>& FirstNames();
const std::vector<const char*>& LastNames();
struct City { const char* name; double lat, lon; };
const std::vector<City>& Cities();

}  // namespace k2::toolgen::synth
