#include "firedrill/gpu/selection.h"

#include <gtest/gtest.h>

#include <set>

#include "pretrained_metamodel.h"

namespace firedrill::gpu {
namespace {

// The bar, on the default synthetic dataset in balanced mode: at
// least 90% of the planted features come out of stage 3, and stage 1 keeps
// a tenth (0.1 +- 0.02).
TEST(SelectionTest, BalancedModeRecoversThePlantedFeaturesOfTheDefaultDataset) {
  for (std::uint64_t seed : {1, 2, 3}) {
    DatasetSpec spec;
    spec.seed = seed;
    auto dataset = GenerateDataset(Backend::kCpu, spec);
    ASSERT_TRUE(dataset.ok()) << dataset.status();
    SelectionWorkspace workspace;
    auto result =
        RunSelection(*dataset, Pretrained(), OptionsForMode(Mode::kBalanced, seed), &workspace);
    ASSERT_TRUE(result.ok()) << result.status();
    const std::set<std::uint32_t> chosen(result->stage3.selected.begin(),
                                         result->stage3.selected.end());
    std::size_t found = 0;
    for (std::uint32_t feature : dataset->informative) found += chosen.count(feature);
    std::printf(
        "seed %llu: %zu x %zu, stage 1 kept %zu (ratio %.3f), stage 2 %zu, stage 3 %zu with %zu of "
        "%zu "
        "planted, CV R^2 %.3f, quality %.3f; %.2f s, %.2f s, %.2f s\n",
        static_cast<unsigned long long>(seed), spec.samples, spec.features,
        result->stage1.selected.size(), result->stage1.reduction_ratio,
        result->stage2.selected.size(), result->stage3.selected.size(), found,
        dataset->informative.size(), result->stage3.cv_r2, result->quality,
        result->stage_seconds[0], result->stage_seconds[1], result->stage_seconds[2]);
    EXPECT_GE(static_cast<double>(found), 0.9 * static_cast<double>(dataset->informative.size()));
    EXPECT_NEAR(result->stage1.reduction_ratio, 0.1, 0.02);
    EXPECT_EQ(result->stage2.selected.size(), 50u);
    EXPECT_GE(result->stage3.selected.size(), 10u);
    EXPECT_LE(result->stage3.selected.size(), 20u);
    EXPECT_GT(result->quality, 0.8);
  }
}

TEST(SelectionTest, ModesParseAndDiffer) {
  Mode mode;
  ASSERT_TRUE(ParseMode("accurate", &mode));
  EXPECT_EQ(mode, Mode::kAccurate);
  EXPECT_EQ(ModeName(Mode::kFast), "fast");
  EXPECT_FALSE(ParseMode("quick", &mode));
  const SelectionOptions fast = OptionsForMode(Mode::kFast, 1),
                         accurate = OptionsForMode(Mode::kAccurate, 1);
  EXPECT_LT(fast.stage2.rounds * fast.stage2.batch, accurate.stage2.rounds * accurate.stage2.batch);
  EXPECT_LT(fast.stage3.folds, accurate.stage3.folds);
}

}  // namespace
}  // namespace firedrill::gpu
