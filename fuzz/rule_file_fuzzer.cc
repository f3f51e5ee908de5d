// libFuzzer target for the Prometheus rule-file loader.
#include <cstddef>
#include <cstdint>
#include <string>

#include "firedrill/alerts/rule_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto result = firedrill::alerts::ParseRuleFile("fuzz.yml", text);
  if (!result.ok() && result.status().message().empty()) __builtin_trap();
  return 0;
}
