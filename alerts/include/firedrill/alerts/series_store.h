// An in-memory store of time series, as a Prometheus head block holds them:
// each series (its label set, the metric name under "__name__") keeps its
// samples in time order; samples older than the retention are dropped; a
// staleness marker (Prometheus's special NaN) ends a series the way a failed
// scrape or a vanished series does.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <bit>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "firedrill/alerts/exposition.h"

namespace firedrill::alerts {

// Prometheus's staleness marker: a NaN with this exact bit pattern. Inline:
// range queries test every sample they read.
inline constexpr std::uint64_t kStaleMarkerBits = 0x7ff0000000000002ull;
inline double StaleMarker() { return std::bit_cast<double>(kStaleMarkerBits); }
inline bool IsStaleMarker(double value) {
  return std::bit_cast<std::uint64_t>(value) == kStaleMarkerBits;
}

struct Point {
  std::int64_t t_ms = 0;
  double value = 0;
};

struct Series {
  LabelSet labels;  // sorted, "__name__" included
  std::vector<Point> points;
};

// Where an evaluation reads series from. Implementations visit every series
// whose metric name is `name` (every series when `name` is empty); the spans
// stay valid only for the duration of the call.
class SeriesSource {
 public:
  virtual ~SeriesSource() = default;
  using Visitor = std::function<void(const LabelSet& labels, std::span<const Point> points)>;
  virtual void ForEachSeries(std::string_view name, const Visitor& visit) const = 0;
};

class SeriesStore {
 public:
  explicit SeriesStore(std::int64_t retention_ms = 6 * 3600 * 1000) : retention_ms_(retention_ms) {}

  // False when the sample is older than the series' last one (dropped, as
  // Prometheus drops out-of-order samples); a sample at the same time replaces it.
  bool Append(const LabelSet& labels, std::int64_t t_ms, double value);
  // Drops samples older than the newest sample minus the retention, and
  // series left empty.
  void Compact();
  // Every series whose labels include all of `equal` (exact matches): the
  // selection PromQL refines.
  std::vector<Series> Select(const LabelSet& equal) const;
  std::size_t SeriesCount() const;

  // Runs `reader` with the store locked: the source it gets sees a store that
  // does not change until `reader` returns (how a query reads it).
  void Read(const std::function<void(const SeriesSource&)>& reader) const;

 private:
  class LockedView;
  struct LabelSetHash {
    std::size_t operator()(const LabelSet& labels) const;
  };
  // Hashed: rule evaluation appends to hundreds of series per round.
  using SeriesMap = std::unordered_map<LabelSet, std::vector<Point>, LabelSetHash>;
  void IndexSeries(SeriesMap::value_type& entry);

  mutable std::mutex mutex_;
  std::int64_t retention_ms_;
  std::int64_t newest_ms_ = INT64_MIN;
  SeriesMap series_;
  // Series by metric name, as a query's selector looks them up.
  // (Node pointers stay valid when the map rehashes; iterators would not.)
  std::unordered_map<std::string, std::vector<SeriesMap::value_type*>> by_name_;
};

// A sample's full label set: its labels plus "__name__", sorted.
LabelSet WithName(const Sample& sample);

}  // namespace firedrill::alerts
