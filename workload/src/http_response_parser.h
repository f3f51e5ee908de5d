// An incremental HTTP/1.1 response reader for the load generator's native
// client: bytes arrive in whatever pieces the socket gives, and the common
// case (a whole small response in one read) is parsed in place, uncopied.
// Internal to workload/; tests and the fuzzer include it directly.
//
// Thread-safety: one parser per connection; not shared.
#pragma once

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace firedrill::workload::internal {

inline constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

inline bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

inline std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

class ResponseParser {
 public:
  enum class Step { kNeedMore, kComplete, kError };

  // Reads from `data` up to the end of one response. On kComplete,
  // `*consumed` is the bytes that belonged to it; on kNeedMore, all of them.
  Step Feed(const char* data, std::size_t size, std::size_t* consumed) {
    std::size_t at = 0;
    while (true) {
      switch (state_) {
        case State::kHeaders: {
          const std::size_t before = header_.size();
          std::string_view block;
          std::size_t end = std::string_view::npos;
          if (before == 0) {
            block = std::string_view(data + at, size - at);
            end = block.find("\r\n\r\n");
          } else {
            // Search again from just before the old end, in case the blank
            // line straddles the two pieces.
            header_.append(data + at, size - at);
            block = header_;
            end = block.find("\r\n\r\n", before > 3 ? before - 3 : 0);
          }
          if (end == std::string_view::npos) {
            if (before == 0) header_.assign(data + at, size - at);
            if (header_.size() > kMaxHeaderBytes) return Fail("response headers over 64 KiB");
            *consumed = size;
            return Step::kNeedMore;
          }
          if (!ParseHeaders(block.substr(0, end + 2))) return Step::kError;
          // Bytes of this piece that were part of the header block.
          at = before == 0 ? at + end + 4 : at + (end + 4 - before);
          header_.clear();
          if (status_ / 100 == 1 || status_ == 204 || status_ == 304) {
            if (status_ / 100 == 1) {  // an interim answer: the real one follows
              Reset();
              continue;
            }
            return Complete(at, consumed);
          }
          if (chunked_) {
            state_ = State::kChunkSize;
          } else if (content_length_ >= 0) {
            remaining_ = static_cast<std::size_t>(content_length_);
            state_ = State::kBody;
          } else {
            state_ = State::kUntilClose;
          }
          continue;
        }
        case State::kBody: {
          const std::size_t take = std::min(remaining_, size - at);
          at += take;
          remaining_ -= take;
          if (remaining_ == 0) return Complete(at, consumed);
          *consumed = size;
          return Step::kNeedMore;
        }
        case State::kChunkSize:
        case State::kTrailer: {
          const char* newline = static_cast<const char*>(std::memchr(data + at, '\n', size - at));
          if (newline == nullptr) {
            line_.append(data + at, size - at);
            if (line_.size() > 4096) return Fail("chunk line over 4 KiB");
            *consumed = size;
            return Step::kNeedMore;
          }
          line_.append(data + at, static_cast<std::size_t>(newline - (data + at)));
          at = static_cast<std::size_t>(newline - data) + 1;
          std::string_view line = line_;
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          if (state_ == State::kTrailer) {
            const bool last = line.empty();
            line_.clear();
            if (last) return Complete(at, consumed);
            continue;
          }
          line = line.substr(0, line.find(';'));  // chunk extensions
          std::size_t chunk = 0;
          const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), chunk, 16);
          if (error != std::errc() || end == line.data()) return Fail("bad chunk size");
          line_.clear();
          if (chunk == 0) {
            state_ = State::kTrailer;
          } else {
            remaining_ = chunk + 2;  // the data and its CRLF
            state_ = State::kChunkData;
          }
          continue;
        }
        case State::kChunkData: {
          const std::size_t take = std::min(remaining_, size - at);
          at += take;
          remaining_ -= take;
          if (remaining_ == 0) {
            state_ = State::kChunkSize;
            continue;
          }
          *consumed = size;
          return Step::kNeedMore;
        }
        case State::kUntilClose:
          *consumed = size;
          return Step::kNeedMore;
      }
    }
  }

  // The peer closed the connection: completes a body that runs until close.
  bool FinishAtClose() {
    if (state_ != State::kUntilClose) return false;
    close_after_ = true;
    return true;
  }

  void Reset() {
    state_ = State::kHeaders;
    header_.clear();
    line_.clear();
    status_ = 0;
    content_length_ = -1;
    chunked_ = false;
    close_after_ = false;
    remaining_ = 0;
  }

  bool started() const { return state_ != State::kHeaders || !header_.empty(); }
  int status() const { return status_; }
  bool close_after() const { return close_after_; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kHeaders, kBody, kChunkSize, kChunkData, kTrailer, kUntilClose };

  Step Complete(std::size_t at, std::size_t* consumed) {
    *consumed = at;
    state_ = State::kHeaders;
    return Step::kComplete;
  }
  Step Fail(std::string why) {
    error_ = std::move(why);
    return Step::kError;
  }

  // `block` holds the status line and the headers, each ending in CRLF.
  bool ParseHeaders(std::string_view block) {
    std::size_t line_end = block.find("\r\n");
    const std::string_view status_line = block.substr(0, line_end);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
      Fail("not an HTTP/1.x status line");
      return false;
    }
    const bool http10 = status_line[7] == '0';
    const auto [end, error] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status_);
    if (error != std::errc() || end != status_line.data() + 12 || status_ < 100 || status_ > 599) {
      Fail("bad status code");
      return false;
    }
    content_length_ = -1;
    chunked_ = false;
    bool keep_alive = !http10;
    while (line_end + 2 < block.size()) {
      const std::size_t next = block.find("\r\n", line_end + 2);
      const std::string_view line = block.substr(line_end + 2, next - line_end - 2);
      line_end = next;
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view name = line.substr(0, colon);
      const std::string_view value = Trim(line.substr(colon + 1));
      if (EqualsIgnoringCase(name, "content-length")) {
        const auto [value_end, value_error] =
            std::from_chars(value.data(), value.data() + value.size(), content_length_);
        if (value_error != std::errc() || value_end != value.data() + value.size() || content_length_ < 0) {
          Fail("bad Content-Length");
          return false;
        }
      } else if (EqualsIgnoringCase(name, "transfer-encoding")) {
        chunked_ = value.size() >= 7 && EqualsIgnoringCase(value.substr(value.size() - 7), "chunked");
      } else if (EqualsIgnoringCase(name, "connection")) {
        if (EqualsIgnoringCase(value, "close")) keep_alive = false;
        if (EqualsIgnoringCase(value, "keep-alive")) keep_alive = true;
      }
    }
    close_after_ = !keep_alive;
    return true;
  }

  State state_ = State::kHeaders;
  std::string header_;  // a header block split over reads
  std::string line_;    // a chunk-size or trailer line split over reads
  int status_ = 0;
  std::int64_t content_length_ = -1;
  bool chunked_ = false;
  bool close_after_ = false;
  std::size_t remaining_ = 0;
  std::string error_;
};

}  // namespace firedrill::workload::internal
