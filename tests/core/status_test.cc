#include "firedrill/core/status.h"

#include <gtest/gtest.h>

namespace firedrill {
namespace {

Result<int> Half(int value) {
  if (value % 2 != 0) return FD_STATUS(StatusCode::kInvalidArgument, std::to_string(value) + " is odd");
  return value / 2;
}

Result<int> Quarter(int value) {
  FD_ASSIGN_OR_RETURN(int half, Half(value));
  FD_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int value) {
  FD_RETURN_IF_ERROR(Half(value).status());
  return Status::Ok();
}

TEST(StatusTest, OkByDefault) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.ToString(), "OK");
}

TEST(StatusTest, KeepsCodeMessageAndPlace) {
  const Status status = FD_STATUS(StatusCode::kNotFound, "rules file x.yml");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "rules file x.yml");
  EXPECT_EQ(status.ToString().rfind("NOT_FOUND: rules file x.yml [status_test.cc:", 0), 0u);
  EXPECT_EQ(status.WithContext("loading").message(), "loading: rules file x.yml");
}

TEST(StatusTest, ResultCarriesValueOrStatus) {
  EXPECT_EQ(*Quarter(8), 2);
  const Result<int> odd = Quarter(6);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().message(), "3 is odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), StatusCode::kInvalidArgument);
}

TEST(StatusTest, ResultFromOkStatusIsAnInternalError) {
  const Result<int> wrong{Status::Ok()};
  EXPECT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace firedrill
