#include "firedrill/workload/job_mix.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace firedrill::workload {
namespace {

using nlohmann::json;

std::uint64_t Seed(std::uint64_t seed) {
  std::printf("[   seed   ] %llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

JobMix MixOf(const std::vector<json>& entries, std::uint64_t seed) {
  Result<JobMix> mix = JobMix::FromJson(entries, seed);
  EXPECT_TRUE(mix.ok()) << mix.status();
  return std::move(mix).value();
}

template <typename T>
T Median(std::vector<T> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

TEST(JobMixTest, ReadsTheEnginesFields) {
  // As the loader holds them: every scalar as text.
  const Result<JobKind> kind = ParseJobKind({{"weight", "3"},
                                             {"samples", "5000"},
                                             {"features", "2000"},
                                             {"informative", "20"},
                                             {"noise", "0.5"},
                                             {"mode", "fast"},
                                             {"sizeDistribution", "pareto"},
                                             {"dataset", "sales.csv"}});
  ASSERT_TRUE(kind.ok()) << kind.status();
  EXPECT_EQ(kind->weight, 3);
  EXPECT_EQ(kind->sizes, SizeDistribution::kPareto);
  EXPECT_EQ(kind->shape, (JobShape{5000, 2000, 20, 20, 0.5, JobMode::kFast, "sales.csv", 0}));

  // Absent fields are the pipeline's defaults; JSON numbers work too.
  const Result<JobKind> defaults = ParseJobKind({{"features", 8}});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->weight, 1);
  EXPECT_EQ(defaults->sizes, SizeDistribution::kFixed);
  EXPECT_EQ(defaults->shape, (JobShape{10'000, 8, 20, 20, 0.1, JobMode::kBalanced, "", 0}));

  EXPECT_EQ(ParseJobKind({{"mode", "slow"}}).status().message(),
            "field 'mode': expected fast, balanced or accurate, got \"slow\"");
  EXPECT_EQ(ParseJobKind({{"samples", "0"}}).status().message(),
            "field 'samples': expected an integer from 1 to 100000000, got \"0\"");
  EXPECT_EQ(ParseJobKind({{"features", "1.5"}}).status().message(),
            "field 'features': expected an integer from 1 to 10000000, got \"1.5\"");
  EXPECT_EQ(ParseJobKind({{"sizeDistribution", "zipf"}}).status().message(),
            "field 'sizeDistribution': expected fixed, lognormal or pareto, got \"zipf\"");
  EXPECT_EQ(JobMix::FromJson({json::object(), {{"weight", "x"}}}, 1).status().message(),
            "job mix: entry 2: field 'weight': expected a number, got \"x\"");
  EXPECT_EQ(JobMix::FromJson({{{"weight", "0"}}, {{"weight", 0}}}, 1).status().message(),
            "job mix: every weight is 0, so no job can be chosen");
}

TEST(JobMixTest, AnEmptyMixSendsDefaultJobs) {
  JobMix mix = MixOf({}, 1);
  ASSERT_EQ(mix.kinds().size(), 1u);
  EXPECT_EQ(mix.Next(), JobShape{});
}

TEST(JobMixTest, PicksKindsByWeight) {
  const std::uint64_t seed = Seed(0x70b5);
  JobMix mix = MixOf({{{"weight", "1"}, {"mode", "fast"}},
                      {{"weight", "0"}, {"mode", "accurate"}},
                      {{"weight", "2"}, {"mode", "balanced"}},
                      {{"weight", "7"}, {"samples", "100"}}},
                     seed);
  const int draws = 100'000;
  std::vector<int> counts(4, 0);
  for (int i = 0; i < draws; ++i) {
    const JobShape shape = mix.Next();
    ++counts[shape.kind];
    EXPECT_EQ(shape, mix.kinds()[shape.kind].shape) << "fixed sizes never vary";
  }
  EXPECT_EQ(counts[1], 0) << "weight 0 is never chosen";
  // Pearson's chi-square over the three live kinds has 2 degrees of freedom;
  // 27.6 is its 1e-6 upper quantile.
  const double shares[] = {0.1, 0, 0.2, 0.7};
  double chi_square = 0;
  for (int kind : {0, 2, 3}) {
    const double expected = shares[kind] * draws;
    chi_square += (counts[kind] - expected) * (counts[kind] - expected) / expected;
  }
  std::printf("counts %d %d %d, chi-square %.2f\n", counts[0], counts[2], counts[3], chi_square);
  EXPECT_LT(chi_square, 27.6);
}

TEST(JobMixTest, HeavyTailedSizesHaveTheGivenMedian) {
  const std::uint64_t seed = Seed(20261127);
  for (const char* distribution : {"lognormal", "pareto"}) {
    JobMix mix = MixOf({{{"samples", "5000"},
                         {"features", "2000"},
                         {"informative", "20"},
                         {"sizeDistribution", distribution}}},
                       seed);
    const int draws = 100'001;
    std::vector<std::int64_t> samples;
    std::vector<std::int64_t> features;
    for (int i = 0; i < draws; ++i) {
      const JobShape shape = mix.Next();
      samples.push_back(shape.samples);
      features.push_back(shape.features);
      EXPECT_EQ(shape.informative, 20);
    }
    // The sample median's relative sd is under 0.5% for both laws at this
    // size (lognormal: sqrt(pi/2) * 0.5 / sqrt(n); pareto: (1/alpha) / sqrt(n)).
    EXPECT_NEAR(static_cast<double>(Median(samples)), 5000, 5000 * 0.025) << distribution;
    EXPECT_NEAR(static_cast<double>(Median(features)), 2000, 2000 * 0.025) << distribution;
    // Heavy tails: pareto puts 2^-1 * 10^-1.5 = 1.58% over 10x the median;
    // lognormal (sigma 0.5) essentially nothing.
    const double over =
        static_cast<double>(std::count_if(samples.begin(), samples.end(),
                                          [](std::int64_t s) { return s > 50'000; })) /
        draws;
    if (std::string(distribution) == "pareto") {
      EXPECT_NEAR(over, 0.0158, 5 * std::sqrt(0.0158 * (1 - 0.0158) / draws));
    } else {
      EXPECT_LT(over, 1e-4);
    }
    EXPECT_GE(*std::min_element(samples.begin(), samples.end()), 1);
  }
}

TEST(JobMixTest, DrawsAreClampedToTheFormatsBounds) {
  const std::uint64_t seed = Seed(99);
  JobMix mix = MixOf({{{"samples", "100000000"},
                       {"features", "30"},
                       {"informative", "25"},
                       {"sizeDistribution", "pareto"}},
                      {{"samples", "2"},
                       {"features", "10000000"},
                       {"informative", "100000"},
                       {"sizeDistribution", "lognormal"}}},
                     seed);
  bool narrowed = false;
  for (int i = 0; i < 20'000; ++i) {
    const JobShape shape = mix.Next();
    EXPECT_GE(shape.samples, 1);
    EXPECT_LE(shape.samples, kMaxSamples);
    EXPECT_GE(shape.features, 1);
    EXPECT_LE(shape.features, kMaxFeatures);
    EXPECT_LE(shape.informative, shape.features);
    EXPECT_EQ(shape.informative,
              std::min(mix.kinds()[shape.kind].shape.informative, shape.features));
    EXPECT_EQ(shape.decoys, std::min(mix.kinds()[shape.kind].shape.decoys, shape.features - shape.informative))
        << "each draw fits what the entry asked to its own width";
    narrowed = narrowed || shape.informative < mix.kinds()[shape.kind].shape.informative;
  }
  EXPECT_TRUE(narrowed) << "some pareto draws have fewer than 25 features";
}

// HSOF refuses informative + decoys > features: a narrow dataset plants
// fewer decoys, then fewer informative features, whatever the mix asked.
TEST(JobMixTest, ANarrowDatasetPlantsFewerDecoysFirst) {
  JobShape wide;
  wide.features = 100;
  wide.informative = 10;
  wide.decoys = 30;
  FitToFeatures(wide);
  EXPECT_EQ(wide.decoys, 30) << "nothing to cut";
  JobShape narrow = wide;
  narrow.features = 25;
  FitToFeatures(narrow);
  EXPECT_EQ(narrow.informative, 10);
  EXPECT_EQ(narrow.decoys, 15);
  JobShape tiny = wide;
  tiny.features = 4;
  FitToFeatures(tiny);
  EXPECT_EQ(tiny.informative, 4);
  EXPECT_EQ(tiny.decoys, 0);
  // A mix keeps what an entry asked; each job it draws is fitted.
  JobMix mix = MixOf({{{"features", "25"}, {"informative", "10"}}}, Seed(5));
  EXPECT_EQ(mix.kinds()[0].shape.decoys, 20);
  const JobShape drawn = mix.Next();
  EXPECT_EQ(drawn.informative, 10);
  EXPECT_EQ(drawn.decoys, 15);
}

TEST(JobMixTest, DeterministicForASeed) {
  const std::uint64_t seed = Seed(123456789);
  const std::vector<json> entries = {{{"weight", "3"},
                                      {"samples", "5000"},
                                      {"features", "2000"},
                                      {"sizeDistribution", "lognormal"}},
                                     {{"weight", "1"},
                                      {"samples", "20000"},
                                      {"features", "5000"},
                                      {"mode", "accurate"},
                                      {"sizeDistribution", "pareto"}}};
  JobMix first = MixOf(entries, seed);
  JobMix second = MixOf(entries, seed);
  JobMix other = MixOf(entries, seed + 1);
  int differences = 0;
  for (int i = 0; i < 1000; ++i) {
    const JobShape shape = first.Next();
    EXPECT_EQ(second.Next(), shape) << i;
    differences += other.Next() == shape ? 0 : 1;
  }
  EXPECT_GT(differences, 900);
}

}  // namespace
}  // namespace firedrill::workload
