#include "firedrill/core/log.h"

#include <ctime>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

namespace firedrill {

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "info";
}

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  if (text == "debug") *level = LogLevel::kDebug;
  else if (text == "info") *level = LogLevel::kInfo;
  else if (text == "warning" || text == "warn") *level = LogLevel::kWarning;
  else if (text == "error") *level = LogLevel::kError;
  else return false;
  return true;
}

std::string FormatWallTime(WallTime time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t t = seconds.count();
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
  char out[40];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buffer, static_cast<int>(millis.count()));
  return out;
}

Logger::Logger(std::ostream& out, const Clock& clock, LogFormat format, LogLevel min_level)
    : out_(out), clock_(clock), format_(format), min_level_(min_level) {}

namespace {

// Quotes a human-format value only when it needs it, so `key=value` stays
// easy to read and to grep.
void AppendHumanValue(std::ostringstream& line, const LogField::Value& value) {
  if (const auto* text = std::get_if<std::string>(&value)) {
    const bool plain = !text->empty() && text->find_first_of(" \t\"=\n") == std::string::npos;
    if (plain) {
      line << *text;
    } else {
      line << nlohmann::json(*text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  } else if (const auto* integer = std::get_if<std::int64_t>(&value)) {
    line << *integer;
  } else if (const auto* number = std::get_if<double>(&value)) {
    line << *number;
  } else {
    line << (std::get<bool>(value) ? "true" : "false");
  }
}

}  // namespace

void Logger::Log(LogLevel level, std::string_view component, std::string_view message,
                 std::initializer_list<LogField> fields) {
  if (level < min_level_) return;
  const std::string timestamp = FormatWallTime(clock_.WallNow());
  std::string line;
  if (format_ == LogFormat::kJson) {
    nlohmann::ordered_json event;
    event["ts"] = timestamp;
    event["level"] = LogLevelName(level);
    event["component"] = component;
    event["msg"] = message;
    for (const LogField& field : fields) {
      std::visit([&](const auto& v) { event[field.key] = v; }, field.value);
    }
    line = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    std::ostringstream human;
    std::string upper(LogLevelName(level));
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    human << timestamp << ' ' << std::left << std::setw(7) << upper << ' ' << component << ": "
          << message;
    for (const LogField& field : fields) {
      human << ' ' << field.key << '=';
      AppendHumanValue(human, field.value);
    }
    line = human.str();
  }
  std::lock_guard lock(mutex_);
  out_ << line << '\n';
  out_.flush();
}

}  // namespace firedrill
