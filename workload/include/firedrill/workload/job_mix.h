// The job mix: which kind of job the load generator sends next, and how big
// it is. Kinds are picked by weight; with sizeDistribution lognormal or
// pareto, samples and features are drawn independently around the given
// values (the given value is the median), so a few jobs are much larger than
// the rest, as in production. Everything is drawn from one seeded generator,
// so a seed replays the same jobs in the same order on every platform.
//
// A JobMix is a value with its own random state; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/core/status.h"

namespace firedrill::workload {

enum class JobMode { kFast, kBalanced, kAccurate };
std::string_view JobModeName(JobMode mode);  // "fast", "balanced", "accurate"
Result<JobMode> ParseJobMode(std::string_view text);

enum class SizeDistribution { kFixed, kLognormal, kPareto };

// The format's bounds (workload/src/format.cc). The pipeline accepts less
// (pipeline/job.h); the target, not the generator, rejects what it cannot run.
inline constexpr std::int64_t kMaxSamples = 100'000'000;
inline constexpr std::int64_t kMaxFeatures = 10'000'000;
inline constexpr std::int64_t kMaxInformative = 100'000;

// One job to send. The defaults are the pipeline's (gpu::DatasetSpec).
struct JobShape {
  std::int64_t samples = 10'000;
  std::int64_t features = 1'000;
  std::int64_t informative = 20;  // <= features in a drawn job
  // Noisy copies of informative features (redundant, to be pruned); in a
  // drawn job <= features - informative, as HSOF requires (FitToFeatures).
  std::int64_t decoys = 20;
  double noise = 0.1;
  JobMode mode = JobMode::kBalanced;
  std::string dataset;   // a CSV in the pipeline's dataset folder; empty: synthetic
  std::size_t kind = 0;  // index of the mix entry it was drawn from, for per-kind reports

  bool operator==(const JobShape&) const = default;
};

// A narrow dataset plants fewer: informative <= features, then decoys <=
// features - informative. Without it a job of 30 features would ask for the
// default 20 + 20 and be refused by the pipeline.
void FitToFeatures(JobShape& shape);

// One entry of workload.mix, as asked: Next() fits each drawn job.
struct JobKind {
  double weight = 1;
  JobShape shape;
  SizeDistribution sizes = SizeDistribution::kFixed;
};

// A mix entry from its validated fields (engine::Spec::fields: scalars as
// text, or as JSON numbers when built by hand). Absent fields take defaults.
Result<JobKind> ParseJobKind(const nlohmann::json& fields);

// Spread of the size distributions: lognormal sigma, and the pareto tail
// index (alpha 1.5: finite mean, infinite variance; about one job in 60 is
// over 10x the median).
inline constexpr double kLognormalSigma = 0.5;
inline constexpr double kParetoAlpha = 1.5;

class JobMix {
 public:
  // No kinds means one default kind. Fails when every weight is 0 or a
  // weight is negative or not finite.
  static Result<JobMix> Make(std::vector<JobKind> kinds, std::uint64_t seed);
  // From workload.mix as the engine holds it: one fields object per entry.
  static Result<JobMix> FromJson(const std::vector<nlohmann::json>& entries, std::uint64_t seed);

  // The next job. Does not allocate unless the kind names a dataset file.
  JobShape Next();

  const std::vector<JobKind>& kinds() const { return kinds_; }

 private:
  JobMix(std::vector<JobKind> kinds, std::vector<double> cumulative, std::uint64_t seed);
  std::int64_t Draw(std::int64_t median, SizeDistribution sizes, std::int64_t low,
                    std::int64_t high);

  std::vector<JobKind> kinds_;
  std::vector<double> cumulative_;  // running sum of the weights
  std::mt19937_64 random_;
};

}  // namespace firedrill::workload
