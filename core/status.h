// Status and Expected<T>: how errors cross module boundaries (STYLE.md habit 5).
// A Status is a code plus a one-line message that names the file/field/pointer and what was expected.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "core/check.h"

namespace k2 {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // bad input: config, spec, request, model output
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kOutOfRange,
  kIoError,             // filesystem, sockets, pipes
  kCorruption,          // bytes on disk or on the wire do not parse
  kTimeout,
  kUnavailable,         // a peer (server, process) is gone or refuses
  kResourceExhausted,   // a limit was hit (memory, queue, size cap)
  kCancelled,
  kInternal,
};

const char* CodeName(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "invalid_argument: run.json: rl.iterations: expected integer >= 1, got 0"
  std::string ToString() const;
  // Adds context in front: Status(kIo, "x").Context("loading a.json") -> "loading a.json: x".
  Status Context(std::string_view ctx) const;

  bool operator==(const Status& o) const { return code_ == o.code_ && msg_ == o.msg_; }

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {Code::kOutOfRange, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

// Expected<T>: a value or a non-ok Status. Accessing the value of an error is a programmer error.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T v) : v_(std::move(v)) {}                      // NOLINT(implicit)
  Expected(Status s) : v_(std::move(s)) {                  // NOLINT(implicit)
    K2_CHECK(!std::get<Status>(v_).ok()) << "Expected<T> built from an ok Status";
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    K2_CHECK(ok()) << "value() of an error: " << std::get<Status>(v_).ToString();
    return std::get<T>(v_);
  }
  const T& value() const& {
    K2_CHECK(ok()) << "value() of an error: " << std::get<Status>(v_).ToString();
    return std::get<T>(v_);
  }
  T&& value() && {
    K2_CHECK(ok()) << "value() of an error: " << std::get<Status>(v_).ToString();
    return std::get<T>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace k2

#define K2_CONCAT_INNER_(a, b) a##b
#define K2_CONCAT_(a, b) K2_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` (a Status) is not ok.
#define K2_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    ::k2::Status k2_status_ = (expr);            \
    if (!k2_status_.ok()) return k2_status_;     \
  } while (0)

// K2_ASSIGN_OR_RETURN(auto x, MakeX()); returns the error Status when MakeX() failed.
#define K2_ASSIGN_OR_RETURN(lhs, expr) K2_ASSIGN_OR_RETURN_IMPL_(K2_CONCAT_(k2_expected_, __LINE__), lhs, expr)
#define K2_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
