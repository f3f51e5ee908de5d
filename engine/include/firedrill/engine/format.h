// The scenario and runbook file formats (apiVersion firedrill/v1), described
// once with firedrill/core/spec.h. The validator checks files against these
// descriptions, `firedrill schema` prints them as JSON Schema, and the docs'
// reference tables are generated from them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "firedrill/core/spec.h"

namespace firedrill::engine {

inline constexpr std::string_view kApiVersion = "firedrill/v1";

spec::SchemaPtr ScenarioSchema();
spec::SchemaPtr RunbookSchema();
// kind: Workload — a workload on its own, for `firedrill load`.
spec::SchemaPtr WorkloadFileSchema();

// Kinds of runbook step (`action:`), condition check, expectation and
// guardrail, for messages and docs.
const std::vector<spec::Variant>& RunbookActions();
const std::vector<spec::Variant>& CheckKinds();
const std::vector<spec::Variant>& ExpectationKinds();
const std::vector<spec::Variant>& GuardrailKinds();

// The reference tables of docs/REFERENCE.md, generated from the formats so
// the docs cannot drift from what the validator accepts.
std::string ReferenceMarkdown();

// One JSON Schema document covering every kind, selected by `kind`.
// `which` is "all", "scenario", "runbook" or "workload".
nlohmann::ordered_json JsonSchema(std::string_view which = "all");

}  // namespace firedrill::engine
