// The synthetic domain model: entity types with typed fields, the record lifecycle, policies and the
// operation descriptors that tools are made of. Plain data; everything else in synth/ interprets it.
//
// Every domain has three entity roles: the actor (who calls: a guest, a trader), the item (what is
// booked or bought: a room, an instrument) and the record (the booking/order/trade linking them, with a
// status lifecycle). Tools are operations over these roles; their semantics are interpreted generically
// by executor.h from the Op descriptor, never hand-written per tool.
//
// Thread safety: immutable after construction; share freely.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"

namespace k2::toolgen::synth {

enum class FieldKind { kId, kRef, kString, kEmail, kPhone, kEnum, kMoney, kDate, kInt, kBool, kGeo, kRecord };
const char* FieldKindName(FieldKind k);

struct Field {
  std::string name;
  FieldKind kind = FieldKind::kString;
  std::string doc;
  std::vector<std::string> choices;  // kEnum
  int ref = -1;                      // kRef: entity role index
  int64_t min = 0, max = 0;          // kInt: value range; kMoney: range in cents
  std::vector<Field> sub;            // kRecord: nested fields
};

enum Role : int { kActor = 0, kItem = 1, kRecordRole = 2 };

struct Entity {
  std::string name;       // singular, snake_case: "guest"
  std::string plural;     // collection key in the database: "guests"
  std::string id_prefix;  // "GST": ids look like "GST-1004"
  std::vector<Field> fields;  // fields[0] is the id
  const Field* Find(const std::string& n) const {
    for (auto& f : fields)
      if (f.name == n) return &f;
    return nullptr;
  }
};

// Record lifecycle: states[0] --advance[0]--> states[1] --advance[1]--> states[2]; cancel from states 0/1
// to "cancelled"; refund from states[2] to "refunded". Verbs name the tools ("confirm", "ship").
struct Lifecycle {
  std::vector<std::string> states;   // 3 progress states
  std::vector<std::string> advance;  // 2 verbs
  std::string cancel_verb, refund_verb, create_verb;
  static constexpr const char* kCancelled = "cancelled";
  static constexpr const char* kRefunded = "refunded";
  bool IsActive(const std::string& s) const { return s == states[0] || s == states[1]; }
};

enum class PolicyKind {
  kRefundWindow,     // refund only within n days after the record's date
  kCancelNotice,     // cancel only when the record's date is at least n days after today
  kNoDoubleBooking,  // at most one active record per item and date
  kMaxAmount,        // a new or changed record's amount must not exceed n cents
  kMaxActive,        // an actor holds at most n active records
  kTransferLimit,    // one credit transfer moves at most n cents
  kPremiumTier,      // premium items need an actor tier at index >= n of the tier enum
};
const char* PolicyKindName(PolicyKind k);

struct Policy {
  PolicyKind kind;
  int64_t n = 0;
  std::string text;  // the rule as an agent's system prompt states it
};

enum class OpKind {
  kGet, kSearch, kList, kCreate, kUpdate, kAdvance, kCancel, kRefund, kTransfer, kAggregate, kUpdateActor
};
const char* OpKindName(OpKind k);

// One tool: what it does (kind, role, stage for kAdvance) plus its MCP face (name, schemas, text).
struct Op {
  OpKind kind;
  int role = 0;   // entity role it works on
  int stage = 0;  // kAdvance: 0 or 1
  std::string name, title, description;
  json input_schema, output_schema;
  bool read_only = false, destructive = false, idempotent = false;
};

// A sub-domain: one leaf of the hierarchy "category/application/variant".
struct Domain {
  std::string path;          // "travel/hotel/nordic-boutique"
  std::string category;      // "Travel booking"
  std::string display;       // "Nordic boutique hotels"
  uint64_t seed = 0;         // its own stream (database, descriptions)
  Entity entities[3];        // by Role
  Lifecycle life;
  std::vector<std::string> tiers;       // actor tier enum, ascending
  std::vector<std::string> item_classes;
  std::vector<Policy> policies;
  std::vector<Op> ops;
  const Policy* FindPolicy(PolicyKind k) const {
    for (auto& p : policies)
      if (p.kind == k) return &p;
    return nullptr;
  }
  const Op* FindOp(const std::string& name) const {
    for (auto& o : ops)
      if (o.name == name) return &o;
    return nullptr;
  }
  const Op* FindOp(OpKind k, int role = -1, int stage = 0) const {
    for (auto& o : ops)
      if (o.kind == k && (role < 0 || o.role == role) && o.stage == stage) return &o;
    return nullptr;
  }
  // Names of the reference fields of the record: "<actor>_id", "<item>_id".
  std::string ActorRef() const { return entities[kActor].name + "_id"; }
  std::string ItemRef() const { return entities[kItem].name + "_id"; }
  std::string RecordRef() const { return entities[kRecordRole].name + "_id"; }
};

// Days since 1970-01-01 <-> "YYYY-MM-DD" (proleptic Gregorian). ParseDate returns false on bad text.
int64_t DaysFromCivil(int y, unsigned m, unsigned d);
std::string DateString(int64_t days);
bool ParseDate(const std::string& s, int64_t* days);

// Money is kept in integer cents and stored in JSON as a number with at most 2 decimals.
inline json MoneyJson(int64_t cents) { return json(static_cast<double>(cents) / 100.0); }
int64_t MoneyCents(const json& v);

}  // namespace k2::toolgen::synth
