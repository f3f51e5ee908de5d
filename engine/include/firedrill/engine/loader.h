// Reading scenario and runbook files: parse, substitute parameters, validate
// against the formats in format.h, check cross-references (events, phases,
// alerts in the named rules files, runbook and rules paths), and build the
// typed model. Every problem found is reported, each with its place.
//
// Thread-safety: stateless functions; they read only the files involved.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "firedrill/engine/diagnostic.h"
#include "firedrill/engine/scenario.h"

namespace firedrill::engine {

struct LoadOptions {
  // -p name=value overrides, in command-line order.
  std::vector<std::pair<std::string, std::string>> parameter_overrides;
  // Load the runbook and rules files a scenario names, and check alert names
  // against them. Off only for fuzzing and for reading a file in isolation.
  bool check_references = true;
};

struct LoadResult {
  Diagnostics diagnostics;  // empty when the file is valid
  std::variant<std::monostate, Scenario, Runbook, Workload> document;

  bool ok() const { return diagnostics.empty(); }
  const Scenario* scenario() const { return std::get_if<Scenario>(&document); }
  const Runbook* runbook() const { return std::get_if<Runbook>(&document); }
  const Workload* workload() const { return std::get_if<Workload>(&document); }
};

// Reads `path` and loads whichever kind it holds (Scenario, Runbook or Workload).
LoadResult LoadFile(const std::string& path, const LoadOptions& options = {});

// Loads from text already in memory; `path` is used for messages and to
// resolve relative references.
LoadResult LoadText(const std::string& path, const std::string& text,
                    const LoadOptions& options = {});

}  // namespace firedrill::engine
