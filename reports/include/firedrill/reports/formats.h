// The report formats a drill can write, and the file each one produces in
// the run's output directory. Writers arrive with the engine; scenarios and
// the CLI name formats through this list.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace firedrill::reports {

enum class Format { kJson, kMarkdown, kJunit, kHtml };

struct FormatInfo {
  Format format;
  std::string name;       // as written in scenarios and on the command line
  std::string file_name;  // in the output directory
  std::string purpose;
};

const std::vector<FormatInfo>& Formats();
std::vector<std::string> FormatNames();
std::optional<Format> ParseFormat(std::string_view name);

}  // namespace firedrill::reports
