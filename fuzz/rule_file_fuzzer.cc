// libFuzzer target for the Prometheus rule-file loader, and for the copy a
// compressed drill gives a managed Prometheus: every file that loads must
// scale, and its scaled copy must load too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "firedrill/alerts/rule_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto result = firedrill::alerts::ParseRuleFile("fuzz.yml", text);
  if (!result.ok() && result.status().message().empty()) __builtin_trap();
  if (!result.ok()) {
    (void)firedrill::alerts::ScaleRuleFile(text, 20);  // must not crash either
    return 0;
  }
  const auto scaled = firedrill::alerts::ScaleRuleFile(text, 20);
  if (!scaled.ok() || !firedrill::alerts::ParseRuleFile("scaled.yml", *scaled).ok()) __builtin_trap();
  return 0;
}
