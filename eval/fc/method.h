// Internal to eval/: the shape of one method of an in-tree multi-turn class (FcBackend), so that each
// class lives in its own file under eval/fc/ and registers a table of methods.
#pragma once

#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "core/json.h"

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
  int64_t RandInt(int64_t a, int64_t b);  // inclusive

 private:
  uint32_t mt_[624];
  int index_ = 624;
};

// BFCL MessageAPI (state: generated_ids, user_count, user_map, inbox, message_count, current_user).
std::vector<Method> MessageApiMethods();
json MessageApiDefaultState();

}  // namespace k2::eval::fc
