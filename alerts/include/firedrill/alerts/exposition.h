// The Prometheus text exposition format (0.0.4), and the OpenMetrics text
// subset Firedrill scrapes (counter, gauge, histogram; `# EOF`; timestamps
// in seconds): what a scraper reads from /metrics. Errors name the place,
// "source:line:column: message", and parsing never throws.
//
// Thread-safety: functions on values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "firedrill/core/status.h"

namespace firedrill::alerts {

// Label pairs sorted by name, without duplicates; the metric name is kept
// apart (Sample::name), as the series store keys on both.
using LabelSet = std::vector<std::pair<std::string, std::string>>;

// Sets `name` in a sorted label set, as Prometheus's labels.Builder does: an
// empty value removes the label.
void SetLabel(LabelSet& labels, const std::string& name, const std::string& value);

struct Sample {
  std::string name;
  LabelSet labels;
  double value = 0;
  std::optional<std::int64_t> timestamp_ms;  // as exposed; scrapers usually ignore it
};

enum class MetricKind { kUntyped, kCounter, kGauge, kHistogram, kSummary };

struct FamilyInfo {
  MetricKind kind = MetricKind::kUntyped;
  std::string help;
};

struct Exposition {
  std::vector<Sample> samples;                 // in the order exposed
  std::map<std::string, FamilyInfo> families;  // by family name, from # TYPE / # HELP
};

enum class ExpositionFormat { kPrometheusText, kOpenMetrics };

// The format a Content-Type header names: OpenMetrics for
// "application/openmetrics-text", Prometheus text otherwise.
ExpositionFormat FormatFromContentType(std::string_view content_type);

Result<Exposition> ParseExposition(std::string_view text, std::string_view source,
                                   ExpositionFormat format = ExpositionFormat::kPrometheusText);

}  // namespace firedrill::alerts
