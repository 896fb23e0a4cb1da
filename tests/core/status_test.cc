// Status / Expected: codes, context, and the return macros.
#include "core/status.h"

#include <gtest/gtest.h>

namespace k2 {
namespace {

Expected<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Expected<int> Quarter(int x) {
  K2_ASSIGN_OR_RETURN(int h, Half(x));
  K2_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckPositive(int x) {
  if (x <= 0) return OutOfRange("not positive");
  return Status::Ok();
}

Status Both(int a, int b) {
  K2_RETURN_IF_ERROR(CheckPositive(a));
  K2_RETURN_IF_ERROR(CheckPositive(b).Context("b"));
  return Status::Ok();
}

TEST(Status, OkAndErrorToString) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "ok");
  EXPECT_EQ(NotFound("x.json").ToString(), "not_found: x.json");
  EXPECT_EQ(IoError("disk").Context("saving").message(), "saving: disk");
}

TEST(Status, AssignOrReturnPropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd: 3");
  EXPECT_EQ(Quarter(5).status().code(), Code::kInvalidArgument);
}

TEST(Status, ReturnIfErrorStopsAtFirst) {
  EXPECT_TRUE(Both(1, 2).ok());
  EXPECT_EQ(Both(0, 0).message(), "not positive");
  EXPECT_EQ(Both(1, -1).message(), "b: not positive");
}

TEST(StatusDeathTest, ValueOfErrorAborts) {
  Expected<int> e = Internal("boom");
  EXPECT_DEATH((void)e.value(), "value\\(\\) of an error: internal: boom");
}

TEST(StatusDeathTest, CheckFailurePrintsConditionAndMessage) {
  EXPECT_DEATH(K2_CHECK_EQ(1 + 1, 3) << "math", "check failed: .*1 \\+ 1.*math");
}

}  // namespace
}  // namespace k2
