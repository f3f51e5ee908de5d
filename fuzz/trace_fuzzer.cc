// Trace files are users' CSVs: any bytes must parse or give a file:line
// error, never crash; parsed rows keep their documented invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "firedrill/workload/arrivals.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto rows = firedrill::workload::ParseTrace(text, "trace.csv");
  if (!rows.ok()) {
    if (rows.status().message().rfind("trace.csv:", 0) != 0) std::abort();
    return 0;
  }
  firedrill::Duration last{0};
  for (const auto& row : *rows) {
    if (row.offset < last || row.shape.informative > row.shape.features) std::abort();
    last = row.offset;
  }
  return 0;
}
