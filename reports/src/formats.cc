#include "firedrill/reports/formats.h"

namespace firedrill::reports {

const std::vector<FormatInfo>& Formats() {
  static const std::vector<FormatInfo> formats = {
      {Format::kJson, "json", "result.json", "the full result, with a schema version, for tools"},
      {Format::kMarkdown, "markdown", "summary.md", "a short summary for CI job pages"},
      {Format::kJunit, "junit", "junit.xml", "one test case per expectation, for CI test views"},
      {Format::kHtml, "html", "report.html", "the game-day report with plots"},
  };
  return formats;
}

std::vector<std::string> FormatNames() {
  std::vector<std::string> names;
  for (const FormatInfo& info : Formats()) names.push_back(info.name);
  return names;
}

std::optional<Format> ParseFormat(std::string_view name) {
  for (const FormatInfo& info : Formats()) {
    if (info.name == name) return info.format;
  }
  return std::nullopt;
}

}  // namespace firedrill::reports
