#include "firedrill/pipeline/csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>

#include "firedrill/pipeline/job.h"

namespace firedrill::pipeline {
namespace {

Status At(std::string_view name, std::size_t line, std::size_t column, const std::string& message) {
  return FD_STATUS(StatusCode::kInvalidArgument, std::string(name) + ":" + std::to_string(line) +
                                                     ":" + std::to_string(column) + ": " + message);
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
    text.remove_suffix(1);
  return text;
}

// Splits a line at commas (no quoting: names and numbers need none),
// remembering each field's 1-based column.
std::vector<std::pair<std::string_view, std::size_t>> Fields(std::string_view line) {
  std::vector<std::pair<std::string_view, std::size_t>> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    const std::string_view raw =
        line.substr(start, comma == std::string_view::npos ? line.size() - start : comma - start);
    std::size_t column = start + 1;
    while (column - start - 1 < raw.size() &&
           (raw[column - start - 1] == ' ' || raw[column - start - 1] == '\t')) {
      ++column;
    }
    fields.emplace_back(Trim(raw), column);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return fields;
}

}  // namespace

Result<CsvTable> ParseCsv(std::string_view text, std::string_view name, const std::string& target) {
  CsvTable table;
  std::size_t line_number = 0;
  std::vector<std::string> names;
  std::size_t target_index = 0;
  std::vector<std::vector<float>> columns;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (Trim(line).empty()) continue;
    const auto fields = Fields(line);
    if (names.empty()) {
      std::set<std::string_view> seen;
      for (const auto& [field, column] : fields) {
        if (field.empty()) return At(name, line_number, column, "empty column name in the header");
        if (!seen.insert(field).second) {
          return At(name, line_number, column, "column '" + std::string(field) + "' appears twice");
        }
        names.emplace_back(field);
      }
      if (names.size() < 2)
        return At(name, line_number, 1, "need at least one feature column and a target column");
      if (names.size() - 1 > kMaxFeatures) {
        return At(name, line_number, 1,
                  std::to_string(names.size() - 1) + " feature columns, more than " +
                      std::to_string(kMaxFeatures));
      }
      target_index = names.size() - 1;
      if (!target.empty()) {
        const auto it = std::find(names.begin(), names.end(), target);
        if (it == names.end())
          return At(name, line_number, 1, "no column named '" + target + "' for the target");
        target_index = static_cast<std::size_t>(it - names.begin());
      }
      columns.resize(names.size());
      continue;
    }
    if (fields.size() != names.size()) {
      return At(name, line_number, fields.back().second,
                std::to_string(fields.size()) + " fields, but the header has " +
                    std::to_string(names.size()));
    }
    if (columns[0].size() >= kMaxSamples) {
      return At(name, line_number, 1, "more than " + std::to_string(kMaxSamples) + " rows");
    }
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const auto& [field, column] = fields[i];
      double value = 0;
      const auto [rest, error] = std::from_chars(field.data(), field.data() + field.size(), value);
      if (field.empty() || error != std::errc() || rest != field.data() + field.size() ||
          !std::isfinite(value) || std::abs(value) > 3.0e38) {
        return At(name, line_number, column,
                  "expected a finite number for '" + names[i] + "', got '" +
                      std::string(field.substr(0, 40)) + "'");
      }
      columns[i].push_back(static_cast<float>(value));
    }
  }
  if (names.empty()) return At(name, 1, 1, "empty file: expected a header row");
  table.samples = columns[0].size();
  if (table.samples < kMinCsvRows) {
    return At(
        name, line_number, 1,
        std::to_string(table.samples) + " data rows, fewer than " + std::to_string(kMinCsvRows));
  }
  table.target_name = names[target_index];
  table.target = std::move(columns[target_index]);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i == target_index) continue;
    table.feature_names.push_back(names[i]);
    table.data.insert(table.data.end(), columns[i].begin(), columns[i].end());
  }
  return table;
}

Result<CsvTable> ReadCsvFile(const std::string& path, const std::string& target) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return FD_STATUS(StatusCode::kNotFound, "cannot open " + path);
  const std::streamoff size = in.tellg();
  if (size < 0 || static_cast<std::uint64_t>(size) > kMaxCsvBytes) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     path + " is larger than " + std::to_string(kMaxCsvBytes) + " bytes");
  }
  std::string text(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  in.read(text.data(), size);
  if (!in) return FD_STATUS(StatusCode::kUnavailable, "cannot read " + path);
  return ParseCsv(text, path, target);
}

}  // namespace firedrill::pipeline
