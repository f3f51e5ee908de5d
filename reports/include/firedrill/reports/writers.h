// The report writers: each turns a drill's result.json (the schema in
// docs/result.schema.json) into one file. summary.md is for CI job
// summaries, junit.xml has one test case per verdict (and an error case when
// the drill aborted or could not run), report.html is a page with a chart
// of the load, fault windows shaded and alert firings marked.
//
// Pure functions of the result.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace firedrill::reports {

std::string SummaryMarkdown(const nlohmann::json& result);
std::string JunitXml(const nlohmann::json& result);
std::string HtmlReport(const nlohmann::json& result);

// 2026-12-03T15:04:05.123Z
std::string FormatRfc3339Millis(std::chrono::system_clock::time_point time);

}  // namespace firedrill::reports
