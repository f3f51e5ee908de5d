#include "firedrill/gpu/stage2.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "firedrill/gpu/dataset.h"
#include "firedrill/gpu/metamodel.h"
#include "pretrained_metamodel.h"

namespace firedrill::gpu {
namespace {

struct Prepared {
  Dataset dataset;
  Stage1Result stage1;
};

Prepared Prepare(const DatasetSpec& spec) {
  Prepared out;
  auto dataset = GenerateDataset(Backend::kCpu, spec);
  EXPECT_TRUE(dataset.ok()) << dataset.status();
  out.dataset = std::move(dataset).value();
  Stage1Workspace workspace;
  auto stage1 =
      RunStage1(out.dataset.data, out.dataset.target, spec.samples, spec.features, {}, &workspace);
  EXPECT_TRUE(stage1.ok()) << stage1.status();
  out.stage1 = std::move(stage1).value();
  return out;
}

std::size_t Planted(const std::vector<std::uint32_t>& selected,
                    const std::vector<std::uint32_t>& planted) {
  const std::set<std::uint32_t> chosen(selected.begin(), selected.end());
  std::size_t found = 0;
  for (std::uint32_t feature : planted) found += chosen.count(feature);
  return found;
}

const DatasetSpec kSpec{
    .samples = 4000, .features = 1000, .informative = 20, .decoys = 20, .noise = 0.1, .seed = 5};

TEST(Stage2Test, KeepsFiftyAndThePlantedFeatures) {
  const Prepared prepared = Prepare(kSpec);
  const std::size_t in_candidates = Planted(prepared.stage1.selected, prepared.dataset.informative);
  Stage2Workspace workspace;
  Stage2Options options;
  options.seed = 11;
  std::printf("seed %llu\n", static_cast<unsigned long long>(options.seed));
  auto result = RunStage2(prepared.dataset.data, prepared.dataset.target, kSpec.samples,
                          prepared.stage1, Pretrained(), options, &workspace);
  ASSERT_TRUE(result.ok()) << result.status();
  const std::size_t found = Planted(result->selected, prepared.dataset.informative);
  std::printf(
      "stage 1 kept %zu candidates with %zu of %zu planted; stage 2 kept %zu with %zu planted; "
      "%zu rollouts, %zu evaluations, metamodel RMSE %.4f, best real R^2 %.3f\n",
      prepared.stage1.selected.size(), in_candidates, prepared.dataset.informative.size(),
      result->selected.size(), found, result->rollouts, result->evaluations, result->metamodel_rmse,
      result->best_r2);
  EXPECT_EQ(result->selected.size(), 50u);
  EXPECT_EQ(found, in_candidates) << "stage 2 dropped a planted feature stage 1 had found";
  EXPECT_EQ(result->rollouts, static_cast<std::size_t>(options.rounds * options.batch));
  EXPECT_EQ(result->batch_seconds.size(), static_cast<std::size_t>(options.rounds));
  EXPECT_GT(result->evaluations, static_cast<std::size_t>(options.rounds));
  EXPECT_GT(result->best_r2, 0.3);
  EXPECT_LT(result->metamodel_rmse, 0.15);
}

// The drill's premise: noise in the metamodel's weights steers the search
// wrong. One draw of noise may happen to keep the model's sense of direction
// (the descriptor has eight dimensions), so the claim is about the average
// over draws: fewer planted features kept, and a worse-fitting metamodel.
TEST(Stage2Test, ACorruptedMetamodelKeepsFewerPlantedFeatures) {
  const Prepared prepared = Prepare(kSpec);
  Stage2Workspace workspace;
  const Stage2Options options{.rounds = 16, .seed = 2};
  auto good = RunStage2(prepared.dataset.data, prepared.dataset.target, kSpec.samples,
                        prepared.stage1, Pretrained(), options, &workspace);
  ASSERT_TRUE(good.ok()) << good.status();
  const std::size_t good_found = Planted(good->selected, prepared.dataset.informative);
  constexpr int kDraws = 8;
  double bad_found = 0, bad_rmse = 0;
  for (int draw = 1; draw <= kDraws; ++draw) {
    Metamodel corrupted = Pretrained();
    corrupted.Perturb(3.0, draw);
    auto bad = RunStage2(prepared.dataset.data, prepared.dataset.target, kSpec.samples,
                         prepared.stage1, corrupted, options, &workspace);
    ASSERT_TRUE(bad.ok()) << bad.status();
    const std::size_t found = Planted(bad->selected, prepared.dataset.informative);
    std::printf("noise seed %d: %zu planted kept, metamodel RMSE %.3f\n", draw, found,
                bad->metamodel_rmse);
    bad_found += static_cast<double>(found) / kDraws;
    bad_rmse += bad->metamodel_rmse / kDraws;
  }
  std::printf(
      "pretrained: %zu planted kept, RMSE %.3f; corrupted, mean of %d: %.1f kept, RMSE %.3f\n",
      good_found, good->metamodel_rmse, kDraws, bad_found, bad_rmse);
  EXPECT_EQ(good_found, prepared.dataset.informative.size());
  EXPECT_LT(bad_found, 0.8 * static_cast<double>(good_found));
  EXPECT_GT(bad_rmse, 3 * good->metamodel_rmse);
}

// The form of the fault a drill relies on: a model inverted by a sign error
// steers every search wrong, whatever the search's seed.
TEST(Stage2Test, AnInvertedMetamodelKeepsFewPlantedFeaturesEveryTime) {
  const Prepared prepared = Prepare(kSpec);
  Stage2Workspace workspace;
  Metamodel inverted = Pretrained();
  inverted.Invert();
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const Stage2Options options{.rounds = 16, .seed = seed};
    auto result = RunStage2(prepared.dataset.data, prepared.dataset.target, kSpec.samples,
                            prepared.stage1, inverted, options, &workspace);
    ASSERT_TRUE(result.ok()) << result.status();
    const std::size_t found = Planted(result->selected, prepared.dataset.informative);
    std::printf("search seed %llu: %zu of %zu planted kept\n", static_cast<unsigned long long>(seed), found,
                prepared.dataset.informative.size());
    EXPECT_LT(found, prepared.dataset.informative.size() / 2);
  }
}

TEST(Stage2Test, SameSeedSameSelection) {
  const Prepared prepared =
      Prepare({.samples = 2000, .features = 400, .informative = 8, .decoys = 4, .seed = 3});
  Stage2Workspace workspace;
  const Stage2Options options{.rounds = 8, .seed = 4};
  auto first = RunStage2(prepared.dataset.data, prepared.dataset.target, 2000, prepared.stage1,
                         Pretrained(), options, &workspace);
  auto second = RunStage2(prepared.dataset.data, prepared.dataset.target, 2000, prepared.stage1,
                          Pretrained(), options, &workspace);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->selected, second->selected);
  EXPECT_EQ(first->metamodel.weights(), second->metamodel.weights());
  // Fewer candidates than the output: all of them go on.
  EXPECT_EQ(first->selected.size(), prepared.stage1.selected.size());
}

TEST(Stage2Test, RejectsBadOptions) {
  const Prepared prepared =
      Prepare({.samples = 500, .features = 100, .informative = 4, .decoys = 0, .seed = 3});
  Stage2Workspace workspace;
  auto run = [&](Stage2Options options) {
    return RunStage2(prepared.dataset.data, prepared.dataset.target, 500, prepared.stage1,
                     Pretrained(), options, &workspace)
        .status()
        .code();
  };
  EXPECT_EQ(run({.max_subset = 65}), StatusCode::kInvalidArgument);
  EXPECT_EQ(run({.min_subset = 9, .max_subset = 8}), StatusCode::kInvalidArgument);
  EXPECT_EQ(run({.trees = 0}), StatusCode::kInvalidArgument);
  EXPECT_EQ(run({.folds = 1}), StatusCode::kInvalidArgument);
  Stage1Result empty;
  EXPECT_EQ(RunStage2(prepared.dataset.data, prepared.dataset.target, 500, empty, Pretrained(), {},
                      &workspace)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(MetamodelTest, SerializesExactlyAndRejectsDamagedFiles) {
  const Metamodel model = Metamodel::Initial(3);
  auto parsed = Metamodel::Parse(model.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->weights(), model.weights());

  EXPECT_EQ(Metamodel::Parse("").status().message(), "line 1: the metamodel file is empty");
  EXPECT_EQ(Metamodel::Parse("hello\n").status().message(),
            "line 1: expected 'firedrill-metamodel 1', found 'hello'");
  std::string text = model.Serialize();
  text.replace(text.find('\n') + 1, 0, "nan\n");
  EXPECT_EQ(Metamodel::Parse(text).status().message(),
            "line 2: expected a finite number, found 'nan'");
  std::string truncated = model.Serialize();
  truncated.resize(truncated.rfind('\n', truncated.size() - 2) + 1);
  EXPECT_NE(Metamodel::Parse(truncated).status().message().find("expected 161 weights, found 160"),
            std::string::npos)
      << Metamodel::Parse(truncated).status();
}

TEST(MetamodelTest, TrainingFitsAndPerturbingUndoesIt) {
  // y = 0.5 x1 + 0.3 x4 on random descriptors.
  std::mt19937 random(17);
  std::uniform_real_distribution<float> unit(0, 1);
  std::vector<TrainingExample> examples(200);
  for (auto& example : examples) {
    for (float& x : example.descriptor) x = unit(random);
    example.value = 0.5f * example.descriptor[1] + 0.3f * example.descriptor[4];
  }
  Metamodel model = Metamodel::Initial(1);
  const double before = model.Train(examples, 1, 1e-2);
  const double after = model.Train(examples, 1500, 1e-2);
  std::printf("RMSE %.4f before training, %.4f after\n", before, after);
  EXPECT_LT(after, 0.02);
  EXPECT_LT(after, before / 10);
  Metamodel inverted = model;
  inverted.Invert();
  for (const TrainingExample& example : examples) {
    EXPECT_FLOAT_EQ(inverted.Predict(example.descriptor.data()), -model.Predict(example.descriptor.data()));
  }
  model.Perturb(2.0, 5);
  EXPECT_GT(model.Train(examples, 1, 0.0), 5 * after);
}

}  // namespace
}  // namespace firedrill::gpu
