#include "firedrill/workload/arrivals.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "portable.h"

namespace firedrill::workload {
namespace {

constexpr double kNanosPerSecond = 1e9;

double Seconds(Duration duration) {
  return static_cast<double>(duration.count()) / kNanosPerSecond;
}

// Seconds to nanoseconds, saturating: a time past what Duration holds is
// past every phase end.
Duration FromSeconds(double seconds) {
  const double nanos = std::round(seconds * kNanosPerSecond);
  if (!(nanos < 9.2e18)) return Duration::max();
  return Duration(static_cast<Duration::rep>(std::max(0.0, nanos)));
}

using internal::UniformOpen;

// ---- paced schedules --------------------------------------------------------

// A stretch of the phase over which the rate moves linearly (or stays put).
struct Segment {
  double start = 0;   // seconds from the phase start
  double length = 0;  // seconds
  double from = 0;    // events per second at the start
  double to = 0;      // ... and at the end
  double Area() const { return (from + to) / 2 * length; }
};

// Time into `segment` at which its integrated rate, from * t + c * t^2 with
// c = (to - from) / (2 * length), reaches `amount`.
double Invert(const Segment& segment, double amount) {
  if (amount <= 0) return 0;
  const double c = (segment.to - segment.from) / (2 * segment.length);
  double t = 0;
  if (c == 0) {
    t = amount / segment.from;
  } else {
    // The root of c t^2 + from t - amount in the form that loses no precision
    // when c is small and stays finite when from is 0.
    const double discriminant = std::max(0.0, segment.from * segment.from + 4 * c * amount);
    const double denominator = segment.from + std::sqrt(discriminant);
    t = denominator > 0 ? 2 * amount / denominator : segment.length;
  }
  return std::clamp(t, 0.0, segment.length);
}

// constant, ramp and steps: send k when the integrated rate reaches k + 1/2.
class PacedSchedule final : public ArrivalSchedule {
 public:
  PacedSchedule(std::vector<Segment> segments, Duration phase_length)
      : segments_(std::move(segments)), phase_length_(phase_length) {
    for (const Segment& segment : segments_) expected_ += segment.Area();
  }

  std::optional<Duration> Next() override {
    if (done_) return std::nullopt;
    const double target = static_cast<double>(sent_) + 0.5;
    while (index_ < segments_.size() && target > before_ + segments_[index_].Area()) {
      before_ += segments_[index_].Area();
      ++index_;
    }
    if (index_ == segments_.size()) return Finish();
    const Segment& segment = segments_[index_];
    const Duration at =
        std::max(last_, FromSeconds(segment.start + Invert(segment, target - before_)));
    if (at >= phase_length_) return Finish();
    last_ = at;
    ++sent_;
    return at;
  }

  double expected_sends() const override { return expected_; }

 private:
  std::optional<Duration> Finish() {
    done_ = true;
    return std::nullopt;
  }

  std::vector<Segment> segments_;
  Duration phase_length_;
  double expected_ = 0;
  std::size_t index_ = 0;
  double before_ = 0;  // integrated rate before segments_[index_]
  std::uint64_t sent_ = 0;
  Duration last_{0};
  bool done_ = false;
};

// Paced like the others, but the integrated rate is inverted in closed form:
// a long phase with short bursts would otherwise walk millions of segments.
class SpikeSchedule final : public ArrivalSchedule {
 public:
  SpikeSchedule(const SpikeShape& spike, Duration phase_length)
      : base_(spike.base.per_second),
        peak_(spike.peak.per_second),
        every_(Seconds(spike.every)),
        length_(Seconds(spike.length)),
        phase_length_(phase_length) {}

  std::optional<Duration> Next() override {
    if (done_) return std::nullopt;
    const double target = static_cast<double>(sent_) + 0.5;
    const double first = base_ * every_;  // the first period has no burst
    const double period = peak_ * length_ + base_ * (every_ - length_);
    double t = 0;
    if (target <= first) {
      t = target / base_;
    } else if (period <= 0) {
      return Finish();
    } else {
      const double rest = target - first;
      const double periods = std::floor(rest / period);
      const double within = std::clamp(rest - periods * period, 0.0, period);
      const double start = (periods + 1) * every_;
      const double burst = peak_ * length_;
      if (within <= burst && peak_ > 0) {
        t = start + within / peak_;
      } else if (base_ > 0) {
        t = start + length_ + (within - burst) / base_;
      } else {
        t = start + length_;
      }
    }
    const Duration at = std::max(last_, FromSeconds(t));
    if (at >= phase_length_) return Finish();
    last_ = at;
    ++sent_;
    return at;
  }

  double expected_sends() const override {
    const double phase = Seconds(phase_length_);
    if (phase <= every_) return base_ * std::max(0.0, phase);
    const double rest = phase - every_;
    const double periods = std::floor(rest / every_);
    const double partial = rest - periods * every_;
    return base_ * every_ + periods * (peak_ * length_ + base_ * (every_ - length_)) +
           peak_ * std::min(partial, length_) + base_ * std::max(0.0, partial - length_);
  }

 private:
  std::optional<Duration> Finish() {
    done_ = true;
    return std::nullopt;
  }

  double base_, peak_, every_, length_;  // per second, seconds
  Duration phase_length_;
  std::uint64_t sent_ = 0;
  Duration last_{0};
  bool done_ = false;
};

// Exponential gaps. The running time is kept in double seconds; at 1e-16
// relative error a day-long phase drifts by picoseconds.
class PoissonSchedule final : public ArrivalSchedule {
 public:
  PoissonSchedule(double rate, Duration phase_length, std::uint64_t seed)
      : rate_(rate), phase_length_(phase_length), random_(seed) {}

  std::optional<Duration> Next() override {
    if (done_ || !(rate_ > 0)) return std::nullopt;
    time_ += -std::log(UniformOpen(random_)) / rate_;
    const Duration at = FromSeconds(time_);
    if (at >= phase_length_) {
      done_ = true;
      return std::nullopt;
    }
    return at;
  }

  double expected_sends() const override { return rate_ * std::max(0.0, Seconds(phase_length_)); }

 private:
  double rate_;
  Duration phase_length_;
  std::mt19937_64 random_;
  double time_ = 0;
  bool done_ = false;
};

class TraceSchedule final : public ArrivalSchedule {
 public:
  TraceSchedule(std::vector<TraceRow> rows, Duration phase_length) : rows_(std::move(rows)) {
    // Rows are in offset order, so the phase end cuts a suffix.
    const auto end =
        std::lower_bound(rows_.begin(), rows_.end(), phase_length,
                         [](const TraceRow& row, Duration limit) { return row.offset < limit; });
    rows_.erase(end, rows_.end());
  }

  std::optional<Duration> Next() override {
    if (next_ == rows_.size()) return std::nullopt;
    return rows_[next_++].offset;
  }

  const JobShape* shape() const override { return next_ == 0 ? nullptr : &rows_[next_ - 1].shape; }

  double expected_sends() const override { return static_cast<double>(rows_.size()); }

 private:
  std::vector<TraceRow> rows_;
  std::size_t next_ = 0;
};

// ---- trace CSV --------------------------------------------------------------

constexpr std::array<std::string_view, 5> kTraceColumns = {"offset", "samples", "features",
                                                           "informative", "mode"};
enum TraceColumn { kOffset, kSamples, kFeatures, kInformative, kMode };
constexpr std::string_view kTraceHeader = "offset,samples,features,informative,mode";

struct CsvField {
  std::string_view text;  // without surrounding blanks
  int column = 0;         // 1-based, where the text starts
};

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

CsvField Trim(std::string_view line, std::size_t begin, std::size_t end) {
  while (begin < end && IsBlank(line[begin])) ++begin;
  while (end > begin && IsBlank(line[end - 1])) --end;
  return CsvField{line.substr(begin, end - begin), static_cast<int>(begin) + 1};
}

// Splits `line` at commas into `fields`; returns how many fields there are
// (only the first fields.size() are stored).
template <std::size_t N>
std::size_t SplitCsv(std::string_view line, std::array<CsvField, N>& fields) {
  std::size_t count = 0;
  std::size_t begin = 0;
  while (true) {
    const std::size_t comma = line.find(',', begin);
    const std::size_t end = comma == std::string_view::npos ? line.size() : comma;
    if (count < N) fields[count] = Trim(line, begin, end);
    ++count;
    if (comma == std::string_view::npos) return count;
    begin = comma + 1;
  }
}

std::string Quoted(std::string_view text) {
  std::string quoted(1, '"');
  quoted.append(text).push_back('"');
  return quoted;
}

class TraceParser {
 public:
  explicit TraceParser(std::string_view file_name) : file_name_(file_name) {}

  Result<std::vector<TraceRow>> Parse(std::string_view text) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a spreadsheet's BOM
    std::vector<TraceRow> rows;
    bool have_header = false;
    int line_number = 0;
    std::size_t position = 0;
    while (position < text.size()) {
      const std::size_t newline = text.find('\n', position);
      const std::size_t end = newline == std::string_view::npos ? text.size() : newline;
      std::string_view line = text.substr(position, end - position);
      position = end + 1;
      ++line_number;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (std::all_of(line.begin(), line.end(), IsBlank)) continue;
      if (!have_header) {
        FD_RETURN_IF_ERROR(ParseHeader(line, line_number));
        have_header = true;
        header_line_ = line_number;
        continue;
      }
      FD_ASSIGN_OR_RETURN(TraceRow row, ParseRow(line, line_number));
      rows.push_back(std::move(row));
    }
    if (!have_header) {
      return Error(1, 1, "empty trace file; expected a header row " + std::string(kTraceHeader));
    }
    if (rows.empty()) {
      return Error(header_line_ + 1, 1, "no rows after the header; expected one row per job");
    }
    return rows;
  }

 private:
  Status Error(int line, int column, const std::string& message) const {
    return FD_STATUS(StatusCode::kInvalidArgument, file_name_ + ":" + std::to_string(line) + ":" +
                                                       std::to_string(column) + ": " + message);
  }

  Status ParseHeader(std::string_view line, int line_number) {
    // Of any six names at least one is unknown or repeated, so six suffice.
    std::array<CsvField, kTraceColumns.size() + 1> fields;
    const std::size_t count = std::min(SplitCsv(line, fields), fields.size());
    column_of_.fill(-1);
    for (std::size_t index = 0; index < count; ++index) {
      const CsvField& field = fields[index];
      const auto known = std::find(kTraceColumns.begin(), kTraceColumns.end(), field.text);
      if (known == kTraceColumns.end()) {
        return Error(line_number, field.column,
                     "unknown column " + Quoted(field.text) +
                         "; the first row must be the header " + std::string(kTraceHeader) +
                         " (in any order)");
      }
      int& slot = column_of_[static_cast<std::size_t>(known - kTraceColumns.begin())];
      if (slot >= 0) {
        return Error(line_number, field.column, "column " + Quoted(field.text) + " appears twice");
      }
      slot = static_cast<int>(index);
    }
    for (std::size_t column = 0; column < kTraceColumns.size(); ++column) {
      if (column_of_[column] < 0) {
        return Error(line_number, static_cast<int>(line.size()) + 1,
                     "the header lacks column " + Quoted(kTraceColumns[column]) + "; expected " +
                         std::string(kTraceHeader));
      }
    }
    return Status::Ok();
  }

  Result<TraceRow> ParseRow(std::string_view line, int line_number) {
    std::array<CsvField, kTraceColumns.size()> fields;
    const std::size_t count = SplitCsv(line, fields);
    if (count != fields.size()) {
      // Too few: point past the end, where the next field belongs. Too many:
      // point at the first extra field.
      int column = static_cast<int>(line.size()) + 1;
      if (count > fields.size()) {
        std::size_t comma = 0;
        for (std::size_t i = 0; i < fields.size(); ++i) comma = line.find(',', comma) + 1;
        column = static_cast<int>(comma) + 1;
      }
      return Error(
          line_number, column,
          "expected 5 fields (" + std::string(kTraceHeader) + "), got " + std::to_string(count));
    }
    const auto field = [&](TraceColumn column) -> const CsvField& {
      return fields[static_cast<std::size_t>(column_of_[column])];
    };
    TraceRow row;
    FD_ASSIGN_OR_RETURN(row.offset, ParseOffset(field(kOffset), line_number));
    FD_ASSIGN_OR_RETURN(row.shape.samples,
                        ParseInteger(field(kSamples), kSamples, 1, kMaxSamples, line_number));
    FD_ASSIGN_OR_RETURN(row.shape.features,
                        ParseInteger(field(kFeatures), kFeatures, 1, kMaxFeatures, line_number));
    FD_ASSIGN_OR_RETURN(row.shape.informative, ParseInteger(field(kInformative), kInformative, 0,
                                                            kMaxInformative, line_number));
    if (row.shape.informative > row.shape.features) {
      return Error(line_number, field(kInformative).column,
                   "informative: " + std::to_string(row.shape.informative) +
                       " is more than features (" + std::to_string(row.shape.features) + ")");
    }
    FitToFeatures(row.shape);  // the trace has no decoys column: the default, narrowed to fit
    const CsvField& mode = field(kMode);
    Result<JobMode> parsed_mode = ParseJobMode(mode.text);
    if (!parsed_mode.ok()) {
      return Error(line_number, mode.column,
                   "mode: expected fast, balanced or accurate, got " + Quoted(mode.text));
    }
    row.shape.mode = *parsed_mode;
    if (row.offset < previous_) {
      return Error(line_number, field(kOffset).column,
                   "offset " + FormatDuration(row.offset) + " is before the previous row's " +
                       FormatDuration(previous_) + "; rows must be in non-decreasing offset order");
    }
    previous_ = row.offset;
    return row;
  }

  Result<Duration> ParseOffset(const CsvField& field, int line_number) const {
    const std::string_view text = field.text;
    if (text.empty()) return Error(line_number, field.column, "offset: missing value");
    if (text.front() == '-') {
      return Error(line_number, field.column, "offset: must not be negative, got " + Quoted(text));
    }
    const bool has_unit = std::any_of(text.begin(), text.end(), [](char c) {
      return std::isalpha(static_cast<unsigned char>(c)) != 0 ||
             static_cast<unsigned char>(c) >= 0x80;
    });
    if (has_unit) {
      Result<Duration> duration = ParseDuration(text);
      if (duration.ok()) return *duration;
    } else {
      double seconds = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
      if (error == std::errc() && end == text.data() + text.size() && std::isfinite(seconds)) {
        // ParseDuration's limit, so both spellings accept the same offsets.
        if (seconds > 366.0 * 24 * 3600) {
          return Error(line_number, field.column,
                       "offset: " + Quoted(text) + " is more than 366 days");
        }
        return FromSeconds(seconds);
      }
    }
    return Error(
        line_number, field.column,
        "offset: expected a duration like 1.5s or a number of seconds, got " + Quoted(text));
  }

  Result<std::int64_t> ParseInteger(const CsvField& field, TraceColumn column, std::int64_t low,
                                    std::int64_t high, int line_number) const {
    const std::string name(kTraceColumns[column]);
    if (field.text.empty()) return Error(line_number, field.column, name + ": missing value");
    std::int64_t value = 0;
    const char* end = field.text.data() + field.text.size();
    const auto [stop, error] = std::from_chars(field.text.data(), end, value);
    if (error != std::errc() || stop != end || value < low || value > high) {
      return Error(line_number, field.column,
                   name + ": expected an integer from " + std::to_string(low) + " to " +
                       std::to_string(high) + ", got " + Quoted(field.text));
    }
    return value;
  }

  std::string file_name_;
  std::array<int, kTraceColumns.size()> column_of_{};  // field index of each column
  int header_line_ = 0;
  Duration previous_{0};
};

// ---- fields as the engine holds them ---------------------------------------

class Fields {
 public:
  Fields(std::string_view kind, const nlohmann::json& fields) : kind_(kind), fields_(fields) {}

  const nlohmann::json* Find(std::string_view name) const {
    if (!fields_.is_object()) return nullptr;
    const auto it = fields_.find(std::string(name));
    return it == fields_.end() ? nullptr : &*it;
  }

  Status Error(std::string_view where, const std::string& message) const {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "arrival " + kind_ + ": " + std::string(where) + ": " + message);
  }

  Result<const nlohmann::json*> Require(std::string_view name) const {
    const nlohmann::json* value = Find(name);
    if (value == nullptr) {
      return FD_STATUS(StatusCode::kInvalidArgument,
                       "arrival " + kind_ + ": missing field '" + std::string(name) + "'");
    }
    return value;
  }

  Result<Rate> RateOf(const nlohmann::json& value, std::string_view where) const {
    if (value.is_number()) {
      const double rate = value.get<double>();
      if (std::isfinite(rate) && rate >= 0) return Rate{rate};
    } else if (value.is_string()) {
      Result<Rate> rate = ParseRate(value.get_ref<const std::string&>());
      if (!rate.ok()) return Error(where, rate.status().message());
      return rate;
    }
    return Error(where, "expected a rate (" + std::string(kRateForms) + "), got " + value.dump());
  }

  Result<Duration> DurationOf(const nlohmann::json& value, std::string_view where) const {
    if (value.is_number()) {
      const double seconds = value.get<double>();
      if (std::isfinite(seconds) && seconds >= 0) return FromSeconds(seconds);
    } else if (value.is_string()) {
      Result<Duration> duration = ParseDuration(value.get_ref<const std::string&>());
      if (!duration.ok()) return Error(where, duration.status().message());
      if (duration->count() < 0) return Error(where, "must not be negative");
      return duration;
    }
    return Error(where,
                 "expected a duration (" + std::string(kDurationForms) + "), got " + value.dump());
  }

  Result<double> NumberOf(const nlohmann::json& value, std::string_view where) const {
    if (std::optional<double> number = internal::JsonNumber(value)) return *number;
    return Error(where, "expected a number, got " + value.dump());
  }

  Result<Rate> RateField(std::string_view name) const {
    FD_ASSIGN_OR_RETURN(const nlohmann::json* value, Require(name));
    return RateOf(*value, "field '" + std::string(name) + "'");
  }

  Result<Duration> DurationField(std::string_view name) const {
    FD_ASSIGN_OR_RETURN(const nlohmann::json* value, Require(name));
    return DurationOf(*value, "field '" + std::string(name) + "'");
  }

 private:
  std::string kind_;
  const nlohmann::json& fields_;
};

Result<std::vector<RateStep>> StepsOf(const Fields& fields) {
  FD_ASSIGN_OR_RETURN(const nlohmann::json* list, fields.Require("steps"));
  if (!list->is_array() || list->empty()) {
    return fields.Error("field 'steps'",
                        "expected a list of {rate, duration}, got " + list->dump());
  }
  std::vector<RateStep> steps;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& item = (*list)[i];
    const std::string where = "step " + std::to_string(i + 1);
    if (!item.is_object() || !item.contains("rate") || !item.contains("duration")) {
      return fields.Error(where, "expected {rate, duration}, got " + item.dump());
    }
    RateStep step;
    FD_ASSIGN_OR_RETURN(step.rate, fields.RateOf(item["rate"], where + ": field 'rate'"));
    FD_ASSIGN_OR_RETURN(step.duration,
                        fields.DurationOf(item["duration"], where + ": field 'duration'"));
    steps.push_back(step);
  }
  return steps;
}

bool ValidRate(Rate rate) { return rate.per_second >= 0 && std::isfinite(rate.per_second); }

// What is wrong with a shape the format cannot rule out on its own; empty
// when nothing is.
std::string StepsProblem(const std::vector<RateStep>& steps) {
  if (steps.empty()) return "needs at least one step";
  for (const RateStep& step : steps) {
    if (!ValidRate(step.rate) || step.duration.count() < 0) {
      return "rates and durations must not be negative";
    }
  }
  return {};
}

std::string SpikeProblem(const SpikeShape& spike) {
  if (!ValidRate(spike.base) || !ValidRate(spike.peak)) return "rates must not be negative";
  if (spike.every.count() <= 0) return "every must be longer than 0s";
  if (spike.length.count() < 0 || spike.length > spike.every) {
    return "length (" + FormatDuration(spike.length) + ") must be between 0s and every (" +
           FormatDuration(spike.every) + ")";
  }
  return {};
}

}  // namespace

std::unique_ptr<ArrivalSchedule> ConstantArrivals(Rate rate, Duration phase_length) {
  return RampArrivals(rate, rate, phase_length);
}

std::unique_ptr<ArrivalSchedule> PoissonArrivals(Rate rate, Duration phase_length,
                                                 std::uint64_t seed) {
  return std::make_unique<PoissonSchedule>(rate.per_second, phase_length, seed);
}

std::unique_ptr<ArrivalSchedule> RampArrivals(Rate from, Rate to, Duration phase_length) {
  std::vector<Segment> segments;
  if (phase_length.count() > 0) {
    segments.push_back({0, Seconds(phase_length), from.per_second, to.per_second});
  }
  return std::make_unique<PacedSchedule>(std::move(segments), phase_length);
}

Result<std::unique_ptr<ArrivalSchedule>> StepArrivals(std::vector<RateStep> steps,
                                                      Duration phase_length) {
  if (const std::string problem = StepsProblem(steps); !problem.empty()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "steps: " + problem);
  }
  std::vector<Segment> segments;
  Duration start{0};
  for (const RateStep& step : steps) {
    if (start >= phase_length) break;
    const Duration length = std::min(step.duration, phase_length - start);
    if (length.count() > 0) {
      segments.push_back(
          {Seconds(start), Seconds(length), step.rate.per_second, step.rate.per_second});
    }
    start += length;
  }
  if (start < phase_length) {
    const double rate = steps.back().rate.per_second;
    segments.push_back({Seconds(start), Seconds(phase_length - start), rate, rate});
  }
  return std::unique_ptr<ArrivalSchedule>(
      std::make_unique<PacedSchedule>(std::move(segments), phase_length));
}

Result<std::unique_ptr<ArrivalSchedule>> SpikeArrivals(const SpikeShape& spike,
                                                       Duration phase_length) {
  if (const std::string problem = SpikeProblem(spike); !problem.empty()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "spike: " + problem);
  }
  return std::unique_ptr<ArrivalSchedule>(std::make_unique<SpikeSchedule>(spike, phase_length));
}

Result<std::vector<TraceRow>> ParseTrace(std::string_view text, std::string_view file_name) {
  return TraceParser(file_name).Parse(text);
}

Result<std::unique_ptr<ArrivalSchedule>> TraceArrivals(const std::filesystem::path& path,
                                                       double speed, Duration phase_length) {
  const std::string name = path.string();
  if (!(speed > 0) || !std::isfinite(speed)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     name + ": trace speed must be a positive number");
  }
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return FD_STATUS(StatusCode::kInvalidArgument, name + ": is a directory, not a trace file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int code = errno;
    return FD_STATUS(code == ENOENT ? StatusCode::kNotFound : StatusCode::kFailedPrecondition,
                     name + ": cannot read trace file: " + std::strerror(code));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return FD_STATUS(StatusCode::kFailedPrecondition, name + ": cannot read trace file");
  FD_ASSIGN_OR_RETURN(std::vector<TraceRow> rows, ParseTrace(text.str(), name));
  if (speed != 1) {
    for (TraceRow& row : rows) {
      const double scaled = std::round(static_cast<double>(row.offset.count()) / speed);
      row.offset = scaled < 9.2e18 ? Duration(static_cast<Duration::rep>(scaled)) : Duration::max();
    }
  }
  return std::unique_ptr<ArrivalSchedule>(
      std::make_unique<TraceSchedule>(std::move(rows), phase_length));
}

Result<std::unique_ptr<ArrivalSchedule>> MakeArrivalSchedule(
    std::string_view kind, const nlohmann::json& fields, Duration phase_length, std::uint64_t seed,
    const std::filesystem::path& base_dir) {
  const Fields in(kind, fields);
  if (kind == "constant") {
    FD_ASSIGN_OR_RETURN(const Rate rate, in.RateField("rate"));
    return ConstantArrivals(rate, phase_length);
  }
  if (kind == "poisson") {
    FD_ASSIGN_OR_RETURN(const Rate rate, in.RateField("rate"));
    return PoissonArrivals(rate, phase_length, seed);
  }
  if (kind == "ramp") {
    FD_ASSIGN_OR_RETURN(const Rate from, in.RateField("from"));
    FD_ASSIGN_OR_RETURN(const Rate to, in.RateField("to"));
    return RampArrivals(from, to, phase_length);
  }
  if (kind == "steps") {
    FD_ASSIGN_OR_RETURN(std::vector<RateStep> steps, StepsOf(in));
    return StepArrivals(std::move(steps), phase_length);
  }
  if (kind == "spike") {
    SpikeShape spike;
    FD_ASSIGN_OR_RETURN(spike.base, in.RateField("base"));
    FD_ASSIGN_OR_RETURN(spike.peak, in.RateField("peak"));
    FD_ASSIGN_OR_RETURN(spike.every, in.DurationField("every"));
    FD_ASSIGN_OR_RETURN(spike.length, in.DurationField("length"));
    if (const std::string problem = SpikeProblem(spike); !problem.empty()) {
      return FD_STATUS(StatusCode::kInvalidArgument, "arrival spike: " + problem);
    }
    return SpikeArrivals(spike, phase_length);
  }
  if (kind == "trace") {
    FD_ASSIGN_OR_RETURN(const nlohmann::json* file, in.Require("file"));
    if (!file->is_string() || file->get_ref<const std::string&>().empty()) {
      return in.Error("field 'file'", "expected a file name, got " + file->dump());
    }
    double speed = 1;
    if (const nlohmann::json* value = in.Find("speed")) {
      FD_ASSIGN_OR_RETURN(speed, in.NumberOf(*value, "field 'speed'"));
    }
    const std::filesystem::path path(file->get<std::string>());
    return TraceArrivals(path.is_absolute() || base_dir.empty() ? path : base_dir / path, speed,
                         phase_length);
  }
  if (kind == "closed") {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "arrival closed: sends depend on when jobs finish; use MakeClosedLoop");
  }
  return FD_STATUS(StatusCode::kInvalidArgument,
                   "unknown arrival process \"" + std::string(kind) +
                       "\"; expected constant, poisson, ramp, steps, spike, trace or closed");
}

ClosedLoop::ClosedLoop(std::int64_t users, Duration think_time, Duration phase_length)
    : users_(std::max<std::int64_t>(users, 0)),
      think_time_(std::max(think_time, Duration{0})),
      phase_length_(phase_length) {}

std::optional<Duration> ClosedLoop::FirstSend(std::int64_t user) const {
  if (user < 0 || user >= users_) return std::nullopt;
  // In double: think time in ns times 1e5 users overflows int64.
  const Duration at =
      FromSeconds(Seconds(think_time_) * static_cast<double>(user) / static_cast<double>(users_));
  if (at >= phase_length_) return std::nullopt;
  return at;
}

std::optional<Duration> ClosedLoop::NextSend(std::int64_t user, Duration finished_at) const {
  if (user < 0 || user >= users_) return std::nullopt;
  // Compared by subtraction so a late finish cannot overflow.
  if (finished_at >= phase_length_ || think_time_ >= phase_length_ - finished_at)
    return std::nullopt;
  return finished_at + think_time_;
}

Result<ClosedLoop> MakeClosedLoop(const nlohmann::json& fields, Duration phase_length) {
  const Fields in("closed", fields);
  FD_ASSIGN_OR_RETURN(const nlohmann::json* users_field, in.Require("users"));
  FD_ASSIGN_OR_RETURN(const double users, in.NumberOf(*users_field, "field 'users'"));
  if (users != std::floor(users) || users < 1 || users > 100'000) {
    return in.Error("field 'users'",
                    "expected an integer from 1 to 100000, got " + users_field->dump());
  }
  Duration think{0};
  if (const nlohmann::json* value = in.Find("thinkTime")) {
    FD_ASSIGN_OR_RETURN(think, in.DurationOf(*value, "field 'thinkTime'"));
  }
  return ClosedLoop(static_cast<std::int64_t>(users), think, phase_length);
}

namespace {

class SharedSchedule final : public ArrivalSchedule {
 public:
  SharedSchedule(std::unique_ptr<ArrivalSchedule> whole, int index, int shares)
      : whole_(std::move(whole)), index_(index), shares_(shares) {}
  std::optional<Duration> Next() override {
    std::optional<Duration> next;
    // The first call skips to this share's first send; later calls skip the
    // other shares' sends in between.
    for (int skip = taken_ ? shares_ : index_ + 1; skip > 0 && (next = whole_->Next()); --skip) {
    }
    taken_ = true;
    return next;
  }
  const JobShape* shape() const override { return whole_->shape(); }
  double expected_sends() const override {
    return whole_->expected_sends() / shares_;
  }

 private:
  std::unique_ptr<ArrivalSchedule> whole_;
  int index_;
  int shares_;
  bool taken_ = false;
};

}  // namespace

std::unique_ptr<ArrivalSchedule> ShareOfSchedule(std::unique_ptr<ArrivalSchedule> schedule, int index,
                                                 int shares) {
  if (shares <= 1) return schedule;
  return std::make_unique<SharedSchedule>(std::move(schedule), index, shares);
}

}  // namespace firedrill::workload
