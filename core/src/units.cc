#include "firedrill/core/units.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace firedrill {

std::string FormatNumber(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

namespace {

// Reads an unsigned decimal number ("12", "0.5") at the front of `text`.
bool TakeNumber(std::string_view& text, double* value) {
  std::size_t end = 0;
  bool digits = false;
  bool dot = false;
  while (end < text.size()) {
    const char c = text[end];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++end;
  }
  if (!digits || text[end - 1] == '.') return false;
  const std::string number(text.substr(0, end));
  char* parsed_end = nullptr;
  *value = std::strtod(number.c_str(), &parsed_end);
  text.remove_prefix(end);
  return std::isfinite(*value);
}

Status Bad(std::string_view what, std::string_view text, std::string_view why,
           std::string_view forms) {
  std::string message = "bad " + std::string(what) + " \"" + std::string(text) + "\"";
  if (!why.empty()) message += " (" + std::string(why) + ")";
  message += ": expected " + std::string(forms);
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

struct DurationUnit {
  std::string_view name;
  std::int64_t nanos;
};
constexpr DurationUnit kDurationUnits[] = {
    {"w", 7LL * 24 * 3600 * 1'000'000'000LL}, {"d", 24LL * 3600 * 1'000'000'000LL},
    {"h", 3600LL * 1'000'000'000LL},          {"m", 60LL * 1'000'000'000LL},
    {"s", 1'000'000'000LL},                   {"ms", 1'000'000LL},
    {"us", 1'000LL},                          {"µs", 1'000LL},
    {"ns", 1LL},
};
constexpr double kMaxDurationNanos = 366.0 * 24 * 3600 * 1e9;

}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  if (text.empty()) return Bad("duration", text, "empty", kDurationForms);
  if (text == "0") return Duration(0);
  if (text.front() == '-') return Bad("duration", text, "negative", kDurationForms);
  std::string_view rest = text;
  double total = 0;
  int last_rank = -1;
  while (!rest.empty()) {
    double value = 0;
    if (!TakeNumber(rest, &value)) return Bad("duration", text, "", kDurationForms);
    std::size_t unit_length = 0;
    while (unit_length < rest.size() && !(rest[unit_length] >= '0' && rest[unit_length] <= '9')) {
      ++unit_length;
    }
    const std::string_view unit = rest.substr(0, unit_length);
    if (unit.empty()) return Bad("duration", text, "missing unit", kDurationForms);
    int rank = -1;
    for (int i = 0; i < static_cast<int>(std::size(kDurationUnits)); ++i) {
      if (kDurationUnits[i].name == unit) rank = i;
    }
    if (rank < 0) {
      return Bad("duration", text, "unknown unit \"" + std::string(unit) + "\"", kDurationForms);
    }
    if (rank <= last_rank) {
      return Bad("duration", text, "units must go from largest to smallest", kDurationForms);
    }
    last_rank = rank;
    total += value * static_cast<double>(kDurationUnits[rank].nanos);
    rest.remove_prefix(unit_length);
  }
  if (total > kMaxDurationNanos) return Bad("duration", text, "longer than a year", kDurationForms);
  return Duration(static_cast<std::int64_t>(std::llround(total)));
}

Result<Rate> ParseRate(std::string_view text) {
  std::string_view rest = text;
  double count = 0;
  if (!text.empty() && text.front() == '-') return Bad("rate", text, "negative", kRateForms);
  if (!TakeNumber(rest, &count)) return Bad("rate", text, "", kRateForms);
  if (rest.empty()) return Bad("rate", text, "missing \"/unit\"", kRateForms);
  if (rest.front() != '/') return Bad("rate", text, "", kRateForms);
  rest.remove_prefix(1);
  double seconds = 0;
  if (rest == "s") seconds = 1;
  else if (rest == "m") seconds = 60;
  else if (rest == "h") seconds = 3600;
  else return Bad("rate", text, "unknown unit \"" + std::string(rest) + "\"", kRateForms);
  const double per_second = count / seconds;
  if (per_second > 1e9) return Bad("rate", text, "more than 1e9/s", kRateForms);
  return Rate{per_second};
}

Result<std::uint64_t> ParseSize(std::string_view text) {
  if (text == "0") return std::uint64_t{0};
  if (!text.empty() && text.front() == '-') return Bad("size", text, "negative", kSizeForms);
  std::string_view rest = text;
  double value = 0;
  if (!TakeNumber(rest, &value)) return Bad("size", text, "", kSizeForms);
  struct Unit {
    std::string_view name;
    double bytes;
  };
  static constexpr Unit kUnits[] = {
      {"B", 1},          {"KB", 1e3},          {"MB", 1e6},           {"GB", 1e9},
      {"TB", 1e12},      {"KiB", 1024.0},      {"MiB", 1048576.0},    {"GiB", 1073741824.0},
      {"TiB", 1099511627776.0},
  };
  if (rest.empty()) return Bad("size", text, "missing unit", kSizeForms);
  for (const Unit& unit : kUnits) {
    if (unit.name == rest) {
      const double bytes = value * unit.bytes;
      if (bytes > 1e18) return Bad("size", text, "larger than 1 EB", kSizeForms);
      return static_cast<std::uint64_t>(std::llround(bytes));
    }
  }
  return Bad("size", text, "unknown unit \"" + std::string(rest) + "\"", kSizeForms);
}

Result<double> ParseRatio(std::string_view text) {
  std::string_view rest = text;
  if (!text.empty() && text.front() == '-') return Bad("ratio", text, "negative", kRatioForms);
  double value = 0;
  if (!TakeNumber(rest, &value)) return Bad("ratio", text, "", kRatioForms);
  if (rest == "%") {
    if (value > 100) return Bad("ratio", text, "over 100%", kRatioForms);
    return value / 100.0;
  }
  if (!rest.empty()) return Bad("ratio", text, "", kRatioForms);
  if (value > 1) {
    return Bad("ratio", text, "a fraction is at most 1; write " + FormatNumber(value) + "% for a percentage",
               kRatioForms);
  }
  return value;
}

std::string FormatDuration(Duration duration) {
  std::int64_t nanos = duration.count();
  if (nanos == 0) return "0s";
  std::string out;
  if (nanos < 0) {
    out = "-";
    nanos = -nanos;
  }
  // Sub-second durations print in one unit; longer ones as h/m/s parts.
  if (nanos < 1'000'000'000LL) {
    if (nanos % 1'000'000 == 0) return out + std::to_string(nanos / 1'000'000) + "ms";
    if (nanos % 1'000 == 0) return out + std::to_string(nanos / 1'000) + "us";
    return out + std::to_string(nanos) + "ns";
  }
  const std::int64_t hours = nanos / (3600LL * 1'000'000'000LL);
  nanos -= hours * 3600LL * 1'000'000'000LL;
  const std::int64_t minutes = nanos / (60LL * 1'000'000'000LL);
  nanos -= minutes * 60LL * 1'000'000'000LL;
  if (hours) out += std::to_string(hours) + "h";
  if (minutes) out += std::to_string(minutes) + "m";
  if (nanos) {
    if (nanos % 1'000'000'000LL == 0) {
      out += std::to_string(nanos / 1'000'000'000LL) + "s";
    } else {
      out += FormatNumber(static_cast<double>(nanos) / 1e9) + "s";
    }
  }
  return out;
}

std::string FormatRate(Rate rate) { return FormatNumber(rate.per_second) + "/s"; }

std::string FormatSize(std::uint64_t bytes) {
  static constexpr std::string_view kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit + 1 < static_cast<int>(std::size(kUnits))) {
    value /= 1024;
    ++unit;
  }
  return FormatNumber(value) + std::string(kUnits[unit]);
}

std::string FormatRatio(double ratio) { return FormatNumber(ratio * 100) + "%"; }

}  // namespace firedrill
