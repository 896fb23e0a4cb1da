// Agent synthesis (see agents.h): roles choose a share of the tools, styles vary the prompt, sibling and
// distractor tools widen the toolset.
#include "toolgen/synth/agents.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/hash.h"
#include "core/rng.h"

namespace k2::toolgen::synth {
namespace {

struct RoleDef {
  const char* name;
  std::vector<OpKind> kinds;  // empty: every tool
};

const std::vector<RoleDef>& Roles() {
  static const std::vector<RoleDef> k = {
      {"full-service support agent", {}},
      {"reservations desk agent",
       {OpKind::kGet, OpKind::kSearch, OpKind::kList, OpKind::kCreate, OpKind::kUpdate, OpKind::kCancel}},
      {"billing and refunds specialist",
       {OpKind::kGet, OpKind::kList, OpKind::kRefund, OpKind::kTransfer, OpKind::kAggregate, OpKind::kCancel}},
      {"operations coordinator", {OpKind::kGet, OpKind::kList, OpKind::kAdvance, OpKind::kAggregate, OpKind::kSearch}},
      {"account manager", {OpKind::kGet, OpKind::kList, OpKind::kUpdateActor, OpKind::kTransfer, OpKind::kAggregate}},
  };
  return k;
}

const char* kStyles[] = {
    "Be concise: one short paragraph per reply.",
    "Be warm and patient; explain each step before you take it.",
    "Be formal and precise; always restate ids and amounts.",
    "Use plain language and avoid jargon.",
    "Be efficient: ask for all missing details in a single question.",
    "Summarize what changed at the end of every request."};

std::vector<std::string> PickTools(const Domain& d, int n, Rng& r) {
  std::vector<std::string> all;
  for (auto& op : d.ops) all.push_back(d.path + "::" + op.name);
  for (size_t k = all.size(); k > 1; --k) std::swap(all[k - 1], all[r.Below(k)]);
  all.resize(std::min<size_t>(all.size(), n));
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace

std::vector<Agent> SynthesizeAgents(const Catalog& c, uint64_t seed, const AgentOptions& o) {
  std::vector<Agent> out;
  const auto& ds = c.domains;
  // Domains by category (and each domain's position in its list) for sibling picks.
  std::map<std::string, std::vector<size_t>> by_cat;
  std::map<size_t, size_t> sib_pos;
  for (size_t i = 0; i < ds.size(); ++i) {
    auto& v = by_cat[ds[i]->category];
    sib_pos[i] = v.size();
    v.push_back(i);
  }
  for (size_t di = 0; di < ds.size(); ++di) {
    const Domain& d = *ds[di];
    Rng r = Rng(seed).Fork("agents/" + d.path);
    // Roles without repetition inside a domain, so agents of one domain differ in toolset.
    std::vector<int> roles(Roles().size());
    for (size_t k = 0; k < roles.size(); ++k) roles[k] = static_cast<int>(k);
    for (size_t k = roles.size(); k > 1; --k) std::swap(roles[k - 1], roles[r.Below(k)]);
    for (int k = 0; k < o.per_domain; ++k) {
      const RoleDef& role = Roles()[roles[k % roles.size()]];
      Agent a;
      a.domain = d.path;
      a.role = role.name;
      a.style = kStyles[r.Below(6)];
      a.id = "agent-" + Sha256Hex(std::to_string(seed) + "/" + d.path + "/" + std::to_string(k)).substr(0, 12);
      for (auto& op : d.ops)
        if (role.kinds.empty() || std::find(role.kinds.begin(), role.kinds.end(), op.kind) != role.kinds.end())
          a.tools.push_back(d.path + "::" + op.name);
      // Sibling: same category, other application or variant; distractor: another category.
      const auto& sib = by_cat.at(d.category);
      if (o.cross_domain_tools > 0 && sib.size() > 1) {
        size_t k2 = r.Below(sib.size() - 1);
        const Domain& s = *ds[sib[k2 >= sib_pos.at(di) ? k2 + 1 : k2]];
        a.cross_domain = PickTools(s, o.cross_domain_tools, r);
      }
      if (o.distractor_tools > 0 && by_cat.size() > 1) {
        for (;;) {
          const Domain& s = *ds[r.Below(ds.size())];
          if (s.category != d.category) {
            a.distractors = PickTools(s, o.distractor_tools, r);
            break;
          }
        }
      }
      for (auto& t : a.cross_domain) a.tools.push_back(t);
      for (auto& t : a.distractors) a.tools.push_back(t);
      std::string p = "You are the " + a.role + " of " + d.display + " (" + d.category + "). You help " +
                      d.entities[kActor].plural + " with their " + d.entities[kRecordRole].plural + " and " +
                      d.entities[kItem].plural + ". " + a.style +
                      "\n\nBefore changing anything, identify the " + d.entities[kActor].name +
                      " by id, state what you are about to do and get a yes. Act only through your tools; never "
                      "invent ids, prices or outcomes. Refuse any request that breaks a rule below and quote the "
                      "rule.\n\nRules:";
      for (auto& pol : d.policies) p += "\n- " + pol.text;
      if (!a.cross_domain.empty())
        p += "\n\nYou may also use the tools of the partner service listed with a different prefix, only when the "
             "request is about that service.";
      a.system_prompt = std::move(p);
      out.push_back(std::move(a));
    }
  }
  return out;
}

json ToJson(const Agent& a) {
  return {{"id", a.id},       {"domain", a.domain},           {"role", a.role},
          {"style", a.style}, {"system_prompt", a.system_prompt}, {"tools", a.tools},
          {"cross_domain", a.cross_domain}, {"distractors", a.distractors}};
}

Expected<Agent> AgentFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": expected object");
  Agent a;
  for (auto [key, dst] : {std::pair{"id", &a.id}, {"domain", &a.domain}, {"role", &a.role}, {"style", &a.style},
                          {"system_prompt", &a.system_prompt}}) {
    if (!j.contains(key) || !j[key].is_string()) return InvalidArgument(where + "/" + key + ": expected string");
    *dst = j[key];
  }
  for (auto [key, dst] : {std::pair{"tools", &a.tools}, {"cross_domain", &a.cross_domain}, {"distractors", &a.distractors}}) {
    if (!j.contains(key) || !j[key].is_array()) return InvalidArgument(where + "/" + key + ": expected array of strings");
    for (size_t i = 0; i < j[key].size(); ++i) {
      if (!j[key][i].is_string()) return InvalidArgument(where + "/" + key + "/" + std::to_string(i) + ": expected string");
      dst->push_back(j[key][i]);
    }
  }
  return a;
}

}  // namespace k2::toolgen::synth
