// libFuzzer target for the pipeline's CSV dataset reader: never a crash,
// every rejection placed, and an accepted table's shape is consistent.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "firedrill/pipeline/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto table = firedrill::pipeline::ParseCsv(text, "fuzz.csv", "");
  if (!table.ok()) {
    if (table.status().message().rfind("fuzz.csv:", 0) != 0) __builtin_trap();
    return 0;
  }
  if (table->data.size() != table->feature_names.size() * table->samples ||
      table->target.size() != table->samples) {
    __builtin_trap();
  }
  return 0;
}
