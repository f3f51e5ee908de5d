// LatencyHistogram: a log-linear (HdrHistogram-style) histogram of
// non-negative integer values, nanoseconds by convention, with a stated
// precision and a sparse JSON form, so per-thread histograms can be merged
// and written into run summaries.
//
// Precision: with D significant decimal digits, every value is kept in a
// bucket whose width is at most 10^-D of its lowest value (values below
// 2 * 10^D exactly). ValueAtQuantile reports at or above the true value and
// within a relative error of 10^-D; min() and max() are exact; mean() is
// within 0.5 * 10^-D relative and stddev() within 0.5 * 10^-D of the root
// mean square of the values.
//
// No coordinated-omission correction happens here: the load generator
// measures from each request's intended send time instead.
//
// Thread-safety: single writer. Give each recording thread its own histogram
// and Merge them; reads must not run concurrently with writes.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"

namespace firedrill::workload {

class LatencyHistogram {
 public:
  static constexpr int kMinDigits = 1;
  static constexpr int kMaxDigits = 5;
  static constexpr int kDefaultDigits = 3;
  static constexpr std::int64_t kDefaultHighest = 3'600'000'000'000;  // 1 h in ns

  // One non-empty bucket: every value in [lowest, highest] counts here.
  struct Bucket {
    std::size_t index = 0;  // position in the counts array, as in the JSON form
    std::int64_t lowest = 0;
    std::int64_t highest = 0;
    std::uint64_t count = 0;
  };

  // 3 significant digits, values up to 1 hour in ns (about 270 KiB).
  LatencyHistogram();
  // digits in [1, 5], highest_trackable >= 1. Memory grows 8 to 16x per
  // digit: 5 digits up to 1 hour takes about 27 MiB.
  static Result<LatencyHistogram> Create(int significant_digits,
                                         std::int64_t highest_trackable = kDefaultHighest);

  // O(1), no allocation. A value above highest_trackable() is recorded as
  // highest_trackable() and counted in saturated(); a negative value is not
  // recorded and is counted in rejected().
  void Record(std::int64_t value) {
    if (static_cast<std::uint64_t>(value) > static_cast<std::uint64_t>(highest_)) [[unlikely]] {
      RecordOutOfRange(value, 1);
      return;
    }
    ++counts_[IndexOf(value)];
    ++total_;
    if (value < min_) min_ = value;
    if (value > max_) max_ = value;
  }
  void Record(Duration latency) { Record(static_cast<std::int64_t>(latency.count())); }
  // Records `count` copies of `value`. Counts saturate at 2^64 - 1, never wrap.
  void Record(std::int64_t value, std::uint64_t count);

  // Adds `other`'s values. InvalidArgument when the two differ in digits or
  // highest trackable value (their buckets would not line up).
  Status Merge(const LatencyHistogram& other);
  // Empties the histogram and keeps its configuration and memory.
  void Reset();

  int significant_digits() const { return digits_; }
  std::int64_t highest_trackable() const { return highest_; }
  std::uint64_t count() const { return total_; }  // recorded values, saturated ones included
  std::uint64_t saturated() const { return saturated_; }
  std::uint64_t rejected() const { return rejected_; }
  std::int64_t min() const { return total_ == 0 ? 0 : min_; }  // 0 when empty
  std::int64_t max() const { return max_; }                    // 0 when empty
  double mean() const;                                         // 0 when empty
  double stddev() const;  // population standard deviation; 0 when empty

  // The value at or below which a share q of the recorded values fall: the
  // value of rank max(1, ceil(q * count())) in sorted order, reported as the
  // highest value equivalent to it (the top of its bucket) but no more than
  // max(). q is clamped to [0, 1] (NaN counts as 0); 0 when empty. The rank
  // forgives a relative 1e-15 in q * count(), so decimal shares like 0.07
  // that binary cannot hold exactly do not round up a rank.
  std::int64_t ValueAtQuantile(double q) const;

  // Non-empty buckets in increasing value order, for export.
  std::vector<Bucket> NonEmptyBuckets() const;

  // The range of values that share `value`'s bucket (value in [0, highest_trackable()]).
  std::int64_t LowestEquivalent(std::int64_t value) const;
  std::int64_t HighestEquivalent(std::int64_t value) const;
  std::size_t bucket_count() const { return counts_.size(); }

  // {"digits":3,"highest":H,"total":N,"min":A,"max":B,"saturated":S,"rejected":R,
  //  "counts":[[index,count],...]}: only non-empty buckets, indexes ascending;
  // min and max are left out when the histogram is empty.
  nlohmann::json ToJson() const;
  std::string ToJsonString() const;
  // Reads the form above. "digits", "highest" and "counts" are required; the
  // rest are optional and, when present, must agree with the counts. Every
  // inconsistency is an InvalidArgument naming the field.
  static Result<LatencyHistogram> FromJson(const nlohmann::json& json);
  static Result<LatencyHistogram> FromJsonString(std::string_view text);

  // A compact percentile table for reports, one row per quantile (value and
  // count of values at or below it), then count, mean, stddev, min, max and
  // saturation; values in ns, us, ms or s.
  static const std::vector<double>& DefaultQuantiles();  // 50% ... 99.999%, 100%
  std::string PercentileTable(const std::vector<double>& quantiles = DefaultQuantiles()) const;

 private:
  LatencyHistogram(int digits, std::int64_t highest);

  // HdrHistogram's layout with a unit of 1: bucket b holds sub-buckets of
  // width 2^b; bucket 0 holds 0 .. 2 * half - 1 exactly, each later bucket
  // the upper half of its sub-bucket range, so index = (b << half_bits) + sub.
  std::size_t IndexOf(std::int64_t value) const {
    const auto v = static_cast<std::uint64_t>(value);
    const int bucket = 63 - std::countl_zero(v | sub_bucket_mask_) - half_bits_;
    return (static_cast<std::size_t>(bucket) << half_bits_) + static_cast<std::size_t>(v >> bucket);
  }
  std::int64_t LowestAt(std::size_t index) const;
  std::int64_t HighestAt(std::size_t index) const;
  void RecordOutOfRange(std::int64_t value, std::uint64_t count);
  // Indexes [first, last] of the non-empty buckets, from min_ and max_, so
  // scans skip the empty ends of the counts; last < first when empty.
  std::size_t FirstIndex() const { return total_ == 0 ? 1 : IndexOf(min_); }
  std::size_t LastIndex() const { return total_ == 0 ? 0 : IndexOf(max_); }
  // Index of the bucket holding the value of 1-based `rank`, and the count
  // through that bucket.
  std::size_t IndexOfRank(std::uint64_t rank, std::uint64_t* cumulative) const;
  // ValueAtQuantile, also giving the count of values at or below the result.
  std::int64_t Quantile(double q, std::uint64_t* cumulative) const;

  int digits_ = kDefaultDigits;
  std::int64_t highest_ = kDefaultHighest;
  int half_bits_ = 0;                  // log2 of the sub-buckets in each upper half
  std::uint64_t sub_bucket_mask_ = 0;  // 2 * half - 1
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t saturated_ = 0;
  std::uint64_t rejected_ = 0;
  std::int64_t min_ = std::numeric_limits<std::int64_t>::max();
  std::int64_t max_ = 0;
};

}  // namespace firedrill::workload
