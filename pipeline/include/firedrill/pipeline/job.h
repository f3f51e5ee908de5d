// A feature-selection job as clients submit it (JSON over HTTP, the same
// fields over gRPC) and as the pipeline reports it back.
//
//   {"idempotency_key": "k-1",                       optional, <= 128 chars
//    "mode": "balanced",                             fast | balanced | accurate
//    "dataset": {"samples": 10000, "features": 1000, "informative": 20,
//                "decoys": 20, "noise": 0.1, "seed": 1}}
//
// or, for a CSV file in the pipeline's dataset directory,
//    "dataset": {"csv": "sales/2026-11.csv", "target": "revenue"}
//
// Unknown fields, wrong types and out-of-range values are errors that name
// the field; nothing is guessed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "firedrill/core/status.h"
#include "firedrill/gpu/dataset.h"
#include "firedrill/gpu/selection.h"

namespace firedrill::pipeline {

inline constexpr std::size_t kMaxJobRequestBytes = 64 * 1024;
inline constexpr std::size_t kMaxIdempotencyKeyLength = 128;
inline constexpr std::size_t kMaxSamples = 1'000'000;
inline constexpr std::size_t kMaxFeatures = 10'000;
// samples x features, so one job's data stays within what a card holds.
inline constexpr std::uint64_t kMaxDatasetValues = 10'000'000'000ull;

struct JobRequest {
  std::string idempotency_key;  // empty: none given
  gpu::Mode mode = gpu::Mode::kBalanced;
  gpu::DatasetSpec dataset;  // a synthetic dataset, unless `csv` is set
  // A CSV file in the pipeline's dataset directory (a relative path without
  // ".."), and the name of its target column (empty: the last column).
  std::string csv;
  std::string csv_target;
};

// Parses and validates a JSON body. Errors (kInvalidArgument) read
// "field 'dataset.samples': expected an integer in [16, 1000000], got -5".
Result<JobRequest> ParseJobRequest(std::string_view body);

// The canonical JSON of a request: what the job store keeps and what a
// retried submission is compared with.
std::string JobRequestToJson(const JobRequest& request);

}  // namespace firedrill::pipeline
