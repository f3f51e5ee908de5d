// PromQL parser and evaluator. Expected values were computed by promtool
// 2.42 (`promtool test rules`) on the same series, and are compared exactly.
#include "firedrill/alerts/promql.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "firedrill/alerts/rules_test.h"

namespace firedrill::alerts::promql {
namespace {

using ::testing::HasSubstr;

constexpr std::int64_t kMinute = 60'000;

// Loads series the way a promtool test's input_series does: one value per minute.
class PromqlTest : public ::testing::Test {
 protected:
  void Load(const std::string& series, const std::string& values) {
    auto labels = ParseSeriesLabels(series);
    ASSERT_TRUE(labels.ok()) << labels.status();
    auto expanded = ExpandSeriesValues(values);
    ASSERT_TRUE(expanded.ok()) << expanded.status();
    for (std::size_t i = 0; i < expanded->size(); ++i) {
      if (!(*expanded)[i].omitted) {
        store_.Append(*labels, static_cast<std::int64_t>(i) * kMinute, (*expanded)[i].value);
      }
    }
  }

  Result<QueryResult> Query(const std::string& text, std::int64_t t_ms) {
    auto expr = Parse(text);
    if (!expr.ok()) return expr.status();
    std::optional<Result<QueryResult>> result;
    store_.Read(
        [&](const SeriesSource& source) { result.emplace(Evaluate(**expr, source, t_ms)); });
    return *result;
  }

  // "{labels} value, ..." sorted by labels, values in Go's %E as promtool prints them.
  std::string Samples(const std::string& text, std::int64_t t_ms) {
    auto result = Query(text, t_ms);
    if (!result.ok()) return "error: " + result.status().message();
    if (result->type == ValueType::kScalar) return "scalar " + FormatGoFloat(result->scalar, 'E');
    auto vector = result->vector;
    std::sort(vector.begin(), vector.end(),
              [](const EvalSample& a, const EvalSample& b) { return a.labels < b.labels; });
    std::string out;
    for (const EvalSample& sample : vector) {
      if (!out.empty()) out += ", ";
      out += FormatLabels(sample.labels) + " " + FormatGoFloat(sample.value, 'E');
    }
    return out.empty() ? "nil" : out;
  }

  void LoadStandardSeries() {
    Load(R"(c{a="1"})", "0 10 20 5 15 25 _ _ 40");
    Load(R"(c{a="2"})", "1+1x8");
    Load(R"(g{a="1",b="x"})", "1 2 stale 4");
    Load(R"(h_bucket{le="0.1"})", "0+1x10");
    Load(R"(h_bucket{le="0.5"})", "0+3x10");
    Load(R"(h_bucket{le="+Inf"})", "0+4x10");
    Load(R"(m{a="1",g="x"})", "10x10");
    Load(R"(m{a="2",g="x"})", "20x10");
    Load(R"(o{g="x"})", "2x10");
  }

  SeriesStore store_;
};

TEST_F(PromqlTest, RatesExtrapolateAndHandleCounterResetsAsPrometheusDoes) {
  LoadStandardSeries();
  EXPECT_EQ(Samples("rate(c[5m])", 8 * kMinute),
            R"({a="1"} 1.1666666666666667E-01, {a="2"} 1.6666666666666666E-02)");
  EXPECT_EQ(Samples("increase(c[3m])", 5 * kMinute), R"({a="1"} 2.5E+01, {a="2"} 3E+00)");
  EXPECT_EQ(Samples("irate(c[5m])", 5 * kMinute),
            R"({a="1"} 1.6666666666666666E-01, {a="2"} 1.6666666666666666E-02)");
  EXPECT_EQ(Samples("delta(c[4m])", 4 * kMinute), R"({a="1"} 1.5E+01, {a="2"} 4E+00)");
  EXPECT_EQ(Samples("deriv(c[5m])", 8 * kMinute),
            R"({a="1"} 1.130952380952381E-01, {a="2"} 1.6666666666666666E-02)");
  EXPECT_EQ(Samples("predict_linear(c[5m], 60)", 8 * kMinute),
            R"({a="1"} 4.8392857142857146E+01, {a="2"} 1E+01)");
  EXPECT_EQ(Samples("avg_over_time(c[5m])", 8 * kMinute), R"({a="1"} 2.125E+01, {a="2"} 6.5E+00)");
}

TEST_F(PromqlTest, StalenessEndsASeriesAndLookbackIsFiveMinutes) {
  LoadStandardSeries();
  EXPECT_EQ(Samples("g", 1 * kMinute), R"({__name__="g", a="1", b="x"} 2E+00)");
  EXPECT_EQ(Samples("g", 2 * kMinute), "nil");  // the stale marker at 2m
  EXPECT_EQ(Samples("g", 3 * kMinute), R"({__name__="g", a="1", b="x"} 4E+00)");
  EXPECT_EQ(Samples("g", 8 * kMinute), R"({__name__="g", a="1", b="x"} 4E+00)");  // 5m back: closed
  EXPECT_EQ(Samples("g", 9 * kMinute), "nil");
}

TEST_F(PromqlTest, VectorMatchingAggregationAndFunctions) {
  LoadStandardSeries();
  EXPECT_EQ(Samples("m / on(g) group_left o", kMinute),
            R"({a="1", g="x"} 5E+00, {a="2", g="x"} 1E+01)");
  EXPECT_EQ(Samples("m / on(g) o", kMinute),
            "error: multiple matches for labels: many-to-one matching must be explicit "
            "(group_left/group_right)");
  EXPECT_THAT(
      Samples("o / on(g) m", kMinute),
      HasSubstr("many-to-many matching not allowed: matching labels must be unique on one side"));
  EXPECT_EQ(Samples("sum by (g) (m) > bool 25", kMinute), R"({g="x"} 1E+00)");
  EXPECT_EQ(Samples("count without (a) (m)", kMinute), R"({g="x"} 2E+00)");
  EXPECT_EQ(Samples("clamp_max(m, 15) + time()", kMinute),
            R"({a="1", g="x"} 7E+01, {a="2", g="x"} 7.5E+01)");
  EXPECT_EQ(Samples("max_over_time(c[10m:2m])", 8 * kMinute), R"({a="1"} 4E+01, {a="2"} 9E+00)");
  EXPECT_EQ(Samples("-m offset 1m", 2 * kMinute),
            R"({a="1", g="x"} -1E+01, {a="2", g="x"} -2E+01)");
  EXPECT_EQ(Samples("topk(1, m)", kMinute), R"({__name__="m", a="2", g="x"} 2E+01)");
  EXPECT_EQ(Samples("quantile(0.3, m)", kMinute), R"({} 1.3E+01)");
  EXPECT_EQ(Samples(R"(absent(nope{a="1"}))", kMinute), R"({a="1"} 1E+00)");
  EXPECT_EQ(Samples(R"x(label_replace(o, "dst", "$1-y", "g", "(.*)"))x", kMinute),
            R"({__name__="o", dst="x-y", g="x"} 2E+00)");
  EXPECT_EQ(Samples("2 ^ 0.5 * 3", kMinute), "scalar 4.242640687119286E+00");
  EXPECT_EQ(Samples("histogram_quantile(0.9, rate(h_bucket[5m]))", 10 * kMinute), R"({} 5E-01)");
  EXPECT_EQ(Samples(R"(m{a=~"1|3"} or o)", kMinute),
            R"({__name__="m", a="1", g="x"} 1E+01, {__name__="o", g="x"} 2E+00)");
  EXPECT_EQ(Samples(R"(m unless on(a) m{a!="2"})", kMinute),
            R"({__name__="m", a="2", g="x"} 2E+01)");
}

TEST_F(PromqlTest, SetsWithDuplicateLabelSetsAfterDroppingTheNameAreErrors) {
  Load(R"(x{a="1"})", "1");
  Load(R"(y{a="1"})", "2");
  EXPECT_EQ(Samples(R"({__name__=~"x|y"} * 2)", 0),
            "error: vector cannot contain metrics with the same labelset");
}

TEST(PromqlParse, AcceptsTheRepetitionsRe2Accepts) {
  for (const char* pattern : {"a*?", "a+?b", "(?i)abc", "[*+]+", "a\\\\++", "x{2,3}?", "(a+)+", "(?:ab)*c", "a{1000}"}) {
    const std::string text = std::string("x{a=~\"") + pattern + "\"}";
    EXPECT_TRUE(Parse(text).ok()) << text << ": " << Parse(text).status();
  }
}

TEST(PromqlParse, ErrorsNameLineAndColumn) {
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"sum(rate(x[5m])", "1:16: parse error: unexpected end of input, expected \")\""},
      {"rate(x)",
       "1:6: parse error: expected type range vector in call to function \"rate\", got instant "
       "vector"},
      {"1 > 2", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
      {"x and 1", "1:3: parse error: set operator \"and\" not allowed in binary scalar expression"},
      {"{a=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
      {"x[5m", "1:5: parse error: unexpected end of input, expected \"]\""},
      {"nosuchfn(x)", "1:1: parse error: unknown function with name \"nosuchfn\""},
      {"x{a=~\"(\"}", "1:6: parse error: invalid regular expression \"(\""},
      // RE2 (Prometheus) refuses nested repetition; std::regex would backtrack
      // exponentially on it (found by promql_fuzzer).
      {"x{a=~\"b|c+++*\"}", "1:6: parse error: invalid regular expression \"b|c+++*\""},
      {"x{a=~\"a**\"}", "1:6: parse error: invalid regular expression \"a**\""},
      {"x{a=~\"a{2}{3}\"}", "1:6: parse error: invalid regular expression \"a{2}{3}\""},
      {"x{a=~\"a{1001}\"}", "1:6: parse error: invalid regular expression \"a{1001}\""},
      {"x +\n  * y", "2:3: parse error: unexpected operator"},
      {"", "1:1: parse error: no expression found in input"},
      {"1.2.3", "1:1: parse error: bad number or duration syntax: \"1.2.3\""},
  };
  for (const Case& c : cases) {
    auto parsed = Parse(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().message(), c.error) << c.text;
  }
}

TEST(PromqlParse, AcceptsTheFullGrammarHsofRulesUse) {
  for (const char* text : {
           "avg(hsof_gpu_utilization_percent) < 20",
           "(hsof_gpu_memory_used_bytes / hsof_gpu_memory_total_bytes) * 100 > 90",
           "histogram_quantile(0.95, rate(hsof_metamodel_inference_latency_seconds_bucket[5m])) > "
           "0.005",
           "100 - (avg by(instance) (irate(node_cpu_seconds_total{mode=\"idle\"}[5m])) * 100) > 80",
           "time() - hsof_last_successful_backup_timestamp > 86400",
           "abs(hsof_feature_reduction_ratio - 0.1) > 0.05",
           "sum without (le) (rate(x_bucket[1h] offset 5m @ 100))",
           "x ^ 2 ^ 3",
           "-x ^ 2",
           "max_over_time(rate(x[1m])[10m:])",
           "a / ignoring(b) group_right(c) d",
           "count_values(\"v\", x)",
       }) {
    EXPECT_TRUE(Parse(text).ok()) << text << ": " << Parse(text).status();
  }
  // Unary minus binds looser than ^, as in Prometheus: -2^2 is -4.
  SeriesStore empty;
  auto expr = Parse("-2 ^ 2");
  ASSERT_TRUE(expr.ok());
  empty.Read([&](const SeriesSource& source) {
    auto result = Evaluate(**expr, source, 0);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->scalar, -4);
  });
}

TEST(GoFloatFormat, MatchesStrconvShortestForms) {
  EXPECT_EQ(FormatGoFloat(93.33333333333333), "93.33333333333333");
  EXPECT_EQ(FormatGoFloat(1e6), "1e+06");
  EXPECT_EQ(FormatGoFloat(123456), "123456");
  EXPECT_EQ(FormatGoFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatGoFloat(0.00001), "1e-05");
  EXPECT_EQ(FormatGoFloat(1073741824), "1.073741824e+09");
  EXPECT_EQ(FormatGoFloat(25, 'E'), "2.5E+01");
  EXPECT_EQ(FormatGoFloat(NAN, 'E'), "NaN");
  EXPECT_EQ(FormatGoFloat(-INFINITY), "-Inf");
  EXPECT_EQ(FormatLabels({{"a", "x\"y\n"}, {"b", "°C"}}), "{a=\"x\\\"y\\n\", b=\"°C\"}");
}

}  // namespace
}  // namespace firedrill::alerts::promql
