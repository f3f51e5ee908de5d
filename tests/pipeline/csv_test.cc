#include "firedrill/pipeline/csv.h"

#include <gtest/gtest.h>

#include "firedrill/pipeline/job.h"

namespace firedrill::pipeline {
namespace {

std::string Rows(int count, const std::string& row) {
  std::string text;
  for (int i = 0; i < count; ++i) text += row + "\n";
  return text;
}

TEST(CsvTest, ReadsColumnsFeatureMajorWithTheTargetApart) {
  std::string text = "a, b ,y\n";
  for (int i = 0; i < 20; ++i)
    text += std::to_string(i) + "," + std::to_string(2 * i) + ",-" + std::to_string(i) + "\r\n";
  auto table = ParseCsv(text, "t.csv", "");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->feature_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(table->target_name, "y");
  EXPECT_EQ(table->samples, 20u);
  EXPECT_EQ(table->data[0 * 20 + 3], 3.0f);
  EXPECT_EQ(table->data[1 * 20 + 3], 6.0f);
  EXPECT_EQ(table->target[3], -3.0f);

  auto by_name = ParseCsv(text, "t.csv", "a");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->feature_names, (std::vector<std::string>{"b", "y"}));
  EXPECT_EQ(by_name->target[5], 5.0f);
}

TEST(CsvTest, ErrorsNameFileLineAndColumn) {
  auto error = [](const std::string& text, const std::string& target = "") {
    auto table = ParseCsv(text, "t.csv", target);
    EXPECT_FALSE(table.ok());
    return table.ok() ? std::string() : std::string(table.status().message());
  };
  EXPECT_EQ(error(""), "t.csv:1:1: empty file: expected a header row");
  EXPECT_EQ(error("a,a,y\n"), "t.csv:1:3: column 'a' appears twice");
  EXPECT_EQ(error("a,,y\n"), "t.csv:1:3: empty column name in the header");
  EXPECT_EQ(error("y\n"), "t.csv:1:1: need at least one feature column and a target column");
  EXPECT_EQ(error("a,y\n1,2\n", "z"), "t.csv:1:1: no column named 'z' for the target");
  EXPECT_EQ(error("a,b,y\n1,2,3\n1,2\n"), "t.csv:3:3: 2 fields, but the header has 3");
  EXPECT_EQ(error("a,b,y\n1,2,3\n1, x ,3\n"),
            "t.csv:3:4: expected a finite number for 'b', got 'x'");
  EXPECT_EQ(error("a,y\n1,nan\n"), "t.csv:2:3: expected a finite number for 'y', got 'nan'");
  EXPECT_EQ(error("a,y\n1,1e39\n"), "t.csv:2:3: expected a finite number for 'y', got '1e39'");
  EXPECT_EQ(error("a,y\n" + Rows(15, "1,2")), "t.csv:16:1: 15 data rows, fewer than 16");
  EXPECT_EQ(ReadCsvFile("/nonexistent/file.csv", "").status().code(), StatusCode::kNotFound);
}

TEST(CsvTest, JobRequestsNameACsvInsideTheDatasetDirectory) {
  auto request = ParseJobRequest(R"({"dataset": {"csv": "sales/nov.csv", "target": "revenue"}})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->csv, "sales/nov.csv");
  EXPECT_EQ(request->csv_target, "revenue");
  EXPECT_EQ(JobRequestToJson(*request),
            R"({"dataset":{"csv":"sales/nov.csv","target":"revenue"},"mode":"balanced"})");
  auto error = [](const std::string& body) {
    return std::string(ParseJobRequest(body).status().message());
  };
  EXPECT_EQ(error(R"({"dataset": {"csv": "/etc/passwd"}})"),
            "field 'dataset.csv': must be a relative path inside the dataset directory, got "
            "\"/etc/passwd\"");
  EXPECT_EQ(error(R"({"dataset": {"csv": "a/../../b.csv"}})"),
            "field 'dataset.csv': must be a relative path inside the dataset directory, got "
            "\"a/../../b.csv\"");
  EXPECT_EQ(
      error(R"({"dataset": {"csv": "a.csv", "samples": 10}})"),
      "field 'dataset.samples': not allowed with csv (a CSV dataset takes csv and target only)");
  EXPECT_EQ(error(R"({"dataset": {"csv": 3}})"),
            "field 'dataset.csv': expected a path of 1 to 512 characters, got 3");
}

}  // namespace
}  // namespace firedrill::pipeline
