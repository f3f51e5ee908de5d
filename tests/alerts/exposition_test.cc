#include "firedrill/alerts/exposition.h"

#include <gtest/gtest.h>

#include <cmath>

namespace firedrill::alerts {
namespace {

// The example from the Prometheus exposition-format documentation.
constexpr std::string_view kDocumented =
    R"(# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
)";

TEST(ExpositionTest, ReadsTheDocumentedExample) {
  auto parsed = ParseExposition(kDocumented, "doc");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->samples.size(), 9u);
  const Sample& first = parsed->samples[0];
  EXPECT_EQ(first.name, "http_requests_total");
  EXPECT_EQ(first.labels, (LabelSet{{"code", "200"}, {"method", "post"}}));  // sorted by name
  EXPECT_EQ(first.value, 1027);
  EXPECT_EQ(first.timestamp_ms, 1395066363000);
  EXPECT_EQ(parsed->samples[1].value, 3);
  EXPECT_EQ(parsed->samples[2].labels, (LabelSet{{"error", "Cannot find file:\n\"FILE.TXT\""},
                                                 {"path", "C:\\DIR\\FILE.TXT"}}));
  EXPECT_EQ(parsed->samples[3].labels, LabelSet{});
  EXPECT_FALSE(parsed->samples[3].timestamp_ms.has_value());
  EXPECT_TRUE(std::isinf(parsed->samples[4].value));
  EXPECT_EQ(parsed->samples[4].timestamp_ms, -3982045);
  EXPECT_EQ(parsed->families.at("http_requests_total").kind, MetricKind::kCounter);
  EXPECT_EQ(parsed->families.at("http_requests_total").help, "The total number of HTTP requests.");
  EXPECT_EQ(parsed->families.at("http_request_duration_seconds").kind, MetricKind::kHistogram);
}

TEST(ExpositionTest, ValuesAsGoParsesThem) {
  auto parsed = ParseExposition("a NaN\nb -Inf\nc 1e-3\nd -0\ne +5\nf inf\n", "v");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(std::isnan(parsed->samples[0].value));
  EXPECT_EQ(parsed->samples[1].value, -INFINITY);
  EXPECT_DOUBLE_EQ(parsed->samples[2].value, 0.001);
  EXPECT_TRUE(std::signbit(parsed->samples[3].value));
  EXPECT_EQ(parsed->samples[4].value, 5);
  EXPECT_EQ(parsed->samples[5].value, INFINITY);
}

TEST(ExpositionTest, ErrorsNameTheLineAndColumn) {
  auto error = [](std::string_view text,
                  ExpositionFormat format = ExpositionFormat::kPrometheusText) {
    auto parsed = ParseExposition(text, "m.txt", format);
    EXPECT_FALSE(parsed.ok()) << text;
    return parsed.ok() ? std::string() : std::string(parsed.status().message());
  };
  EXPECT_EQ(error("up 1\nup{job=\"a\"} x\n"), "m.txt:2:13: invalid value 'x'");
  EXPECT_EQ(error("up{job=\"a} 1\n"), "m.txt:1:13: unterminated value of label job");
  EXPECT_EQ(error("up{job=\"a\" 1\n"), "m.txt:1:12: expected ',' or '}' after a label");
  EXPECT_EQ(error("up{job=a} 1\n"), "m.txt:1:8: expected '\"' to open the value of label job");
  EXPECT_EQ(error("up{1job=\"a\"} 1\n"), "m.txt:1:4: expected a label name, found '1'");
  EXPECT_EQ(error("up{a=\"1\",a=\"2\"} 1\n"), "m.txt:1:10: label a appears twice");
  EXPECT_EQ(error("up{a=\"\\t\"} 1\n"),
            "m.txt:1:8: invalid escape '\\t' in label value (\\\\, \\\", \\n)");
  EXPECT_EQ(error("up 1\nup 2\n"), "m.txt:2:1: duplicate series up with the same labels");
  EXPECT_EQ(error("up\n"), "m.txt:1:3: expected a value after up");
  EXPECT_EQ(error("up-time 1\n"), "m.txt:1:3: invalid character '-' in metric name");
  EXPECT_EQ(error("9up 1\n"), "m.txt:1:1: expected a metric name, found '9'");
  EXPECT_EQ(error("up 1 12.5\n"), "m.txt:1:6: invalid timestamp '12.5' (integer milliseconds)");
  EXPECT_EQ(error("up 1 2 3\n"), "m.txt:1:8: unexpected text after the timestamp");
  EXPECT_EQ(error("up 1e999\n"), "m.txt:1:4: invalid value '1e999'");
  EXPECT_EQ(
      error("# TYPE up thing\n"),
      "m.txt:1:11: unknown metric type 'thing' (counter, gauge, histogram, summary, untyped)");
  EXPECT_EQ(error("# TYPE up gauge\n# TYPE up gauge\n"),
            "m.txt:2:3: second TYPE line for metric up");
  EXPECT_EQ(error("# HELP\n"), "m.txt:1:7: expected a metric name after # HELP");
  EXPECT_EQ(error("up 1\n", ExpositionFormat::kOpenMetrics), "m.txt:2:1: missing # EOF at the end");
  EXPECT_EQ(error("up 1\n# EOF\nup 2\n", ExpositionFormat::kOpenMetrics),
            "m.txt:3:1: content after # EOF");
}

TEST(ExpositionTest, OpenMetricsTimestampsAreSeconds) {
  EXPECT_EQ(FormatFromContentType("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(FormatFromContentType("text/plain; version=0.0.4"), ExpositionFormat::kPrometheusText);
  auto parsed =
      ParseExposition("# TYPE a counter\n# UNIT a seconds\na_total 3 1700000000.5\n# EOF\n", "om",
                      ExpositionFormat::kOpenMetrics);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->samples[0].timestamp_ms, 1700000000500);
  // Comments that are not HELP, TYPE or UNIT are skipped; blank lines too.
  EXPECT_TRUE(ParseExposition("# just a comment\n\n  \nup 1\r\n", "c").ok());
}

}  // namespace
}  // namespace firedrill::alerts
