// Constrained decoding: the JSON Schema subset compiler, the character automaton (a fixed-size frame
// stack, copied per candidate token) and the token constraints of response_format and tool_choice.
#include "engine/gen/constraint.h"

#include <algorithm>
#include <array>
#include <functional>
#include <set>
#include <cmath>
#include <limits>

#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"

namespace k2::gen {

struct JsonNode {
  enum Kind { kAny, kAnyObject, kObject, kArray, kString, kInteger, kNumber, kLiterals };
  Kind kind = kAny;
  std::vector<std::shared_ptr<const JsonNode>> prop_nodes;  // kObject, in declared order
  std::vector<std::vector<std::string>> prop_prefix;        // {`"key":`} (a leading comma after the first)
  std::shared_ptr<const JsonNode> items;                    // kArray (null: any value)
  int64_t min_items = 0, max_items = 4;
  int64_t min_len = 0, max_len = 24;
  std::vector<std::string> literals;  // kLiterals: the compact JSON texts allowed (true/false, null, enum)
};

namespace {

constexpr int kMaxDepth = 8;          // schema nesting
constexpr int kMaxFrames = 40;        // automaton stack
constexpr int kAnyDepth = 3;          // nesting of free-form values
constexpr int64_t kAnyMembers = 6;    // members/items of free-form objects/arrays
constexpr int64_t kDefaultMaxLen = 24;
constexpr int64_t kMaxIntDigits = 9, kMaxFracDigits = 6;

const std::vector<std::string>& AnyLiterals() {
  static const std::vector<std::string> k = {"true", "false", "null"};
  return k;
}

Expected<std::shared_ptr<const JsonNode>> Compile(const json& s, const std::string& where, int depth) {
  if (depth > kMaxDepth) return InvalidArgument(where + ": nested deeper than " + std::to_string(kMaxDepth));
  auto n = std::make_shared<JsonNode>();
  if (s.is_boolean() && s.get<bool>()) return std::shared_ptr<const JsonNode>(n);  // true: anything
  if (!s.is_object()) return InvalidArgument(where + ": expected a schema object");
  static const std::set<std::string> kIgnored = {"title", "description", "default", "examples", "$schema", "$id",
                                                 "$comment", "required", "additionalProperties", "strict"};
  for (auto& [k, v] : s.items()) {
    if (kIgnored.count(k) || k == "type" || k == "properties" || k == "items" || k == "minItems" || k == "maxItems" ||
        k == "minLength" || k == "maxLength" || k == "enum" || k == "const")
      continue;
    return InvalidArgument(where + "." + k + ": keyword not supported by constrained decoding (supported: type, "
                           "properties, required, additionalProperties, items, minItems, maxItems, minLength, "
                           "maxLength, enum, const)");
  }
  if (s.contains("additionalProperties") && !s["additionalProperties"].is_boolean() && !s["additionalProperties"].is_object())
    return InvalidArgument(where + ".additionalProperties: expected a boolean or a schema");
  auto literals = [&](const json& values, const std::string& key) -> Status {
    if (!values.is_array() || values.empty() || values.size() > 64)
      return InvalidArgument(where + "." + key + ": expected 1..64 values");
    for (auto& v : values) n->literals.push_back(v.dump(-1, ' ', false, json::error_handler_t::replace));
    n->kind = JsonNode::kLiterals;
    return Status::Ok();
  };
  if (s.contains("const")) {
    K2_RETURN_IF_ERROR(literals(json::array({s["const"]}), "const"));
    return std::shared_ptr<const JsonNode>(n);
  }
  if (s.contains("enum")) {
    K2_RETURN_IF_ERROR(literals(s["enum"], "enum"));
    return std::shared_ptr<const JsonNode>(n);
  }
  if (!s.contains("type")) {
    if (s.contains("properties")) {
      n->kind = JsonNode::kObject;
    } else {
      return std::shared_ptr<const JsonNode>(n);  // any value
    }
  } else {
    if (!s["type"].is_string()) return InvalidArgument(where + ".type: expected one type name (a list is not supported)");
    const std::string t = s["type"];
    if (t == "object") n->kind = s.contains("properties") ? JsonNode::kObject : JsonNode::kAnyObject;
    else if (t == "array") n->kind = JsonNode::kArray;
    else if (t == "string") n->kind = JsonNode::kString;
    else if (t == "integer") n->kind = JsonNode::kInteger;
    else if (t == "number") n->kind = JsonNode::kNumber;
    else if (t == "boolean") n->kind = JsonNode::kLiterals, n->literals = {"true", "false"};
    else if (t == "null") n->kind = JsonNode::kLiterals, n->literals = {"null"};
    else return InvalidArgument(where + ".type: unknown type \"" + t + "\"");
  }
  auto count = [&](const char* k, int64_t* out) -> Status {
    if (!s.contains(k)) return Status::Ok();
    if (!s[k].is_number_unsigned() || s[k].get<uint64_t>() > 1000)
      return InvalidArgument(where + "." + k + ": expected an integer in [0, 1000]");
    *out = s[k].get<int64_t>();
    return Status::Ok();
  };
  if (n->kind == JsonNode::kObject) {
    if (!s["properties"].is_object()) return InvalidArgument(where + ".properties: expected an object");
    bool first = true;
    for (auto& [k, v] : s["properties"].items()) {
      K2_ASSIGN_OR_RETURN(auto child, Compile(v, where + ".properties." + k, depth + 1));
      n->prop_nodes.push_back(child);
      n->prop_prefix.push_back({std::string(first ? "" : ",") + json(k).dump(-1, ' ', false, json::error_handler_t::replace) + ":"});
      first = false;
    }
    if (s.contains("required")) {
      if (!s["required"].is_array()) return InvalidArgument(where + ".required: expected an array");
      for (auto& r : s["required"])
        if (!r.is_string() || !s["properties"].contains(r.get<std::string>()))
          return InvalidArgument(where + ".required: " + r.dump() + " is not a declared property");
    }
  }
  if (n->kind == JsonNode::kArray) {
    if (s.contains("items")) {
      K2_ASSIGN_OR_RETURN(n->items, Compile(s["items"], where + ".items", depth + 1));
    }
    K2_RETURN_IF_ERROR(count("minItems", &n->min_items));
    n->max_items = std::max<int64_t>(n->min_items, 4);
    K2_RETURN_IF_ERROR(count("maxItems", &n->max_items));
    if (n->max_items < n->min_items) return InvalidArgument(where + ": maxItems < minItems");
    n->max_items = std::min(n->max_items, std::max<int64_t>(n->min_items, 8));
  }
  if (n->kind == JsonNode::kString) {
    K2_RETURN_IF_ERROR(count("minLength", &n->min_len));
    n->max_len = std::max(n->min_len, kDefaultMaxLen);
    K2_RETURN_IF_ERROR(count("maxLength", &n->max_len));
    if (n->max_len < n->min_len) return InvalidArgument(where + ": maxLength < minLength");
    n->max_len = std::min(n->max_len, std::max(n->min_len, kDefaultMaxLen));
  }
  return std::shared_ptr<const JsonNode>(n);
}

// ---- the automaton --------------------------------------------------------------------------------

// Trivially constructible (the automaton's stack is copied per candidate token; only live frames are).
struct Frame {
  enum T : uint8_t { kValue, kLit, kStr, kNum, kObj, kArr, kAnyObj, kAnyArr };
  T t;
  uint8_t depth;  // free-form nesting
  bool integer;
  int32_t a, b;
  int64_t lo, hi;  // string length / array item bounds
  uint64_t alive;  // kLit candidates
  const JsonNode* node;
  const std::vector<std::string>* lits;
};

class Machine {
 public:
  Machine() = default;
  Machine(const Machine& o) { *this = o; }
  Machine& operator=(const Machine& o) {
    n_ = o.n_;
    overflow_ = o.overflow_;
    last_choice_ = o.last_choice_;
    std::copy(o.st_.begin(), o.st_.begin() + n_, st_.begin());
    return *this;
  }
  void PushValue(const JsonNode* n, int depth = 0) {
    Frame f{};
    f.t = Frame::kValue;
    f.node = n;
    f.depth = static_cast<uint8_t>(depth);
    Push(f);
  }
  void PushLit(const std::vector<std::string>* lits) {
    Frame f{};
    f.t = Frame::kLit;
    f.lits = lits;
    f.alive = lits->size() >= 64 ? ~uint64_t{0} : (uint64_t{1} << lits->size()) - 1;
    Push(f);
  }
  bool Done() const { return n_ == 0 && !overflow_; }
  // Whether the input may end here (a trailing number or a literal that is complete).
  bool CanEnd() const {
    Machine m = *this;
    while (m.n_ > 0 && m.TerminalPop()) {
    }
    return m.Done();
  }
  int last_choice() const { return last_choice_; }

  bool Feed(unsigned char c) {
    for (;;) {
      if (n_ == 0 || overflow_) return false;
      Frame& f = st_[n_ - 1];
      switch (f.t) {
        case Frame::kValue: {
          const JsonNode* n = f.node;
          const int depth = f.depth;
          --n_;
          if (n == nullptr || n->kind == JsonNode::kAny) {
            if (c == '{' && depth < kAnyDepth) return Open(Frame::kAnyObj, depth + 1, nullptr);
            if (c == '[' && depth < kAnyDepth) return Open(Frame::kAnyArr, depth + 1, nullptr);
            if (c == '"') return OpenStr(0, kDefaultMaxLen);
            if (c == '-' || (c >= '0' && c <= '9')) {
              OpenNum(false);
              continue;
            }
            PushLit(&AnyLiterals());
            continue;
          }
          switch (n->kind) {
            case JsonNode::kAnyObject:
              return c == '{' && Open(Frame::kAnyObj, depth + 1, nullptr);
            case JsonNode::kObject:
              return c == '{' && Open(Frame::kObj, depth, n);
            case JsonNode::kArray:
              if (c != '[') return false;
              Open(Frame::kArr, depth, n);
              st_[n_ - 1].lo = n->min_items, st_[n_ - 1].hi = n->max_items;
              return true;
            case JsonNode::kString:
              return c == '"' && OpenStr(n->min_len, n->max_len);
            case JsonNode::kInteger:
            case JsonNode::kNumber:
              OpenNum(n->kind == JsonNode::kInteger);
              continue;
            case JsonNode::kLiterals:
              PushLit(&n->literals);
              continue;
            default:
              return false;
          }
        }
        case Frame::kLit: {
          uint64_t next = 0;
          bool complete = false;
          for (size_t i = 0; i < f.lits->size() && i < 64; ++i) {
            if (!(f.alive >> i & 1)) continue;
            const std::string& s = (*f.lits)[i];
            if (static_cast<size_t>(f.b) < s.size() && static_cast<unsigned char>(s[f.b]) == c) next |= uint64_t{1} << i;
            if (static_cast<size_t>(f.b) == s.size()) complete = true;
          }
          if (next == 0) {
            if (!complete) return false;
            TerminalPop();  // the literal ended before c: c belongs to the parent
            continue;
          }
          f.alive = next;
          ++f.b;
          bool all_complete = true;
          for (size_t i = 0; i < f.lits->size() && i < 64; ++i)
            if ((next >> i & 1) && (*f.lits)[i].size() != static_cast<size_t>(f.b)) all_complete = false;
          if (all_complete) TerminalPop();
          return true;
        }
        case Frame::kStr: {
          if (c == '"') {
            if (f.b < f.lo) return false;
            --n_;
            return true;
          }
          if (c < 0x20 || c > 0x7E || c == '\\' || f.b >= f.hi) return false;
          ++f.b;
          return true;
        }
        case Frame::kNum: {
          // a: 0 start, 1 after '-', 2 int digits, 5 int is "0", 3 after '.', 4 frac digits
          const bool digit = c >= '0' && c <= '9';
          if (f.a == 0 && c == '-') return f.a = 1, true;
          if ((f.a == 0 || f.a == 1) && digit) return f.a = c == '0' ? 5 : 2, f.b = 1, true;
          if (f.a == 2 && digit && f.b < kMaxIntDigits) return ++f.b, true;
          if ((f.a == 2 || f.a == 5) && c == '.' && !f.integer) return f.a = 3, f.b = 0, true;
          if ((f.a == 3 || f.a == 4) && digit && f.b < kMaxFracDigits) return f.a = 4, ++f.b, true;
          if (f.a == 2 || f.a == 5 || f.a == 4) {
            --n_;  // the number ended before c
            continue;
          }
          return false;
        }
        case Frame::kObj: {
          const JsonNode* n = f.node;
          if (static_cast<size_t>(f.a) < n->prop_nodes.size()) {
            const size_t i = static_cast<size_t>(f.a++);
            const int depth = f.depth;
            PushValue(n->prop_nodes[i].get(), depth);
            PushLit(&n->prop_prefix[i]);
            continue;
          }
          if (c != '}') return false;
          --n_;
          return true;
        }
        case Frame::kArr:
        case Frame::kAnyArr: {
          const JsonNode* items = f.t == Frame::kArr ? f.node->items.get() : nullptr;
          const int depth = f.depth;
          if (f.b == 0) {  // just opened
            if (c == ']' && f.lo == 0) return --n_, true;
            if (f.hi == 0) return false;
            f.b = 1, f.a = 1;
            PushValue(items, depth);
            continue;
          }
          if (c == ',' && f.a < f.hi) {
            ++f.a;
            PushValue(items, depth);
            return true;
          }
          if (c == ']' && f.a >= f.lo) return --n_, true;
          return false;
        }
        case Frame::kAnyObj: {
          const int depth = f.depth;
          // b: 0 after '{', 1 after a member
          if (f.b == 0 && c == '}') return --n_, true;
          if (f.b == 1 && c == '}') return --n_, true;
          if ((f.b == 0 && c == '"') || (f.b == 1 && c == ',' && f.a < kAnyMembers)) {
            ++f.a;
            f.b = 1;
            PushValue(nullptr, depth);
            PushLit(&Colon());
            if (c == '"') return OpenStr(0, kDefaultMaxLen);
            Frame k{};
            k.t = Frame::kValue;
            k.node = &StringNode();
            Push(k);
            return true;
          }
          return false;
        }
      }
    }
  }

 private:
  static const std::vector<std::string>& Colon() {
    static const std::vector<std::string> k = {":"};
    return k;
  }
  static const JsonNode& StringNode() {
    static const JsonNode n = [] {
      JsonNode s;
      s.kind = JsonNode::kString;
      s.max_len = kDefaultMaxLen;
      return s;
    }();
    return n;
  }
  void Push(const Frame& f) {
    if (n_ >= kMaxFrames) {
      overflow_ = true;
      return;
    }
    st_[n_++] = f;
  }
  bool Open(Frame::T t, int depth, const JsonNode* n) {
    Frame f{};
    f.t = t;
    f.node = n;
    f.depth = static_cast<uint8_t>(depth);
    if (t == Frame::kAnyArr) f.lo = 0, f.hi = kAnyMembers;
    Push(f);
    return !overflow_;
  }
  bool OpenStr(int64_t lo, int64_t hi) {
    Frame f{};
    f.t = Frame::kStr;
    f.lo = lo, f.hi = hi;
    Push(f);
    return !overflow_;
  }
  void OpenNum(bool integer) {
    Frame f{};
    f.t = Frame::kNum;
    f.integer = integer;
    Push(f);
  }
  // Pops a top frame that may end here (a complete number or literal); false when it may not.
  bool TerminalPop() {
    Frame& f = st_[n_ - 1];
    if (f.t == Frame::kNum && (f.a == 2 || f.a == 4 || f.a == 5)) return --n_, true;
    if (f.t == Frame::kLit) {
      for (size_t i = 0; i < f.lits->size() && i < 64; ++i)
        if ((f.alive >> i & 1) && (*f.lits)[i].size() == static_cast<size_t>(f.b)) {
          last_choice_ = static_cast<int>(i);
          --n_;
          return true;
        }
    }
    return false;
  }

  std::array<Frame, kMaxFrames> st_;
  int n_ = 0;
  bool overflow_ = false;
  int last_choice_ = -1;
};

// A sequence of segments: special tokens, a choice among literal texts (a tool name), a JSON value.
struct Segment {
  enum Kind { kSpecial, kChoice, kJson };
  Kind kind = kSpecial;
  int32_t id = -1;                                 // kSpecial
  std::vector<std::string> choices;                // kChoice
  std::vector<std::shared_ptr<const JsonNode>> then;  // kChoice: the JSON node each choice selects
  std::shared_ptr<const JsonNode> node;            // kJson (null: chosen by the previous kChoice)
};

struct Plan {
  std::vector<Segment> segs;
  const text::Tokenizer* tok = nullptr;
};

class SeqConstraint final : public TokenConstraint {
 public:
  explicit SeqConstraint(std::shared_ptr<const Plan> p) : p_(std::move(p)) { Enter(); }

  void Mask(float* logits, int64_t V) override {
    const float ninf = -std::numeric_limits<float>::infinity();
    for (int64_t id = 0; id < V; ++id)
      if (logits[id] > ninf && !Allowed(static_cast<int32_t>(id))) logits[id] = ninf;
  }

  void Advance(int32_t token) override {
    if (seg_ >= p_->segs.size()) return;
    const Segment& s = p_->segs[seg_];
    if (s.kind == Segment::kSpecial) {
      ++seg_;
      Enter();
      return;
    }
    if (IsSpecial(token)) {  // the value ended (CanEnd) and this is the next segment's special token
      Finish();
      if (seg_ < p_->segs.size()) ++seg_;
      Enter();
      return;
    }
    for (unsigned char c : p_->tok->TokenBytes(token)) m_.Feed(c);
    if (m_.Done()) Finish();
  }

 private:
  bool IsSpecial(int32_t id) const { return id >= p_->tok->num_ranks(); }

  bool Allowed(int32_t id) const {
    if (seg_ >= p_->segs.size()) return false;
    const Segment& s = p_->segs[seg_];
    if (s.kind == Segment::kSpecial) return id == s.id;
    if (IsSpecial(id)) {
      return seg_ + 1 < p_->segs.size() && p_->segs[seg_ + 1].kind == Segment::kSpecial &&
             p_->segs[seg_ + 1].id == id && m_.CanEnd();
    }
    const std::string& bytes = p_->tok->TokenBytes(id);
    if (bytes.empty()) return false;
    Machine m = m_;
    for (unsigned char c : bytes)
      if (!m.Feed(c)) return false;
    return true;
  }

  void Enter() {
    if (seg_ >= p_->segs.size()) return;
    const Segment& s = p_->segs[seg_];
    m_ = Machine();
    if (s.kind == Segment::kChoice) m_.PushLit(&s.choices);
    if (s.kind == Segment::kJson) m_.PushValue(s.node ? s.node.get() : chosen_.get());
  }

  // The current text segment is complete: remember a choice, move on.
  void Finish() {
    const Segment& s = p_->segs[seg_];
    if (s.kind == Segment::kChoice) {
      const int k = m_.last_choice();
      chosen_ = k >= 0 && static_cast<size_t>(k) < s.then.size() ? s.then[static_cast<size_t>(k)] : nullptr;
    }
    ++seg_;
    Enter();
  }

  std::shared_ptr<const Plan> p_;
  size_t seg_ = 0;
  Machine m_;
  std::shared_ptr<const JsonNode> chosen_;
};

}  // namespace

Expected<std::shared_ptr<const JsonNode>> CompileJsonSchema(const json& schema, const std::string& where) {
  if (schema.is_null()) {
    auto n = std::make_shared<JsonNode>();
    n->kind = JsonNode::kAnyObject;
    return std::shared_ptr<const JsonNode>(n);
  }
  return Compile(schema, where, 0);
}

std::function<std::unique_ptr<TokenConstraint>()> JsonConstraint(std::shared_ptr<const JsonNode> node,
                                                                const text::Tokenizer* tok) {
  auto p = std::make_shared<Plan>();
  p->tok = tok;
  Segment j;
  j.kind = Segment::kJson;
  j.node = std::move(node);
  p->segs.push_back(j);
  Segment end;
  end.id = tok->SpecialId(text::kImEnd);
  p->segs.push_back(end);
  std::shared_ptr<const Plan> cp = p;
  return [cp] { return std::unique_ptr<TokenConstraint>(std::make_unique<SeqConstraint>(cp)); };
}

std::function<std::unique_ptr<TokenConstraint>()> ToolCallConstraint(
    std::vector<std::pair<std::string, std::shared_ptr<const JsonNode>>> tools, int call_index,
    const text::Tokenizer* tok) {
  auto p = std::make_shared<Plan>();
  p->tok = tok;
  auto special = [&](const char* name) {
    Segment s;
    s.id = tok->SpecialId(name);
    p->segs.push_back(s);
  };
  special(text::kSectionBegin);
  special(text::kCallBegin);
  Segment choice;
  choice.kind = Segment::kChoice;
  for (auto& [name, node] : tools) {
    choice.choices.push_back("functions." + name + ":" + std::to_string(call_index));
    choice.then.push_back(node);
  }
  p->segs.push_back(choice);
  special(text::kArgBegin);
  Segment args;
  args.kind = Segment::kJson;
  p->segs.push_back(args);
  special(text::kCallEnd);
  special(text::kSectionEnd);
  special(text::kImEnd);
  std::shared_ptr<const Plan> cp = p;
  return [cp] { return std::unique_ptr<TokenConstraint>(std::make_unique<SeqConstraint>(cp)); };
}

bool JsonAutomatonAccepts(const std::shared_ptr<const JsonNode>& node, const std::string& text) {
  Machine m;
  m.PushValue(node.get());
  for (unsigned char c : text)
    if (!m.Feed(c)) return false;
  return m.CanEnd();
}

}  // namespace k2::gen
