// Datasets from CSV files for jobs that name one: a header row of column
// names, then one row per sample of numbers; one column is the target.
// Errors name the place: "name:line:column: message".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/core/status.h"

namespace firedrill::pipeline {

inline constexpr std::size_t kMinCsvRows = 16;
inline constexpr std::uint64_t kMaxCsvBytes = std::uint64_t{2} << 30;

struct CsvTable {
  std::vector<std::string> feature_names;
  std::string target_name;
  std::size_t samples = 0;
  std::vector<float> data;    // feature-major: features x samples
  std::vector<float> target;  // samples
};

// `target` names the target column; empty means the last column.
Result<CsvTable> ParseCsv(std::string_view text, std::string_view name, const std::string& target);
// Reads and parses a file of at most kMaxCsvBytes.
Result<CsvTable> ReadCsvFile(const std::string& path, const std::string& target);

}  // namespace firedrill::pipeline
