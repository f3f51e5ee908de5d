#include "firedrill/workload/histogram.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "firedrill/core/text.h"

namespace firedrill::workload {
namespace {

using json = nlohmann::json;

constexpr std::uint64_t kMaxCount = std::numeric_limits<std::uint64_t>::max();

std::uint64_t SaturatingAdd(std::uint64_t a, std::uint64_t b) {
  std::uint64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? kMaxCount : sum;
}

std::string Describe(int digits, std::int64_t highest) {
  return std::to_string(digits) + " significant digits up to " + std::to_string(highest);
}

// The JSON text of a value for messages, cut short. Nested containers are
// only named: dumping recurses, and input may nest a million levels deep.
std::string Shown(const json& value) {
  if (value.is_object()) return "an object of " + std::to_string(value.size()) + " fields";
  if (value.is_array()) {
    for (const json& item : value) {
      if (item.is_structured()) return "an array of " + std::to_string(value.size()) + " entries";
    }
  }
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr std::size_t kMaxShown = 40;
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "...";
  return text;
}

Status JsonError(std::string_view where, std::string_view what) {
  return FD_STATUS(StatusCode::kInvalidArgument,
                   "histogram JSON: " + std::string(where) + ": " + std::string(what));
}

// Parsed text holds non-negative integers as unsigned, but a json built in
// code holds int64 values as signed.
bool IsNonNegativeInteger(const json& value) {
  return value.is_number_unsigned() ||
         (value.is_number_integer() && value.get<std::int64_t>() >= 0);
}

// A non-negative integer no larger than `limit`.
Result<std::uint64_t> ReadCount(const json& value, std::string_view field,
                                std::uint64_t limit = kMaxCount) {
  if (!IsNonNegativeInteger(value) || value.get<std::uint64_t>() > limit) {
    return JsonError(
        field, "expected an integer from 0 to " + std::to_string(limit) + ", got " + Shown(value));
  }
  return value.get<std::uint64_t>();
}

// Values in ns, us, ms or s with about four significant figures.
std::string FormatValue(std::int64_t ns) {
  char text[48];
  if (ns < 1000) {
    std::snprintf(text, sizeof text, "%" PRId64 "ns", ns);
    return text;
  }
  const char* unit = "s";
  double scaled = static_cast<double>(ns) / 1e9;
  if (ns < 999'950) {
    unit = "us";
    scaled = static_cast<double>(ns) / 1e3;
  } else if (ns < 999'950'000) {
    unit = "ms";
    scaled = static_cast<double>(ns) / 1e6;
  }
  const int decimals = scaled >= 1000 ? 0 : scaled >= 100 ? 1 : scaled >= 10 ? 2 : 3;
  std::snprintf(text, sizeof text, "%.*f%s", decimals, scaled, unit);
  return text;
}

// "99.9%" needs 3 decimals to line up; "99.9999%" needs 4 to be told from 100%.
std::string FormatPercent(double q) {
  const double percent = q * 100;
  int decimals = 3;
  while (decimals < 9) {
    const double scale = std::pow(10.0, decimals);
    if (std::abs(std::round(percent * scale) / scale - percent) < 1e-9) break;
    ++decimals;
  }
  char text[48];
  std::snprintf(text, sizeof text, "%.*f%%", decimals, percent);
  return text;
}

// mean() and stddev() never exceed the int64 range of the values, but a
// double near 2^63 may round up past it.
std::int64_t Rounded(double value) {
  constexpr double kLimit = 9.2e18;
  return static_cast<std::int64_t>(std::llround(std::min(value, kLimit)));
}

template <typename Json>
Json BuildJson(const LatencyHistogram& histogram) {
  Json out;
  out["digits"] = histogram.significant_digits();
  out["highest"] = histogram.highest_trackable();
  out["total"] = histogram.count();
  if (histogram.count() > 0) {
    out["min"] = histogram.min();
    out["max"] = histogram.max();
  }
  out["saturated"] = histogram.saturated();
  out["rejected"] = histogram.rejected();
  Json counts = Json::array();
  for (const LatencyHistogram::Bucket& bucket : histogram.NonEmptyBuckets()) {
    counts.push_back(Json::array({bucket.index, bucket.count}));
  }
  out["counts"] = std::move(counts);
  return out;
}

}  // namespace

LatencyHistogram::LatencyHistogram() : LatencyHistogram(kDefaultDigits, kDefaultHighest) {}

LatencyHistogram::LatencyHistogram(int digits, std::int64_t highest)
    : digits_(digits), highest_(highest) {
  // Values below 2 * 10^digits get a bucket each; above, each power of two is
  // split into at least 10^digits sub-buckets, which is what bounds the error.
  std::uint64_t exact_below = 2;
  for (int i = 0; i < digits; ++i) exact_below *= 10;
  const int sub_bucket_bits = std::bit_width(exact_below - 1);
  half_bits_ = sub_bucket_bits - 1;
  sub_bucket_mask_ = (std::uint64_t{1} << sub_bucket_bits) - 1;
  counts_.assign(IndexOf(highest_) + 1, 0);
}

Result<LatencyHistogram> LatencyHistogram::Create(int significant_digits,
                                                  std::int64_t highest_trackable) {
  if (significant_digits < kMinDigits || significant_digits > kMaxDigits) {
    return FD_STATUS(StatusCode::kInvalidArgument, "histogram significant digits must be from " +
                                                       std::to_string(kMinDigits) + " to " +
                                                       std::to_string(kMaxDigits) + ", got " +
                                                       std::to_string(significant_digits));
  }
  if (highest_trackable < 1) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "histogram highest trackable value must be at least 1, got " +
                         std::to_string(highest_trackable));
  }
  return LatencyHistogram(significant_digits, highest_trackable);
}

void LatencyHistogram::Record(std::int64_t value, std::uint64_t count) {
  if (count == 0) return;
  if (static_cast<std::uint64_t>(value) > static_cast<std::uint64_t>(highest_)) {
    RecordOutOfRange(value, count);
    return;
  }
  std::uint64_t& slot = counts_[IndexOf(value)];
  slot = SaturatingAdd(slot, count);
  total_ = SaturatingAdd(total_, count);
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::RecordOutOfRange(std::int64_t value, std::uint64_t count) {
  if (value < 0) {
    rejected_ = SaturatingAdd(rejected_, count);
    return;
  }
  saturated_ = SaturatingAdd(saturated_, count);
  Record(highest_, count);
}

Status LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (digits_ != other.digits_ || highest_ != other.highest_) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "cannot merge a histogram of " + Describe(other.digits_, other.highest_) +
                         " into one of " + Describe(digits_, highest_) +
                         ": their buckets do not line up");
  }
  // No bucket exceeds its histogram's total, so when the totals add without
  // overflow every bucket does too and the loop can stay branch-free.
  const std::size_t first = other.FirstIndex(), end = other.LastIndex() + 1;
  std::uint64_t total = 0;
  if (!__builtin_add_overflow(total_, other.total_, &total)) {
    for (std::size_t i = first; i < end; ++i) counts_[i] += other.counts_[i];
  } else {
    for (std::size_t i = first; i < end; ++i) {
      counts_[i] = SaturatingAdd(counts_[i], other.counts_[i]);
    }
    total = kMaxCount;
  }
  if (other.total_ > 0) {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  total_ = total;
  saturated_ = SaturatingAdd(saturated_, other.saturated_);
  rejected_ = SaturatingAdd(rejected_, other.rejected_);
  return Status::Ok();
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = saturated_ = rejected_ = 0;
  min_ = std::numeric_limits<std::int64_t>::max();
  max_ = 0;
}

std::int64_t LatencyHistogram::LowestAt(std::size_t index) const {
  int bucket = static_cast<int>(index >> half_bits_) - 1;
  std::uint64_t sub =
      (index & ((std::size_t{1} << half_bits_) - 1)) + (std::uint64_t{1} << half_bits_);
  if (bucket < 0) {
    bucket = 0;
    sub -= std::uint64_t{1} << half_bits_;
  }
  return static_cast<std::int64_t>(sub << bucket);
}

std::int64_t LatencyHistogram::HighestAt(std::size_t index) const {
  const int bucket = std::max(0, static_cast<int>(index >> half_bits_) - 1);
  // Written as lowest + (width - 1) so the top bucket of int64 does not overflow.
  const std::int64_t highest = LowestAt(index) + ((std::int64_t{1} << bucket) - 1);
  return std::min(highest, highest_);
}

std::int64_t LatencyHistogram::LowestEquivalent(std::int64_t value) const {
  return LowestAt(IndexOf(std::clamp<std::int64_t>(value, 0, highest_)));
}

std::int64_t LatencyHistogram::HighestEquivalent(std::int64_t value) const {
  return HighestAt(IndexOf(std::clamp<std::int64_t>(value, 0, highest_)));
}

double LatencyHistogram::mean() const {
  if (total_ == 0) return 0;
  // Each bucket stands for the middle of its range, kept within [min, max].
  double sum = 0;
  for (std::size_t i = FirstIndex(), last = LastIndex(); i <= last; ++i) {
    if (counts_[i] == 0) continue;
    const std::int64_t lowest = LowestAt(i);
    const std::int64_t middle = lowest + (HighestAt(i) - lowest + 1) / 2;
    sum += static_cast<double>(counts_[i]) * static_cast<double>(std::clamp(middle, min_, max_));
  }
  return sum / static_cast<double>(total_);
}

double LatencyHistogram::stddev() const {
  if (total_ == 0) return 0;
  const double average = mean();
  double sum = 0;
  for (std::size_t i = FirstIndex(), last = LastIndex(); i <= last; ++i) {
    if (counts_[i] == 0) continue;
    const std::int64_t lowest = LowestAt(i);
    const std::int64_t middle = lowest + (HighestAt(i) - lowest + 1) / 2;
    const double deviation = static_cast<double>(std::clamp(middle, min_, max_)) - average;
    sum += static_cast<double>(counts_[i]) * deviation * deviation;
  }
  return std::sqrt(sum / static_cast<double>(total_));
}

std::size_t LatencyHistogram::IndexOfRank(std::uint64_t rank, std::uint64_t* cumulative) const {
  const std::size_t first = FirstIndex(), last = LastIndex();
  if (rank > total_ / 2 && total_ < kMaxCount) {
    // High quantiles: walk down from the top, counting the values above, so
    // p99 reads the tail only. Exact while no count has saturated.
    std::uint64_t above = 0;
    for (std::size_t i = last; i > first; --i) {
      if (above + counts_[i] > total_ - rank) {
        *cumulative = total_ - above;
        return i;
      }
      above += counts_[i];
    }
    *cumulative = total_ - above;
    return first;
  }
  std::uint64_t seen = 0;
  for (std::size_t i = first; i < last; ++i) {
    seen = SaturatingAdd(seen, counts_[i]);
    if (seen >= rank) {
      *cumulative = seen;
      return i;
    }
  }
  *cumulative = SaturatingAdd(seen, counts_[last]);
  return last;
}

std::int64_t LatencyHistogram::ValueAtQuantile(double q) const {
  std::uint64_t cumulative = 0;
  return Quantile(q, &cumulative);
}

std::int64_t LatencyHistogram::Quantile(double q, std::uint64_t* cumulative) const {
  *cumulative = 0;
  if (total_ == 0) return 0;
  if (!(q > 0)) q = 0;  // also NaN
  if (q > 1) q = 1;
  // q and q * total each carry a rounding error of at most 2^-53 relative;
  // 1e-15 forgives both, so 0.07 * 100 (7.000000000000001) is rank 7.
  const double total = static_cast<double>(total_);
  const double exact = q * total;
  const double rounded = std::ceil(exact - exact * 1e-15);
  std::uint64_t rank = total_;
  if (q < 1 && rounded < total) {
    rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(rounded));
  }
  if (rank == total_) {  // the largest value, also once counts have saturated
    *cumulative = total_;
    return max_;
  }
  // The reported value is no more than the top of its bucket, so the count
  // through that bucket is exactly the count of values at or below it.
  return std::min(HighestAt(IndexOfRank(rank, cumulative)), max_);
}

std::vector<LatencyHistogram::Bucket> LatencyHistogram::NonEmptyBuckets() const {
  std::vector<Bucket> buckets;
  for (std::size_t i = FirstIndex(), last = LastIndex(); i <= last; ++i) {
    if (counts_[i] != 0) buckets.push_back({i, LowestAt(i), HighestAt(i), counts_[i]});
  }
  return buckets;
}

json LatencyHistogram::ToJson() const { return BuildJson<json>(*this); }

std::string LatencyHistogram::ToJsonString() const {
  return BuildJson<nlohmann::ordered_json>(*this).dump();
}

Result<LatencyHistogram> LatencyHistogram::FromJson(const json& in) {
  if (!in.is_object()) return JsonError("(top level)", "expected an object, got " + Shown(in));
  static const std::vector<std::string> kFields = {"digits", "highest",   "total",    "min",
                                                   "max",    "saturated", "rejected", "counts"};
  for (const auto& [name, value] : in.items()) {
    if (std::find(kFields.begin(), kFields.end(), name) != kFields.end()) continue;
    std::string message = "unknown field; expected one of " + JoinNames(kFields);
    if (const std::string near = ClosestMatch(name, kFields); !near.empty()) {
      message += " (did you mean \"" + near + "\"?)";
    }
    return JsonError("field \"" + name + "\"", message);
  }
  for (const char* required : {"digits", "highest", "counts"}) {
    if (!in.contains(required)) {
      return JsonError(std::string("field \"") + required + "\"", "missing");
    }
  }

  const json& digits = in["digits"];
  if (!digits.is_number_integer() || digits.get<std::int64_t>() < kMinDigits ||
      digits.get<std::int64_t>() > kMaxDigits) {
    return JsonError("digits", "expected an integer from " + std::to_string(kMinDigits) + " to " +
                                   std::to_string(kMaxDigits) + ", got " + Shown(digits));
  }
  constexpr auto kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  FD_ASSIGN_OR_RETURN(const std::uint64_t highest, ReadCount(in["highest"], "highest", kInt64Max));
  if (highest < 1) return JsonError("highest", "expected at least 1, got 0");
  LatencyHistogram out(digits.get<int>(), static_cast<std::int64_t>(highest));
  const std::string layout = Describe(out.digits_, out.highest_);

  const json& counts = in["counts"];
  if (!counts.is_array()) {
    return JsonError("counts",
                     "expected an array of [bucket index, count] pairs, got " + Shown(counts));
  }
  if (counts.size() > out.counts_.size()) {
    return JsonError("counts", std::to_string(counts.size()) + " entries, more than the " +
                                   std::to_string(out.counts_.size()) + " buckets of " + layout);
  }
  std::size_t first = 0, last = 0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    const std::string where = "counts[" + std::to_string(k) + "]";
    const json& entry = counts[k];
    if (!entry.is_array() || entry.size() != 2 || !IsNonNegativeInteger(entry[0]) ||
        !IsNonNegativeInteger(entry[1])) {
      return JsonError(
          where,
          "expected [bucket index, count] with two non-negative integers, got " + Shown(entry));
    }
    const std::uint64_t index = entry[0].get<std::uint64_t>();
    const std::uint64_t count = entry[1].get<std::uint64_t>();
    if (index >= out.counts_.size()) {
      return JsonError(where, "bucket index " + std::to_string(index) +
                                  " is past the last bucket (" +
                                  std::to_string(out.counts_.size() - 1) + ") of " + layout);
    }
    if (k > 0 && index <= last) {
      return JsonError(where, "bucket index " + std::to_string(index) +
                                  " does not follow the previous index " + std::to_string(last) +
                                  "; indexes must be strictly increasing");
    }
    if (count == 0) return JsonError(where, "count is 0; only non-empty buckets are listed");
    if (k == 0) first = index;
    last = index;
    out.counts_[index] = count;
    out.total_ = SaturatingAdd(out.total_, count);
  }

  if (in.contains("total")) {
    FD_ASSIGN_OR_RETURN(const std::uint64_t total, ReadCount(in["total"], "total"));
    if (total != out.total_) {
      return JsonError("total", std::to_string(total) +
                                    " does not match the counts, which add up to " +
                                    std::to_string(out.total_));
    }
  }
  if (in.contains("rejected")) {
    FD_ASSIGN_OR_RETURN(out.rejected_, ReadCount(in["rejected"], "rejected"));
  }
  if (in.contains("saturated")) {
    FD_ASSIGN_OR_RETURN(out.saturated_, ReadCount(in["saturated"], "saturated"));
    if (out.saturated_ > out.counts_.back()) {
      return JsonError("saturated", std::to_string(out.saturated_) + " is more than the " +
                                        std::to_string(out.counts_.back()) +
                                        " values in the top bucket, where saturated values go");
    }
  }

  if (out.total_ == 0) {
    if (in.contains("min") || in.contains("max")) {
      return JsonError(in.contains("min") ? "min" : "max", "given for an empty histogram");
    }
    return out;
  }
  // min and max must lie in the first and last non-empty buckets; when left
  // out they are taken as those buckets' bounds.
  out.min_ = out.LowestAt(first);
  out.max_ = out.HighestAt(last);
  if (in.contains("min")) {
    FD_ASSIGN_OR_RETURN(const std::uint64_t min, ReadCount(in["min"], "min", highest));
    if (static_cast<std::int64_t>(min) < out.LowestAt(first) ||
        static_cast<std::int64_t>(min) > out.HighestAt(first)) {
      return JsonError("min", std::to_string(min) + " is outside the first non-empty bucket [" +
                                  std::to_string(out.LowestAt(first)) + ", " +
                                  std::to_string(out.HighestAt(first)) + "]");
    }
    out.min_ = static_cast<std::int64_t>(min);
  }
  if (in.contains("max")) {
    FD_ASSIGN_OR_RETURN(const std::uint64_t max, ReadCount(in["max"], "max", highest));
    if (static_cast<std::int64_t>(max) < out.LowestAt(last) ||
        static_cast<std::int64_t>(max) > out.HighestAt(last)) {
      return JsonError("max", std::to_string(max) + " is outside the last non-empty bucket [" +
                                  std::to_string(out.LowestAt(last)) + ", " +
                                  std::to_string(out.HighestAt(last)) + "]");
    }
    out.max_ = static_cast<std::int64_t>(max);
  }
  if (out.min_ > out.max_) {
    return JsonError("min", std::to_string(out.min_) + " is above max " + std::to_string(out.max_));
  }
  if (out.saturated_ > 0 && out.max_ != out.highest_) {
    return JsonError("max", std::to_string(out.max_) + " is not the highest trackable value " +
                                std::to_string(out.highest_) + ", yet values saturated");
  }
  return out;
}

Result<LatencyHistogram> LatencyHistogram::FromJsonString(std::string_view text) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& error) {
    // what() reads "[json.exception.parse_error.101] parse error at line 1, column 2: ...".
    const std::string what = error.what();
    std::size_t at = what.find("at line");
    if (at == std::string::npos)
      at = what.find("] ") == std::string::npos ? 0 : what.find("] ") + 2;
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "histogram JSON is not JSON: " + what.substr(at));
  }
  return FromJson(document);
}

const std::vector<double>& LatencyHistogram::DefaultQuantiles() {
  static const std::vector<double> quantiles = {0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0};
  return quantiles;
}

std::string LatencyHistogram::PercentileTable(const std::vector<double>& quantiles) const {
  char line[160];
  std::string out;
  std::snprintf(line, sizeof line, "%12s %12s %14s\n", "percentile", "value", "count");
  out += line;
  for (const double q : quantiles) {
    std::uint64_t cumulative = 0;
    const std::int64_t value = Quantile(q, &cumulative);
    std::snprintf(line, sizeof line, "%12s %12s %14" PRIu64 "\n", FormatPercent(q).c_str(),
                  FormatValue(value).c_str(), cumulative);
    out += line;
  }
  std::snprintf(line, sizeof line, "count %" PRIu64 ", mean %s, stddev %s, min %s, max %s\n",
                total_, FormatValue(Rounded(mean())).c_str(),
                FormatValue(Rounded(stddev())).c_str(), FormatValue(min()).c_str(),
                FormatValue(max()).c_str());
  out += line;
  std::snprintf(line, sizeof line,
                "%d significant digits up to %s; %" PRIu64 " saturated, %" PRIu64 " rejected\n",
                digits_, FormatValue(highest_).c_str(), saturated_, rejected_);
  out += line;
  return out;
}

}  // namespace firedrill::workload
