// libFuzzer target for the exposition parser (Prometheus text and
// OpenMetrics): never a crash, every rejection placed, label sets sorted and
// free of duplicates.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "firedrill/alerts/exposition.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto format = data[0] % 2 ? firedrill::alerts::ExpositionFormat::kOpenMetrics
                                  : firedrill::alerts::ExpositionFormat::kPrometheusText;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto parsed = firedrill::alerts::ParseExposition(text, "fuzz", format);
  if (!parsed.ok()) {
    if (parsed.status().message().rfind("fuzz:", 0) != 0) __builtin_trap();
    return 0;
  }
  for (const auto& sample : parsed->samples) {
    if (!std::is_sorted(sample.labels.begin(), sample.labels.end())) __builtin_trap();
    for (std::size_t i = 1; i < sample.labels.size(); ++i) {
      if (sample.labels[i].first == sample.labels[i - 1].first) __builtin_trap();
    }
  }
  return 0;
}
