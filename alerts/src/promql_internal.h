// What the PromQL parser and evaluator share: the function table.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/alerts/promql.h"

namespace firedrill::alerts::promql {

enum class FunctionId {
  kAbs,
  kAbsent,
  kAbsentOverTime,
  kAcos,
  kAcosh,
  kAsin,
  kAsinh,
  kAtan,
  kAtanh,
  kAvgOverTime,
  kCeil,
  kChanges,
  kClamp,
  kClampMax,
  kClampMin,
  kCos,
  kCosh,
  kCountOverTime,
  kDaysInMonth,
  kDayOfMonth,
  kDayOfWeek,
  kDayOfYear,
  kDeg,
  kDelta,
  kDeriv,
  kExp,
  kFloor,
  kHistogramQuantile,
  kHoltWinters,
  kHour,
  kIdelta,
  kIncrease,
  kIrate,
  kLabelJoin,
  kLabelReplace,
  kLastOverTime,
  kLn,
  kLog10,
  kLog2,
  kMaxOverTime,
  kMinOverTime,
  kMinute,
  kMonth,
  kPi,
  kPredictLinear,
  kPresentOverTime,
  kQuantileOverTime,
  kRad,
  kRate,
  kResets,
  kRound,
  kScalar,
  kSgn,
  kSin,
  kSinh,
  kSort,
  kSortDesc,
  kSqrt,
  kStddevOverTime,
  kStdvarOverTime,
  kSumOverTime,
  kTan,
  kTanh,
  kTime,
  kTimestamp,
  kVector,
  kYear,
};

struct Function {
  std::string_view name;
  FunctionId id;
  std::vector<ValueType> arg_types;
  int optional_args = 0;  // trailing arguments that may be left out
  bool variadic = false;  // the last argument type repeats (label_join)
  ValueType return_type = ValueType::kVector;
};

const Function* FindFunction(std::string_view name);

// A Prometheus duration ("1h30m", "250ms"), in milliseconds; nullopt when
// the text is not one. Units must fall in order: y w d h m s ms.
std::optional<std::int64_t> ParsePromDuration(std::string_view text);

// An RE2-style pattern anchored at both ends, as Prometheus matches label
// values; null when std::regex cannot compile it.
std::shared_ptr<const std::regex> CompileAnchoredRegex(const std::string& pattern);

}  // namespace firedrill::alerts::promql
