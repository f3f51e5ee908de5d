// libFuzzer target for the pipeline's JSON job parser: never a crash, every
// rejection explained, and every accepted request survives a round trip
// through its canonical JSON unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "firedrill/pipeline/job.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto request = firedrill::pipeline::ParseJobRequest(body);
  if (!request.ok()) {
    if (request.status().message().empty()) __builtin_trap();
    return 0;
  }
  const std::string canonical = firedrill::pipeline::JobRequestToJson(*request);
  const auto again = firedrill::pipeline::ParseJobRequest(canonical);
  if (!again.ok() || firedrill::pipeline::JobRequestToJson(*again) != canonical) __builtin_trap();
  return 0;
}
