// K2_CHECK: invariants (programmer errors). A failed check prints file:line, the condition and the
// streamed message to stderr, then aborts. Never used for input the outside world can break.
#pragma once

#include <sstream>
#include <string>

namespace k2::detail {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* cond);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return os_; }

 private:
  std::ostringstream os_;
};

// Makes `cond ? (void)0 : Voidify() & stream << ...` typecheck.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace k2::detail

#define K2_CHECK(cond) \
  (cond) ? (void)0 : ::k2::detail::Voidify() & ::k2::detail::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define K2_CHECK_OP_(a, b, op) K2_CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define K2_CHECK_EQ(a, b) K2_CHECK_OP_(a, b, ==)
#define K2_CHECK_NE(a, b) K2_CHECK_OP_(a, b, !=)
#define K2_CHECK_LT(a, b) K2_CHECK_OP_(a, b, <)
#define K2_CHECK_LE(a, b) K2_CHECK_OP_(a, b, <=)
#define K2_CHECK_GT(a, b) K2_CHECK_OP_(a, b, >)
#define K2_CHECK_GE(a, b) K2_CHECK_OP_(a, b, >=)

#ifdef NDEBUG
#define K2_DCHECK(cond) \
  while (false) K2_CHECK(cond)
#else
#define K2_DCHECK(cond) K2_CHECK(cond)
#endif
