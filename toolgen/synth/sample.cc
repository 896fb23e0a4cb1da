// Argument sampling for synthetic tools (see sample.h).
#include "toolgen/synth/sample.h"

#include "toolgen/synth/database.h"

namespace k2::toolgen::synth {
namespace {

std::string AnyId(const Domain& d, int role, const json& db, Rng& r) {
  const Entity& e = d.entities[role];
  const json& coll = db[e.plural];
  // One in eight is an id that does not exist (well formed, so the schema accepts it).
  if (coll.empty() || r.Bernoulli(0.125)) return e.id_prefix + "-" + std::to_string(9000 + r.Below(999));
  auto it = coll.begin();
  std::advance(it, r.Below(coll.size()));
  return it.key();
}

json AnyValue(const Domain& d, const Field& f, const json& db, Rng& r, int64_t today) {
  switch (f.kind) {
    case FieldKind::kString: return "note " + std::to_string(r.Below(1000));
    case FieldKind::kEmail: return "someone" + std::to_string(r.Below(1000)) + "@example.net";
    case FieldKind::kPhone: return "+4420" + std::to_string(1000000 + r.Below(8999999));
    case FieldKind::kEnum: return f.choices[r.Below(f.choices.size())];
    case FieldKind::kMoney: return MoneyJson(static_cast<int64_t>(r.Below(100000)));
    case FieldKind::kDate: return DateString(today - 30 + static_cast<int64_t>(r.Below(90)));
    case FieldKind::kInt: return f.min + static_cast<int64_t>(r.Below(static_cast<uint64_t>(f.max - f.min + 1)));
    case FieldKind::kBool: return r.Bernoulli(0.5);
    case FieldKind::kGeo: return json{{"lat", r.Uniform(-60, 60)}, {"lon", r.Uniform(-170, 170)}};
    case FieldKind::kRecord: {
      json o = json::object();
      for (auto& s : f.sub) o[s.name] = AnyValue(d, s, db, r, today);
      return o;
    }
    case FieldKind::kId:
    case FieldKind::kRef: return AnyId(d, f.ref, db, r);
  }
  return nullptr;
}

}  // namespace

json SampleArguments(const Domain& d, const Op& op, const json& db, Rng& r) {
  int64_t today = 0;
  ParseDate(db["today"].get<std::string>(), &today);
  json args = json::object();
  const json& props = op.input_schema["properties"];
  const std::string aid = d.ActorRef(), iid = d.ItemRef(), rid = d.RecordRef();
  auto optional = [&](double p) { return r.Bernoulli(p); };
  switch (op.kind) {
    case OpKind::kGet: args[d.entities[op.role].fields[0].name] = AnyId(d, op.role, db, r); break;
    case OpKind::kSearch:
      if (optional(0.5)) args["class"] = d.item_classes[r.Below(d.item_classes.size())];
      if (optional(0.4)) args["max_price"] = MoneyJson(static_cast<int64_t>(1000 + r.Below(30000)));
      if (optional(0.3)) args["min_capacity"] = 1 + static_cast<int64_t>(r.Below(3));
      if (optional(0.2)) args["limit"] = 1 + static_cast<int64_t>(r.Below(5));
      if (optional(0.2)) args["include_inactive"] = r.Bernoulli(0.5);
      break;
    case OpKind::kList:
      args[aid] = AnyId(d, kActor, db, r);
      if (optional(0.3)) args["status"] = d.entities[kRecordRole].Find("status")->choices[r.Below(5)];
      break;
    case OpKind::kCreate:
      args[aid] = AnyId(d, kActor, db, r);
      args[iid] = AnyId(d, kItem, db, r);
      args["date"] = DateString(today - 3 + static_cast<int64_t>(r.Below(40)));
      args["quantity"] = 1 + static_cast<int64_t>(r.Below(3));
      break;
    case OpKind::kUpdate:
      args[rid] = AnyId(d, kRecordRole, db, r);
      if (optional(0.6)) args["date"] = DateString(today - 2 + static_cast<int64_t>(r.Below(40)));
      if (args.size() == 1 || optional(0.3)) args["quantity"] = 1 + static_cast<int64_t>(r.Below(3));
      break;
    case OpKind::kAdvance:
    case OpKind::kRefund: args[rid] = AnyId(d, kRecordRole, db, r); break;
    case OpKind::kCancel:
      args[rid] = AnyId(d, kRecordRole, db, r);
      args["reason"] = props["reason"]["enum"][r.Below(4)];
      break;
    case OpKind::kTransfer: {
      const std::string& idf = d.entities[kActor].fields[0].name;
      args["from_" + idf] = AnyId(d, kActor, db, r);
      args["to_" + idf] = AnyId(d, kActor, db, r);
      args["amount"] = MoneyJson(static_cast<int64_t>(1 + r.Below(r.Bernoulli(0.3) ? 400000 : 20000)));
      break;
    }
    case OpKind::kAggregate: {
      static const char* kGroups[3] = {"status", nullptr, nullptr};
      int g = static_cast<int>(r.Below(3));
      args["group_by"] = g == 0 ? std::string(kGroups[0]) : g == 1 ? aid : iid;
      if (optional(0.3)) args[aid] = AnyId(d, kActor, db, r);
      if (optional(0.2)) args[iid] = AnyId(d, kItem, db, r);
      break;
    }
    case OpKind::kUpdateActor: {
      args[aid] = AnyId(d, kActor, db, r);
      std::vector<const Field*> writable;
      for (auto& f : d.entities[kActor].fields)
        if (props.contains(f.name) && f.name != aid) writable.push_back(&f);
      int n = 1 + static_cast<int>(r.Below(2));
      for (int k = 0; k < n && !writable.empty(); ++k) {
        const Field* f = writable[r.Below(writable.size())];
        args[f->name] = AnyValue(d, *f, db, r, today);
      }
      break;
    }
  }
  // Optional record fields for create/update, now and then.
  if ((op.kind == OpKind::kCreate || op.kind == OpKind::kUpdate) && optional(0.3)) {
    for (auto& f : d.entities[kRecordRole].fields)
      if (props.contains(f.name) && !args.contains(f.name) && f.kind != FieldKind::kRef && f.kind != FieldKind::kId &&
          optional(0.3))
        args[f.name] = AnyValue(d, f, db, r, today);
  }
  return args;
}

}  // namespace k2::toolgen::synth
