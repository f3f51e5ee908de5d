// The PromQL instant-query evaluator. Each operation follows Prometheus
// 2.42's engine.go/functions.go/quantile.go, down to the order of the
// floating-point operations, so values agree bit for bit.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "firedrill/alerts/promql.h"
#include "promql_internal.h"

namespace firedrill::alerts::promql {
namespace {

using VT = ValueType;
using Vector = std::vector<EvalSample>;

struct EvalError {
  std::string message;
};
[[noreturn]] void Fail(std::string message) { throw EvalError{std::move(message)}; }

// ------------------------------------------------------------ label helpers

const std::string* FindLabel(const LabelSet& labels, std::string_view name) {
  for (const auto& label : labels) {
    if (label.first == name) return &label.second;
  }
  return nullptr;
}
std::string_view GetLabel(const LabelSet& labels, std::string_view name) {
  const std::string* value = FindLabel(labels, name);
  return value ? std::string_view(*value) : std::string_view();
}
void DeleteLabels(LabelSet& labels, const std::vector<std::string>& names) {
  std::erase_if(labels, [&](const auto& label) {
    return std::find(names.begin(), names.end(), label.first) != names.end();
  });
}
void DeleteName(LabelSet& labels) {
  std::erase_if(labels, [](const auto& label) { return label.first == "__name__"; });
}
void KeepLabels(LabelSet& labels, const std::vector<std::string>& names) {
  std::erase_if(labels, [&](const auto& label) {
    return std::find(names.begin(), names.end(), label.first) == names.end();
  });
}

}  // namespace

std::string MatchSignature(const LabelSet& labels, bool on, const std::vector<std::string>& names) {
  std::string key;
  for (const auto& label : labels) {
    const bool listed = std::find(names.begin(), names.end(), label.first) != names.end();
    if (on ? !listed : (listed || label.first == "__name__")) continue;
    key += label.first;
    key += '\xff';
    key += label.second;
    key += '\xff';
  }
  return key;
}

namespace {

std::string Signature(const LabelSet& labels, bool on, const std::vector<std::string>& names) {
  return MatchSignature(labels, on, names);
}

std::string LabelsKey(const LabelSet& labels) {
  return Signature(labels, false, {"__name__"}) + "\xfe" +
         std::string(GetLabel(labels, "__name__"));
}

void CheckNoDuplicates(const Vector& vector) {
  if (vector.size() < 2) return;
  std::unordered_set<std::string> seen;
  for (const EvalSample& sample : vector) {
    if (!seen.insert(LabelsKey(sample.labels)).second) {
      Fail("vector cannot contain metrics with the same labelset");
    }
  }
}

// ------------------------------------------------------------ arithmetic

double KahanSumInc(double inc, double sum, double& c) {
  const double t = sum + inc;
  if (std::fabs(sum) >= std::fabs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  return t;
}

bool IsOddInt(double x) {
  double integer;
  const double fraction = std::modf(x, &integer);
  return fraction == 0 && std::fabs(integer) < 9007199254740992.0 &&
         static_cast<std::int64_t>(integer) % 2 != 0;
}

// Go's math.Pow: integer powers by repeated squaring, which differs from
// glibc's pow in the last bit.
double GoPow(double x, double y) {
  if (y == 0 || x == 1) return 1;
  if (y == 1) return x;
  if (std::isnan(x) || std::isnan(y)) return NAN;
  if (x == 0) {
    if (y < 0) return std::signbit(x) && IsOddInt(y) ? std::copysign(INFINITY, x) : INFINITY;
    if (y > 0) return std::signbit(x) && IsOddInt(y) ? x : 0;
  }
  if (std::isinf(y)) {
    if (x == -1) return 1;
    if ((std::fabs(x) < 1) == (y > 0)) return 0;
    return INFINITY;
  }
  if (std::isinf(x)) {
    if (x < 0) return GoPow(1 / x, -y);
    if (y < 0) return 0;
    if (y > 0) return INFINITY;
  }
  if (y == 0.5) return std::sqrt(x);
  if (y == -0.5) return 1 / std::sqrt(x);
  double yi;
  double yf = std::modf(std::fabs(y), &yi);
  if (yf != 0 && x < 0) return NAN;
  if (yi >= 9223372036854775808.0) {
    if (x == -1) return 1;
    if ((std::fabs(x) < 1) == (y > 0)) return 0;
    return INFINITY;
  }
  double a1 = 1.0;
  int ae = 0;
  if (yf != 0) {
    if (yf > 0.5) {
      yf--;
      yi++;
    }
    a1 = std::exp(yf * std::log(x));
  }
  int xe;
  double x1 = std::frexp(x, &xe);
  for (std::int64_t i = static_cast<std::int64_t>(yi); i != 0; i >>= 1) {
    if (xe < -(1 << 12) || (1 << 12) < xe) {
      ae += xe;
      break;
    }
    if ((i & 1) == 1) {
      a1 *= x1;
      ae += xe;
    }
    x1 *= x1;
    xe <<= 1;
    if (x1 < .5) {
      x1 += x1;
      xe--;
    }
  }
  if (y < 0) {
    a1 = 1 / a1;
    ae = -ae;
  }
  return std::ldexp(a1, ae);
}

// vectorElemBinop: the value and, for comparisons, whether to keep it.
std::pair<double, bool> ElemBinop(BinaryOp op, double lhs, double rhs) {
  switch (op) {
    case BinaryOp::kAdd:
      return {lhs + rhs, true};
    case BinaryOp::kSub:
      return {lhs - rhs, true};
    case BinaryOp::kMul:
      return {lhs * rhs, true};
    case BinaryOp::kDiv:
      return {lhs / rhs, true};
    case BinaryOp::kPow:
      return {GoPow(lhs, rhs), true};
    case BinaryOp::kMod:
      return {std::fmod(lhs, rhs), true};
    case BinaryOp::kAtan2:
      return {std::atan2(lhs, rhs), true};
    case BinaryOp::kEqual:
      return {lhs, lhs == rhs};
    case BinaryOp::kNotEqual:
      return {lhs, lhs != rhs};
    case BinaryOp::kGreater:
      return {lhs, lhs > rhs};
    case BinaryOp::kLess:
      return {lhs, lhs < rhs};
    case BinaryOp::kGreaterEqual:
      return {lhs, lhs >= rhs};
    case BinaryOp::kLessEqual:
      return {lhs, lhs <= rhs};
    default:
      Fail("operator not allowed here");
  }
}

bool IsComparison(BinaryOp op) {
  return op == BinaryOp::kEqual || op == BinaryOp::kNotEqual || op == BinaryOp::kGreater ||
         op == BinaryOp::kLess || op == BinaryOp::kGreaterEqual || op == BinaryOp::kLessEqual;
}
// Arithmetic drops the metric name; comparisons keep it.
bool DropsName(BinaryOp op) {
  return !IsComparison(op) && op != BinaryOp::kAnd && op != BinaryOp::kOr &&
         op != BinaryOp::kUnless;
}

// quantile.go: the φ-quantile of values (sorted here), linear between ranks.
double Quantile(double q, std::vector<double> values) {
  if (values.empty()) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  // vectorByValueHeap's order: NaN first, then ascending.
  std::sort(values.begin(), values.end(), [](double a, double b) {
    if (std::isnan(a) && !std::isnan(b)) return true;
    return a < b;
  });
  const double n = static_cast<double>(values.size());
  const double rank = q * (n - 1);
  const double lower = std::max(0.0, std::floor(rank));
  const double upper = std::min(n - 1, lower + 1);
  const double weight = rank - std::floor(rank);
  return values[static_cast<std::size_t>(lower)] * (1 - weight) +
         values[static_cast<std::size_t>(upper)] * weight;
}

struct Bucket {
  double upper_bound;
  double count;
};

double BucketQuantile(double q, std::vector<Bucket> buckets) {
  if (std::isnan(q)) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  std::sort(buckets.begin(), buckets.end(),
            [](const Bucket& a, const Bucket& b) { return a.upper_bound < b.upper_bound; });
  if (!std::isinf(buckets.back().upper_bound) || buckets.back().upper_bound < 0) return NAN;
  // coalesceBuckets: equal bounds add up.
  std::vector<Bucket> merged;
  for (const Bucket& bucket : buckets) {
    if (!merged.empty() && merged.back().upper_bound == bucket.upper_bound) {
      merged.back().count += bucket.count;
    } else {
      merged.push_back(bucket);
    }
  }
  // ensureMonotonic.
  double max = -INFINITY;
  for (Bucket& bucket : merged) {
    if (bucket.count > max) {
      max = bucket.count;
    } else if (bucket.count < max) {
      bucket.count = max;
    }
  }
  if (merged.size() < 2) return NAN;
  const double observations = merged.back().count;
  if (observations == 0) return NAN;
  double rank = q * observations;
  std::size_t b = 0;
  // sort.Search over all but the last bucket.
  {
    std::size_t lo = 0, hi = merged.size() - 1;
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (!(merged[mid].count >= rank)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    b = lo;
  }
  if (b == merged.size() - 1) return merged[merged.size() - 2].upper_bound;
  if (b == 0 && merged[0].upper_bound <= 0) return merged[0].upper_bound;
  double bucket_start = 0;
  const double bucket_end = merged[b].upper_bound;
  double count = merged[b].count;
  if (b > 0) {
    bucket_start = merged[b - 1].upper_bound;
    count -= merged[b - 1].count;
    rank -= merged[b - 1].count;
  }
  return bucket_start + (bucket_end - bucket_start) * (rank / count);
}

// linearRegression with Kahan sums, as 2.42 computes deriv and predict_linear.
std::pair<double, double> LinearRegression(std::span<const Point> points,
                                           std::int64_t intercept_ms) {
  double n = 0, sum_x = 0, c_x = 0, sum_y = 0, c_y = 0, sum_xy = 0, c_xy = 0, sum_x2 = 0, c_x2 = 0;
  const double init_y = points[0].value;
  bool const_y = true;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const double v = points[i].value;
    if (const_y && i > 0 && v != init_y) const_y = false;
    n += 1.0;
    const double x = static_cast<double>(points[i].t_ms - intercept_ms) / 1e3;
    sum_x = KahanSumInc(x, sum_x, c_x);
    sum_y = KahanSumInc(v, sum_y, c_y);
    sum_xy = KahanSumInc(x * v, sum_xy, c_xy);
    sum_x2 = KahanSumInc(x * x, sum_x2, c_x2);
  }
  if (const_y) {
    if (std::isinf(init_y)) return {NAN, NAN};
    return {0, init_y};
  }
  sum_x = sum_x + c_x;
  sum_y = sum_y + c_y;
  sum_xy = sum_xy + c_xy;
  sum_x2 = sum_x2 + c_x2;
  const double cov_xy = sum_xy - sum_x * sum_y / n;
  const double var_x = sum_x2 - sum_x * sum_x / n;
  const double slope = cov_xy / var_x;
  const double intercept = sum_y / n - slope * sum_x / n;
  return {slope, intercept};
}

// extrapolatedRate: rate, increase and delta.
std::optional<double> ExtrapolatedRate(std::span<const Point> points, std::int64_t range_start,
                                       std::int64_t range_end, std::int64_t range_ms,
                                       bool is_counter, bool is_rate) {
  if (points.size() < 2) return std::nullopt;
  double result = points.back().value - points.front().value;
  if (is_counter) {
    double previous = points.front().value;
    for (std::size_t i = 1; i < points.size(); ++i) {
      if (points[i].value < previous) result += previous;
      previous = points[i].value;
    }
  }
  double duration_to_start = static_cast<double>(points.front().t_ms - range_start) / 1000;
  const double duration_to_end = static_cast<double>(range_end - points.back().t_ms) / 1000;
  const double sampled_interval =
      static_cast<double>(points.back().t_ms - points.front().t_ms) / 1000;
  const double average_between = sampled_interval / static_cast<double>(points.size() - 1);
  if (is_counter && result > 0 && points.front().value >= 0) {
    const double duration_to_zero = sampled_interval * (points.front().value / result);
    if (duration_to_zero < duration_to_start) duration_to_start = duration_to_zero;
  }
  const double threshold = average_between * 1.1;
  double extrapolate_to = sampled_interval;
  extrapolate_to += duration_to_start < threshold ? duration_to_start : average_between / 2;
  extrapolate_to += duration_to_end < threshold ? duration_to_end : average_between / 2;
  double factor = extrapolate_to / sampled_interval;
  if (is_rate) factor /= static_cast<double>(range_ms) / 1000;
  return result * factor;
}

std::optional<double> InstantValue(std::span<const Point> points, bool is_rate) {
  if (points.size() < 2) return std::nullopt;
  const Point& last = points[points.size() - 1];
  const Point& previous = points[points.size() - 2];
  double result = is_rate && last.value < previous.value ? last.value : last.value - previous.value;
  const std::int64_t interval = last.t_ms - previous.t_ms;
  if (interval == 0) return std::nullopt;
  if (is_rate) result /= static_cast<double>(interval) / 1000;
  return result;
}

double AvgOverTime(std::span<const Point> points) {
  double mean = 0, count = 0, c = 0;
  for (const Point& point : points) {
    count++;
    if (std::isinf(mean)) {
      if (std::isinf(point.value) && (mean > 0) == (point.value > 0)) continue;
      if (!std::isinf(point.value) && !std::isnan(point.value)) continue;
    }
    mean = KahanSumInc(point.value / count - mean / count, mean, c);
  }
  if (std::isinf(mean)) return mean;
  return mean + c;
}

double StdvarOverTime(std::span<const Point> points) {
  double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
  for (const Point& point : points) {
    count++;
    const double delta = point.value - (mean + c_mean);
    mean = KahanSumInc(delta / count, mean, c_mean);
    aux = KahanSumInc(delta * (point.value - (mean + c_mean)), aux, c_aux);
  }
  return (aux + c_aux) / count;
}

double HoltWinters(std::span<const Point> points, double sf, double tf) {
  double s0 = 0, s1 = points[0].value, b = points[1].value - points[0].value;
  for (std::size_t i = 1; i < points.size(); ++i) {
    const double x = sf * points[i].value;
    // calcTrendValue(i-1, ...)
    if (i - 1 != 0) b = tf * (s1 - s0) + (1 - tf) * b;
    const double y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

// Go regexp's Expand for label_replace: $1, ${1}, $name, $$.
std::string ExpandReplacement(const std::string& templ, const std::smatch& match) {
  std::string out;
  for (std::size_t i = 0; i < templ.size(); ++i) {
    if (templ[i] != '$' || i + 1 >= templ.size()) {
      out += templ[i];
      continue;
    }
    if (templ[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    std::string name;
    std::size_t end;
    if (templ[i + 1] == '{') {
      const std::size_t close = templ.find('}', i + 2);
      if (close == std::string::npos) {
        out += templ[i];
        continue;
      }
      name = templ.substr(i + 2, close - i - 2);
      end = close;
    } else {
      end = i + 1;
      while (end < templ.size() &&
             (std::isalnum(static_cast<unsigned char>(templ[end])) || templ[end] == '_')) {
        ++end;
      }
      name = templ.substr(i + 1, end - i - 1);
      --end;
    }
    if (name.empty()) {
      out += templ[i];
      continue;
    }
    const bool numeric = std::all_of(name.begin(), name.end(), [](char ch) {
      return std::isdigit(static_cast<unsigned char>(ch));
    });
    if (numeric && name.size() < 9) {
      const std::size_t group = std::stoul(name);
      if (group < match.size()) out += match[group].str();
    }
    i = end;
  }
  return out;
}

// ------------------------------------------------------------ the evaluator

struct RangeSeries {
  const LabelSet* labels;
  std::span<const Point> points;
};
struct Matrix {
  std::vector<RangeSeries> series;
  std::int64_t range_start = 0;
  std::int64_t range_end = 0;
  std::int64_t range_ms = 0;
};

struct Value {
  VT type = VT::kVector;
  double scalar = 0;
  Vector vector;
  std::string string;
};

bool MatchesAll(const std::vector<LabelMatcher>& matchers, const LabelSet& labels) {
  for (const LabelMatcher& matcher : matchers) {
    if (!matcher.Matches(GetLabel(labels, matcher.name))) return false;
  }
  return true;
}

class Evaluator {
 public:
  Evaluator(const SeriesSource& source, std::int64_t query_ms, const EvalOptions& options)
      : source_(source), query_ms_(query_ms), options_(options), budget_(options.max_samples) {}

  Value Eval(const Node& node, std::int64_t t) {
    switch (node.kind) {
      case Node::Kind::kNumber:
        return Scalar(node.number);
      case Node::Kind::kString: {
        Value value;
        value.type = VT::kString;
        value.string = node.text;
        return value;
      }
      case Node::Kind::kParen:
        return Eval(*node.children[0], t);
      case Node::Kind::kVectorSelector: {
        Value value;
        value.vector = SelectInstant(node, t);
        return value;
      }
      case Node::Kind::kMatrixSelector:
      case Node::Kind::kSubquery:
        Fail("range vectors are only allowed as function arguments here");
      case Node::Kind::kUnaryMinus: {
        Value value = Eval(*node.children[0], t);
        if (value.type == VT::kScalar) {
          value.scalar = -value.scalar;
          return value;
        }
        for (EvalSample& sample : value.vector) {
          DeleteName(sample.labels);
          sample.value = -sample.value;
          sample.t_ms = t;
        }
        CheckNoDuplicates(value.vector);
        return value;
      }
      case Node::Kind::kBinary:
        return EvalBinary(node, t);
      case Node::Kind::kCall:
        return EvalCall(node, t);
      case Node::Kind::kAggregate:
        return EvalAggregate(node, t);
    }
    Fail("unknown expression");
  }

  // A range vector argument: a range selector or a subquery, at time t.
  Matrix EvalRange(const Node& node, std::int64_t t) {
    if (node.kind == Node::Kind::kParen) return EvalRange(*node.children[0], t);
    const std::int64_t ref = ReferenceTime(node, t);
    Matrix matrix;
    matrix.range_ms = node.range_ms;
    matrix.range_start = ref - node.range_ms;
    matrix.range_end = ref;
    if (node.kind == Node::Kind::kMatrixSelector) {
      const Node& selector = *node.children[0];
      source_.ForEachSeries(selector.text, [&](const LabelSet& labels,
                                               std::span<const Point> points) {
        if (!MatchesAll(selector.matchers, labels)) return;
        auto first = std::lower_bound(points.begin(), points.end(), matrix.range_start,
                                      [](const Point& p, std::int64_t v) { return p.t_ms < v; });
        auto last = std::upper_bound(first, points.end(), ref,
                                     [](std::int64_t v, const Point& p) { return v < p.t_ms; });
        std::span<const Point> window(first, last);
        Spend(static_cast<std::int64_t>(window.size()));
        if (std::any_of(window.begin(), window.end(),
                        [](const Point& p) { return IsStaleMarker(p.value); })) {
          auto& owned = owned_points_.emplace_back();
          for (const Point& point : window) {
            if (!IsStaleMarker(point.value)) owned.push_back(point);
          }
          window = owned;
        }
        matrix.series.push_back({&labels, window});
      });
      return matrix;
    }
    // Subquery: the inner expression at every step-aligned time in the range.
    const std::int64_t step = node.step_ms > 0 ? node.step_ms : options_.default_subquery_step_ms;
    std::int64_t start = step * (matrix.range_start / step);
    if (start < matrix.range_start) start += step;
    std::map<LabelSet, std::size_t> index;
    std::vector<std::pair<LabelSet, std::vector<Point>>> collected;
    for (std::int64_t ts = start; ts <= ref; ts += step) {
      Spend(1);
      Value value = Eval(*node.children[0], ts);
      if (value.type == VT::kScalar) {
        value.vector.push_back({{}, value.scalar, ts});
      }
      for (EvalSample& sample : value.vector) {
        auto [it, inserted] = index.try_emplace(sample.labels, collected.size());
        if (inserted) collected.push_back({sample.labels, {}});
        collected[it->second].second.push_back({ts, sample.value});
      }
    }
    for (auto& [labels, points] : collected) {
      owned_labels_.push_back(std::move(labels));
      owned_points_.push_back(std::move(points));
      matrix.series.push_back({&owned_labels_.back(), owned_points_.back()});
    }
    return matrix;
  }

 private:
  static Value Scalar(double v) {
    Value value;
    value.type = VT::kScalar;
    value.scalar = v;
    return value;
  }

  std::int64_t ReferenceTime(const Node& node, std::int64_t t) const {
    std::int64_t base = t;
    if (node.at == Node::At::kTime) base = node.at_ms;
    if (node.at == Node::At::kStart || node.at == Node::At::kEnd) base = query_ms_;
    return base - node.offset_ms;
  }

  Vector SelectInstant(const Node& node, std::int64_t t) {
    const std::int64_t ref = ReferenceTime(node, t);
    Vector out;
    source_.ForEachSeries(node.text, [&](const LabelSet& labels, std::span<const Point> points) {
      if (!MatchesAll(node.matchers, labels)) return;
      auto it = std::upper_bound(points.begin(), points.end(), ref,
                                 [](std::int64_t v, const Point& p) { return v < p.t_ms; });
      if (it == points.begin()) return;
      --it;
      if (it->t_ms < ref - options_.lookback_ms) return;
      if (IsStaleMarker(it->value)) return;
      Spend(1);
      out.push_back({labels, it->value, it->t_ms});
    });
    return out;
  }

  Value EvalBinary(const Node& node, std::int64_t t) {
    Value lhs = Eval(*node.children[0], t);
    Value rhs = Eval(*node.children[1], t);
    const BinaryOp op = node.binary_op;
    if (lhs.type == VT::kScalar && rhs.type == VT::kScalar) {
      auto [value, keep] = ElemBinop(op, lhs.scalar, rhs.scalar);
      if (IsComparison(op)) value = keep ? 1 : 0;
      return Scalar(value);
    }
    Value out;
    if (lhs.type == VT::kScalar || rhs.type == VT::kScalar) {
      const bool swap = lhs.type == VT::kScalar;
      Vector& vector = swap ? rhs.vector : lhs.vector;
      const double scalar = swap ? lhs.scalar : rhs.scalar;
      for (EvalSample& sample : vector) {
        double lv = sample.value, rv = scalar;
        if (swap) std::swap(lv, rv);
        auto [value, keep] = ElemBinop(op, lv, rv);
        // A comparison keeps the vector's value, even with the scalar on the left.
        if (IsComparison(op) && swap) value = rv;
        if (node.return_bool) {
          value = keep ? 1 : 0;
          keep = true;
        }
        if (!keep) continue;
        sample.value = value;
        sample.t_ms = t;
        if (DropsName(op) || node.return_bool) DeleteName(sample.labels);
        out.vector.push_back(std::move(sample));
      }
      CheckNoDuplicates(out.vector);
      return out;
    }
    switch (op) {
      case BinaryOp::kAnd:
      case BinaryOp::kUnless: {
        std::unordered_set<std::string> right;
        for (const EvalSample& sample : rhs.vector) {
          right.insert(Signature(sample.labels, node.on, node.matching_labels));
        }
        const bool want = op == BinaryOp::kAnd;
        for (EvalSample& sample : lhs.vector) {
          if ((right.count(Signature(sample.labels, node.on, node.matching_labels)) > 0) == want) {
            sample.t_ms = t;
            out.vector.push_back(std::move(sample));
          }
        }
        break;
      }
      case BinaryOp::kOr: {
        std::unordered_set<std::string> left;
        for (EvalSample& sample : lhs.vector) {
          left.insert(Signature(sample.labels, node.on, node.matching_labels));
          sample.t_ms = t;
          out.vector.push_back(std::move(sample));
        }
        for (EvalSample& sample : rhs.vector) {
          if (left.count(Signature(sample.labels, node.on, node.matching_labels)) == 0) {
            sample.t_ms = t;
            out.vector.push_back(std::move(sample));
          }
        }
        break;
      }
      default:
        out.vector = VectorBinop(node, std::move(lhs.vector), std::move(rhs.vector), t);
    }
    CheckNoDuplicates(out.vector);
    return out;
  }

  Vector VectorBinop(const Node& node, Vector lhs, Vector rhs, std::int64_t t) {
    Vector out;
    if (lhs.empty() || rhs.empty()) return out;
    const bool one_to_many = node.card == Node::Card::kOneToMany;
    if (one_to_many) std::swap(lhs, rhs);
    std::unordered_map<std::string, const EvalSample*> right;
    for (const EvalSample& sample : rhs) {
      std::string sig = Signature(sample.labels, node.on, node.matching_labels);
      auto [it, inserted] = right.try_emplace(sig, &sample);
      if (!inserted) {
        LabelSet matched = sample.labels;
        if (node.on) {
          KeepLabels(matched, node.matching_labels);
        } else {
          std::vector<std::string> drop = node.matching_labels;
          drop.push_back("__name__");
          DeleteLabels(matched, drop);
        }
        Fail("found duplicate series for the match group " + FormatLabels(matched) + " on the " +
             (one_to_many ? "left" : "right") + " hand-side of the operation: [" +
             FormatLabels(sample.labels) + ", " + FormatLabels(it->second->labels) +
             "];many-to-many matching not allowed: matching labels must be unique on one side");
      }
    }
    std::unordered_map<std::string, std::unordered_set<std::string>> matched;
    for (const EvalSample& left : lhs) {
      const std::string sig = Signature(left.labels, node.on, node.matching_labels);
      const auto found = right.find(sig);
      if (found == right.end()) continue;
      const EvalSample& one = *found->second;
      double vl = left.value, vr = one.value;
      if (one_to_many) std::swap(vl, vr);
      auto [value, keep] = ElemBinop(node.binary_op, vl, vr);
      if (node.return_bool) {
        value = keep ? 1 : 0;
      } else if (!keep) {
        continue;
      }
      LabelSet metric = left.labels;
      if (DropsName(node.binary_op)) DeleteName(metric);
      if (node.card == Node::Card::kOneToOne) {
        if (node.on) {
          KeepLabels(metric, node.matching_labels);
        } else {
          DeleteLabels(metric, node.matching_labels);
        }
      }
      for (const std::string& name : node.include_labels) {
        SetLabel(metric, name, std::string(GetLabel(one.labels, name)));
      }
      if (node.return_bool) DeleteName(metric);
      auto [group, seen] = matched.try_emplace(sig);
      if (node.card == Node::Card::kOneToOne) {
        if (!seen) {
          Fail(
              "multiple matches for labels: many-to-one matching must be explicit "
              "(group_left/group_right)");
        }
      } else if (!group->second.insert(LabelsKey(metric)).second) {
        Fail("multiple matches for labels: grouping labels must ensure unique matches");
      }
      out.push_back({std::move(metric), value, t});
    }
    return out;
  }

  static double ScalarArg(const Value& value) { return value.scalar; }

  Value EvalCall(const Node& node, std::int64_t t) {
    const Function& function = *node.function;
    const FunctionId id = function.id;
    // Functions of a range vector: one output sample per input series.
    int matrix_arg = -1;
    for (std::size_t i = 0; i < node.children.size(); ++i) {
      if (node.children[i]->type == VT::kMatrix) matrix_arg = static_cast<int>(i);
    }
    if (matrix_arg >= 0) return EvalRangeFunction(node, matrix_arg, t);

    std::vector<Value> args;
    for (const auto& child : node.children) args.push_back(Eval(*child, t));
    Value out;
    auto simple = [&](auto&& f) {
      for (EvalSample& sample : args[0].vector) {
        DeleteName(sample.labels);
        sample.value = f(sample.value);
        sample.t_ms = t;
        out.vector.push_back(std::move(sample));
      }
    };
    switch (id) {
      case FunctionId::kTime:
        return Scalar(static_cast<double>(t) / 1000);
      case FunctionId::kPi:
        return Scalar(M_PI);
      case FunctionId::kScalar:
        return Scalar(args[0].vector.size() == 1 ? args[0].vector[0].value : NAN);
      case FunctionId::kVector:
        out.vector.push_back({{}, args[0].scalar, t});
        return out;
      case FunctionId::kAbs:
        simple([](double v) { return std::fabs(v); });
        break;
      case FunctionId::kCeil:
        simple([](double v) { return std::ceil(v); });
        break;
      case FunctionId::kFloor:
        simple([](double v) { return std::floor(v); });
        break;
      case FunctionId::kExp:
        simple([](double v) { return std::exp(v); });
        break;
      case FunctionId::kSqrt:
        simple([](double v) { return std::sqrt(v); });
        break;
      case FunctionId::kLn:
        simple([](double v) { return std::log(v); });
        break;
      case FunctionId::kLog2:
        simple([](double v) { return std::log2(v); });
        break;
      case FunctionId::kLog10:
        simple([](double v) { return std::log10(v); });
        break;
      case FunctionId::kSin:
        simple([](double v) { return std::sin(v); });
        break;
      case FunctionId::kCos:
        simple([](double v) { return std::cos(v); });
        break;
      case FunctionId::kTan:
        simple([](double v) { return std::tan(v); });
        break;
      case FunctionId::kAsin:
        simple([](double v) { return std::asin(v); });
        break;
      case FunctionId::kAcos:
        simple([](double v) { return std::acos(v); });
        break;
      case FunctionId::kAtan:
        simple([](double v) { return std::atan(v); });
        break;
      case FunctionId::kSinh:
        simple([](double v) { return std::sinh(v); });
        break;
      case FunctionId::kCosh:
        simple([](double v) { return std::cosh(v); });
        break;
      case FunctionId::kTanh:
        simple([](double v) { return std::tanh(v); });
        break;
      case FunctionId::kAsinh:
        simple([](double v) { return std::asinh(v); });
        break;
      case FunctionId::kAcosh:
        simple([](double v) { return std::acosh(v); });
        break;
      case FunctionId::kAtanh:
        simple([](double v) { return std::atanh(v); });
        break;
      case FunctionId::kRad:
        simple([](double v) { return v * M_PI / 180; });
        break;
      case FunctionId::kDeg:
        simple([](double v) { return v * 180 / M_PI; });
        break;
      case FunctionId::kSgn:
        simple([](double v) { return v < 0 ? -1.0 : v > 0 ? 1.0 : v; });
        break;
      case FunctionId::kClamp: {
        const double lo = ScalarArg(args[1]), hi = ScalarArg(args[2]);
        if (hi < lo) return out;
        simple([&](double v) { return std::fmax(lo, std::fmin(hi, v)); });
        break;
      }
      case FunctionId::kClampMax: {
        const double hi = ScalarArg(args[1]);
        simple([&](double v) { return GoMin(hi, v); });
        break;
      }
      case FunctionId::kClampMin: {
        const double lo = ScalarArg(args[1]);
        simple([&](double v) { return GoMax(lo, v); });
        break;
      }
      case FunctionId::kRound: {
        const double to_nearest = args.size() >= 2 ? ScalarArg(args[1]) : 1;
        const double inverse = 1.0 / to_nearest;
        simple([&](double v) { return std::floor(v * inverse + 0.5) / inverse; });
        break;
      }
      case FunctionId::kTimestamp: {
        // On a plain selector the samples' own times, as 2.42 reports them.
        const Node* arg = node.children[0].get();
        while (arg->kind == Node::Kind::kParen) arg = arg->children[0].get();
        const bool own_times = arg->kind == Node::Kind::kVectorSelector;
        for (EvalSample& sample : args[0].vector) {
          DeleteName(sample.labels);
          sample.value = static_cast<double>(own_times ? sample.t_ms : t) / 1000;
          sample.t_ms = t;
          out.vector.push_back(std::move(sample));
        }
        break;
      }
      case FunctionId::kSort:
      case FunctionId::kSortDesc: {
        out.vector = std::move(args[0].vector);
        const bool descending = id == FunctionId::kSortDesc;
        std::stable_sort(out.vector.begin(), out.vector.end(),
                         [&](const EvalSample& a, const EvalSample& b) {
                           if (std::isnan(a.value)) return false;
                           if (std::isnan(b.value)) return true;
                           return descending ? a.value > b.value : a.value < b.value;
                         });
        for (EvalSample& sample : out.vector) sample.t_ms = t;
        return out;
      }
      case FunctionId::kAbsent: {
        if (!args[0].vector.empty()) return out;
        out.vector.push_back({AbsentLabels(*node.children[0]), 1, t});
        return out;
      }
      case FunctionId::kHistogramQuantile:
        return HistogramQuantile(ScalarArg(args[0]), args[1].vector, t);
      case FunctionId::kLabelReplace:
        return LabelReplace(args, t);
      case FunctionId::kLabelJoin:
        return LabelJoin(args, t);
      case FunctionId::kDaysInMonth:
      case FunctionId::kDayOfMonth:
      case FunctionId::kDayOfWeek:
      case FunctionId::kDayOfYear:
      case FunctionId::kHour:
      case FunctionId::kMinute:
      case FunctionId::kMonth:
      case FunctionId::kYear: {
        if (args.empty()) {
          Value now;
          now.vector.push_back({{}, static_cast<double>(t) / 1000, t});
          args.push_back(std::move(now));
        }
        simple([&](double v) { return DatePart(id, v); });
        break;
      }
      default:
        Fail("function " + std::string(function.name) + " is not supported here");
    }
    CheckNoDuplicates(out.vector);
    return out;
  }

  // Go's math.Min/math.Max: NaN wins, and -0 < +0.
  static double GoMin(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return NAN;
    if (a == 0 && b == 0) return std::signbit(a) ? a : b;
    return a < b ? a : b;
  }
  static double GoMax(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return NAN;
    if (a == 0 && b == 0) return std::signbit(a) ? b : a;
    return a > b ? a : b;
  }

  static double DatePart(FunctionId id, double seconds) {
    const std::time_t when = static_cast<std::time_t>(static_cast<std::int64_t>(seconds));
    std::tm tm{};
    gmtime_r(&when, &tm);
    switch (id) {
      case FunctionId::kDayOfMonth:
        return tm.tm_mday;
      case FunctionId::kDayOfWeek:
        return tm.tm_wday;
      case FunctionId::kDayOfYear:
        return tm.tm_yday + 1;
      case FunctionId::kHour:
        return tm.tm_hour;
      case FunctionId::kMinute:
        return tm.tm_min;
      case FunctionId::kMonth:
        return tm.tm_mon + 1;
      case FunctionId::kYear:
        return tm.tm_year + 1900;
      case FunctionId::kDaysInMonth: {
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const int year = tm.tm_year + 1900;
        const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        return days[tm.tm_mon] + (tm.tm_mon == 1 && leap ? 1 : 0);
      }
      default:
        return NAN;
    }
  }

  static LabelSet AbsentLabels(const Node& arg) {
    const Node* selector = &arg;
    if (selector->kind == Node::Kind::kMatrixSelector) selector = selector->children[0].get();
    LabelSet out;
    if (selector->kind != Node::Kind::kVectorSelector) return out;
    std::vector<std::string> empty;
    for (const LabelMatcher& matcher : selector->matchers) {
      if (matcher.name == "__name__") continue;
      if (matcher.op == MatchOp::kEqual && !FindLabel(out, matcher.name)) {
        SetLabel(out, matcher.name, matcher.value);
      } else {
        empty.push_back(matcher.name);
      }
    }
    DeleteLabels(out, empty);
    return out;
  }

  Value HistogramQuantile(double q, Vector& input, std::int64_t t) {
    struct Group {
      LabelSet labels;
      std::vector<Bucket> buckets;
    };
    std::vector<Group> groups;
    std::unordered_map<std::string, std::size_t> index;
    for (EvalSample& sample : input) {
      const std::string* le = FindLabel(sample.labels, "le");
      if (!le) continue;
      char* end = nullptr;
      const double upper = std::strtod(le->c_str(), &end);
      if (le->empty() || end != le->c_str() + le->size()) continue;
      const std::string key = Signature(sample.labels, false, {"le"}) + "\xfe" +
                              std::string(GetLabel(sample.labels, "__name__"));
      auto [it, inserted] = index.try_emplace(key, groups.size());
      if (inserted) {
        LabelSet labels = sample.labels;
        DeleteLabels(labels, {"__name__", "le"});
        groups.push_back({std::move(labels), {}});
      }
      groups[it->second].buckets.push_back({upper, sample.value});
    }
    Value out;
    for (Group& group : groups) {
      out.vector.push_back(
          {std::move(group.labels), BucketQuantile(q, std::move(group.buckets)), t});
    }
    CheckNoDuplicates(out.vector);
    return out;
  }

  Value LabelReplace(std::vector<Value>& args, std::int64_t t) {
    const std::string& dst = args[1].string;
    const std::string& replacement = args[2].string;
    const std::string& src = args[3].string;
    auto regex = CompileAnchoredRegex(args[4].string);
    if (!regex) Fail("invalid regular expression in label_replace(): " + args[4].string);
    if (!ValidLabelName(dst)) Fail("invalid destination label name in label_replace(): " + dst);
    Value out;
    for (EvalSample& sample : args[0].vector) {
      const std::string value(GetLabel(sample.labels, src));
      std::smatch match;
      if (std::regex_match(value, match, *regex)) {
        SetLabel(sample.labels, dst, ExpandReplacement(replacement, match));
      }
      sample.t_ms = t;
      out.vector.push_back(std::move(sample));
    }
    CheckNoDuplicates(out.vector);
    return out;
  }

  Value LabelJoin(std::vector<Value>& args, std::int64_t t) {
    const std::string& dst = args[1].string;
    const std::string& separator = args[2].string;
    if (!ValidLabelName(dst)) Fail("invalid destination label name in label_join(): " + dst);
    Value out;
    for (EvalSample& sample : args[0].vector) {
      std::string joined;
      for (std::size_t i = 3; i < args.size(); ++i) {
        if (i > 3) joined += separator;
        joined += GetLabel(sample.labels, args[i].string);
      }
      SetLabel(sample.labels, dst, joined);
      sample.t_ms = t;
      out.vector.push_back(std::move(sample));
    }
    CheckNoDuplicates(out.vector);
    return out;
  }

  static bool ValidLabelName(const std::string& name) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
      const char c = name[i];
      const bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
                      (i > 0 && std::isdigit(static_cast<unsigned char>(c)));
      if (!ok) return false;
    }
    return true;
  }

  Value EvalRangeFunction(const Node& node, int matrix_arg, std::int64_t t) {
    const FunctionId id = node.function->id;
    std::vector<double> scalars;
    for (std::size_t i = 0; i < node.children.size(); ++i) {
      if (static_cast<int>(i) != matrix_arg) scalars.push_back(Eval(*node.children[i], t).scalar);
    }
    const Matrix matrix = EvalRange(*node.children[matrix_arg], t);
    Value out;
    if (id == FunctionId::kAbsentOverTime) {
      const bool any = std::any_of(matrix.series.begin(), matrix.series.end(),
                                   [](const RangeSeries& s) { return !s.points.empty(); });
      if (!any) out.vector.push_back({AbsentLabels(*node.children[matrix_arg]), 1, t});
      return out;
    }
    if (id == FunctionId::kHoltWinters) {
      const double sf = scalars[0], tf = scalars[1];
      if (sf <= 0 || sf >= 1) {
        Fail("invalid smoothing factor. Expected: 0 < sf < 1, got: " + FormatGoFloat(sf, 'f'));
      }
      if (tf <= 0 || tf >= 1) {
        Fail("invalid trend factor. Expected: 0 < tf < 1, got: " + FormatGoFloat(tf, 'f'));
      }
    }
    for (const RangeSeries& series : matrix.series) {
      const std::span<const Point> points = series.points;
      if (points.empty()) continue;
      std::optional<double> value;
      switch (id) {
        case FunctionId::kRate:
          value = ExtrapolatedRate(points, matrix.range_start, matrix.range_end, matrix.range_ms,
                                   true, true);
          break;
        case FunctionId::kIncrease:
          value = ExtrapolatedRate(points, matrix.range_start, matrix.range_end, matrix.range_ms,
                                   true, false);
          break;
        case FunctionId::kDelta:
          value = ExtrapolatedRate(points, matrix.range_start, matrix.range_end, matrix.range_ms,
                                   false, false);
          break;
        case FunctionId::kIrate:
          value = InstantValue(points, true);
          break;
        case FunctionId::kIdelta:
          value = InstantValue(points, false);
          break;
        case FunctionId::kAvgOverTime:
          value = AvgOverTime(points);
          break;
        case FunctionId::kCountOverTime:
          value = static_cast<double>(points.size());
          break;
        case FunctionId::kLastOverTime:
          value = points.back().value;
          break;
        case FunctionId::kPresentOverTime:
          value = 1;
          break;
        case FunctionId::kMaxOverTime: {
          double max = points[0].value;
          for (const Point& p : points) {
            if (p.value > max || std::isnan(max)) max = p.value;
          }
          value = max;
          break;
        }
        case FunctionId::kMinOverTime: {
          double min = points[0].value;
          for (const Point& p : points) {
            if (p.value < min || std::isnan(min)) min = p.value;
          }
          value = min;
          break;
        }
        case FunctionId::kSumOverTime: {
          double sum = 0, c = 0;
          for (const Point& p : points) sum = KahanSumInc(p.value, sum, c);
          value = std::isinf(sum) ? sum : sum + c;
          break;
        }
        case FunctionId::kStdvarOverTime:
          value = StdvarOverTime(points);
          break;
        case FunctionId::kStddevOverTime:
          value = std::sqrt(StdvarOverTime(points));
          break;
        case FunctionId::kQuantileOverTime: {
          std::vector<double> values;
          for (const Point& p : points) values.push_back(p.value);
          value = Quantile(scalars[0], std::move(values));
          break;
        }
        case FunctionId::kChanges:
        case FunctionId::kResets: {
          int count = 0;
          double previous = points[0].value;
          for (std::size_t i = 1; i < points.size(); ++i) {
            const double current = points[i].value;
            if (id == FunctionId::kResets
                    ? current < previous
                    : current != previous && !(std::isnan(current) && std::isnan(previous))) {
              ++count;
            }
            previous = current;
          }
          value = count;
          break;
        }
        case FunctionId::kDeriv:
          if (points.size() >= 2) value = LinearRegression(points, points[0].t_ms).first;
          break;
        case FunctionId::kPredictLinear:
          if (points.size() >= 2) {
            auto [slope, intercept] = LinearRegression(points, t);
            value = slope * scalars[0] + intercept;
          }
          break;
        case FunctionId::kHoltWinters:
          if (points.size() >= 2) value = HoltWinters(points, scalars[0], scalars[1]);
          break;
        default:
          Fail("function " + std::string(node.function->name) + " is not supported here");
      }
      if (!value) continue;
      LabelSet labels = *series.labels;
      if (id != FunctionId::kLastOverTime) DeleteName(labels);
      out.vector.push_back({std::move(labels), *value, t});
    }
    CheckNoDuplicates(out.vector);
    return out;
  }

  // Go's container/heap over vectorByValueHeap (min-heap; NaN lowest), which
  // decides topk/bottomk ties the way Prometheus does.
  struct HeapItem {
    double value;
    const EvalSample* sample;
  };
  static bool HeapLess(const HeapItem& a, const HeapItem& b, bool reverse) {
    if (!reverse) {
      if (std::isnan(a.value) && !std::isnan(b.value)) return true;
      return a.value < b.value;
    }
    if (std::isnan(a.value) && !std::isnan(b.value)) return true;
    return a.value > b.value;
  }
  static void HeapUp(std::vector<HeapItem>& h, std::size_t j, bool reverse) {
    while (j > 0) {
      const std::size_t i = (j - 1) / 2;
      if (i == j || !HeapLess(h[j], h[i], reverse)) break;
      std::swap(h[i], h[j]);
      j = i;
    }
  }
  static void HeapDown(std::vector<HeapItem>& h, std::size_t i0, std::size_t n, bool reverse) {
    std::size_t i = i0;
    while (true) {
      const std::size_t j1 = 2 * i + 1;
      if (j1 >= n) break;
      std::size_t j = j1;
      if (j1 + 1 < n && HeapLess(h[j1 + 1], h[j1], reverse)) j = j1 + 1;
      if (!HeapLess(h[j], h[i], reverse)) break;
      std::swap(h[i], h[j]);
      i = j;
    }
  }
  static void HeapPush(std::vector<HeapItem>& h, HeapItem item, bool reverse) {
    h.push_back(item);
    HeapUp(h, h.size() - 1, reverse);
  }
  static void HeapPop(std::vector<HeapItem>& h, bool reverse) {
    const std::size_t n = h.size() - 1;
    std::swap(h[0], h[n]);
    HeapDown(h, 0, n, reverse);
    h.pop_back();
  }

  Value EvalAggregate(const Node& node, std::int64_t t) {
    const AggregateOp op = node.aggregate_op;
    double parameter = 0;
    std::string value_label;
    if (node.children.size() == 2) {
      Value param = Eval(*node.children[0], t);
      parameter = param.scalar;
      value_label = param.string;
    }
    Value input = Eval(*node.children.back(), t);
    Vector& vector = input.vector;
    std::int64_t k = 0;
    if (op == AggregateOp::kTopk || op == AggregateOp::kBottomk) {
      if (!(parameter >= -9.2e18 && parameter <= 9.2e18)) {
        Fail("Scalar value " + FormatGoFloat(parameter) + " overflows int64");
      }
      k = static_cast<std::int64_t>(parameter);
      if (k < 1) return Value{};
    }
    std::vector<std::string> grouping = node.grouping;
    if (op == AggregateOp::kCountValues) {
      if (!ValidLabelName(value_label)) Fail("invalid label name \"" + value_label + "\"");
      if (!node.without) grouping.push_back(value_label);
    }
    struct Group {
      LabelSet labels;
      double value = 0;
      double mean = 0;
      double count = 0;
      std::vector<HeapItem> heap;
      std::vector<double> values;
    };
    std::vector<Group> groups;
    std::unordered_map<std::string, std::size_t> index;
    const bool reverse = op == AggregateOp::kBottomk;
    for (EvalSample& sample : vector) {
      if (op == AggregateOp::kCountValues) {
        SetLabel(sample.labels, value_label, FormatGoFloat(sample.value, 'f'));
      }
      std::string key;
      if (node.without) {
        std::vector<std::string> drop = grouping;
        drop.push_back("__name__");
        key = Signature(sample.labels, false, drop);
      } else {
        key = Signature(sample.labels, true, grouping);
      }
      auto [it, inserted] = index.try_emplace(key, groups.size());
      if (inserted) {
        Group group;
        group.labels = sample.labels;
        if (node.without) {
          DeleteLabels(group.labels, grouping);
          DeleteName(group.labels);
        } else {
          KeepLabels(group.labels, grouping);
        }
        group.value = sample.value;
        group.mean = sample.value;
        group.count = 1;
        if (op == AggregateOp::kStdvar || op == AggregateOp::kStddev) group.value = 0;
        if (op == AggregateOp::kGroup) group.value = 1;
        if (op == AggregateOp::kTopk || op == AggregateOp::kBottomk) {
          group.heap.push_back({sample.value, &sample});
        }
        if (op == AggregateOp::kQuantile) group.values.push_back(sample.value);
        groups.push_back(std::move(group));
        continue;
      }
      Group& group = groups[it->second];
      const double v = sample.value;
      switch (op) {
        case AggregateOp::kSum:
          group.value += v;
          break;
        case AggregateOp::kAvg:
          group.count++;
          if (std::isinf(group.mean)) {
            if (std::isinf(v) && (group.mean > 0) == (v > 0)) break;
            if (!std::isinf(v) && !std::isnan(v)) break;
          }
          group.mean += v / group.count - group.mean / group.count;
          break;
        case AggregateOp::kGroup:
          break;
        case AggregateOp::kMax:
          if (group.value < v || std::isnan(group.value)) group.value = v;
          break;
        case AggregateOp::kMin:
          if (group.value > v || std::isnan(group.value)) group.value = v;
          break;
        case AggregateOp::kCount:
        case AggregateOp::kCountValues:
          group.count++;
          break;
        case AggregateOp::kStdvar:
        case AggregateOp::kStddev: {
          group.count++;
          const double delta = v - group.mean;
          group.mean += delta / group.count;
          group.value += delta * (v - group.mean);
          break;
        }
        case AggregateOp::kTopk:
        case AggregateOp::kBottomk: {
          const HeapItem item{v, &sample};
          const bool wanted = static_cast<std::int64_t>(group.heap.size()) < k ||
                              (reverse ? group.heap[0].value > v : group.heap[0].value < v) ||
                              std::isnan(group.heap[0].value);
          if (!wanted) break;
          if (static_cast<std::int64_t>(group.heap.size()) == k) {
            if (k == 1) {
              group.heap[0] = item;
              break;
            }
            HeapPop(group.heap, reverse);
          }
          HeapPush(group.heap, item, reverse);
          break;
        }
        case AggregateOp::kQuantile:
          group.values.push_back(v);
          break;
      }
    }
    Value out;
    for (Group& group : groups) {
      switch (op) {
        case AggregateOp::kAvg:
          group.value = group.mean;
          break;
        case AggregateOp::kCount:
        case AggregateOp::kCountValues:
          group.value = group.count;
          break;
        case AggregateOp::kStdvar:
          group.value /= group.count;
          break;
        case AggregateOp::kStddev:
          group.value = std::sqrt(group.value / group.count);
          break;
        case AggregateOp::kQuantile:
          group.value = Quantile(parameter, std::move(group.values));
          break;
        case AggregateOp::kTopk:
        case AggregateOp::kBottomk: {
          std::sort(group.heap.begin(), group.heap.end(),
                    [&](const HeapItem& a, const HeapItem& b) { return HeapLess(b, a, reverse); });
          for (const HeapItem& item : group.heap) {
            out.vector.push_back({item.sample->labels, item.value, t});
          }
          continue;
        }
        default:
          break;
      }
      out.vector.push_back({std::move(group.labels), group.value, t});
    }
    return out;
  }

  void Spend(std::int64_t samples) {
    budget_ -= samples;
    if (budget_ < 0)
      Fail("query processing would load too many samples into memory in query execution");
  }

  const SeriesSource& source_;
  std::int64_t query_ms_;
  EvalOptions options_;
  std::int64_t budget_;
  // Storage behind range vectors that could not point into the source.
  std::deque<std::vector<Point>> owned_points_;
  std::deque<LabelSet> owned_labels_;
};

void AppendGoQuoted(std::string& out, std::string_view value) {
  out += '"';
  for (std::size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char hex[] = "0123456789abcdef";
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace

Result<QueryResult> Evaluate(const Expr& expr, const SeriesSource& source, std::int64_t t_ms,
                             const EvalOptions& options) {
  return EvaluateNode(*expr.root, source, t_ms, options);
}

Result<QueryResult> EvaluateNode(const Node& root, const SeriesSource& source, std::int64_t t_ms,
                                 const EvalOptions& options) {
  QueryResult result;
  try {
    Evaluator evaluator(source, t_ms, options);
    result.type = root.type;
    if (root.type == VT::kMatrix) {
      const Matrix matrix = evaluator.EvalRange(root, t_ms);
      for (const RangeSeries& series : matrix.series) {
        if (series.points.empty()) continue;
        result.matrix.push_back({*series.labels, {series.points.begin(), series.points.end()}});
      }
      return result;
    }
    Value value = evaluator.Eval(root, t_ms);
    result.type = value.type;
    result.scalar = value.scalar;
    result.string = std::move(value.string);
    result.vector = std::move(value.vector);
    for (EvalSample& sample : result.vector) sample.t_ms = t_ms;
  } catch (const EvalError& error) {
    return FD_STATUS(StatusCode::kInvalidArgument, error.message);
  } catch (const std::exception& error) {
    // std::regex on pathological input; an error for this query, not a crash.
    return FD_STATUS(StatusCode::kInvalidArgument,
                     std::string("evaluation failed: ") + error.what());
  }
  return result;
}

std::string FormatGoFloat(double value, char format) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  if (format == 'f') {
    auto end = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed).ptr;
    return std::string(buffer, end);
  }
  // Shortest digits and decimal exponent, from the scientific form.
  auto end =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific).ptr;
  std::string scientific(buffer, end);
  if (format == 'e' || format == 'E') {
    if (format == 'E') {
      for (char& c : scientific) {
        if (c == 'e') c = 'E';
      }
    }
    return scientific;
  }
  const std::size_t e = scientific.find('e');
  const int exponent = std::stoi(scientific.substr(e + 1));
  // Go's shortest 'g' (and so %v) switches to %e outside [1e-4, 1e6).
  if (exponent < -4 || exponent >= 6) return scientific;
  auto fixed = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed).ptr;
  return std::string(buffer, fixed);
}

std::string FormatLabels(const LabelSet& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ", ";
    first = false;
    out += name;
    out += '=';
    AppendGoQuoted(out, value);
  }
  out += '}';
  return out;
}

}  // namespace firedrill::alerts::promql
