#include "firedrill/alerts/series_store.h"

#include <algorithm>
#include <climits>

namespace firedrill::alerts {

LabelSet WithName(const Sample& sample) {
  LabelSet labels = sample.labels;
  labels.emplace_back("__name__", sample.name);
  std::sort(labels.begin(), labels.end());
  return labels;
}

bool SeriesStore::Append(const LabelSet& labels, std::int64_t t_ms, double value) {
  std::lock_guard lock(mutex_);
  auto [entry, inserted] = series_.try_emplace(labels);
  if (inserted) IndexSeries(*entry);
  std::vector<Point>& points = entry->second;
  if (!points.empty()) {
    if (t_ms < points.back().t_ms) return false;
    if (t_ms == points.back().t_ms) {
      points.back().value = value;
      return true;
    }
  }
  points.push_back({t_ms, value});
  newest_ms_ = std::max(newest_ms_, t_ms);
  return true;
}

void SeriesStore::Compact() {
  std::lock_guard lock(mutex_);
  if (newest_ms_ == INT64_MIN) return;
  const std::int64_t oldest = newest_ms_ - retention_ms_;
  for (auto it = series_.begin(); it != series_.end();) {
    std::vector<Point>& points = it->second;
    const auto keep =
        std::lower_bound(points.begin(), points.end(), oldest,
                         [](const Point& point, std::int64_t t) { return point.t_ms < t; });
    points.erase(points.begin(), keep);
    it = points.empty() ? series_.erase(it) : std::next(it);
  }
  by_name_.clear();
  for (auto& entry : series_) IndexSeries(entry);
}

std::size_t SeriesStore::LabelSetHash::operator()(const LabelSet& labels) const {
  std::size_t hash = 0xcbf29ce484222325ull;
  for (const auto& label : labels) {
    hash = (hash ^ std::hash<std::string>()(label.first)) * 0x100000001b3ull;
    hash = (hash ^ std::hash<std::string>()(label.second)) * 0x100000001b3ull;
  }
  return hash;
}

void SeriesStore::IndexSeries(SeriesMap::value_type& entry) {
  std::string name;
  for (const auto& label : entry.first) {
    if (label.first == "__name__") name = label.second;
  }
  by_name_[name].push_back(&entry);
}

class SeriesStore::LockedView : public SeriesSource {
 public:
  explicit LockedView(const SeriesStore& store) : store_(store) {}
  void ForEachSeries(std::string_view name, const Visitor& visit) const override {
    if (name.empty()) {
      for (const auto& entry : store_.series_) visit(entry.first, entry.second);
      return;
    }
    const auto found = store_.by_name_.find(std::string(name));
    if (found == store_.by_name_.end()) return;
    for (const auto& entry : found->second) visit(entry->first, entry->second);
  }

 private:
  const SeriesStore& store_;
};

void SeriesStore::Read(const std::function<void(const SeriesSource&)>& reader) const {
  std::lock_guard lock(mutex_);
  reader(LockedView(*this));
}

std::vector<Series> SeriesStore::Select(const LabelSet& equal) const {
  std::lock_guard lock(mutex_);
  std::vector<Series> out;
  for (const auto& entry : series_) {
    // (A plain pair, not a structured binding: clang 14 cannot capture those.)
    const LabelSet& labels = entry.first;
    const bool matches = std::all_of(equal.begin(), equal.end(), [&](const auto& wanted) {
      return std::binary_search(labels.begin(), labels.end(), wanted);
    });
    if (matches) out.push_back({labels, entry.second});
  }
  return out;
}

std::size_t SeriesStore::SeriesCount() const {
  std::lock_guard lock(mutex_);
  return series_.size();
}

}  // namespace firedrill::alerts
