#include "firedrill/workload/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace firedrill::workload {
namespace {

using json = nlohmann::json;

constexpr std::uint64_t kMaxCount = std::numeric_limits<std::uint64_t>::max();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// Fresh inputs every run; the seed is printed so a failure can be replayed
// with FIREDRILL_SEED.
std::uint64_t Seed() {
  if (const char* fixed = std::getenv("FIREDRILL_SEED")) return std::stoull(fixed);
  return (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
}

std::int64_t PowerOfTen(int digits) {
  std::int64_t power = 1;
  for (int i = 0; i < digits; ++i) power *= 10;
  return power;
}

LatencyHistogram Make(int digits, std::int64_t highest = LatencyHistogram::kDefaultHighest) {
  Result<LatencyHistogram> made = LatencyHistogram::Create(digits, highest);
  EXPECT_TRUE(made.ok()) << made.status();
  return std::move(made).value();
}

// The stated precision: the reported value is at or above the true one and
// within a relative 10^-digits of it.
void ExpectWithinPrecision(std::int64_t reported, std::int64_t truth, int digits) {
  EXPECT_GE(reported, truth);
  EXPECT_LE((reported - truth) * PowerOfTen(digits), truth)
      << "reported " << reported << " for " << truth << " at " << digits << " digits";
}

TEST(LatencyHistogramTest, EveryBucketIsWithinThePrecision) {
  const std::uint64_t seed = Seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);
  for (int digits = 1; digits <= 5; ++digits) {
    SCOPED_TRACE("digits " + std::to_string(digits));
    const LatencyHistogram histogram = Make(digits, kInt64Max);
    std::vector<std::int64_t> values;
    for (std::int64_t v = 0; v < 5000; ++v) values.push_back(v);
    for (int bit = 1; bit < 63; ++bit) {
      const std::int64_t power = std::int64_t{1} << bit;
      values.insert(values.end(), {power - 1, power, power + 1});
    }
    values.push_back(kInt64Max);
    for (int i = 0; i < 20000; ++i) {
      values.push_back(static_cast<std::int64_t>(random() >> (1 + random() % 63)));
    }
    for (const std::int64_t v : values) {
      const std::int64_t lowest = histogram.LowestEquivalent(v);
      const std::int64_t highest = histogram.HighestEquivalent(v);
      ASSERT_LE(lowest, v);
      ASSERT_GE(highest, v);
      ExpectWithinPrecision(highest, v, digits);
      if (v < 2 * PowerOfTen(digits)) {
        ASSERT_EQ(lowest, highest) << v << " should be exact";
      }
      // Buckets tile the line: the next value past a bucket starts the next one.
      if (highest < kInt64Max) {
        ASSERT_EQ(histogram.LowestEquivalent(highest + 1), highest + 1);
      }
      if (lowest > 0) {
        ASSERT_EQ(histogram.HighestEquivalent(lowest - 1), lowest - 1);
      }
    }
  }
}

TEST(LatencyHistogramTest, QuantilesMatchSortedValuesWithinThePrecision) {
  const std::uint64_t seed = Seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);

  struct Distribution {
    const char* name;
    std::function<std::int64_t()> draw;
  };
  std::uniform_int_distribution<std::int64_t> uniform(0, 10'000'000);  // up to 10 ms
  std::lognormal_distribution<double> lognormal(std::log(1e6), 1.5);   // median 1 ms
  std::normal_distribution<double> fast(200e3, 30e3), slow(50e6, 10e6);
  std::bernoulli_distribution is_slow(0.1);
  const std::vector<Distribution> distributions = {
      {"uniform", [&] { return uniform(random); }},
      {"lognormal", [&] { return static_cast<std::int64_t>(std::min(lognormal(random), 3.6e12)); }},
      {"bimodal",
       [&] {
         return static_cast<std::int64_t>(
             std::max(0.0, is_slow(random) ? slow(random) : fast(random)));
       }},
  };
  // Shares as exact fractions, so the expected rank is exact; 7/100, 29/100
  // and 57/100 are among those binary cannot hold.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> shares = {
      {0, 1}, {1, 1000}, {7, 100},  {1, 10},     {1, 4},        {29, 100},       {1, 2}, {57, 100},
      {3, 4}, {9, 10},   {99, 100}, {999, 1000}, {9999, 10000}, {99999, 100000}, {1, 1}};

  for (const Distribution& distribution : distributions) {
    std::vector<std::int64_t> values(100'000);
    for (std::int64_t& v : values) v = distribution.draw();
    std::vector<std::int64_t> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const auto n = static_cast<std::uint64_t>(values.size());
    double sum = 0, sum_of_squares = 0;
    for (const std::int64_t v : values) sum += static_cast<double>(v);
    const double exact_mean = sum / static_cast<double>(n);
    for (const std::int64_t v : values) {
      sum_of_squares += static_cast<double>(v) * static_cast<double>(v);
    }
    double squared_deviations = 0;
    for (const std::int64_t v : values) {
      squared_deviations +=
          (static_cast<double>(v) - exact_mean) * (static_cast<double>(v) - exact_mean);
    }
    const double exact_stddev = std::sqrt(squared_deviations / static_cast<double>(n));
    const double rms = std::sqrt(sum_of_squares / static_cast<double>(n));

    for (int digits = 1; digits <= 5; ++digits) {
      SCOPED_TRACE(std::string(distribution.name) + ", digits " + std::to_string(digits));
      LatencyHistogram histogram = Make(digits);
      for (const std::int64_t v : values) histogram.Record(v);
      EXPECT_EQ(histogram.count(), n);
      EXPECT_EQ(histogram.min(), sorted.front());
      EXPECT_EQ(histogram.max(), sorted.back());
      EXPECT_EQ(histogram.saturated(), 0u);
      for (const auto& [numerator, denominator] : shares) {
        const double q = static_cast<double>(numerator) / static_cast<double>(denominator);
        const std::uint64_t rank =
            std::max<std::uint64_t>(1, (numerator * n + denominator - 1) / denominator);
        SCOPED_TRACE("q " + std::to_string(q) + ", rank " + std::to_string(rank));
        ExpectWithinPrecision(histogram.ValueAtQuantile(q), sorted[rank - 1], digits);
      }
      const double bound = 0.5 / static_cast<double>(PowerOfTen(digits));
      EXPECT_LE(std::abs(histogram.mean() - exact_mean), bound * exact_mean * (1 + 1e-9));
      EXPECT_LE(std::abs(histogram.stddev() - exact_stddev), bound * rms * (1 + 1e-9));
    }
  }
}

TEST(LatencyHistogramTest, QuantileSemanticsOnSmallInputs) {
  LatencyHistogram histogram;
  for (std::int64_t v = 1; v <= 100; ++v) histogram.Record(v);
  EXPECT_EQ(histogram.ValueAtQuantile(0), 1);
  EXPECT_EQ(histogram.ValueAtQuantile(0.005), 1);  // rank ceil(0.5) = 1
  EXPECT_EQ(histogram.ValueAtQuantile(0.01), 1);
  EXPECT_EQ(histogram.ValueAtQuantile(0.011), 2);
  EXPECT_EQ(histogram.ValueAtQuantile(0.07), 7);  // 0.07 * 100 is 7.000000000000001 in doubles
  EXPECT_EQ(histogram.ValueAtQuantile(0.5), 50);
  EXPECT_EQ(histogram.ValueAtQuantile(0.99), 99);
  EXPECT_EQ(histogram.ValueAtQuantile(1), 100);
  EXPECT_EQ(histogram.ValueAtQuantile(-3), 1);  // clamped
  EXPECT_EQ(histogram.ValueAtQuantile(7), 100);
  EXPECT_EQ(histogram.ValueAtQuantile(std::nan("")), 1);
  EXPECT_DOUBLE_EQ(histogram.mean(), 50.5);

  // Reported as the top of the bucket, but never above the largest value.
  LatencyHistogram coarse = Make(1);  // exact below 20, buckets of 2 from 32
  coarse.Record(40);
  coarse.Record(100);
  EXPECT_EQ(coarse.HighestEquivalent(40), 41);
  EXPECT_EQ(coarse.ValueAtQuantile(0.5), 41);
  EXPECT_EQ(coarse.ValueAtQuantile(1), 100);
  EXPECT_EQ(coarse.min(), 40);
}

// Every rank of a small input with repeats, so both scan directions and
// their meeting point at half the count are covered.
TEST(LatencyHistogramTest, EveryRankOfASmallInput) {
  for (const std::vector<std::int64_t>& values :
       std::vector<std::vector<std::int64_t>>{{5},
                                              {5, 5},
                                              {1, 2},
                                              {0, 0, 3, 3, 3, 9, 9, 100, 100, 100, 7000},
                                              {4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 1000000}}) {
    LatencyHistogram histogram;
    for (const std::int64_t v : values) histogram.Record(v);
    std::vector<std::int64_t> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    for (std::size_t rank = 1; rank <= n; ++rank) {
      const double q = static_cast<double>(rank) / static_cast<double>(n);
      EXPECT_EQ(histogram.ValueAtQuantile(q),
                histogram.HighestEquivalent(sorted[rank - 1]) < sorted.back()
                    ? histogram.HighestEquivalent(sorted[rank - 1])
                    : sorted.back())
          << "rank " << rank << " of " << n;
    }
  }
}

TEST(LatencyHistogramTest, EmptyAndZero) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.min(), 0);
  EXPECT_EQ(histogram.max(), 0);
  EXPECT_EQ(histogram.mean(), 0);
  EXPECT_EQ(histogram.stddev(), 0);
  EXPECT_EQ(histogram.ValueAtQuantile(0.99), 0);
  EXPECT_TRUE(histogram.NonEmptyBuckets().empty());
  EXPECT_NE(histogram.PercentileTable().find("count 0"), std::string::npos);

  histogram.Record(0);
  histogram.Record(0, 9);
  histogram.Record(5, 0);  // no copies: changes nothing, not even min and max
  EXPECT_EQ(histogram.count(), 10u);
  EXPECT_EQ(histogram.min(), 0);
  EXPECT_EQ(histogram.max(), 0);
  EXPECT_EQ(histogram.mean(), 0);
  EXPECT_EQ(histogram.stddev(), 0);
  EXPECT_EQ(histogram.ValueAtQuantile(1), 0);
  ASSERT_EQ(histogram.NonEmptyBuckets().size(), 1u);
  EXPECT_EQ(histogram.NonEmptyBuckets()[0].lowest, 0);
  EXPECT_EQ(histogram.NonEmptyBuckets()[0].highest, 0);
  EXPECT_EQ(histogram.NonEmptyBuckets()[0].count, 10u);
}

TEST(LatencyHistogramTest, SaturatesAboveTheHighestAndRejectsNegatives) {
  LatencyHistogram histogram = Make(3, 1000);
  histogram.Record(500);
  histogram.Record(1000);  // the highest itself is trackable
  histogram.Record(1001);
  histogram.Record(kInt64Max, 3);
  histogram.Record(-1);
  histogram.Record(std::numeric_limits<std::int64_t>::min(), 4);
  EXPECT_EQ(histogram.count(), 6u);
  EXPECT_EQ(histogram.saturated(), 4u);
  EXPECT_EQ(histogram.rejected(), 5u);
  EXPECT_EQ(histogram.min(), 500);
  EXPECT_EQ(histogram.max(), 1000);
  EXPECT_EQ(histogram.ValueAtQuantile(1), 1000);
  EXPECT_EQ(histogram.ValueAtQuantile(0.1), 500);

  LatencyHistogram hours;  // default: 1 h
  hours.Record(std::chrono::hours(2));
  EXPECT_EQ(hours.saturated(), 1u);
  EXPECT_EQ(hours.max(), LatencyHistogram::kDefaultHighest);
  EXPECT_EQ(hours.ValueAtQuantile(0.5), LatencyHistogram::kDefaultHighest);
  EXPECT_EQ(hours.NonEmptyBuckets().back().highest, LatencyHistogram::kDefaultHighest);
}

TEST(LatencyHistogramTest, HugeCountsDoNotOverflow) {
  LatencyHistogram histogram;
  const std::uint64_t quarter = std::uint64_t{1} << 62;
  histogram.Record(1000, quarter);
  histogram.Record(2000, quarter);
  histogram.Record(3000, quarter);
  EXPECT_EQ(histogram.count(), 3 * quarter);
  EXPECT_EQ(histogram.ValueAtQuantile(0.5), 2000);
  EXPECT_EQ(histogram.ValueAtQuantile(0.34), 2000);
  EXPECT_EQ(histogram.ValueAtQuantile(1), 3000);
  EXPECT_NEAR(histogram.mean(), 2000, 2000 * 5e-4);
  EXPECT_NEAR(histogram.stddev(), std::sqrt(2.0 / 3.0) * 1000, 3000 * 5e-4);

  // Past 2^64 - 1 every count sticks at the top instead of wrapping.
  histogram.Record(3000, quarter * 2);
  EXPECT_EQ(histogram.count(), kMaxCount);
  LatencyHistogram copy = histogram;
  ASSERT_TRUE(histogram.Merge(copy).ok());
  EXPECT_EQ(histogram.count(), kMaxCount);
  EXPECT_EQ(histogram.ValueAtQuantile(1), 3000);
  histogram.Record(4000, kMaxCount);
  histogram.Record(-1, kMaxCount);
  histogram.Record(-1, kMaxCount);
  EXPECT_EQ(histogram.rejected(), kMaxCount);
  EXPECT_EQ(histogram.max(), 4000);
  EXPECT_TRUE(std::isfinite(histogram.mean()));
  EXPECT_TRUE(std::isfinite(histogram.stddev()));
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  const std::uint64_t seed = Seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);
  std::lognormal_distribution<double> lognormal(std::log(1e6), 3);

  LatencyHistogram all = Make(3, 60'000'000'000);  // 1 min, so some saturate
  std::vector<LatencyHistogram> threads(4, Make(3, 60'000'000'000));
  for (int i = 0; i < 200'000; ++i) {
    auto v = static_cast<std::int64_t>(std::min(lognormal(random), 1e18));
    if (i % 1000 == 0) v = -v - 1;
    all.Record(v);
    threads[i % 4].Record(v);
  }
  LatencyHistogram merged = Make(3, 60'000'000'000);
  for (const LatencyHistogram& thread : threads) ASSERT_TRUE(merged.Merge(thread).ok());
  EXPECT_GT(all.saturated(), 0u);
  EXPECT_GT(all.rejected(), 0u);
  EXPECT_EQ(merged.ToJson(), all.ToJson());
  EXPECT_EQ(merged.mean(), all.mean());
  for (const double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    EXPECT_EQ(merged.ValueAtQuantile(q), all.ValueAtQuantile(q));
  }

  // Merging an empty histogram, or into one, changes nothing / copies.
  LatencyHistogram empty = Make(3, 60'000'000'000);
  ASSERT_TRUE(merged.Merge(empty).ok());
  EXPECT_EQ(merged.ToJson(), all.ToJson());
  ASSERT_TRUE(empty.Merge(all).ok());
  EXPECT_EQ(empty.ToJson(), all.ToJson());

  // Merging with itself doubles every count.
  LatencyHistogram twice = all;
  ASSERT_TRUE(twice.Merge(twice).ok());
  EXPECT_EQ(twice.count(), 2 * all.count());
  EXPECT_EQ(twice.ValueAtQuantile(0.5), all.ValueAtQuantile(0.5));
  EXPECT_EQ(twice.min(), all.min());
}

TEST(LatencyHistogramTest, MergeRefusesDifferentLayouts) {
  LatencyHistogram three;
  three.Record(5);
  const LatencyHistogram two = Make(2);
  const Status status = three.Merge(two);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("cannot merge a histogram of 2 significant digits up to "
                                  "3600000000000 into one of 3 significant digits"),
            std::string::npos)
      << status;
  EXPECT_EQ(three.Merge(Make(3, 1000)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(three.count(), 1u);  // untouched
}

TEST(LatencyHistogramTest, CreateChecksTheLayout) {
  EXPECT_EQ(LatencyHistogram::Create(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(LatencyHistogram::Create(6).status().message().find("from 1 to 5, got 6"),
            std::string::npos);
  EXPECT_NE(LatencyHistogram::Create(3, 0).status().message().find("at least 1, got 0"),
            std::string::npos);
  EXPECT_FALSE(LatencyHistogram::Create(3, -5).ok());

  LatencyHistogram tiny = Make(1, 1);
  tiny.Record(0);
  tiny.Record(1);
  tiny.Record(2);
  EXPECT_EQ(tiny.bucket_count(), 2u);
  EXPECT_EQ(tiny.saturated(), 1u);
  EXPECT_EQ(tiny.ValueAtQuantile(1), 1);

  // The default layout: 3 digits, 1 hour, about 270 KiB of counts.
  const LatencyHistogram standard;
  EXPECT_EQ(standard.significant_digits(), 3);
  EXPECT_EQ(standard.highest_trackable(), LatencyHistogram::kDefaultHighest);
  EXPECT_LT(standard.bucket_count() * 8, 300u * 1024);
}

TEST(LatencyHistogramTest, BucketsAndReset) {
  LatencyHistogram histogram;
  histogram.Record(std::chrono::microseconds(250));
  histogram.Record(std::chrono::microseconds(250));
  histogram.Record(std::chrono::milliseconds(3));
  const std::vector<LatencyHistogram::Bucket> buckets = histogram.NonEmptyBuckets();
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_LE(buckets[0].lowest, 250'000);
  EXPECT_GE(buckets[0].highest, 250'000);
  EXPECT_EQ(buckets[0].count, 2u);
  EXPECT_LE(buckets[1].lowest, 3'000'000);
  EXPECT_GE(buckets[1].highest, 3'000'000);
  EXPECT_LT(buckets[0].index, buckets[1].index);

  histogram.Reset();
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.max(), 0);
  EXPECT_TRUE(histogram.NonEmptyBuckets().empty());
  histogram.Record(7);
  EXPECT_EQ(histogram.min(), 7);
}

TEST(LatencyHistogramTest, JsonRoundTrip) {
  const std::uint64_t seed = Seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);
  std::lognormal_distribution<double> lognormal(std::log(1e5), 2);
  for (int digits = 1; digits <= 5; ++digits) {
    LatencyHistogram histogram = Make(digits, 10'000'000'000);
    for (int i = 0; i < 10'000; ++i) {
      histogram.Record(static_cast<std::int64_t>(std::min(lognormal(random), 1e15)));
    }
    histogram.Record(-3);
    const std::string text = histogram.ToJsonString();
    EXPECT_EQ(text.rfind("{\"digits\":" + std::to_string(digits) + ",\"highest\":10000000000,", 0),
              0u)
        << text.substr(0, 80);
    Result<LatencyHistogram> back = LatencyHistogram::FromJsonString(text);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->ToJsonString(), text);
    EXPECT_EQ(back->min(), histogram.min());
    EXPECT_EQ(back->max(), histogram.max());
    EXPECT_EQ(back->saturated(), histogram.saturated());
    EXPECT_EQ(back->rejected(), 1u);
    EXPECT_EQ(back->mean(), histogram.mean());
    EXPECT_EQ(back->ValueAtQuantile(0.999), histogram.ValueAtQuantile(0.999));
    // And through a JSON value, as a summary writer embeds it.
    Result<LatencyHistogram> from_value = LatencyHistogram::FromJson(histogram.ToJson());
    ASSERT_TRUE(from_value.ok()) << from_value.status();
    EXPECT_EQ(from_value->ToJson(), histogram.ToJson());
  }

  const LatencyHistogram empty;
  Result<LatencyHistogram> back = LatencyHistogram::FromJsonString(empty.ToJsonString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->count(), 0u);

  // Only the layout and counts are required; min and max default to the
  // bounds of the outermost buckets.
  Result<LatencyHistogram> minimal =
      LatencyHistogram::FromJsonString(R"({"digits":1,"highest":1000,"counts":[[5,2],[40,1]]})");
  ASSERT_TRUE(minimal.ok()) << minimal.status();
  EXPECT_EQ(minimal->count(), 3u);
  EXPECT_EQ(minimal->min(), 5);
  EXPECT_EQ(minimal->max(), minimal->HighestEquivalent(minimal->NonEmptyBuckets()[1].lowest));
}

TEST(LatencyHistogramTest, MalformedJsonIsRejectedWithAReason) {
  // Layout 1 digit up to 1000: 112 buckets; values 0..31 exact, bucket 111 holds 992..1000.
  const std::string head = R"({"digits":1,"highest":1000,)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not JSON: "},
      {"{\"digits\":", "not JSON: "},
      {"[1,2]", "(top level): expected an object"},
      {head + R"("counts":[],"digit":3})", R"(field "digit": unknown field)"},
      {R"({"digitz":1,"highest":1000,"counts":[]})", "did you mean \"digits\"?"},
      {R"({"highest":1000,"counts":[]})", R"(field "digits": missing)"},
      {R"({"digits":1,"counts":[]})", R"(field "highest": missing)"},
      {R"({"digits":1,"highest":1000})", R"(field "counts": missing)"},
      {R"({"digits":0,"highest":1000,"counts":[]})",
       "digits: expected an integer from 1 to 5, got 0"},
      {R"({"digits":6,"highest":1000,"counts":[]})", "got 6"},
      {R"({"digits":"3","highest":1000,"counts":[]})", R"(got "3")"},
      {R"({"digits":2.5,"highest":1000,"counts":[]})", "got 2.5"},
      {R"({"digits":1,"highest":0,"counts":[]})", "highest: expected at least 1"},
      {R"({"digits":1,"highest":-1,"counts":[]})", "highest: expected an integer from 0 to"},
      {R"({"digits":1,"highest":9223372036854775808,"counts":[]})", "highest: expected"},
      {head + R"("counts":{}})", "counts: expected an array"},
      {head + R"("counts":[5]})", "counts[0]: expected [bucket index, count]"},
      {head + R"("counts":[[1,2,3]]})", "counts[0]: expected [bucket index, count]"},
      {head + R"("counts":[[1,-2]]})", "counts[0]: expected"},
      {head + R"("counts":[[1,2.0]]})", "counts[0]: expected"},
      {head + R"("counts":[[-1,2]]})", "counts[0]: expected"},
      {head + R"("counts":[[1,1],[112,1]]})",
       "counts[1]: bucket index 112 is past the last bucket (111)"},
      {head + R"("counts":[[18446744073709551615,1]]})", "is past the last bucket"},
      {head + R"("counts":[[3,1],[3,1]]})", "counts[1]: bucket index 3 does not follow"},
      {head + R"("counts":[[4,1],[3,1]]})", "strictly increasing"},
      {head + R"("counts":[[4,0]]})", "counts[0]: count is 0"},
      {head + R"("counts":[[4,1]],"total":2})",
       "total: 2 does not match the counts, which add up to 1"},
      {head + R"("counts":[[4,1]],"min":5})",
       "min: 5 is outside the first non-empty bucket [4, 4]"},
      {head + R"("counts":[[4,1],[9,1]],"max":4})", "max: 4 is outside the last non-empty bucket"},
      {head + R"("counts":[],"min":0})", "min: given for an empty histogram"},
      {head + R"("counts":[[4,1]],"saturated":1})", "saturated: 1 is more than"},
      {head + R"("counts":[[111,1]],"saturated":1,"max":995})", "max: 995 is not the highest"},
      {head + R"("counts":[[4,1]],"rejected":-1})", "rejected: expected an integer"},
      {head + R"("counts":[[4,1]],"min":"4"})", "min: expected an integer"},
      {head + R"("counts":[)" + std::string(100000, '[') + std::string(100000, ']') + "]}",
       "counts[0]: expected"},
  };
  for (const auto& [text, expected] : cases) {
    const Result<LatencyHistogram> parsed = LatencyHistogram::FromJsonString(text);
    ASSERT_FALSE(parsed.ok()) << text.substr(0, 120);
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(expected), std::string::npos)
        << "input: " << text.substr(0, 120) << "\nmessage: " << parsed.status().message()
        << "\nexpected to contain: " << expected;
  }
  const LatencyHistogram layout = Make(1, 1000);
  EXPECT_EQ(layout.bucket_count(), 112u);

  // More entries than there are buckets is refused before any is read.
  json many = {{"digits", 1}, {"highest", 1000}, {"counts", json::array()}};
  for (int i = 0; i < 113; ++i) many["counts"].push_back({i, 1});
  EXPECT_NE(
      LatencyHistogram::FromJson(many).status().message().find("113 entries, more than the 112"),
      std::string::npos);
}

// Random byte edits of a valid document: every outcome is a value or an
// error, never a crash, and every accepted document round-trips.
TEST(LatencyHistogramTest, MutatedJsonNeverCrashes) {
  const std::uint64_t seed = Seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);
  LatencyHistogram histogram = Make(2, 100'000);
  for (std::int64_t v : {0, 3, 250, 251, 4000, 99'999, 100'000, 200'000}) histogram.Record(v);
  const std::string valid = histogram.ToJsonString();
  const std::string alphabet = "0123456789-[],{}\":.e ";
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string text = valid;
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = random() % text.size();
      switch (random() % 3) {
        case 0:
          text[at] = alphabet[random() % alphabet.size()];
          break;
        case 1:
          text.erase(at, 1);
          break;
        default:
          text.insert(at, 1, alphabet[random() % alphabet.size()]);
      }
      if (text.empty()) text = "{";
    }
    const Result<LatencyHistogram> parsed = LatencyHistogram::FromJsonString(text);
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    ++accepted;
    const Result<LatencyHistogram> again = LatencyHistogram::FromJsonString(parsed->ToJsonString());
    ASSERT_TRUE(again.ok()) << text << "\n" << again.status();
    EXPECT_EQ(again->ToJson(), parsed->ToJson()) << text;
  }
  std::printf("%d of 5000 mutations accepted\n", accepted);
}

TEST(LatencyHistogramTest, PercentileTable) {
  LatencyHistogram histogram;
  for (std::int64_t v = 1; v <= 1000; ++v) histogram.Record(v * 1000);  // 1us .. 1ms
  histogram.Record(std::chrono::hours(3));
  const std::string table = histogram.PercentileTable({0.5, 0.99, 0.999, 0.9999, 1});
  EXPECT_EQ(table,
            "  percentile        value          count\n"
            "     50.000%      501.2us            501\n"
            "     99.000%      991.2us            991\n"
            "     99.900%      1.000ms           1000\n"
            "     99.990%        3600s           1001\n"
            "    100.000%        3600s           1001\n"
            "count 1001, mean 3.596s, stddev 113.7s, min 1.000us, max 3600s\n"
            "3 significant digits up to 3600s; 1 saturated, 0 rejected\n")
      << table;
  // The mean is within precision: 3600 s stands for the middle of its 2.1 s bucket.
  EXPECT_NE(histogram.PercentileTable({0.999999}).find("   99.9999%"), std::string::npos);
  std::printf("%s", histogram.PercentileTable().c_str());
}

}  // namespace
}  // namespace firedrill::workload
