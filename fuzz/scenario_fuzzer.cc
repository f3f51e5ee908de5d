// libFuzzer target: any bytes given to the scenario loader must end in either
// a loaded document or positioned diagnostics, never a crash, a hang or a
// sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include "firedrill/engine/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  firedrill::engine::LoadOptions options;
  options.check_references = false;  // no file system access from fuzz input
  const firedrill::engine::LoadResult result = firedrill::engine::LoadText("fuzz.yaml", text, options);
  if (!result.ok()) {
    for (const auto& diagnostic : result.diagnostics) {
      if (diagnostic.message.empty()) __builtin_trap();
    }
  } else if (result.scenario() == nullptr && result.runbook() == nullptr && result.workload() == nullptr) {
    __builtin_trap();
  }
  return 0;
}
