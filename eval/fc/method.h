// Internal to eval/: the shape of one method of an in-tree multi-turn class (FcBackend), so that each
// class lives in its own file under eval/fc/ and registers a table of methods.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace k2::eval::fc {

struct Param {
  const char* name;
  const char* type;  // BFCL doc type: "string", "integer", "float", "boolean", "array", "dict"
  const char* doc;
  bool required;
};

class Err {
 public:
  explicit Err(std::string m) : m_(std::move(m)) {}
  const std::string& message() const { return m_; }

 private:
  std::string m_;
};

// A method returns its result, or an error (state untouched: methods check before mutating).
using Result = std::variant<json, Err>;

struct Method {
  const char* cls;
  const char* name;
  const char* doc;
  std::vector<Param> params;
  std::function<Result(json& state, std::vector<std::string>& cwd, const json& args)> fn;
};

// BFCL MathAPI (stateless).
std::vector<Method> MathApiMethods();

}  // namespace k2::eval::fc

namespace k2::eval::fc {

// GorillaFileSystem: the directory node at `cwd` below the single root directory of `state`.
json* FsDir(json& state, const std::vector<std::string>& cwd);
// A directory's entry names in Python dict order (insertion order, which ls and find show): its private
// "_order" list when it names exactly the entries (the suite loader records file order there), else the
// names sorted. FsAdd appends a name (replacing an entry of that name), FsRemove drops one.
std::vector<std::string> FsNames(const json& dir);
void FsAdd(json& dir, const std::string& name, json node);
void FsRemove(json& dir, const std::string& name);
// GorillaFileSystem methods beyond the basic ones of fc_backend.cc (find, wc, sort, grep, du, tail,
// diff, rmdir, cp), with BFCL's results and error texts.
std::vector<Method> FileSystemMoreMethods();

}  // namespace k2::eval::fc

namespace k2::eval::fc {

// Python's random.Random(seed): MT19937 seeded as CPython seeds it from an int, with randint. BFCL's
// classes draw ids from it, so ids match theirs.
class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);
  uint32_t Next32();
  int64_t RandInt(int64_t a, int64_t b);  // inclusive; b - a < 2^62
  uint64_t GetRandBits(int k);            // 1 <= k <= 64, words least significant first
  double Random();                        // random.random(): 53 bits from two words
  double Uniform(double a, double b) { return a + (b - a) * Random(); }
  uint64_t used() const { return used_; }  // 32-bit words drawn so far

 private:
  uint32_t mt_[624];
  int index_ = 624;
  uint64_t used_ = 0;
};

// A class's Python random.Random kept in its plain-JSON state as private keys (not compared, as BFCL
// skips attributes starting with "_"): "_random_seed" and "_random_used" (words drawn). Rng() replays
// the generator to where it was; SaveRng() records how far it went.
PyRandom Rng(const json& cls_state);
void SaveRng(json& cls_state, const PyRandom& rng);

// Python's truth value of a JSON-loaded value (None, False, 0, "", [] and {} are false).
inline bool Truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<int64_t>() != 0;
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.empty();
}

// Python's a + b / a - b on numbers: an int when both are ints, else a float (JSON keeps the difference:
// 10 and 10.0 compare equal, as in Python, but print as the class would print them).
inline json PyAdd(const json& a, const json& b, bool subtract = false) {
  if (a.is_number_integer() && b.is_number_integer())
    return subtract ? a.get<int64_t>() - b.get<int64_t>() : a.get<int64_t>() + b.get<int64_t>();
  return subtract ? a.get<double>() - b.get<double>() : a.get<double>() + b.get<double>();
}

// Python's repr of a string ('...') and of a list of keys ([12345, 'abc']: `int_keys` prints keys made
// of digits as ints, as classes that convert digit keys to int print them).
std::string PyRepr(const std::string& s);
// Python's str() of a JSON-loaded value in an f-string: text as is, True/False/None, numbers.
inline std::string PyStr(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  return v.dump();
}
std::string PyKeyList(const json& object, bool int_keys);
// Python's json.dumps(v) with its defaults: ", " and ": " separators, text outside printable ASCII as
// \uXXXX escapes (ensure_ascii), floats as Python writes them (NaN, Infinity). Object keys come in the
// JSON object's (sorted) order, where a Python dict keeps insertion order.
std::string PyJsonDumps(const json& v);
// Python's str() of a JSON-loaded value: text as is; True / False / None; numbers, lists and dicts as
// their repr ('...' strings).
std::string PyStrValue(const json& v);

// Python's d[k] on scenario data, which BFCL does not validate: a missing key is a KeyError, thrown here
// and turned by FcBackend::Call into an error result (the call's earlier changes stay, as in Python).
struct PyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
inline json& At(json& o, const std::string& k) {
  if (!o.is_object() || !o.contains(k)) throw PyError(PyRepr(k));
  return o[k];
}
inline const json& At(const json& o, const std::string& k) {
  if (!o.is_object() || !o.contains(k)) throw PyError(PyRepr(k));
  return o[k];
}
// Classes whose dicts have int keys (TwitterAPI tweets, TradingBot orders) keep them as decimal strings;
// their Python order is insertion order, which for BFCL's scenarios (ids ascending, counters above them)
// is numeric order: int keys ascending, then other keys.
bool IsIntKey(const std::string& k);
// The decimal key of an id given as a number (5 and 5.0 -> "5"), or "" when no int key can equal it
// (1.5, a string): Python's `id in d` for a dict with int keys.
std::string IdKey(const json& id);
std::vector<std::string> IntKeyOrder(const json& object);

// Python's round(x, ndigits): the double nearest to x correctly rounded to ndigits decimals.
double PyRound(double x, int ndigits);
// Python's strptime with "%Y-%m-%d" (`with_time` adds " %H:%M:%S"): {Y, M, D, h, m, s}, or false.
bool PyStrptime(const std::string& text, bool with_time, int out[6]);

// One of BFCL's classes ported with its own scenario loading: `load` is _load_scenario (config keys it
// does not know are ignored, as Python's dict.get ignores them; a known key of the wrong shape is an
// InvalidArgument naming `where`), returning the instance attributes as JSON (private ones "_"-prefixed).
struct PortedClass {
  const char* name;
  Expected<json> (*load)(const json& config, const std::string& where);
  std::vector<Method> (*methods)();
};
const std::vector<PortedClass>& PortedClasses();

Expected<json> LoadTwitterApi(const json& config, const std::string& where);
// TwitterAPI's post_tweet stores Python's one default `mentions` list in every tweet posted without
// mentions, and mention() on such a tweet extends that list. The state keeps the list's content as the
// private "_default_mentions" and those tweets' keys as "_default_mentions_ids"; this writes the list
// into each of them (FcBackend shares the list between backends, as one Python process shares it).
void SyncDefaultMentions(json& twitter_state);
std::vector<Method> TwitterApiMethods();
Expected<json> LoadTicketApi(const json& config, const std::string& where);
std::vector<Method> TicketApiMethods();
Expected<json> LoadTradingBot(const json& config, const std::string& where);
std::vector<Method> TradingBotMethods();
Expected<json> LoadTravelApi(const json& config, const std::string& where);
std::vector<Method> TravelApiMethods();
Expected<json> LoadVehicleControlApi(const json& config, const std::string& where);
std::vector<Method> VehicleControlApiMethods();

// BFCL MessageAPI (state: generated_ids, user_count, user_map, inbox, message_count, current_user).
std::vector<Method> MessageApiMethods();
json MessageApiDefaultState();

}  // namespace k2::eval::fc

namespace k2::eval::fc {

// ACEBench's classes of its agent categories (BaseApi, MessageApi, ReminderApi, FoodPlatform, Travel).
// ACEBench makes one instance per involved class and loads it twice, with the class's own config and then
// with BaseApi's, so `load` gets both (the second decides wifi, logged_in and FoodPlatform's
// logged_in_users). The state keeps the attributes ACEBench saves for its checker under their names
// (`saved`) and the rest "_"-prefixed (each phone class's own wifi / login flags, id counters, flights).
// A method name found in several involved classes (turn_on_wifi, login_device) runs on each of them, in
// involved-class order, as ACEBench's executor runs it; the last result is the call's.
struct AceClass {
  const char* name;
  Expected<json> (*load)(const json& own, const json& base, const std::string& where);
  std::vector<Method> (*methods)();
  std::vector<std::string> saved;
};
const std::vector<AceClass>& AceClasses();
Expected<json> LoadAceTravel(const json& own, const json& base, const std::string& where);
std::vector<Method> AceTravelMethods();

}  // namespace k2::eval::fc
