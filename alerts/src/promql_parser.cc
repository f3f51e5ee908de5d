// The PromQL lexer and a precedence-climbing parser with the grammar and the
// type checks of Prometheus 2.42's yacc parser.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>
#include <unordered_map>

#include "firedrill/alerts/promql.h"
#include "promql_internal.h"

namespace firedrill::alerts::promql {
namespace {

using VT = ValueType;

const std::vector<Function>& FunctionTable() {
  static const std::vector<Function> table = {
      {"abs", FunctionId::kAbs, {VT::kVector}},
      {"absent", FunctionId::kAbsent, {VT::kVector}},
      {"absent_over_time", FunctionId::kAbsentOverTime, {VT::kMatrix}},
      {"acos", FunctionId::kAcos, {VT::kVector}},
      {"acosh", FunctionId::kAcosh, {VT::kVector}},
      {"asin", FunctionId::kAsin, {VT::kVector}},
      {"asinh", FunctionId::kAsinh, {VT::kVector}},
      {"atan", FunctionId::kAtan, {VT::kVector}},
      {"atanh", FunctionId::kAtanh, {VT::kVector}},
      {"avg_over_time", FunctionId::kAvgOverTime, {VT::kMatrix}},
      {"ceil", FunctionId::kCeil, {VT::kVector}},
      {"changes", FunctionId::kChanges, {VT::kMatrix}},
      {"clamp", FunctionId::kClamp, {VT::kVector, VT::kScalar, VT::kScalar}},
      {"clamp_max", FunctionId::kClampMax, {VT::kVector, VT::kScalar}},
      {"clamp_min", FunctionId::kClampMin, {VT::kVector, VT::kScalar}},
      {"cos", FunctionId::kCos, {VT::kVector}},
      {"cosh", FunctionId::kCosh, {VT::kVector}},
      {"count_over_time", FunctionId::kCountOverTime, {VT::kMatrix}},
      {"days_in_month", FunctionId::kDaysInMonth, {VT::kVector}, 1},
      {"day_of_month", FunctionId::kDayOfMonth, {VT::kVector}, 1},
      {"day_of_week", FunctionId::kDayOfWeek, {VT::kVector}, 1},
      {"day_of_year", FunctionId::kDayOfYear, {VT::kVector}, 1},
      {"deg", FunctionId::kDeg, {VT::kVector}},
      {"delta", FunctionId::kDelta, {VT::kMatrix}},
      {"deriv", FunctionId::kDeriv, {VT::kMatrix}},
      {"exp", FunctionId::kExp, {VT::kVector}},
      {"floor", FunctionId::kFloor, {VT::kVector}},
      {"histogram_quantile", FunctionId::kHistogramQuantile, {VT::kScalar, VT::kVector}},
      {"holt_winters", FunctionId::kHoltWinters, {VT::kMatrix, VT::kScalar, VT::kScalar}},
      {"hour", FunctionId::kHour, {VT::kVector}, 1},
      {"idelta", FunctionId::kIdelta, {VT::kMatrix}},
      {"increase", FunctionId::kIncrease, {VT::kMatrix}},
      {"irate", FunctionId::kIrate, {VT::kMatrix}},
      {"label_join",
       FunctionId::kLabelJoin,
       {VT::kVector, VT::kString, VT::kString, VT::kString},
       0,
       true},
      {"label_replace",
       FunctionId::kLabelReplace,
       {VT::kVector, VT::kString, VT::kString, VT::kString, VT::kString}},
      {"last_over_time", FunctionId::kLastOverTime, {VT::kMatrix}},
      {"ln", FunctionId::kLn, {VT::kVector}},
      {"log10", FunctionId::kLog10, {VT::kVector}},
      {"log2", FunctionId::kLog2, {VT::kVector}},
      {"max_over_time", FunctionId::kMaxOverTime, {VT::kMatrix}},
      {"min_over_time", FunctionId::kMinOverTime, {VT::kMatrix}},
      {"minute", FunctionId::kMinute, {VT::kVector}, 1},
      {"month", FunctionId::kMonth, {VT::kVector}, 1},
      {"pi", FunctionId::kPi, {}, 0, false, VT::kScalar},
      {"predict_linear", FunctionId::kPredictLinear, {VT::kMatrix, VT::kScalar}},
      {"present_over_time", FunctionId::kPresentOverTime, {VT::kMatrix}},
      {"quantile_over_time", FunctionId::kQuantileOverTime, {VT::kScalar, VT::kMatrix}},
      {"rad", FunctionId::kRad, {VT::kVector}},
      {"rate", FunctionId::kRate, {VT::kMatrix}},
      {"resets", FunctionId::kResets, {VT::kMatrix}},
      {"round", FunctionId::kRound, {VT::kVector, VT::kScalar}, 1},
      {"scalar", FunctionId::kScalar, {VT::kVector}, 0, false, VT::kScalar},
      {"sgn", FunctionId::kSgn, {VT::kVector}},
      {"sin", FunctionId::kSin, {VT::kVector}},
      {"sinh", FunctionId::kSinh, {VT::kVector}},
      {"sort", FunctionId::kSort, {VT::kVector}},
      {"sort_desc", FunctionId::kSortDesc, {VT::kVector}},
      {"sqrt", FunctionId::kSqrt, {VT::kVector}},
      {"stddev_over_time", FunctionId::kStddevOverTime, {VT::kMatrix}},
      {"stdvar_over_time", FunctionId::kStdvarOverTime, {VT::kMatrix}},
      {"sum_over_time", FunctionId::kSumOverTime, {VT::kMatrix}},
      {"tan", FunctionId::kTan, {VT::kVector}},
      {"tanh", FunctionId::kTanh, {VT::kVector}},
      {"time", FunctionId::kTime, {}, 0, false, VT::kScalar},
      {"timestamp", FunctionId::kTimestamp, {VT::kVector}},
      {"vector", FunctionId::kVector, {VT::kScalar}},
      {"year", FunctionId::kYear, {VT::kVector}, 1},
  };
  return table;
}

// ---------------------------------------------------------------- lexer

enum class Tok {
  kEnd,
  kIdentifier,
  kNumber,
  kDuration,
  kString,
  kLeftParen,
  kRightParen,
  kLeftBrace,
  kRightBrace,
  kLeftBracket,
  kRightBracket,
  kComma,
  kColon,
  kAt,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEqual /* = */,
  kEqualEqual,
  kNotEqual,
  kRegexMatch,
  kRegexNoMatch,
  kGreater,
  kLess,
  kGreaterEqual,
  kLessEqual,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;  // identifier, unquoted string, number/duration text
  int position = 0;
  double number = 0;
  std::int64_t duration_ms = 0;
};

struct ParseFailure {
  int position;
  std::string message;
};

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

}  // namespace

// Prometheus durations: one or more NUMBER UNIT pairs, units in falling order.
std::optional<std::int64_t> ParsePromDuration(std::string_view text) {
  static const std::pair<std::string_view, std::int64_t> units[] = {
      {"y", 365LL * 24 * 3600 * 1000},
      {"w", 7LL * 24 * 3600 * 1000},
      {"d", 24LL * 3600 * 1000},
      {"h", 3600LL * 1000},
      {"ms", 1},
      {"m", 60LL * 1000},
      {"s", 1000},
  };
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0;
  int last_unit = -1;
  while (i < text.size()) {
    std::size_t digits = i;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == i || digits - i > 15) return std::nullopt;
    const std::int64_t amount = std::stoll(std::string(text.substr(i, digits - i)));
    int unit = -1;
    for (int u = 0; u < 7; ++u) {
      if (text.substr(digits, units[u].first.size()) == units[u].first) {
        // "ms" before "m": the longer unit wins when both fit.
        unit = u;
        break;
      }
    }
    if (unit < 0) return std::nullopt;
    // Order: y w d h m s ms; the table lists ms before m, so rank explicitly.
    static const int rank[] = {0, 1, 2, 3, 6, 4, 5};
    if (rank[unit] <= last_unit) return std::nullopt;
    last_unit = rank[unit];
    // Out of range durations are not durations (Prometheus refuses them too).
    std::int64_t part;
    if (__builtin_mul_overflow(amount, units[unit].second, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return std::nullopt;
    }
    i = digits + units[unit].first.size();
  }
  return total;
}

namespace {

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Token Next() {
    SkipSpaceAndComments();
    Token token;
    token.position = static_cast<int>(pos_);
    if (pos_ >= text_.size()) return token;
    const char c = text_[pos_];
    auto single = [&](Tok kind, std::size_t length = 1) {
      token.kind = kind;
      pos_ += length;
      return token;
    };
    switch (c) {
      case '(':
        return single(Tok::kLeftParen);
      case ')':
        return single(Tok::kRightParen);
      case '{':
        return single(Tok::kLeftBrace);
      case '}':
        return single(Tok::kRightBrace);
      case '[':
        return single(Tok::kLeftBracket);
      case ']':
        return single(Tok::kRightBracket);
      case ',':
        return single(Tok::kComma);
      case '@':
        return single(Tok::kAt);
      case '+':
        return single(Tok::kAdd);
      case '-':
        return single(Tok::kSub);
      case '*':
        return single(Tok::kMul);
      case '/':
        return single(Tok::kDiv);
      case '%':
        return single(Tok::kMod);
      case '^':
        return single(Tok::kPow);
      case '=':
        if (Peek(1) == '=') return single(Tok::kEqualEqual, 2);
        if (Peek(1) == '~') return single(Tok::kRegexMatch, 2);
        return single(Tok::kEqual);
      case '!':
        if (Peek(1) == '=') return single(Tok::kNotEqual, 2);
        if (Peek(1) == '~') return single(Tok::kRegexNoMatch, 2);
        throw ParseFailure{token.position, "unexpected character after '!': " + Quoted(Peek(1))};
      case '>':
        if (Peek(1) == '=') return single(Tok::kGreaterEqual, 2);
        return single(Tok::kGreater);
      case '<':
        if (Peek(1) == '=') return single(Tok::kLessEqual, 2);
        return single(Tok::kLess);
      case '"':
      case '\'':
      case '`':
        return LexString(token);
      default:
        break;
    }
    if (c == ':') return single(Tok::kColon);
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return LexNumber(token);
    if (IsIdentStart(c)) {
      std::size_t end = pos_;
      while (end < text_.size() && IsIdentChar(text_[end])) ++end;
      token.text = std::string(text_.substr(pos_, end - pos_));
      pos_ = end;
      std::string lower = token.text;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower == "inf" || lower == "nan") {
        token.kind = Tok::kNumber;
        token.number = lower == "inf" ? INFINITY : NAN;
        return token;
      }
      token.kind = Tok::kIdentifier;
      return token;
    }
    throw ParseFailure{token.position, "unexpected character: " + Quoted(c)};
  }

  std::size_t position() const { return pos_; }
  void Reset(std::size_t position) { pos_ = position; }

 private:
  char Peek(std::size_t ahead) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  static std::string Quoted(char c) {
    if (c == '\0') return "end of input";
    return std::string("'") + c + "'";
  }

  void SkipSpaceAndComments() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  Token LexNumber(Token token) {
    const std::size_t start = pos_;
    std::size_t end = pos_;
    // Durations first: digits followed by a unit letter.
    while (end < text_.size() && std::isalnum(static_cast<unsigned char>(text_[end]))) ++end;
    const std::string_view word = text_.substr(start, end - start);
    if (auto duration = ParsePromDuration(word)) {
      token.kind = Tok::kDuration;
      token.duration_ms = *duration;
      token.text = std::string(word);
      pos_ = end;
      return token;
    }
    // A number as Go's strconv.ParseFloat reads it: decimal, exponent or hex.
    end = start;
    if (text_.substr(start, 2) == "0x" || text_.substr(start, 2) == "0X") {
      end += 2;
      while (end < text_.size() && std::isxdigit(static_cast<unsigned char>(text_[end]))) ++end;
    } else {
      while (end < text_.size() &&
             (std::isdigit(static_cast<unsigned char>(text_[end])) || text_[end] == '.')) {
        ++end;
      }
      if (end < text_.size() && (text_[end] == 'e' || text_[end] == 'E')) {
        std::size_t exponent = end + 1;
        if (exponent < text_.size() && (text_[exponent] == '+' || text_[exponent] == '-')) {
          ++exponent;
        }
        if (exponent < text_.size() && std::isdigit(static_cast<unsigned char>(text_[exponent]))) {
          end = exponent;
          while (end < text_.size() && std::isdigit(static_cast<unsigned char>(text_[end]))) ++end;
        }
      }
    }
    token.text = std::string(text_.substr(start, end - start));
    if (end < text_.size() && (IsIdentChar(text_[end]) || text_[end] == '.')) {
      throw ParseFailure{static_cast<int>(start),
                         "bad number or duration syntax: \"" +
                             std::string(text_.substr(start, end - start + 1)) + "\""};
    }
    char* parsed_end = nullptr;
    token.number = std::strtod(token.text.c_str(), &parsed_end);
    if (token.text.empty() || parsed_end != token.text.c_str() + token.text.size() ||
        std::count(token.text.begin(), token.text.end(), '.') > 1) {
      throw ParseFailure{static_cast<int>(start),
                         "bad number or duration syntax: \"" + token.text + "\""};
    }
    token.kind = Tok::kNumber;
    pos_ = end;
    return token;
  }

  Token LexString(Token token) {
    const char quote = text_[pos_];
    std::size_t i = pos_ + 1;
    std::string value;
    while (true) {
      if (i >= text_.size()) throw ParseFailure{token.position, "unterminated quoted string"};
      const char c = text_[i];
      if (c == quote) break;
      if (quote != '`' && c == '\n')
        throw ParseFailure{token.position, "unterminated quoted string"};
      if (quote != '`' && c == '\\') {
        if (i + 1 >= text_.size()) throw ParseFailure{token.position, "unterminated quoted string"};
        const char e = text_[i + 1];
        i += 2;
        switch (e) {
          case 'a':
            value += '\a';
            break;
          case 'b':
            value += '\b';
            break;
          case 'f':
            value += '\f';
            break;
          case 'n':
            value += '\n';
            break;
          case 'r':
            value += '\r';
            break;
          case 't':
            value += '\t';
            break;
          case 'v':
            value += '\v';
            break;
          case '\\':
            value += '\\';
            break;
          case '"':
            value += '"';
            break;
          case '\'':
            value += '\'';
            break;
          case 'x': {
            if (i + 2 > text_.size() || !std::isxdigit(static_cast<unsigned char>(text_[i])) ||
                !std::isxdigit(static_cast<unsigned char>(text_[i + 1]))) {
              throw ParseFailure{static_cast<int>(i), "invalid escape sequence in string"};
            }
            value += static_cast<char>(std::stoi(std::string(text_.substr(i, 2)), nullptr, 16));
            i += 2;
            break;
          }
          case 'u':
          case 'U': {
            const std::size_t digits = e == 'u' ? 4 : 8;
            if (i + digits > text_.size()) {
              throw ParseFailure{static_cast<int>(i), "invalid escape sequence in string"};
            }
            for (std::size_t d = 0; d < digits; ++d) {
              if (!std::isxdigit(static_cast<unsigned char>(text_[i + d]))) {
                throw ParseFailure{static_cast<int>(i), "invalid escape sequence in string"};
              }
            }
            const unsigned long code =
                std::stoul(std::string(text_.substr(i, digits)), nullptr, 16);
            if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
              throw ParseFailure{static_cast<int>(i), "invalid Unicode code point in string"};
            }
            AppendUtf8(value, static_cast<std::uint32_t>(code));
            i += digits;
            break;
          }
          default:
            if (e >= '0' && e <= '7') {
              if (i + 1 >= text_.size() || text_[i] < '0' || text_[i] > '7' || text_[i + 1] < '0' ||
                  text_[i + 1] > '7') {
                throw ParseFailure{static_cast<int>(i), "invalid escape sequence in string"};
              }
              const int code = (e - '0') * 64 + (text_[i] - '0') * 8 + (text_[i + 1] - '0');
              if (code > 255) throw ParseFailure{static_cast<int>(i), "octal escape out of range"};
              value += static_cast<char>(code);
              i += 2;
              break;
            }
            throw ParseFailure{static_cast<int>(i - 1), "unknown escape sequence " + Quoted(e)};
        }
        continue;
      }
      value += c;
      ++i;
    }
    token.kind = Tok::kString;
    token.text = std::move(value);
    pos_ = i + 1;
    return token;
  }

  static void AppendUtf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------- parser

const std::unordered_map<std::string_view, AggregateOp>& Aggregations() {
  static const std::unordered_map<std::string_view, AggregateOp> table = {
      {"sum", AggregateOp::kSum},           {"min", AggregateOp::kMin},
      {"max", AggregateOp::kMax},           {"avg", AggregateOp::kAvg},
      {"count", AggregateOp::kCount},       {"group", AggregateOp::kGroup},
      {"stddev", AggregateOp::kStddev},     {"stdvar", AggregateOp::kStdvar},
      {"topk", AggregateOp::kTopk},         {"bottomk", AggregateOp::kBottomk},
      {"quantile", AggregateOp::kQuantile}, {"count_values", AggregateOp::kCountValues},
  };
  return table;
}

bool IsComparison(BinaryOp op) {
  return op == BinaryOp::kEqual || op == BinaryOp::kNotEqual || op == BinaryOp::kGreater ||
         op == BinaryOp::kLess || op == BinaryOp::kGreaterEqual || op == BinaryOp::kLessEqual;
}
bool IsSetOperator(BinaryOp op) {
  return op == BinaryOp::kAnd || op == BinaryOp::kOr || op == BinaryOp::kUnless;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : lexer_(text) { Advance(); }

  std::unique_ptr<Node> ParseQuery() {
    auto root = ParseExpr(1);
    if (current_.kind != Tok::kEnd) Fail(current_.position, "unexpected " + Describe(current_));
    return root;
  }

 private:
  [[noreturn]] static void Fail(int position, std::string message) {
    throw ParseFailure{position, std::move(message)};
  }

  static std::string Describe(const Token& token) {
    switch (token.kind) {
      case Tok::kEnd:
        return "end of input";
      case Tok::kIdentifier:
        return "identifier \"" + token.text + "\"";
      case Tok::kNumber:
        return "number \"" + token.text + "\"";
      case Tok::kDuration:
        return "duration \"" + token.text + "\"";
      case Tok::kString:
        return "string";
      case Tok::kLeftParen:
        return "\"(\"";
      case Tok::kRightParen:
        return "\")\"";
      case Tok::kLeftBrace:
        return "\"{\"";
      case Tok::kRightBrace:
        return "\"}\"";
      case Tok::kLeftBracket:
        return "\"[\"";
      case Tok::kRightBracket:
        return "\"]\"";
      case Tok::kComma:
        return "\",\"";
      case Tok::kColon:
        return "\":\"";
      case Tok::kAt:
        return "\"@\"";
      default:
        return "operator";
    }
  }

  void Advance() { current_ = lexer_.Next(); }
  void Expect(Tok kind, std::string_view what) {
    if (current_.kind != kind) {
      Fail(current_.position,
           "unexpected " + Describe(current_) + ", expected " + std::string(what));
    }
    Advance();
  }
  bool IsKeyword(std::string_view word) const {
    if (current_.kind != Tok::kIdentifier) return false;
    if (current_.text.size() != word.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(current_.text[i])) != word[i]) return false;
    }
    return true;
  }

  // The binary operator at the current token and its precedence, or 0.
  int BinaryPrecedence(BinaryOp* op) const {
    switch (current_.kind) {
      case Tok::kAdd:
        *op = BinaryOp::kAdd;
        return 4;
      case Tok::kSub:
        *op = BinaryOp::kSub;
        return 4;
      case Tok::kMul:
        *op = BinaryOp::kMul;
        return 5;
      case Tok::kDiv:
        *op = BinaryOp::kDiv;
        return 5;
      case Tok::kMod:
        *op = BinaryOp::kMod;
        return 5;
      case Tok::kPow:
        *op = BinaryOp::kPow;
        return 6;
      case Tok::kEqualEqual:
        *op = BinaryOp::kEqual;
        return 3;
      case Tok::kNotEqual:
        *op = BinaryOp::kNotEqual;
        return 3;
      case Tok::kGreater:
        *op = BinaryOp::kGreater;
        return 3;
      case Tok::kLess:
        *op = BinaryOp::kLess;
        return 3;
      case Tok::kGreaterEqual:
        *op = BinaryOp::kGreaterEqual;
        return 3;
      case Tok::kLessEqual:
        *op = BinaryOp::kLessEqual;
        return 3;
      case Tok::kIdentifier:
        if (IsKeyword("and")) {
          *op = BinaryOp::kAnd;
          return 2;
        }
        if (IsKeyword("unless")) {
          *op = BinaryOp::kUnless;
          return 2;
        }
        if (IsKeyword("or")) {
          *op = BinaryOp::kOr;
          return 1;
        }
        if (IsKeyword("atan2")) {
          *op = BinaryOp::kAtan2;
          return 5;
        }
        return 0;
      default:
        return 0;
    }
  }

  // Deeply nested input must become an error, not a stack overflow.
  struct DepthGuard {
    explicit DepthGuard(Parser& parser) : parser_(parser) {
      if (++parser_.depth_ > 200) Fail(parser_.current_.position, "expression nested too deeply");
    }
    ~DepthGuard() { --parser_.depth_; }
    Parser& parser_;
  };

  std::unique_ptr<Node> ParseExpr(int min_precedence) {
    DepthGuard guard(*this);
    auto lhs = ParseUnary();
    while (true) {
      BinaryOp op;
      const int precedence = BinaryPrecedence(&op);
      if (precedence == 0 || precedence < min_precedence) return lhs;
      const int op_position = current_.position;
      Advance();
      auto node = std::make_unique<Node>();
      node->kind = Node::Kind::kBinary;
      node->binary_op = op;
      node->position = op_position;
      ParseBinaryModifiers(*node);
      // '^' is right-associative; everything else groups to the left.
      auto rhs = ParseExpr(op == BinaryOp::kPow ? precedence : precedence + 1);
      node->children.push_back(std::move(lhs));
      node->children.push_back(std::move(rhs));
      CheckBinary(*node);
      lhs = std::move(node);
    }
  }

  void ParseBinaryModifiers(Node& node) {
    if (IsKeyword("bool")) {
      if (!IsComparison(node.binary_op)) {
        Fail(current_.position, "bool modifier can only be used on comparison operators");
      }
      node.return_bool = true;
      Advance();
    }
    if (IsKeyword("on") || IsKeyword("ignoring")) {
      node.has_matching = true;
      node.on = IsKeyword("on");
      Advance();
      node.matching_labels = ParseLabelList();
      if (IsKeyword("group_left") || IsKeyword("group_right")) {
        node.card = IsKeyword("group_left") ? Node::Card::kManyToOne : Node::Card::kOneToMany;
        Advance();
        if (current_.kind == Tok::kLeftParen) node.include_labels = ParseLabelList();
      }
    }
    if (IsSetOperator(node.binary_op)) {
      if (node.card != Node::Card::kOneToOne) {
        Fail(node.position, "no grouping allowed for \"" +
                                std::string(BinaryOpName(node.binary_op)) + "\" operation");
      }
      node.card = Node::Card::kManyToMany;
    }
    for (const std::string& label : node.include_labels) {
      for (const std::string& matching : node.matching_labels) {
        if (node.on && label == matching) {
          Fail(node.position,
               "label \"" + label + "\" must not occur in ON and GROUP clause at once");
        }
      }
    }
  }

  void CheckBinary(Node& node) {
    const Node& lhs = *node.children[0];
    const Node& rhs = *node.children[1];
    auto is_operand = [](VT type) { return type == VT::kScalar || type == VT::kVector; };
    if (!is_operand(lhs.type) || !is_operand(rhs.type)) {
      Fail(node.position, "binary expression must contain only scalar and instant vector types");
    }
    const bool both_scalar = lhs.type == VT::kScalar && rhs.type == VT::kScalar;
    if (IsComparison(node.binary_op) && both_scalar && !node.return_bool) {
      Fail(node.position, "comparisons between scalars must use BOOL modifier");
    }
    if ((lhs.type != VT::kVector || rhs.type != VT::kVector) &&
        (node.has_matching || node.card == Node::Card::kManyToOne ||
         node.card == Node::Card::kOneToMany)) {
      Fail(node.position, "vector matching only allowed between instant vectors");
    }
    if (IsSetOperator(node.binary_op) && (lhs.type == VT::kScalar || rhs.type == VT::kScalar)) {
      Fail(node.position, "set operator \"" + std::string(BinaryOpName(node.binary_op)) +
                              "\" not allowed in binary scalar expression");
    }
    node.type = both_scalar ? VT::kScalar : VT::kVector;
  }

  std::unique_ptr<Node> ParseUnary() {
    if (current_.kind == Tok::kAdd || current_.kind == Tok::kSub) {
      const bool negate = current_.kind == Tok::kSub;
      const int position = current_.position;
      Advance();
      // Unary operators bind like '*': only '^' binds tighter.
      auto operand = ParseExpr(6);
      if (operand->type != VT::kScalar && operand->type != VT::kVector) {
        Fail(position,
             "unary expression only allowed on expressions of type scalar or instant vector");
      }
      if (operand->kind == Node::Kind::kNumber) {
        if (negate) operand->number = -operand->number;
        operand->position = position;
        return operand;
      }
      if (!negate) return operand;
      auto node = std::make_unique<Node>();
      node->kind = Node::Kind::kUnaryMinus;
      node->position = position;
      node->type = operand->type;
      node->children.push_back(std::move(operand));
      return node;
    }
    return ParsePostfix(ParsePrimary());
  }

  std::unique_ptr<Node> ParsePostfix(std::unique_ptr<Node> node) {
    while (true) {
      if (current_.kind == Tok::kLeftBracket) {
        node = ParseRange(std::move(node));
      } else if (IsKeyword("offset")) {
        const int position = current_.position;
        Advance();
        bool negative = false;
        if (current_.kind == Tok::kSub || current_.kind == Tok::kAdd) {
          negative = current_.kind == Tok::kSub;
          Advance();
        }
        if (current_.kind != Tok::kDuration) {
          Fail(current_.position,
               "unexpected " + Describe(current_) + " in offset, expected duration");
        }
        Node* target = ModifierTarget(*node, position, "offset");
        if (target->offset_ms != 0) Fail(position, "offset may not be set multiple times");
        target->offset_ms = negative ? -current_.duration_ms : current_.duration_ms;
        Advance();
      } else if (current_.kind == Tok::kAt) {
        const int position = current_.position;
        Advance();
        Node* target = ModifierTarget(*node, position, "@");
        if (target->at != Node::At::kNone)
          Fail(position, "@ <timestamp> may not be set multiple times");
        if (IsKeyword("start") || IsKeyword("end")) {
          target->at = IsKeyword("start") ? Node::At::kStart : Node::At::kEnd;
          Advance();
          Expect(Tok::kLeftParen, "\"(\"");
          Expect(Tok::kRightParen, "\")\"");
        } else {
          bool negative = false;
          if (current_.kind == Tok::kSub || current_.kind == Tok::kAdd) {
            negative = current_.kind == Tok::kSub;
            Advance();
          }
          if (current_.kind != Tok::kNumber) {
            Fail(current_.position,
                 "unexpected " + Describe(current_) + " in @, expected timestamp");
          }
          const double seconds = negative ? -current_.number : current_.number;
          if (!std::isfinite(seconds) || std::fabs(seconds) > 9.2e15) {
            Fail(current_.position, "timestamp out of bounds for @ modifier");
          }
          target->at = Node::At::kTime;
          target->at_ms = static_cast<std::int64_t>(std::round(seconds * 1000));
          Advance();
        }
      } else {
        return node;
      }
    }
  }

  // offset and @ apply to a selector, a range selector or a subquery.
  Node* ModifierTarget(Node& node, int position, std::string_view what) {
    if (node.kind == Node::Kind::kVectorSelector || node.kind == Node::Kind::kMatrixSelector ||
        node.kind == Node::Kind::kSubquery) {
      return &node;
    }
    Fail(position, std::string(what) +
                       " modifier must be preceded by an instant vector selector "
                       "or range vector selector or a subquery");
  }

  std::unique_ptr<Node> ParseRange(std::unique_ptr<Node> inner) {
    const int position = current_.position;
    Advance();
    if (current_.kind != Tok::kDuration) {
      Fail(current_.position, "unexpected " + Describe(current_) + " in range, expected duration");
    }
    const std::int64_t range = current_.duration_ms;
    Advance();
    auto node = std::make_unique<Node>();
    node->position = position;
    node->range_ms = range;
    node->type = VT::kMatrix;
    if (current_.kind == Tok::kColon) {
      Advance();
      if (current_.kind == Tok::kDuration) {
        node->step_ms = current_.duration_ms;
        Advance();
      }
      Expect(Tok::kRightBracket, "\"]\"");
      if (inner->type != VT::kVector && inner->type != VT::kScalar) {
        Fail(position, "subquery is only allowed on instant vector, got " +
                           std::string(ValueTypeName(inner->type)) + " instead");
      }
      if (range == 0) Fail(position, "zero range in subquery");
      node->kind = Node::Kind::kSubquery;
    } else {
      Expect(Tok::kRightBracket, "\"]\"");
      if (inner->kind != Node::Kind::kVectorSelector) {
        Fail(position, "ranges only allowed for vector selectors");
      }
      if (inner->offset_ms != 0 || inner->at != Node::At::kNone) {
        Fail(position, "no offset or @ modifiers allowed before range");
      }
      if (range == 0) Fail(position, "zero range in range vector selector");
      node->kind = Node::Kind::kMatrixSelector;
    }
    node->children.push_back(std::move(inner));
    return node;
  }

  std::vector<std::string> ParseLabelList() {
    Expect(Tok::kLeftParen, "\"(\"");
    std::vector<std::string> labels;
    while (current_.kind != Tok::kRightParen) {
      if (current_.kind != Tok::kIdentifier || current_.text.find(':') != std::string::npos) {
        Fail(current_.position,
             "unexpected " + Describe(current_) + " in grouping opts, expected label");
      }
      labels.push_back(current_.text);
      Advance();
      if (current_.kind == Tok::kComma) {
        Advance();
      } else if (current_.kind != Tok::kRightParen) {
        Fail(current_.position,
             "unexpected " + Describe(current_) + " in grouping opts, expected \",\" or \")\"");
      }
    }
    Advance();
    return labels;
  }

  std::unique_ptr<Node> ParsePrimary() {
    auto node = std::make_unique<Node>();
    node->position = current_.position;
    switch (current_.kind) {
      case Tok::kNumber:
        node->kind = Node::Kind::kNumber;
        node->type = VT::kScalar;
        node->number = current_.number;
        Advance();
        return node;
      case Tok::kString:
        node->kind = Node::Kind::kString;
        node->type = VT::kString;
        node->text = current_.text;
        Advance();
        return node;
      case Tok::kLeftParen: {
        Advance();
        node->kind = Node::Kind::kParen;
        node->children.push_back(ParseExpr(1));
        node->type = node->children[0]->type;
        Expect(Tok::kRightParen, "\")\"");
        return node;
      }
      case Tok::kLeftBrace:
        node->kind = Node::Kind::kVectorSelector;
        node->type = VT::kVector;
        ParseMatchers(*node);
        CheckSelector(*node);
        return node;
      case Tok::kIdentifier:
        break;
      default:
        Fail(current_.position, "unexpected " + Describe(current_));
    }

    const std::string name = current_.text;

    Advance();
    const bool call = current_.kind == Tok::kLeftParen;
    std::string lower = name;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (auto aggregate = Aggregations().find(lower); aggregate != Aggregations().end()) {
      if (call || IsKeyword("by") || IsKeyword("without")) {
        return ParseAggregate(std::move(node), aggregate->second);
      }
    }
    if (call) {
      const Function* function = FindFunction(name);
      if (function == nullptr) Fail(node->position, "unknown function with name \"" + name + "\"");
      return ParseCall(std::move(node), *function);
    }

    static const char* const kReserved[] = {"and",        "or",          "unless", "atan2",
                                            "by",         "without",     "on",     "ignoring",
                                            "group_left", "group_right", "bool",   "offset"};
    for (const char* word : kReserved) {
      if (lower == word) Fail(node->position, "unexpected keyword \"" + name + "\"");
    }
    node->kind = Node::Kind::kVectorSelector;
    node->type = VT::kVector;
    node->text = name;
    if (current_.kind == Tok::kLeftBrace) ParseMatchers(*node);
    for (const LabelMatcher& matcher : node->matchers) {
      if (matcher.name == "__name__") {
        Fail(node->position,
             "metric name must not be set twice: \"" + name + "\" or \"" + matcher.value + "\"");
      }
    }
    LabelMatcher name_matcher;
    name_matcher.name = "__name__";
    name_matcher.value = name;
    node->matchers.insert(node->matchers.begin(), std::move(name_matcher));
    CheckSelector(*node);
    return node;
  }

  void ParseMatchers(Node& node) {
    Expect(Tok::kLeftBrace, "\"{\"");
    while (current_.kind != Tok::kRightBrace) {
      if (current_.kind != Tok::kIdentifier || current_.text.find(':') != std::string::npos) {
        Fail(current_.position,
             "unexpected " + Describe(current_) + " in label matching, expected label");
      }
      LabelMatcher matcher;
      matcher.name = current_.text;
      Advance();
      switch (current_.kind) {
        case Tok::kEqual:
          matcher.op = MatchOp::kEqual;
          break;
        case Tok::kNotEqual:
          matcher.op = MatchOp::kNotEqual;
          break;
        case Tok::kRegexMatch:
          matcher.op = MatchOp::kRegex;
          break;
        case Tok::kRegexNoMatch:
          matcher.op = MatchOp::kNotRegex;
          break;
        default:
          Fail(current_.position, "unexpected " + Describe(current_) +
                                      " in label matching, expected label matching operator");
      }
      Advance();
      if (current_.kind != Tok::kString) {
        Fail(current_.position,
             "unexpected " + Describe(current_) + " in label matching, expected string");
      }
      matcher.value = current_.text;
      if (matcher.op == MatchOp::kRegex || matcher.op == MatchOp::kNotRegex) {
        auto regex = CompileAnchoredRegex(matcher.value);
        if (!regex) Fail(current_.position, "invalid regular expression \"" + matcher.value + "\"");
        matcher.regex = std::move(regex);
      }
      Advance();
      node.matchers.push_back(std::move(matcher));
      if (current_.kind == Tok::kComma) {
        Advance();
      } else if (current_.kind != Tok::kRightBrace) {
        Fail(current_.position,
             "unexpected " + Describe(current_) + " in label matching, expected \",\" or \"}\"");
      }
    }
    Advance();
  }

  void CheckSelector(Node& node) {
    bool has_non_empty = false;
    for (const LabelMatcher& matcher : node.matchers) {
      if (!matcher.Matches("")) has_non_empty = true;
      if (matcher.name == "__name__" && node.text.empty() && matcher.op == MatchOp::kEqual) {
        node.text = matcher.value;
      }
    }
    if (!has_non_empty) {
      Fail(node.position, "vector selector must contain at least one non-empty matcher");
    }
  }

  std::unique_ptr<Node> ParseCall(std::unique_ptr<Node> node, const Function& function) {
    node->kind = Node::Kind::kCall;
    node->function = &function;
    node->type = function.return_type;
    Expect(Tok::kLeftParen, "\"(\"");
    while (current_.kind != Tok::kRightParen) {
      node->children.push_back(ParseExpr(1));
      if (current_.kind == Tok::kComma) {
        Advance();
        if (current_.kind == Tok::kRightParen) {
          Fail(current_.position, "unexpected \")\" in function call, expected expression");
        }
      } else if (current_.kind != Tok::kRightParen) {
        Fail(current_.position,
             "unexpected " + Describe(current_) + " in function call, expected \",\" or \")\"");
      }
    }
    Advance();
    const int given = static_cast<int>(node->children.size());
    const int declared = static_cast<int>(function.arg_types.size());
    const int at_least = declared - function.optional_args;
    if (given < at_least || (!function.variadic && given > declared)) {
      Fail(node->position, "expected " + std::to_string(at_least) + " argument(s) in call to \"" +
                               std::string(function.name) + "\", got " + std::to_string(given));
    }
    for (int i = 0; i < given; ++i) {
      const VT wanted = function.arg_types[std::min(i, declared - 1)];
      VT actual = node->children[i]->type;
      if (actual != wanted) {
        Fail(node->children[i]->position,
             "expected type " + std::string(ValueTypeName(wanted)) + " in call to function \"" +
                 std::string(function.name) + "\", got " + std::string(ValueTypeName(actual)));
      }
    }
    return node;
  }

  std::unique_ptr<Node> ParseAggregate(std::unique_ptr<Node> node, AggregateOp op) {
    node->kind = Node::Kind::kAggregate;
    node->aggregate_op = op;
    node->type = VT::kVector;
    bool grouped = false;
    auto grouping = [&] {
      if (IsKeyword("by") || IsKeyword("without")) {
        if (grouped) Fail(current_.position, "unexpected " + Describe(current_));
        node->without = IsKeyword("without");
        Advance();
        node->grouping = ParseLabelList();
        grouped = true;
      }
    };
    grouping();
    Expect(Tok::kLeftParen, "\"(\"");
    const bool has_parameter = op == AggregateOp::kTopk || op == AggregateOp::kBottomk ||
                               op == AggregateOp::kQuantile || op == AggregateOp::kCountValues;
    if (has_parameter) {
      node->children.push_back(ParseExpr(1));
      Expect(Tok::kComma, "\",\"");
    }
    if (current_.kind == Tok::kRightParen) {
      Fail(current_.position, "no arguments for aggregate expression provided");
    }
    node->children.push_back(ParseExpr(1));
    if (current_.kind == Tok::kComma) {
      Fail(current_.position,
           "wrong number of arguments for aggregate expression provided, "
           "expected " +
               std::string(has_parameter ? "2" : "1") + ", got 3");
    }
    Expect(Tok::kRightParen, "\")\"");
    grouping();
    const Node& expr = *node->children.back();
    if (expr.type != VT::kVector) {
      Fail(expr.position, "expected type instant vector in aggregation expression, got " +
                              std::string(ValueTypeName(expr.type)));
    }
    if (has_parameter) {
      const VT wanted = op == AggregateOp::kCountValues ? VT::kString : VT::kScalar;
      if (node->children[0]->type != wanted) {
        Fail(node->children[0]->position, "expected type " + std::string(ValueTypeName(wanted)) +
                                              " in aggregation parameter, got " +
                                              std::string(ValueTypeName(node->children[0]->type)));
      }
    }

    return node;
  }

  Lexer lexer_;
  Token current_;
  int depth_ = 0;
};

std::string PositionPrefix(std::string_view text, int position) {
  int line = 1;
  int last_break = -1;
  for (int i = 0; i < position && i < static_cast<int>(text.size()); ++i) {
    if (text[i] == '\n') {
      ++line;
      last_break = i;
    }
  }
  return std::to_string(line) + ":" + std::to_string(position - last_break) + ":";
}

}  // namespace

namespace {

// What Go's regexp/syntax refuses and ECMAScript accepts: a repetition of a
// repetition ("c++", "a*{2}"; a single lazy "?" after one is fine) and
// counts over 1000. Prometheus rejects such patterns, and std::regex's
// backtracking can take exponential time on them.
bool BreaksRe2Repetition(const std::string& pattern) {
  bool after_repeat = false;
  bool lazy_taken = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;
      after_repeat = false;
      continue;
    }
    if (c == '[') {  // a class: skip to its end; a leading ']' or '^]' is a member
      std::size_t j = i + 1;
      if (j < pattern.size() && pattern[j] == '^') ++j;
      if (j < pattern.size() && pattern[j] == ']') ++j;
      while (j < pattern.size() && pattern[j] != ']') j += pattern[j] == '\\' ? 2 : 1;
      i = j;
      after_repeat = false;
      continue;
    }
    std::size_t end = i;
    bool repeat = c == '*' || c == '+' || c == '?';
    if (c == '{') {  // {n}, {n,} or {n,m}; anything else is a literal brace
      std::size_t j = i + 1;
      std::string first, second;
      bool comma = false;
      while (j < pattern.size() && (std::isdigit(static_cast<unsigned char>(pattern[j])) || (pattern[j] == ',' && !comma))) {
        if (pattern[j] == ',') {
          comma = true;
        } else {
          (comma ? second : first) += pattern[j];
        }
        ++j;
      }
      if (j < pattern.size() && pattern[j] == '}' && !first.empty()) {
        if (first.size() > 4 || std::stoi(first) > 1000 || second.size() > 4 || (!second.empty() && std::stoi(second) > 1000)) {
          return true;
        }
        repeat = true;
        end = j;
      }
    }
    if (!repeat) {
      after_repeat = false;
      continue;
    }
    if (after_repeat) {
      if (c == '?' && !lazy_taken) {
        lazy_taken = true;  // "*?": the lazy form
        continue;
      }
      return true;
    }
    // A "?" right after "(" opens a group flag, "(?i)" or "(?:", not a repeat.
    if (c == '?' && i > 0 && pattern[i - 1] == '(') continue;
    after_repeat = true;
    lazy_taken = false;
    i = end;
  }
  return false;
}

}  // namespace

std::shared_ptr<const std::regex> CompileAnchoredRegex(const std::string& pattern) {
  // Prometheus regexes are RE2 and fully anchored; std::regex's ECMAScript
  // grammar shares the common subset. A leading (?i) becomes the icase flag.
  if (BreaksRe2Repetition(pattern)) return nullptr;
  std::string body = pattern;
  auto flags = std::regex::ECMAScript | std::regex::optimize;
  if (body.rfind("(?i)", 0) == 0) {
    body = body.substr(4);
    flags |= std::regex::icase;
  }
  try {
    return std::make_shared<const std::regex>("^(?:" + body + ")$", flags);
  } catch (const std::regex_error&) {
    return nullptr;
  }
}

const Function* FindFunction(std::string_view name) {
  static const auto* index = [] {
    auto* map = new std::unordered_map<std::string_view, const Function*>();
    for (const Function& function : FunctionTable()) (*map)[function.name] = &function;
    return map;
  }();
  const auto found = index->find(name);
  return found == index->end() ? nullptr : found->second;
}

std::string_view BinaryOpName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "^";
    case BinaryOp::kAtan2:
      return "atan2";
    case BinaryOp::kEqual:
      return "==";
    case BinaryOp::kNotEqual:
      return "!=";
    case BinaryOp::kGreater:
      return ">";
    case BinaryOp::kLess:
      return "<";
    case BinaryOp::kGreaterEqual:
      return ">=";
    case BinaryOp::kLessEqual:
      return "<=";
    case BinaryOp::kAnd:
      return "and";
    case BinaryOp::kOr:
      return "or";
    case BinaryOp::kUnless:
      return "unless";
  }
  return "?";
}

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kScalar:
      return "scalar";
    case ValueType::kVector:
      return "instant vector";
    case ValueType::kMatrix:
      return "range vector";
    case ValueType::kString:
      return "string";
  }
  return "?";
}

bool LabelMatcher::Matches(std::string_view label_value) const {
  switch (op) {
    case MatchOp::kEqual:
      return label_value == value;
    case MatchOp::kNotEqual:
      return label_value != value;
    case MatchOp::kRegex:
      return regex && std::regex_match(label_value.begin(), label_value.end(), *regex);
    case MatchOp::kNotRegex:
      return !(regex && std::regex_match(label_value.begin(), label_value.end(), *regex));
  }
  return false;
}

Result<std::shared_ptr<const Expr>> Parse(std::string_view text) {
  auto expr = std::make_shared<Expr>();
  expr->text = std::string(text);
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "1:1: parse error: no expression found in input");
  }
  try {
    Parser parser(expr->text);
    expr->root = parser.ParseQuery();
  } catch (const ParseFailure& failure) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     PositionPrefix(text, failure.position) + " parse error: " + failure.message);
  } catch (const std::exception& error) {
    // std::stoll and friends on absurd input; reported, never thrown across.
    return FD_STATUS(StatusCode::kInvalidArgument,
                     std::string("1:1: parse error: ") + error.what());
  }
  return std::shared_ptr<const Expr>(std::move(expr));
}

}  // namespace firedrill::alerts::promql
