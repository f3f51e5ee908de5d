// Status and Result: how every fallible call reports failure across a
// component boundary. Exceptions may be used inside a component but never
// cross its public header. A Status remembers where it was made (file, line
// and, for wrapped calls, the failing expression) so logs point at the cause.
//
// Thread-safety: values; copy freely.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

namespace firedrill {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (bad scenario, bad flag)
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // a unique thing exists already
  kFailedPrecondition,  // the system is not in a state that allows this
  kResourceExhausted,   // out of memory, quota or budget
  kUnavailable,         // a dependency did not answer; retrying may help
  kDeadlineExceeded,    // a timeout ran out
  kCancelled,           // stopped on request (signal, abort)
  kUnimplemented,       // this build or backend cannot do it
  kInternal,            // a bug or broken invariant in Firedrill
};

std::string_view StatusCodeName(StatusCode code);

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, const char* file = nullptr, int line = 0);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const char* file() const { return file_; }
  int line() const { return line_; }

  // Returns a copy whose message is "context: message", for adding the
  // caller's view ("loading rules file x.yml: ...") as an error travels up.
  Status WithContext(std::string_view context) const;

  // "INVALID_ARGUMENT: message [file.cc:12]"; "OK" for success.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  const char* file_ = nullptr;
  int line_ = 0;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(value_).ok()) {
      value_ = Status(StatusCode::kInternal, "Result constructed from an OK status");
    }
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(value_);
  }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace firedrill

// Makes a Status that records where it was made.
#define FD_STATUS(code, message) ::firedrill::Status((code), (message), __FILE__, __LINE__)

#define FD_CONCAT_INNER(a, b) a##b
#define FD_CONCAT(a, b) FD_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define FD_RETURN_IF_ERROR(expr)                      \
  do {                                                \
    ::firedrill::Status fd_status_ = (expr);          \
    if (!fd_status_.ok()) return fd_status_;          \
  } while (false)

// Declares `lhs` from a Result-returning `expr`, or returns its Status.
#define FD_ASSIGN_OR_RETURN(lhs, expr) \
  FD_ASSIGN_OR_RETURN_IMPL(FD_CONCAT(fd_result_, __LINE__), lhs, expr)
#define FD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
