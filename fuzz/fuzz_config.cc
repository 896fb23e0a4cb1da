// libFuzzer harness: config reading (core/config) on a section with every supported field type, as a
// config file (`--config`) and as `--set` assignments. Input: a JSON config, optionally NUL, then
// newline-separated `key.path=value` assignments.
#include <cstddef>
#include <cstdint>
#include <sstream>

#include "core/config.h"
#include "fuzz/fuzz_util.h"

namespace {

struct Inner {
  std::string mode = "exact";
  double weight = 1.0;
  template <class V>
  void Visit(V& v) {
    v("mode", mode, "choice", {.choices = {"exact", "loose"}});
    v("weight", weight, "number in range", {.min = 0, .max = 10});
  }
};

struct AllTypes {
  bool flag = false;
  int small = 1;
  int64_t big = 2;
  uint64_t ubig = 3;
  double real = 0.5;
  float single = 0.25f;
  std::string name = "x";
  std::vector<std::string> tags;
  std::vector<int> ints;
  std::vector<double> reals;
  std::optional<int> maybe_int;
  std::optional<double> maybe_real;
  std::optional<std::string> maybe_name;
  k2::json free = nullptr;
  Inner inner;
  template <class V>
  void Visit(V& v) {
    v("flag", flag, "bool");
    v("small", small, "int", {.min = -5, .max = 1000});
    v("big", big, "int64");
    v("ubig", ubig, "uint64");
    v("real", real, "double");
    v("single", single, "float");
    v("name", name, "string");
    v("tags", tags, "strings");
    v("ints", ints, "ints");
    v("reals", reals, "doubles");
    v("maybe_int", maybe_int, "optional int");
    v("maybe_real", maybe_real, "optional double");
    v("maybe_name", maybe_name, "optional string");
    v("free", free, "free-form JSON");
    v("inner", inner, "nested section");
  }
};

K2_CONFIG_SECTION("alltypes", AllTypes, "Every field type the config reader supports.");

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [file, sets] = k2::fuzz::SplitNul(std::string_view(reinterpret_cast<const char*>(data), size));
  auto j = k2::ParseJson(file, "fuzz.json");
  k2::json root = j.ok() ? *j : k2::json::object();
  std::istringstream ss{std::string(sets)};
  std::string line;
  while (std::getline(ss, line)) (void)k2::config::ApplySet(root, line);
  auto resolved = k2::config::Resolve(root, "fuzz.json");
  if (!resolved.ok()) return 0;
  auto cfg = k2::config::Get<AllTypes>(*resolved, "alltypes");
  if (!cfg.ok()) __builtin_trap();  // documented: after Resolve, Get cannot fail on input
  return 0;
}
