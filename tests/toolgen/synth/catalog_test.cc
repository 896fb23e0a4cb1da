// Agents, near-duplicate measurement (MinHash/LSH vs exact all pairs), the store, and the schema
// simulator for real tools.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/thread_pool.h"
#include "toolgen/schema.h"
#include "toolgen/synth/agents.h"
#include "toolgen/synth/dedupe.h"
#include "toolgen/synth/simulator.h"
#include "toolgen/synth/store.h"
#include "toolgen/synth/synth.h"

namespace k2::toolgen::synth {
namespace {

TEST(Agents, ThousandsOfDistinctAgentsWithStableIds) {
  ThreadPool pool(2);
  Catalog cat = Synthesize(4, 7000, &pool, false);
  AgentOptions o{.per_domain = 3, .cross_domain_tools = 2, .distractor_tools = 2};
  auto agents = SynthesizeAgents(cat, 4, o);
  ASSERT_GE(agents.size(), 1500u);
  std::set<std::string> ids, bodies;
  std::set<std::string> all_tools;
  for (auto& d : cat.domains)
    for (auto& op : d->ops) all_tools.insert(d->path + "::" + op.name);
  for (auto& a : agents) {
    EXPECT_TRUE(ids.insert(a.id).second) << a.id;
    EXPECT_TRUE(bodies.insert(a.system_prompt + json(a.tools).dump()).second) << a.id << " duplicates another agent";
    for (auto& t : a.tools) EXPECT_TRUE(all_tools.count(t)) << t;
    const Domain* d = nullptr;
    for (auto& x : cat.domains)
      if (x->path == a.domain) d = x.get();
    ASSERT_TRUE(d);
    for (auto& p : d->policies) EXPECT_NE(a.system_prompt.find(p.text), std::string::npos) << "policy missing from prompt";
    EXPECT_EQ(a.cross_domain.size(), 2u);
    EXPECT_EQ(a.distractors.size(), 2u);
    auto back = AgentFromJson(ToJson(a), "agent");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, a);
  }
  EXPECT_EQ(SynthesizeAgents(cat, 4, o), agents);
  EXPECT_NE(SynthesizeAgents(cat, 5, o)[0].id, agents[0].id);
}

TEST(Dedupe, LshFindsExactlyThePairsOfTheAllPairsReference) {
  ThreadPool pool(2);
  Catalog cat = Synthesize(6, 1200, &pool, false);
  std::vector<std::string> texts;
  for (auto& d : cat.domains)
    for (auto& op : d->ops) texts.push_back(op.description);
  // Plant known near duplicates: copies with one word changed.
  for (int k = 0; k < 20; ++k) texts.push_back(texts[k * 37] + " Extra");
  // 32 bands x 4 rows: a pair at Jaccard 0.75 escapes the candidates with p ~ 5e-6 (at 0.5: 0.13, so
  // the exact comparison is only meaningful from about 0.75 up).
  for (double th : {0.75, 0.9}) {
    DedupeReport fast = MeasureNearDuplicates(texts, th, &pool), slow = MeasureNearDuplicatesExact(texts, th);
    EXPECT_EQ(fast.pairs, slow.pairs) << "threshold " << th;
    EXPECT_LE(fast.candidate_pairs, slow.candidate_pairs / 10) << "LSH must prune most pairs";
    EXPECT_GE(slow.near_duplicate_pairs, 20);
  }
  // The stated distinctness bound: under 2% of descriptions have a near duplicate at Jaccard 0.8
  // (bench/toolgen measures 1.2% over 20,000 tools; planted copies excluded here).
  std::vector<std::string> real(texts.begin(), texts.end() - 20);
  DedupeReport r = MeasureNearDuplicates(real, 0.8, &pool);
  EXPECT_LT(static_cast<double>(r.docs_with_near_duplicate) / static_cast<double>(r.docs), 0.02);
  EXPECT_DOUBLE_EQ(Jaccard(Shingles("a b c d"), Shingles("a b c d")), 1.0);
  EXPECT_DOUBLE_EQ(Jaccard(Shingles("a b c d"), Shingles("x y z w")), 0.0);
  EXPECT_EQ(Shingles("One two three four").size(), 2u);
}

TEST(Store, SaveLoadAndStats) {
  std::string path = (std::filesystem::temp_directory_path() / ("synth_store_" + std::to_string(getpid()) + ".db")).string();
  std::filesystem::remove(path);
  auto db = Db::Open(path);
  ASSERT_TRUE(db.ok());
  EXPECT_FALSE(LoadCatalogMeta(db->get()).ok());
  Catalog cat = Synthesize(2, 700, nullptr);
  ASSERT_TRUE(SaveCatalog(db->get(), cat, {2, 700, {}}, nullptr).ok());
  auto meta = LoadCatalogMeta(db->get());
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->seed, 2u);
  auto agents = SynthesizeAgents(cat, 2, {});
  ASSERT_TRUE(SaveAgents(db->get(), agents).ok());
  std::vector<Domain> ds;
  for (auto& d : cat.domains) ds.push_back(*d);
  auto tasks = GenerateTasks(ds, 2, 50, nullptr);
  ASSERT_TRUE(SaveTasks(db->get(), tasks).ok());
  auto back = LoadTasks(db->get());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), tasks.size());
  std::map<std::string, Task> by_id;
  for (auto& t : tasks) by_id[t.id] = t;
  for (auto& t : *back) EXPECT_TRUE(t == by_id[t.id]);
  auto s = SynthStats(db->get());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["synthetic"]["tools"], cat.ToolCount());
  EXPECT_EQ((*s)["synthetic"]["distinct_tools"], cat.ToolCount());
  EXPECT_EQ((*s)["synthetic"]["domains"], cat.domains.size());
  EXPECT_EQ((*s)["synthetic"]["agents"], agents.size());
  EXPECT_EQ((*s)["synthetic"]["tasks"], tasks.size());
  EXPECT_EQ((*s)["real_tools"], 0);
  // Saving again replaces, never duplicates.
  ASSERT_TRUE(SaveCatalog(db->get(), cat, {2, 700, {}}, nullptr).ok());
  EXPECT_EQ((*SynthStats(db->get()))["synthetic"]["tools"], cat.ToolCount());
  std::filesystem::remove(path);
}

TEST(SchemaSimulator, GeneratedValuesConformToEveryOutputSchema) {
  // The synthetic tools carry rich output schemas (patterns, nested objects, enums): a hard target.
  Catalog cat = Synthesize(3, 700, nullptr, false);
  int64_t checked = 0;
  Rng r(1);
  for (auto& d : cat.domains)
    for (auto& op : d->ops) {
      auto out = Schema::Compile(op.output_schema, op.name);
      ASSERT_TRUE(out.ok());
      for (int k = 0; k < 3; ++k) {
        json v = ValueFromSchema(op.output_schema, op.output_schema, r);
        Status s = (*out)->Validate(v);
        ASSERT_TRUE(s.ok()) << d->path << "::" << op.name << ": " << s.ToString() << "\n" << v.dump();
        ++checked;
      }
    }
  EXPECT_GT(checked, 2000);
  for (const char* p : {"^GST-[0-9]+$", "^\\+[0-9]{7,15}$", "^[a-z]{2,4}(-[A-Z]{2})?$", "^(foo|bar)\\d{3}$"}) {
    auto sch = Schema::Compile({{"type", "string"}, {"pattern", p}}, p);
    ASSERT_TRUE(sch.ok());
    for (int k = 0; k < 50; ++k) EXPECT_TRUE((*sch)->Validate(StringFromPattern(p, r)).ok()) << p;
  }
}

TEST(SchemaSimulator, StatefulOverRealCorpusTools) {
  std::string corpus = std::string(K2GYM_SOURCE_DIR) + "/../shared/data/mcp_servers.jsonl";
  if (!std::filesystem::exists(corpus)) GTEST_SKIP() << "corpus not found at " << corpus;
  auto lines = ReadJsonLines(corpus);
  ASSERT_TRUE(lines.ok());
  int64_t tools = 0, calls_ok = 0;
  for (size_t li = 0; li < lines->size() && li < 300; ++li) {
    const json& server = (*lines)[li];
    std::vector<CompiledTool> compiled;
    std::set<std::string> names;
    for (auto& t : server.value("tools", json::array())) {
      auto spec = ParseToolSpec(t, "tool", "mcp:" + server.value("id", "?"));
      if (!spec.ok() || !names.insert(spec->name).second) continue;  // names are unique per environment
      auto c = CompileTool(*spec, spec->name);
      if (c.ok()) compiled.push_back(*c);
    }
    if (compiled.empty()) continue;
    std::vector<CompiledTool> copy = compiled;
    SchemaSimulator sim(std::move(copy), li);
    Rng r(li);
    for (auto& t : compiled) {
      json args = ValueFromSchema(t.spec.input_schema, t.spec.input_schema, r);
      bool valid = t.input->Validate(args).ok();
      CallResult res = sim.Call(t.spec.name, args);
      ++tools;
      if (valid) {
        EXPECT_TRUE(res.ok()) << t.spec.name << ": " << res.message;
        calls_ok += res.ok();
      } else {
        EXPECT_EQ(res.error, "invalid_arguments");
      }
      EXPECT_TRUE(res.simulated);
      EXPECT_TRUE(res.ToMcp()["_meta"]["k2gym/simulated"].get<bool>());
    }
    EXPECT_EQ(sim.nonconforming(), 0);
  }
  EXPECT_GT(tools, 1000);
  EXPECT_GT(calls_ok, tools * 9 / 10) << "argument generation should satisfy most real input schemas";
}

TEST(SchemaSimulator, RemembersWhatEarlierCallsCreated) {
  auto mk = [](const char* name, json props) {
    ToolSpec s;
    s.name = name;
    s.input_schema = {{"type", "object"}, {"properties", props}};
    s.provenance = "mcp:test";
    return *CompileTool(s, name);
  };
  SchemaSimulator sim({mk("create_note", {{"title", {{"type", "string"}}}}), mk("get_note", {{"id", {{"type", "string"}}}}),
                       mk("list_notes", json::object()), mk("delete_note", {{"id", {{"type", "string"}}}})},
                      1);
  CallResult c = sim.Call("create_note", {{"title", "groceries"}});
  ASSERT_TRUE(c.ok());
  std::string id = c.value["result"]["created"]["id"];
  CallResult g = sim.Call("get_note", {{"id", id}});
  EXPECT_EQ(g.value["result"]["found"]["title"], "groceries");
  EXPECT_EQ(sim.Call("list_notes", json::object()).value["result"]["count"], 1);
  EXPECT_TRUE(sim.Call("delete_note", {{"id", id}}).ok());
  EXPECT_EQ(sim.Call("list_notes", json::object()).value["result"]["count"], 0);
  EXPECT_EQ(sim.Call("get_note", {{"id", 3}}).error, "invalid_arguments");
  EXPECT_EQ(sim.Call("nope", json::object()).error, "not_found");
}

}  // namespace
}  // namespace k2::toolgen::synth
