#include "firedrill/alerts/exposition.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>

namespace firedrill::alerts {
namespace {

bool NameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool NameChar(char c) { return NameStart(c) || (c >= '0' && c <= '9'); }
bool LabelStart(char c) { return NameStart(c) && c != ':'; }
bool LabelChar(char c) { return NameChar(c) && c != ':'; }

// Reads one line; positions are 1-based columns into it.
class LineReader {
 public:
  LineReader(std::string_view line, std::string_view source, std::size_t number)
      : line_(line), source_(source), number_(number) {}

  Status Error(const std::string& message) const { return ErrorAt(position_, message); }
  Status ErrorAt(std::size_t position, const std::string& message) const {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     std::string(source_) + ":" + std::to_string(number_) + ":" +
                         std::to_string(position + 1) + ": " + message);
  }
  bool AtEnd() const { return position_ >= line_.size(); }
  char Peek() const { return AtEnd() ? '\0' : line_[position_]; }
  void Advance() { ++position_; }
  std::size_t position() const { return position_; }
  void SkipBlanks() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t')) Advance();
  }
  std::string_view Rest() const { return line_.substr(std::min(position_, line_.size())); }
  // A run of characters up to a blank (or the end).
  std::string_view Token() {
    const std::size_t start = position_;
    while (!AtEnd() && Peek() != ' ' && Peek() != '\t') Advance();
    return line_.substr(start, position_ - start);
  }
  std::string_view Name(bool (*start)(char), bool (*rest)(char)) {
    const std::size_t begin = position_;
    if (AtEnd() || !start(Peek())) return {};
    while (!AtEnd() && rest(Peek())) Advance();
    return line_.substr(begin, position_ - begin);
  }

 private:
  std::string_view line_;
  std::string_view source_;
  std::size_t number_;
  std::size_t position_ = 0;
};

std::string Shown(std::string_view text) {
  return std::string(text.substr(0, 40)) + (text.size() > 40 ? "..." : "");
}

// Go's strconv.ParseFloat, as Prometheus uses it, for what expositions carry:
// decimal and exponent forms, NaN and (+/-)Inf in any case.
bool ParseValue(std::string_view text, double* value) {
  std::string_view body = text;
  bool negative = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  auto equals = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return std::tolower(x) == y; });
  };
  if (equals(body, "inf") || equals(body, "infinity")) {
    *value = negative ? -std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::infinity();
    return true;
  }
  if (equals(body, "nan")) {
    *value = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (body.empty() || body[0] == '+' || body[0] == '-') return false;
  double parsed = 0;
  const auto [end, error] = std::from_chars(body.data(), body.data() + body.size(), parsed);
  if (end != body.data() + body.size()) return false;
  if (error == std::errc::result_out_of_range) {
    // Go returns +/-Inf (or 0 on underflow) with an error Prometheus rejects.
    return false;
  }
  if (error != std::errc()) return false;
  *value = negative ? -parsed : parsed;
  return true;
}

std::optional<MetricKind> KindFromName(std::string_view name) {
  if (name == "counter") return MetricKind::kCounter;
  if (name == "gauge") return MetricKind::kGauge;
  if (name == "histogram") return MetricKind::kHistogram;
  if (name == "summary") return MetricKind::kSummary;
  if (name == "untyped" || name == "unknown") return MetricKind::kUntyped;
  return std::nullopt;
}

Status ParseComment(LineReader& reader, ExpositionFormat format, Exposition* out,
                    std::set<std::string>* typed, std::set<std::string>* helped, bool* eof) {
  reader.Advance();  // '#'
  reader.SkipBlanks();
  const std::size_t keyword_at = reader.position();
  const std::string_view keyword = reader.Token();
  if (keyword == "EOF" && format == ExpositionFormat::kOpenMetrics) {
    *eof = true;
    return Status::Ok();
  }
  if (keyword != "HELP" && keyword != "TYPE" && keyword != "UNIT")
    return Status::Ok();  // a plain comment
  reader.SkipBlanks();
  const std::size_t name_at = reader.position();
  const std::string_view name = reader.Name(NameStart, NameChar);
  if (name.empty())
    return reader.ErrorAt(name_at, "expected a metric name after # " + std::string(keyword));
  if (!reader.AtEnd() && reader.Peek() != ' ' && reader.Peek() != '\t') {
    return reader.Error("invalid character '" + std::string(1, reader.Peek()) + "' in metric name");
  }
  FamilyInfo& family = out->families[std::string(name)];
  reader.SkipBlanks();
  if (keyword == "HELP") {
    if (!helped->insert(std::string(name)).second) {
      return reader.ErrorAt(keyword_at, "second HELP line for metric " + std::string(name));
    }
    // Escapes in help text: \\ and \n.
    std::string help;
    const std::string_view rest = reader.Rest();
    for (std::size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size() && (rest[i + 1] == '\\' || rest[i + 1] == 'n')) {
        help += rest[++i] == 'n' ? '\n' : '\\';
      } else {
        help += rest[i];
      }
    }
    family.help = help;
    return Status::Ok();
  }
  if (keyword == "UNIT") return Status::Ok();
  const std::size_t type_at = reader.position();
  const std::string_view type = reader.Token();
  const std::optional<MetricKind> kind = KindFromName(type);
  if (!kind) {
    return reader.ErrorAt(type_at, "unknown metric type '" + Shown(type) +
                                       "' (counter, gauge, histogram, summary, untyped)");
  }
  reader.SkipBlanks();
  if (!reader.AtEnd()) return reader.Error("unexpected text after the metric type");
  if (!typed->insert(std::string(name)).second) {
    return reader.ErrorAt(keyword_at, "second TYPE line for metric " + std::string(name));
  }
  family.kind = *kind;
  return Status::Ok();
}

Status ParseLabels(LineReader& reader, LabelSet* labels) {
  reader.Advance();  // '{'
  std::set<std::string> seen;
  for (;;) {
    reader.SkipBlanks();
    if (reader.Peek() == '}') {
      reader.Advance();
      break;
    }
    const std::size_t name_at = reader.position();
    const std::string_view name = reader.Name(LabelStart, LabelChar);
    if (name.empty()) {
      return reader.ErrorAt(name_at, reader.AtEnd() ? "unterminated label set: expected '}'"
                                                    : "expected a label name, found '" +
                                                          std::string(1, reader.Peek()) + "'");
    }
    reader.SkipBlanks();
    if (reader.Peek() != '=')
      return reader.Error("expected '=' after label name " + std::string(name));
    reader.Advance();
    reader.SkipBlanks();
    if (reader.Peek() != '"')
      return reader.Error("expected '\"' to open the value of label " + std::string(name));
    reader.Advance();
    std::string value;
    for (;;) {
      if (reader.AtEnd()) return reader.Error("unterminated value of label " + std::string(name));
      const char c = reader.Peek();
      reader.Advance();
      if (c == '"') break;
      if (c == '\\') {
        const char escaped = reader.Peek();
        if (escaped == '\\' || escaped == '"') {
          value += escaped;
        } else if (escaped == 'n') {
          value += '\n';
        } else {
          return reader.Error("invalid escape '\\" + std::string(1, escaped) +
                              "' in label value (\\\\, \\\", \\n)");
        }
        reader.Advance();
        continue;
      }
      value += c;
    }
    if (!seen.insert(std::string(name)).second) {
      return reader.ErrorAt(name_at, "label " + std::string(name) + " appears twice");
    }
    labels->emplace_back(std::string(name), std::move(value));
    reader.SkipBlanks();
    if (reader.Peek() == ',') {
      reader.Advance();
      continue;
    }
    if (reader.Peek() == '}') {
      reader.Advance();
      break;
    }
    return reader.Error(reader.AtEnd() ? "unterminated label set: expected '}'"
                                       : "expected ',' or '}' after a label");
  }
  std::sort(labels->begin(), labels->end());
  return Status::Ok();
}

Status ParseSample(LineReader& reader, ExpositionFormat format, Exposition* out) {
  Sample sample;
  const std::string_view name = reader.Name(NameStart, NameChar);
  if (name.empty()) {
    return reader.Error("expected a metric name, found '" + std::string(1, reader.Peek()) + "'");
  }
  sample.name = std::string(name);
  auto blank = [&] { return reader.Peek() == ' ' || reader.Peek() == '\t'; };
  if (!reader.AtEnd() && !blank() && reader.Peek() != '{') {
    return reader.Error("invalid character '" + std::string(1, reader.Peek()) + "' in metric name");
  }
  reader.SkipBlanks();
  if (reader.Peek() == '{') {
    FD_RETURN_IF_ERROR(ParseLabels(reader, &sample.labels));
    if (!reader.AtEnd() && !blank()) return reader.Error("expected a blank before the value");
  }
  reader.SkipBlanks();
  if (reader.AtEnd()) return reader.Error("expected a value after " + sample.name);
  const std::size_t value_at = reader.position();
  const std::string_view value = reader.Token();
  if (!ParseValue(value, &sample.value))
    return reader.ErrorAt(value_at, "invalid value '" + Shown(value) + "'");
  reader.SkipBlanks();
  if (!reader.AtEnd()) {
    const std::size_t timestamp_at = reader.position();
    const std::string_view timestamp = reader.Token();
    if (format == ExpositionFormat::kOpenMetrics) {
      double seconds = 0;
      if (!ParseValue(timestamp, &seconds) || !std::isfinite(seconds) ||
          std::abs(seconds) > 9.2e15) {
        return reader.ErrorAt(timestamp_at, "invalid timestamp '" + Shown(timestamp) + "'");
      }
      sample.timestamp_ms = static_cast<std::int64_t>(std::llround(seconds * 1000));
    } else {
      std::int64_t milliseconds = 0;
      const auto [end, error] =
          std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), milliseconds);
      if (error != std::errc() || end != timestamp.data() + timestamp.size()) {
        return reader.ErrorAt(
            timestamp_at, "invalid timestamp '" + Shown(timestamp) + "' (integer milliseconds)");
      }
      sample.timestamp_ms = milliseconds;
    }
    reader.SkipBlanks();
    if (!reader.AtEnd()) return reader.Error("unexpected text after the timestamp");
  }
  out->samples.push_back(std::move(sample));
  return Status::Ok();
}

}  // namespace

ExpositionFormat FormatFromContentType(std::string_view content_type) {
  return content_type.rfind("application/openmetrics-text", 0) == 0
             ? ExpositionFormat::kOpenMetrics
             : ExpositionFormat::kPrometheusText;
}

Result<Exposition> ParseExposition(std::string_view text, std::string_view source,
                                   ExpositionFormat format) {
  Exposition out;
  std::set<std::string> typed, helped;
  std::set<std::pair<std::string, LabelSet>> series;
  bool eof = false;
  std::size_t number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    LineReader reader(line, source, number);
    if (eof) return reader.Error("content after # EOF");
    reader.SkipBlanks();
    if (reader.AtEnd()) continue;
    if (reader.Peek() == '#') {
      FD_RETURN_IF_ERROR(ParseComment(reader, format, &out, &typed, &helped, &eof));
      continue;
    }
    FD_RETURN_IF_ERROR(ParseSample(reader, format, &out));
    const Sample& sample = out.samples.back();
    if (!series.emplace(sample.name, sample.labels).second) {
      return reader.ErrorAt(0, "duplicate series " + sample.name + " with the same labels");
    }
  }
  if (format == ExpositionFormat::kOpenMetrics && !eof) {
    return FD_STATUS(
        StatusCode::kInvalidArgument,
        std::string(source) + ":" + std::to_string(number + 1) + ":1: missing # EOF at the end");
  }
  return out;
}

void SetLabel(LabelSet& labels, const std::string& name, const std::string& value) {
  auto it =
      std::lower_bound(labels.begin(), labels.end(), name,
                       [](const auto& label, const std::string& n) { return label.first < n; });
  if (it != labels.end() && it->first == name) {
    if (value.empty()) {
      labels.erase(it);
    } else {
      it->second = value;
    }
  } else if (!value.empty()) {
    labels.insert(it, {name, value});
  }
}

}  // namespace firedrill::alerts
