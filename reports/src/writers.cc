#include "firedrill/reports/writers.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>

namespace firedrill::reports {
namespace {

using nlohmann::json;

std::string Number(double value, const char* format = "%.1f") {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

std::string Escape(const std::string& text, bool markdown) {
  std::string out;
  for (const char c : text) {
    if (markdown) {
      if (c == '|') {
        out += "\\|";
      } else if (c == '\n') {
        out += ' ';
      } else {
        out += c;
      }
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 has no place for other control characters.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Md(const std::string& text) { return Escape(text, true); }
std::string Xml(const std::string& text) { return Escape(text, false); }

std::string Text(const json& value, const char* key) {
  return value.contains(key) && value[key].is_string() ? value[key].get<std::string>() : "";
}

// The events worth a line in a summary: not every health sample or journal row.
bool Notable(const json& event) {
  const std::string type = Text(event, "type");
  return type != "health" && !(type == "fault" && Text(event, "name").rfind("journal.", 0) == 0) &&
         !(type == "alert" && Text(event, "name").find(".pending") != std::string::npos);
}

std::string Headline(const json& result) {
  const std::string verdict = Text(result, "verdict");
  std::string word = verdict == "held" ? "HELD" : verdict == "failed" ? "FAILED" : verdict == "aborted" ? "ABORTED"
                                                                                                    : "COULD NOT RUN";
  return Text(result["scenario"], "name") + ": " + word;
}

std::string Facts(const json& result) {
  std::string facts = "time scale x" + Number(result.value("timeScale", 1.0), "%g") + " · seed " +
                      std::to_string(result.value("seed", 0)) + " · " +
                      Number(result.value("drillSeconds", 0.0), "%.0f") + " s of drill time in " +
                      Number(result.value("wallSeconds", 0.0), "%.1f") + " s · target " +
                      Text(result.value("target", json::object()), "kind") + " · monitoring " +
                      Text(result.value("monitoring", json::object()), "kind") + " · Firedrill " +
                      Text(result["firedrill"], "version");
  const json& hardware = result["hardware"];
  facts += " · " + Text(hardware, "cpu");
  if (hardware.contains("gpu") && hardware["gpu"].is_object()) facts += " · " + Text(hardware["gpu"], "name");
  return facts;
}

}  // namespace

std::string FormatRfc3339Millis(std::chrono::system_clock::time_point time) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  char full[80];
  std::snprintf(full, sizeof full, "%s.%03dZ", text, static_cast<int>(ms % 1000));
  return full;
}

std::string SummaryMarkdown(const json& result) {
  std::string out = "## " + Md(Headline(result)) + "\n\n";
  out += Md(Text(result["scenario"], "description")) + "\n\n" + Md(Facts(result)) + "\n\n";
  if (!Text(result, "reason").empty()) out += "**Why:** " + Md(Text(result, "reason")) + "\n\n";
  if (!result["expectations"].empty()) {
    out += "| verdict | expectation | expected | seen |\n|---|---|---|---|\n";
    for (const json& verdict : result["expectations"]) {
      out += std::string("| ") +
             (verdict.value("held", false) ? "held" : verdict.value("skipped", false) ? "skipped" : "**FAILED**") + " | " +
             Md(Text(verdict, "name")) + " | " + Md(Text(verdict, "expected")) + " | " + Md(Text(verdict, "seen")) +
             " |\n";
    }
    out += "\n";
  }
  out += "### Timeline (drill time)\n\n| t | event | detail |\n|---|---|---|\n";
  for (const json& event : result["events"]) {
    if (!Notable(event)) continue;
    const json& detail = event["detail"];
    out += "| +" + Number(event.value("t", 0.0)) + "s | " + Md(Text(event, "name")) + " | " +
           Md(detail.is_object() ? Text(detail, "what") : "") + " |\n";
  }
  if (result["load"].is_object()) {
    const json& load = result["load"];
    out += "\n### Load\n\n| phase | sent | completed | errors | p50 | p95 | p99 |\n|---|---|---|---|---|---|---|\n";
    for (const json& phase : load["phases"]) {
      const json& latency = phase["latencySeconds"];
      auto at = [&](const char* key) { return latency.contains(key) ? Number(latency[key].get<double>(), "%.2fs") : "-"; };
      out += "| " + Md(Text(phase, "name")) + " | " + std::to_string(phase.value("sent", 0)) + " | " +
             std::to_string(phase.value("completed", 0)) + " | " + std::to_string(phase.value("errors", 0)) + " | " +
             at("p50") + " | " + at("p95") + " | " + at("p99") + " |\n";
    }
    out += "\nLost jobs: " + std::to_string(load.value("lostJobs", 0)) + " (ledger: `" + Text(load, "ledgerFile") + "`)\n";
  }
  return out;
}

std::string JunitXml(const json& result) {
  const std::string suite = Text(result["scenario"], "name");
  int failures = 0;
  for (const json& verdict : result["expectations"]) {
    failures += verdict.value("held", false) || verdict.value("skipped", false) ? 0 : 1;
  }
  const std::string verdict = Text(result, "verdict");
  // An aborted drill or one the harness could not run is an error, beside
  // whatever the expectations say.
  const bool error = verdict == "aborted" || verdict == "harness-error" || verdict == "invalid";
  const std::size_t tests = result["expectations"].size() + (error ? 1 : 0);
  const std::string time = Number(result.value("wallSeconds", 0.0), "%.3f");
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<testsuites name=\"firedrill\" tests=\"" + std::to_string(tests) + "\" failures=\"" +
         std::to_string(failures) + "\" errors=\"" + (error ? "1" : "0") + "\" time=\"" + time + "\">\n";
  out += "  <testsuite name=\"" + Xml(suite) + "\" tests=\"" + std::to_string(tests) + "\" failures=\"" +
         std::to_string(failures) + "\" errors=\"" + (error ? "1" : "0") + "\" time=\"" + time + "\" timestamp=\"" +
         Xml(Text(result, "startedAt")) + "\">\n";
  out += "    <properties>\n";
  out += "      <property name=\"seed\" value=\"" + std::to_string(result.value("seed", 0)) + "\"/>\n";
  out += "      <property name=\"timeScale\" value=\"" + Number(result.value("timeScale", 1.0), "%g") + "\"/>\n";
  out += "      <property name=\"verdict\" value=\"" + Xml(verdict) + "\"/>\n";
  out += "    </properties>\n";
  for (const json& each : result["expectations"]) {
    out += "    <testcase classname=\"firedrill." + Xml(suite) + "\" name=\"" + Xml(Text(each, "name")) + "\" time=\"" +
           Number(each.value("valueSeconds", 0.0), "%.3f") + "\">";
    if (each.value("skipped", false)) {
      out += "\n      <skipped message=\"" + Xml(Text(each, "seen")) + "\"/>\n    ";
    } else if (!each.value("held", false)) {
      out += "\n      <failure message=\"" + Xml(Text(each, "seen")) + "\" type=\"" + Xml(Text(each, "kind")) +
             "\">expected " + Xml(Text(each, "expected")) + "; saw " + Xml(Text(each, "seen")) + "</failure>\n    ";
    }
    out += "</testcase>\n";
  }
  if (error) {
    out += "    <testcase classname=\"firedrill." + Xml(suite) + "\" name=\"drill\" time=\"" + time +
           "\">\n      <error message=\"" + Xml(Text(result, "reason")) + "\" type=\"" + Xml(verdict) + "\"/>\n" +
           "    </testcase>\n";
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

// One page, no scripts: the verdicts, a chart of the load with fault
// windows shaded and alert firings marked, and the timeline.
std::string HtmlReport(const json& result) {
  std::string out = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + Xml(Headline(result)) +
                    "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
                    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
                    ".held{color:#060}.failed{color:#b00;font-weight:bold}</style></head><body>\n";
  out += "<h1>" + Xml(Headline(result)) + "</h1>\n<p>" + Xml(Text(result["scenario"], "description")) + "</p>\n<p>" +
         Xml(Facts(result)) + "</p>\n";
  if (!Text(result, "reason").empty()) out += "<p><b>Why:</b> " + Xml(Text(result, "reason")) + "</p>\n";
  out += "<table><tr><th>verdict</th><th>expectation</th><th>expected</th><th>seen</th></tr>\n";
  for (const json& verdict : result["expectations"]) {
    const bool held = verdict.value("held", false);
    out += std::string("<tr><td class=\"") + (held ? "held\">held" : "failed\">FAILED") + "</td><td>" +
           Xml(Text(verdict, "name")) + "</td><td>" + Xml(Text(verdict, "expected")) + "</td><td>" +
           Xml(Text(verdict, "seen")) + "</td></tr>\n";
  }
  out += "</table>\n";

  // The chart: achieved and offered job rates over drill time.
  const json& samples = result["samples"];
  const double end = std::max(1.0, result.value("drillSeconds", 1.0));
  double top = 0.1;
  for (const json& sample : samples) {
    top = std::max({top, sample.value("offeredRate", 0.0), sample.value("achievedRate", 0.0)});
  }
  const double width = 1000;
  const double height = 240;
  auto x = [&](double t) { return Number(40 + t / end * (width - 50)); };
  auto y = [&](double rate) { return Number(height - 20 - rate / top * (height - 40)); };
  out += "<h2>Load</h2>\n<svg width=\"" + Number(width, "%.0f") + "\" height=\"" + Number(height, "%.0f") +
         "\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">\n";
  std::map<std::string, double> fault_start;
  for (const json& event : result["events"]) {
    const std::string name = Text(event, "name");
    if (Text(event, "type") != "fault") continue;
    const double t = event.value("t", 0.0);
    if (name.size() > 6 && name.substr(name.size() - 6) == ".start") fault_start[name.substr(0, name.size() - 6)] = t;
    if (name.size() > 4 && name.substr(name.size() - 4) == ".end") {
      const std::string fault = name.substr(0, name.size() - 4);
      if (!fault_start.count(fault)) continue;
      out += "<rect x=\"" + x(fault_start[fault]) + "\" y=\"10\" width=\"" +
             Number((t - fault_start[fault]) / end * (width - 50)) + "\" height=\"" + Number(height - 30) +
             "\" fill=\"#f4c7c3\"><title>" + Xml(fault) + "</title></rect>\n";
    }
  }
  for (const json& event : result["events"]) {
    const std::string name = Text(event, "name");
    if (Text(event, "type") != "alert" || name.find(".firing") == std::string::npos) continue;
    out += "<line x1=\"" + x(event.value("t", 0.0)) + "\" x2=\"" + x(event.value("t", 0.0)) +
           "\" y1=\"10\" y2=\"" + Number(height - 20) + "\" stroke=\"#b00\" stroke-dasharray=\"4\"><title>" +
           Xml(name) + "</title></line>\n";
  }
  for (const char* series : {"offeredRate", "achievedRate"}) {
    std::string points;
    for (const json& sample : samples) points += x(sample.value("t", 0.0)) + "," + y(sample.value(series, 0.0)) + " ";
    out += "<polyline fill=\"none\" stroke=\"" + std::string(std::string(series) == "offeredRate" ? "#999" : "#06c") +
           "\" points=\"" + points + "\"/>\n";
  }
  out += "<text x=\"40\" y=\"" + Number(height - 4) + "\">0 s</text><text x=\"" + Number(width - 60) + "\" y=\"" +
         Number(height - 4) + "\">" + Number(end, "%.0f") + " s</text><text x=\"2\" y=\"14\">" + Number(top, "%.2f") +
         "/s</text><text x=\"120\" y=\"" + Number(height - 4) +
         "\">grey: offered jobs/s · blue: completed jobs/s · shaded: faults · dashed: alerts firing</text>\n</svg>\n";

  out += "<h2>Timeline (drill time)</h2>\n<table><tr><th>t</th><th>event</th><th>detail</th></tr>\n";
  for (const json& event : result["events"]) {
    if (!Notable(event)) continue;
    const json& detail = event["detail"];
    out += "<tr><td>+" + Number(event.value("t", 0.0)) + "s</td><td>" + Xml(Text(event, "name")) + "</td><td>" +
           Xml(detail.is_object() ? Text(detail, "what") : "") + "</td></tr>\n";
  }
  out += "</table>\n</body></html>\n";
  return out;
}

}  // namespace firedrill::reports
