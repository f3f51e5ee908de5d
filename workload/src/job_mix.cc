#include "firedrill/workload/job_mix.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <utility>

#include "portable.h"

namespace firedrill::workload {
namespace {

using internal::StandardNormal;
using internal::UniformHalfOpen;
using internal::UniformOpen;

Status Bad(std::string message) {
  return FD_STATUS(StatusCode::kInvalidArgument, std::move(message));
}

// A number given as JSON text (the loader's form) or as a JSON number.
Result<double> NumberField(const nlohmann::json& value, std::string_view name) {
  if (std::optional<double> number = internal::JsonNumber(value)) return *number;
  return Bad("field '" + std::string(name) + "': expected a number, got " + value.dump());
}

Result<std::int64_t> IntegerField(const nlohmann::json& value, std::string_view name,
                                  std::int64_t low, std::int64_t high) {
  FD_ASSIGN_OR_RETURN(const double number, NumberField(value, name));
  if (number != std::floor(number) || number < static_cast<double>(low) ||
      number > static_cast<double>(high)) {
    return Bad("field '" + std::string(name) + "': expected an integer from " +
               std::to_string(low) + " to " + std::to_string(high) + ", got " + value.dump());
  }
  return static_cast<std::int64_t>(number);
}

Result<std::string> TextField(const nlohmann::json& value, std::string_view name) {
  if (value.is_string()) return value.get<std::string>();
  return Bad("field '" + std::string(name) + "': expected a string, got " + value.dump());
}

}  // namespace

std::string_view JobModeName(JobMode mode) {
  switch (mode) {
    case JobMode::kFast:
      return "fast";
    case JobMode::kBalanced:
      return "balanced";
    case JobMode::kAccurate:
      return "accurate";
  }
  return "balanced";
}

Result<JobMode> ParseJobMode(std::string_view text) {
  if (text == "fast") return JobMode::kFast;
  if (text == "balanced") return JobMode::kBalanced;
  if (text == "accurate") return JobMode::kAccurate;
  return FD_STATUS(StatusCode::kInvalidArgument, "unknown job mode \"" + std::string(text) +
                                                     "\"; expected fast, balanced or accurate");
}

Result<JobKind> ParseJobKind(const nlohmann::json& fields) {
  JobKind kind;
  if (!fields.is_object()) return Bad("an entry must be a mapping, got " + fields.dump());
  JobShape& shape = kind.shape;
  for (const auto& [key, value] : fields.items()) {
    if (key == "weight") {
      FD_ASSIGN_OR_RETURN(kind.weight, NumberField(value, key));
      if (kind.weight < 0) return Bad("field 'weight': must not be negative");
    } else if (key == "samples") {
      FD_ASSIGN_OR_RETURN(shape.samples, IntegerField(value, key, 1, kMaxSamples));
    } else if (key == "features") {
      FD_ASSIGN_OR_RETURN(shape.features, IntegerField(value, key, 1, kMaxFeatures));
    } else if (key == "informative") {
      FD_ASSIGN_OR_RETURN(shape.informative, IntegerField(value, key, 0, kMaxInformative));
    } else if (key == "decoys") {
      FD_ASSIGN_OR_RETURN(shape.decoys, IntegerField(value, key, 0, kMaxFeatures));
    } else if (key == "noise") {
      FD_ASSIGN_OR_RETURN(shape.noise, NumberField(value, key));
      if (shape.noise < 0) return Bad("field 'noise': must not be negative");
    } else if (key == "mode") {
      FD_ASSIGN_OR_RETURN(const std::string text, TextField(value, key));
      Result<JobMode> mode = ParseJobMode(text);
      if (!mode.ok())
        return Bad("field 'mode': expected fast, balanced or accurate, got \"" + text + "\"");
      shape.mode = *mode;
    } else if (key == "dataset") {
      FD_ASSIGN_OR_RETURN(shape.dataset, TextField(value, key));
    } else if (key == "sizeDistribution") {
      FD_ASSIGN_OR_RETURN(const std::string text, TextField(value, key));
      if (text == "fixed") {
        kind.sizes = SizeDistribution::kFixed;
      } else if (text == "lognormal") {
        kind.sizes = SizeDistribution::kLognormal;
      } else if (text == "pareto") {
        kind.sizes = SizeDistribution::kPareto;
      } else {
        return Bad("field 'sizeDistribution': expected fixed, lognormal or pareto, got \"" + text +
                   "\"");
      }
    }
    // Other keys (a stray `kind`) were the validator's to refuse.
  }
  // What was asked is kept; each drawn job is fitted to its own width.
  return kind;
}

void FitToFeatures(JobShape& shape) {
  shape.informative = std::min(shape.informative, shape.features);
  shape.decoys = std::clamp<std::int64_t>(shape.decoys, 0, shape.features - shape.informative);
}

JobMix::JobMix(std::vector<JobKind> kinds, std::vector<double> cumulative, std::uint64_t seed)
    : kinds_(std::move(kinds)), cumulative_(std::move(cumulative)), random_(seed) {}

Result<JobMix> JobMix::Make(std::vector<JobKind> kinds, std::uint64_t seed) {
  if (kinds.empty()) kinds.emplace_back();
  std::vector<double> cumulative;
  cumulative.reserve(kinds.size());
  double total = 0;
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    const double weight = kinds[i].weight;
    if (!std::isfinite(weight) || weight < 0) {
      return Bad("job mix: entry " + std::to_string(i + 1) +
                 ": weight must be a finite number >= 0");
    }
    JobShape& shape = kinds[i].shape;
    shape.kind = i;
    shape.samples = std::clamp<std::int64_t>(shape.samples, 1, kMaxSamples);
    shape.features = std::clamp<std::int64_t>(shape.features, 1, kMaxFeatures);
    shape.informative = std::clamp<std::int64_t>(shape.informative, 0, kMaxInformative);
    shape.decoys = std::clamp<std::int64_t>(shape.decoys, 0, kMaxFeatures);
    total += weight;
    cumulative.push_back(total);
  }
  if (total <= 0) return Bad("job mix: every weight is 0, so no job can be chosen");
  return JobMix(std::move(kinds), std::move(cumulative), seed);
}

Result<JobMix> JobMix::FromJson(const std::vector<nlohmann::json>& entries, std::uint64_t seed) {
  std::vector<JobKind> kinds;
  kinds.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Result<JobKind> kind = ParseJobKind(entries[i]);
    if (!kind.ok()) return kind.status().WithContext("job mix: entry " + std::to_string(i + 1));
    kinds.push_back(std::move(kind).value());
  }
  return Make(std::move(kinds), seed);
}

std::int64_t JobMix::Draw(std::int64_t median, SizeDistribution sizes, std::int64_t low,
                          std::int64_t high) {
  double value = static_cast<double>(median);
  switch (sizes) {
    case SizeDistribution::kFixed:
      return std::clamp(median, low, high);
    case SizeDistribution::kLognormal:
      value *= std::exp(kLognormalSigma * StandardNormal(random_));
      break;
    case SizeDistribution::kPareto:
      // P(X > x) = (scale/x)^alpha; the median is scale * 2^(1/alpha).
      value *=
          std::pow(2.0, -1.0 / kParetoAlpha) * std::pow(UniformOpen(random_), -1.0 / kParetoAlpha);
      break;
  }
  // Clamped as a double first: a pareto tail can exceed what int64 holds.
  value = std::clamp(std::round(value), static_cast<double>(low), static_cast<double>(high));
  return static_cast<std::int64_t>(value);
}

JobShape JobMix::Next() {
  const double pick = UniformHalfOpen(random_) * cumulative_.back();
  // The first kind whose running sum exceeds the pick; kinds of weight 0
  // have an empty interval and are never chosen.
  std::size_t index = static_cast<std::size_t>(
      std::upper_bound(cumulative_.begin(), cumulative_.end(), pick) - cumulative_.begin());
  index = std::min(index, kinds_.size() - 1);
  const JobKind& kind = kinds_[index];
  JobShape shape = kind.shape;
  shape.samples = Draw(kind.shape.samples, kind.sizes, 1, kMaxSamples);
  shape.features = Draw(kind.shape.features, kind.sizes, 1, kMaxFeatures);
  FitToFeatures(shape);
  return shape;
}

}  // namespace firedrill::workload
