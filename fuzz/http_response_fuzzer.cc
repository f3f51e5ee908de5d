// The native load client's HTTP/1.1 response parser reads whatever a server
// sends. Any bytes, in any split, must give a status or a clean error — and
// the same answers whether they arrive whole or one byte at a time.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "http_response_parser.h"

namespace {

using firedrill::workload::internal::ResponseParser;

// Statuses of the complete responses in `data`, fed in pieces of `piece`
// bytes; -1 ends the list at a parse error.
std::vector<int> Parse(const std::uint8_t* data, std::size_t size, std::size_t piece) {
  ResponseParser parser;
  std::vector<int> statuses;
  for (std::size_t at = 0; at < size; at += piece) {
    const std::size_t length = std::min(piece, size - at);
    const char* bytes = reinterpret_cast<const char*>(data + at);
    std::size_t offset = 0;
    while (offset < length) {
      std::size_t consumed = 0;
      const auto step = parser.Feed(bytes + offset, length - offset, &consumed);
      if (consumed > length - offset) std::abort();
      offset += consumed;
      if (step == ResponseParser::Step::kError) {
        statuses.push_back(-1);
        return statuses;
      }
      if (step == ResponseParser::Step::kNeedMore) {
        if (offset != length) std::abort();  // NeedMore takes every byte it was given
        break;
      }
      if (parser.status() < 100 || parser.status() > 599) std::abort();
      statuses.push_back(parser.status());
      parser.Reset();
    }
  }
  return statuses;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  const std::vector<int> whole = Parse(data, size, size == 0 ? 1 : size);
  if (Parse(data, size, 1) != whole) std::abort();
  if (size > 7 && Parse(data, size, 7) != whole) std::abort();
  return 0;
}
