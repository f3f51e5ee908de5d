#include "reports.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "firedrill/reports/formats.h"
#include "firedrill/reports/writers.h"

namespace firedrill::engine {

namespace fs = std::filesystem;

void WriteReports(const Scenario& scenario, const DrillOptions& options, DrillOutcome& outcome) {
  std::vector<std::string> formats = options.reports;
  if (formats.empty()) formats = scenario.reports;
  if (formats.empty()) formats = reports::FormatNames();
  if (std::find(formats.begin(), formats.end(), "json") == formats.end()) formats.insert(formats.begin(), "json");
  std::error_code error;
  fs::create_directories(options.out_dir, error);
  for (const std::string& name : formats) {
    const std::optional<reports::Format> format = reports::ParseFormat(name);
    if (!format) continue;
    std::string file_name;
    for (const reports::FormatInfo& info : reports::Formats()) {
      if (info.format == *format) file_name = info.file_name;
    }
    const fs::path path = fs::path(options.out_dir) / file_name;
    std::ofstream out(path);
    switch (*format) {
      case reports::Format::kJson:
        out << outcome.result.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        break;
      case reports::Format::kMarkdown: out << reports::SummaryMarkdown(outcome.result); break;
      case reports::Format::kJunit: out << reports::JunitXml(outcome.result); break;
      case reports::Format::kHtml: out << reports::HtmlReport(outcome.result); break;
    }
    if (out) outcome.reports[name] = path.string();
  }
}

}  // namespace firedrill::engine
