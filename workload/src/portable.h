// What arrivals and the job mix share: random draws computed from the
// engine's bits (not std::*_distribution, whose algorithms differ between
// standard libraries, so a seed replays the same load anywhere), and numbers
// as the loader hands them over (JSON text) or as JSON numbers.
#pragma once

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>
#include <optional>
#include <random>
#include <string>

namespace firedrill::workload::internal {

inline double UniformOpen(std::mt19937_64& random) {  // (0, 1]
  return static_cast<double>((random() >> 11) + 1) * 0x1p-53;
}
inline double UniformHalfOpen(std::mt19937_64& random) {  // [0, 1)
  return static_cast<double>(random() >> 11) * 0x1p-53;
}
inline double StandardNormal(std::mt19937_64& random) {  // Box-Muller, one of the pair
  const double radius = std::sqrt(-2.0 * std::log(UniformOpen(random)));
  return radius * std::cos(2.0 * std::numbers::pi * UniformHalfOpen(random));
}

// A finite number, from a JSON number or a JSON string holding one exactly.
inline std::optional<double> JsonNumber(const nlohmann::json& value) {
  if (value.is_number()) return value.get<double>();
  if (!value.is_string()) return std::nullopt;
  const std::string& text = value.get_ref<const std::string&>();
  double number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error == std::errc() && end == text.data() + text.size() && std::isfinite(number))
    return number;
  return std::nullopt;
}

}  // namespace firedrill::workload::internal
