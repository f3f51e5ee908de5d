// PromQL as Prometheus 2.42 evaluates it: a parser that reports errors with
// their position, and an instant-query evaluator over a SeriesSource with
// 2.42's semantics (5-minute lookback, staleness, closed range boundaries,
// extrapolated rates, classic-bucket quantiles, one-to-one and group_left/
// group_right matching, errors for many-to-many matches). The arithmetic
// follows Prometheus's operation order so that results agree to the last bit.
//
// Thread-safety: a parsed Expr is immutable and may be evaluated from many
// threads at once; each Evaluate call reads the source only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "firedrill/alerts/exposition.h"
#include "firedrill/alerts/series_store.h"
#include "firedrill/core/status.h"

namespace firedrill::alerts::promql {

enum class ValueType { kScalar, kVector, kMatrix, kString };
std::string_view ValueTypeName(ValueType type);  // "scalar", "instant vector", ...

enum class MatchOp { kEqual, kNotEqual, kRegex, kNotRegex };

struct LabelMatcher {
  std::string name;
  MatchOp op = MatchOp::kEqual;
  std::string value;
  std::shared_ptr<const std::regex> regex;  // anchored, for kRegex/kNotRegex

  bool Matches(std::string_view label_value) const;
};

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kAtan2,
  kEqual,
  kNotEqual,
  kGreater,
  kLess,
  kGreaterEqual,
  kLessEqual,
  kAnd,
  kOr,
  kUnless,
};
enum class AggregateOp {
  kSum,
  kMin,
  kMax,
  kAvg,
  kCount,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kQuantile,
  kCountValues,
};

std::string_view BinaryOpName(BinaryOp op);  // "+", "==", "and", ...

// The key two samples must share to match in a binary operation: the `on`
// labels, or every label but the ignored ones and the metric name.
std::string MatchSignature(const LabelSet& labels, bool on, const std::vector<std::string>& names);

struct Function;  // the function table lives with the evaluator

struct Node {
  enum class Kind {
    kNumber,
    kString,
    kVectorSelector,
    kMatrixSelector,
    kSubquery,
    kUnaryMinus,
    kBinary,
    kCall,
    kAggregate,
    kParen,
  };
  Kind kind = Kind::kNumber;
  ValueType type = ValueType::kScalar;
  int position = 0;  // byte offset in the expression text

  double number = 0;  // kNumber
  std::string text;   // kString; metric name of a selector

  // Selectors (kVectorSelector; kMatrixSelector and kSubquery wrap their
  // inner expression as children[0] and keep range, offset and @ here).
  std::vector<LabelMatcher> matchers;
  std::int64_t range_ms = 0;
  std::int64_t step_ms = 0;  // subquery step; 0: the evaluation's default
  std::int64_t offset_ms = 0;
  enum class At { kNone, kTime, kStart, kEnd } at = At::kNone;
  std::int64_t at_ms = 0;

  BinaryOp binary_op = BinaryOp::kAdd;
  bool return_bool = false;
  enum class Card { kOneToOne, kManyToOne, kOneToMany, kManyToMany } card = Card::kOneToOne;
  bool has_matching = false;  // on(...) or ignoring(...) given
  bool on = false;
  std::vector<std::string> matching_labels;
  std::vector<std::string> include_labels;  // group_left/group_right(...)

  AggregateOp aggregate_op = AggregateOp::kSum;
  std::vector<std::string> grouping;
  bool without = false;

  const Function* function = nullptr;
  std::vector<std::unique_ptr<Node>> children;
};

// A parsed expression. Parse errors read "COL: parse error: what" for a
// one-line expression (1-based column), or "LINE:COL: ..." otherwise.
struct Expr {
  std::string text;
  std::unique_ptr<Node> root;
  ValueType type() const { return root->type; }
};
Result<std::shared_ptr<const Expr>> Parse(std::string_view text);

struct EvalSample {
  LabelSet labels;  // sorted; "__name__" included when kept
  double value = 0;
  std::int64_t t_ms = 0;
};

struct QueryResult {
  ValueType type = ValueType::kVector;
  std::vector<EvalSample> vector;  // kVector
  double scalar = 0;               // kScalar
  std::string string;              // kString
  struct RangeSeries {
    LabelSet labels;
    std::vector<Point> points;
  };
  std::vector<RangeSeries> matrix;  // kMatrix
};

struct EvalOptions {
  std::int64_t lookback_ms = 5 * 60 * 1000;
  std::int64_t default_subquery_step_ms = 60 * 1000;  // the evaluation interval
  // Samples a query may touch (selected points plus subquery steps) before it
  // fails, as Prometheus's query.max-samples bounds a query's memory.
  std::int64_t max_samples = 50'000'000;
};

// Evaluates `expr` as an instant query at `t_ms`. Runtime errors (many-to-many
// matching, duplicate label sets, bad arguments) come back as statuses.
Result<QueryResult> Evaluate(const Expr& expr, const SeriesSource& source, std::int64_t t_ms,
                             const EvalOptions& options = {});
// One subexpression of a parsed Expr, as if it were the whole query (what
// `rules lint` uses to look at each side of a binary operation).
Result<QueryResult> EvaluateNode(const Node& node, const SeriesSource& source, std::int64_t t_ms,
                                 const EvalOptions& options = {});

// Go's strconv.FormatFloat(value, fmt, -1, 64) for fmt 'g', 'E', 'e' and 'f':
// the shortest form that reads back exactly, as Prometheus prints values.
std::string FormatGoFloat(double value, char format = 'g');
// Prometheus's labels.Labels.String(): {__name__="up", job="x"}, sorted, Go-quoted.
std::string FormatLabels(const LabelSet& labels);

}  // namespace firedrill::alerts::promql
