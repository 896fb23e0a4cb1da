// Domain evolution and the tool catalog: coverage of the seed categories, determinism per seed,
// unique names, every tool a valid MCP ToolSpec whose schemas compile, valid databases.
#include <gtest/gtest.h>

#include <set>

#include "core/hash.h"
#include "core/thread_pool.h"
#include "toolgen/schema.h"
#include "toolgen/synth/synth.h"
#include "toolgen/synth/vocab.h"

namespace k2::toolgen::synth {
namespace {

std::string CatalogFingerprint(const Catalog& c) {
  std::string all;
  for (size_t i = 0; i < c.domains.size(); ++i) {
    for (auto& op : c.domains[i]->ops) all += CanonicalJson(ToJson(ToToolSpec(*c.domains[i], op)));
    if (!c.databases.empty()) all += StateHash(c.databases[i]);
  }
  return Sha256Hex(all);
}

TEST(Evolve, HasAtLeastThirtySeedCategoriesWithFiveThemes) {
  EXPECT_GE(SeedCategories().size(), 30u);
  std::set<std::string> slugs;
  for (auto& c : SeedCategories()) {
    EXPECT_TRUE(slugs.insert(c.slug).second) << c.slug;
    EXPECT_EQ(c.themes.size(), 5u) << c.slug;
  }
}

TEST(Evolve, PlanCoversEveryCategoryAndReachesTheCount) {
  auto keys = PlanDomains(3, 3000);
  EXPECT_GE(static_cast<int64_t>(keys.size()) * kToolsPerDomain, 3000);
  std::set<int> cats;
  std::set<std::string> paths;
  for (auto& k : keys) {
    cats.insert(k.category);
    EXPECT_TRUE(paths.insert(k.Path()).second) << "duplicate path " << k.Path();
    auto back = KeyFromPath(k.Path());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->Path(), k.Path());
  }
  EXPECT_EQ(cats.size(), SeedCategories().size());
  EXPECT_FALSE(KeyFromPath("travel/airline/nope").ok());
  EXPECT_FALSE(KeyFromPath("nowhere/x/y").ok());
}

TEST(Evolve, SameSeedIdenticalOtherSeedDifferent) {
  ThreadPool pool(2);
  Catalog a = Synthesize(11, 1500, &pool), b = Synthesize(11, 1500, nullptr), c = Synthesize(12, 1500, &pool);
  EXPECT_EQ(CatalogFingerprint(a), CatalogFingerprint(b)) << "thread count must not change the output";
  EXPECT_NE(CatalogFingerprint(a), CatalogFingerprint(c));
  // Other seed: other sub-domain paths, not just other databases.
  std::set<std::string> pa, pc;
  for (auto& d : a.domains) pa.insert(d->path);
  for (auto& d : c.domains) pc.insert(d->path);
  EXPECT_NE(pa, pc);
}

TEST(Evolve, EveryToolIsAValidToolSpecWithCompilingSchemasAndUniqueNames) {
  ThreadPool pool(2);
  Catalog cat = Synthesize(5, 3000, &pool);
  ASSERT_GE(cat.ToolCount(), 3000);
  int64_t checked = 0;
  for (auto& d : cat.domains) {
    std::vector<ToolSpec> specs;
    for (auto& op : d->ops) {
      ToolSpec s = ToToolSpec(*d, op);
      auto parsed = ParseToolSpec(ToJson(s), d->path + "/" + op.name, s.provenance);
      ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
      ASSERT_TRUE(parsed->output_schema.has_value());
      specs.push_back(*parsed);
      ++checked;
    }
    ASSERT_TRUE(CheckUniqueNames(specs, d->path).ok());
    EXPECT_EQ(specs.size(), static_cast<size_t>(kToolsPerDomain));
  }
  EXPECT_EQ(checked, cat.ToolCount());
}

TEST(Evolve, DatabasesSatisfyInvariantsAndTheirEntitySchemas) {
  ThreadPool pool(2);
  Catalog cat = Synthesize(8, 1200, &pool);
  for (size_t i = 0; i < cat.domains.size(); ++i) {
    const Domain& d = *cat.domains[i];
    const json& db = cat.databases[i];
    ASSERT_TRUE(CheckInvariants(d, db).ok()) << d.path << ": " << CheckInvariants(d, db).ToString();
    for (int role = 0; role < 3; ++role) {
      auto schema = Schema::Compile(EntitySchema(d, role), d.path);
      ASSERT_TRUE(schema.ok()) << schema.status().ToString();
      for (auto& [id, rec] : db[d.entities[role].plural].items()) {
        Status s = (*schema)->Validate(rec);
        ASSERT_TRUE(s.ok()) << d.path << " " << id << ": " << s.ToString();
      }
    }
    EXPECT_GE(db[d.entities[kRecordRole].plural].size(), 5u) << d.path;
  }
}

TEST(Evolve, InvariantCheckerRejectsBrokenStates) {
  Domain d = BuildDomain(*KeyFromPath("hospitality/hotel/boutique-nordic"), 1);
  json db = GenerateDatabase(d, 1);
  ASSERT_TRUE(CheckInvariants(d, db).ok());
  const std::string recs = d.entities[kRecordRole].plural;
  std::string rid = db[recs].begin().key();
  json bad = db;
  bad[recs][rid][d.ActorRef()] = d.entities[kActor].id_prefix + "-99999";
  EXPECT_FALSE(CheckInvariants(d, bad).ok()) << "dangling reference";
  bad = db;
  bad[recs][rid]["status"] = "teleported";
  EXPECT_FALSE(CheckInvariants(d, bad).ok()) << "unknown status";
  bad = db;
  bad[d.entities[kActor].plural].begin().value()["balance"] = -1.0;
  EXPECT_FALSE(CheckInvariants(d, bad).ok()) << "negative balance";
  bad = db;
  bad[recs][rid].erase("date");
  EXPECT_FALSE(CheckInvariants(d, bad).ok()) << "missing field";
}

TEST(Evolve, DatesRoundTrip) {
  for (int64_t z = -1000; z < 40000; z += 37) {
    int64_t back = 0;
    ASSERT_TRUE(ParseDate(DateString(z), &back));
    EXPECT_EQ(back, z);
  }
  int64_t x;
  EXPECT_FALSE(ParseDate("2025-02-29", &x));
  EXPECT_TRUE(ParseDate("2024-02-29", &x));
  EXPECT_FALSE(ParseDate("2024-13-01", &x));
  EXPECT_FALSE(ParseDate("24-01-01", &x));
}

}  // namespace
}  // namespace k2::toolgen::synth
