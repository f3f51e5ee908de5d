#include "firedrill/pipeline/job.h"

#include <gtest/gtest.h>

namespace firedrill::pipeline {
namespace {

std::string ErrorOf(std::string_view body) {
  const Result<JobRequest> request = ParseJobRequest(body);
  EXPECT_FALSE(request.ok()) << body;
  if (!request.ok()) {
    EXPECT_EQ(request.status().code(), StatusCode::kInvalidArgument);
  }
  return request.ok() ? "" : request.status().message();
}

TEST(JobRequestTest, ParsesAFullRequestAndFillsDefaults) {
  auto request = ParseJobRequest(
      R"({"idempotency_key": "k-1", "mode": "fast", "dataset": {"samples": 2000, "features": 300, "informative": 5,
          "decoys": 2, "noise": 0.5, "seed": 18446744073709551615}})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->idempotency_key, "k-1");
  EXPECT_EQ(request->mode, gpu::Mode::kFast);
  EXPECT_EQ(request->dataset.samples, 2000u);
  EXPECT_EQ(request->dataset.features, 300u);
  EXPECT_EQ(request->dataset.informative, 5u);
  EXPECT_EQ(request->dataset.decoys, 2u);
  EXPECT_DOUBLE_EQ(request->dataset.noise, 0.5);
  EXPECT_EQ(request->dataset.seed, 18446744073709551615ull);

  auto minimal = ParseJobRequest(R"({"dataset": {}})");
  ASSERT_TRUE(minimal.ok()) << minimal.status();
  EXPECT_EQ(minimal->mode, gpu::Mode::kBalanced);
  EXPECT_EQ(minimal->dataset.samples, gpu::DatasetSpec{}.samples);
  EXPECT_TRUE(minimal->idempotency_key.empty());
}

TEST(JobRequestTest, CanonicalJsonRoundTrips) {
  auto request =
      ParseJobRequest(R"({"mode": "accurate", "idempotency_key": "x", "dataset": {"seed": 9}})");
  ASSERT_TRUE(request.ok());
  const std::string canonical = JobRequestToJson(*request);
  auto again = ParseJobRequest(canonical);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(JobRequestToJson(*again), canonical);
}

TEST(JobRequestTest, NamesTheFieldOfEveryError) {
  EXPECT_EQ(ErrorOf(R"({"dataset": {"samples": -5}})"),
            "field 'dataset.samples': expected an integer in [16, 1000000], got -5");
  EXPECT_EQ(ErrorOf(R"({"dataset": {"samples": "many"}})"),
            "field 'dataset.samples': expected an integer in [16, 1000000], got \"many\"");
  EXPECT_EQ(ErrorOf(R"({"dataset": {"samples": 1e300}})"),
            "field 'dataset.samples': expected an integer in [16, 1000000], got 1e+300");
  EXPECT_EQ(ErrorOf(R"({"dataset": {"features": 99999999999999999999}})"),
            "field 'dataset.features': expected an integer in [1, 10000], got 1e+20");
  EXPECT_EQ(
      ErrorOf(
          R"({"dataset": {"samples": 1000000, "features": 10000, "informative": 9000, "decoys": 2000}})"),
      "field 'dataset': informative + decoys (11000) exceeds features (10000)");
  EXPECT_EQ(ErrorOf(R"({"dataset": {"noise": -1}})"),
            "field 'dataset.noise': expected a number in [0, 100], got -1");
  EXPECT_EQ(ErrorOf(R"({"mode": "quick", "dataset": {}})"),
            "field 'mode': expected one of fast, balanced, accurate, got \"quick\"");
  EXPECT_EQ(ErrorOf(R"({"dataset": {}, "priority": 1})"),
            "field 'priority': unknown field (known: idempotency_key, mode, dataset)");
  EXPECT_EQ(ErrorOf(R"({"dataset": {"rows": 1}})"),
            "field 'dataset.rows': unknown field (known: samples, features, informative, decoys, "
            "noise, seed)");
  EXPECT_EQ(ErrorOf(R"({"mode": "fast"})"), "field 'dataset': required");
  EXPECT_EQ(ErrorOf(R"({"dataset": []})"), "field 'dataset': expected an object, got []");
  EXPECT_EQ(ErrorOf(R"([1, 2])"),
            "field '(body)': expected a JSON object, got an array of 2 items");
  EXPECT_EQ(ErrorOf(R"({"idempotency_key": "", "dataset": {}})"),
            "field 'idempotency_key': expected a string of 1 to 128 characters, got \"\"");
  EXPECT_EQ(ErrorOf(R"({"dataset": {)"),
            "request body is not JSON: at line 1, column 14: syntax error while parsing object key "
            "- unexpected "
            "end of input; expected string literal");
  // Found by the fuzzer: a number past double's range threw out of the parser.
  EXPECT_EQ(ErrorOf(R"({"dataset": {"noise": 1e330}})"),
            "request body is not JSON: number overflow parsing '1e330'");
  EXPECT_EQ(ErrorOf(std::string(kMaxJobRequestBytes + 1, ' ')),
            "request body is 65537 bytes, more than the limit of 65536");
  // Deep nesting inside the size limit is refused before anything recurses
  // through it (ASan found the error message's dump overflowing the stack).
  EXPECT_EQ(ErrorOf(R"({"dataset": )" + std::string(30000, '[') + std::string(30000, ']') + "}"),
            "request body nests 30001 levels deep, more than 16");
  EXPECT_EQ(ErrorOf(R"({"dataset": [[1]]})"),
            "field 'dataset': expected an object, got an array of 1 items");
  // Brackets inside strings do not count.
  EXPECT_EQ(ErrorOf(R"({"idempotency_key": "[[[[[[[[[[[[[[[[[[[[", "dataset": {"samples": 1}})"),
            "field 'dataset.samples': expected an integer in [16, 1000000], got 1");
}

}  // namespace
}  // namespace firedrill::pipeline
