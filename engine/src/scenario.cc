#include "firedrill/engine/scenario.h"

namespace firedrill::engine {
namespace {

const nlohmann::json* Field(const nlohmann::json& fields, std::string_view key) {
  if (!fields.is_object()) return nullptr;
  auto it = fields.find(std::string(key));
  if (it == fields.end() || !it->is_string()) return nullptr;
  return &*it;
}

// A unit-bearing field parsed with `parse`, or `fallback` when it is absent.
template <typename T, typename Parser>
T ParsedOr(const nlohmann::json& fields, std::string_view key, T fallback, Parser parse) {
  const nlohmann::json* value = Field(fields, key);
  if (!value) return fallback;
  auto parsed = parse(value->get<std::string>());
  return parsed.ok() ? *parsed : fallback;
}

}  // namespace

bool Spec::Has(std::string_view key) const {
  return fields.is_object() && fields.contains(std::string(key));
}

std::string Spec::Text(std::string_view key, std::string fallback) const {
  const nlohmann::json* value = Field(fields, key);
  return value ? value->get<std::string>() : fallback;
}

double Spec::Number(std::string_view key, double fallback) const {
  const nlohmann::json* value = Field(fields, key);
  return value ? std::stod(value->get<std::string>()) : fallback;
}

std::int64_t Spec::Integer(std::string_view key, std::int64_t fallback) const {
  const nlohmann::json* value = Field(fields, key);
  return value ? std::stoll(value->get<std::string>()) : fallback;
}

bool Spec::Boolean(std::string_view key, bool fallback) const {
  const nlohmann::json* value = Field(fields, key);
  if (!value) return fallback;
  const std::string text = value->get<std::string>();
  return text == "true" || text == "True" || text == "TRUE";
}

Duration Spec::DurationOr(std::string_view key, Duration fallback) const {
  return ParsedOr(fields, key, fallback, ParseDuration);
}

Rate Spec::RateOr(std::string_view key, Rate fallback) const { return ParsedOr(fields, key, fallback, ParseRate); }

std::uint64_t Spec::SizeOr(std::string_view key, std::uint64_t fallback) const {
  return ParsedOr(fields, key, fallback, ParseSize);
}

double Spec::RatioOr(std::string_view key, double fallback) const {
  return ParsedOr(fields, key, fallback, ParseRatio);
}

namespace {
Duration TotalDuration(const std::vector<Phase>& phases) {
  Duration total{0};
  for (const Phase& phase : phases) total += phase.duration;
  return total;
}
}  // namespace

Duration Scenario::WorkloadDuration() const { return TotalDuration(phases); }
Duration Workload::WorkloadDuration() const { return TotalDuration(phases); }

}  // namespace firedrill::engine
