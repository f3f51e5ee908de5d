// Structured logging: one event per line, a component, a message and typed
// fields. Human-readable lines by default; JSON lines (one object per line)
// when asked, for log shippers and CI artefacts.
//
// Thread-safety: Log() may be called from any thread; lines never interleave.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

#include "firedrill/core/clock.h"

namespace firedrill {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kHuman, kJson };

std::string_view LogLevelName(LogLevel level);
// Parses "debug", "info", "warning"/"warn", "error"; false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);

struct LogField {
  using Value = std::variant<std::string, std::int64_t, double, bool>;
  LogField(std::string_view k, std::string_view v) : key(k), value(std::string(v)) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string(v)) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, int v) : key(k), value(static_cast<std::int64_t>(v)) {}
  LogField(std::string_view k, std::int64_t v) : key(k), value(v) {}
  LogField(std::string_view k, std::uint64_t v) : key(k), value(static_cast<std::int64_t>(v)) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
  std::string key;
  Value value;
};

class Logger {
 public:
  // `out` and `clock` must outlive the logger. Timestamps come from `clock`,
  // so logs written under a SimulatedClock carry simulated time.
  Logger(std::ostream& out, const Clock& clock, LogFormat format = LogFormat::kHuman,
         LogLevel min_level = LogLevel::kInfo);

  void Log(LogLevel level, std::string_view component, std::string_view message,
           std::initializer_list<LogField> fields = {});
  void Debug(std::string_view component, std::string_view message,
             std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kDebug, component, message, fields);
  }
  void Info(std::string_view component, std::string_view message,
            std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kInfo, component, message, fields);
  }
  void Warn(std::string_view component, std::string_view message,
            std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kWarning, component, message, fields);
  }
  void Error(std::string_view component, std::string_view message,
             std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kError, component, message, fields);
  }

  void set_min_level(LogLevel level) { min_level_ = level; }
  void set_format(LogFormat format) { format_ = format; }
  LogFormat format() const { return format_; }

 private:
  std::ostream& out_;
  const Clock& clock_;
  LogFormat format_;
  LogLevel min_level_;
  std::mutex mutex_;
};

// RFC 3339 UTC with milliseconds: 2026-11-27T18:20:01.123Z
std::string FormatWallTime(WallTime time);

}  // namespace firedrill
