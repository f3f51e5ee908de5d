// Parsing and printing of the units scenario files use:
//   durations  250ms, 30s, 5m, 1h, 1h30m, 2d  (ns us ms s m h d w; units descending)
//   rates      20/s, 3/m, 100/h                (events per unit of time)
//   sizes      512MiB, 4GiB, 1.5GB, 64KiB      (B, KB MB GB TB are 1000-based; KiB MiB GiB TiB 1024-based)
//   ratios     95%, 0.95                       (a share between 0 and 1)
// Each parser returns an InvalidArgument status whose message says what is
// wrong and shows the accepted forms.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"

namespace firedrill {

// Events per second.
struct Rate {
  double per_second = 0;
  bool operator==(const Rate&) const = default;
};

Result<Duration> ParseDuration(std::string_view text);
Result<Rate> ParseRate(std::string_view text);
Result<std::uint64_t> ParseSize(std::string_view text);  // bytes
Result<double> ParseRatio(std::string_view text);        // 0..1

// The shortest exact form: 90s -> "1m30s", 250ms -> "250ms", 0 -> "0s".
std::string FormatDuration(Duration duration);
std::string FormatRate(Rate rate);              // "20/s", "0.5/s"
std::string FormatSize(std::uint64_t bytes);     // "512MiB", "1.5GiB", "1000B"
std::string FormatRatio(double ratio);          // "95%"
std::string FormatNumber(double value);         // "3", "0.25", "1.5e+06": six significant digits

// The forms each parser accepts, for messages and for the JSON Schema.
inline constexpr std::string_view kDurationForms = "a number and a unit (ns, us, ms, s, m, h, d, w), e.g. 250ms, 30s, 5m, 1h30m";
inline constexpr std::string_view kRateForms = "a count per unit of time, e.g. 20/s, 3/m, 100/h";
inline constexpr std::string_view kSizeForms = "a number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 512MiB, 4GiB";
inline constexpr std::string_view kRatioForms = "a percentage like 95% or a fraction between 0 and 1 like 0.95";

// Regular expressions for the same forms (ECMAScript, for JSON Schema).
inline constexpr std::string_view kDurationPattern = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w))+$";
inline constexpr std::string_view kRatePattern = "^[0-9]+(\\.[0-9]+)?/(s|m|h)$";
inline constexpr std::string_view kSizePattern = "^[0-9]+(\\.[0-9]+)?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$";
inline constexpr std::string_view kRatioPattern = "^[0-9]+(\\.[0-9]+)?%$";

}  // namespace firedrill
