// libFuzzer target for PromQL: the parser never crashes and places every
// error ("line:column: parse error: ..."); whatever parses also evaluates,
// against a small store, to a value or a status, within a sample budget.
// The same bytes also feed promtool's series notation.
#include <cstddef>
#include <cstdint>
#include <regex>
#include <string_view>

#include "firedrill/alerts/promql.h"
#include "firedrill/alerts/rules_test.h"

namespace {

using firedrill::alerts::SeriesStore;

const SeriesStore& Store() {
  static const SeriesStore* store = [] {
    auto* s = new SeriesStore();
    for (int minute = 0; minute <= 10; ++minute) {
      const std::int64_t t = minute * 60'000;
      s->Append({{"__name__", "x"}, {"a", "b"}}, t, minute * 1.5);
      s->Append({{"__name__", "x"}, {"a", "c"}}, t, minute % 3);
      s->Append({{"__name__", "m"}, {"a", "1"}, {"g", "x"}}, t, 10);
      s->Append({{"__name__", "o"}, {"g", "x"}}, t, 2);
      s->Append({{"__name__", "h_bucket"}, {"le", "0.5"}}, t, minute * 3.0);
      s->Append({{"__name__", "h_bucket"}, {"le", "+Inf"}}, t, minute * 4.0);
      if (minute == 5)
        s->Append({{"__name__", "x"}, {"a", "d"}}, t, firedrill::alerts::StaleMarker());
    }
    return s;
  }();
  return *store;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)firedrill::alerts::ExpandSeriesValues(text);
  const auto expr = firedrill::alerts::promql::Parse(text);
  if (!expr.ok()) {
    static const std::regex placed("^[0-9]+:[0-9]+: parse error: .+");
    if (!std::regex_search(expr.status().message(), placed)) __builtin_trap();
    return 0;
  }
  firedrill::alerts::promql::EvalOptions options;
  options.max_samples = 20'000;
  Store().Read([&](const firedrill::alerts::SeriesSource& source) {
    (void)firedrill::alerts::promql::Evaluate(**expr, source, 600'000, options);
  });
  return 0;
}
