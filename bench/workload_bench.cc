// Latency histogram speed (issue 6, measurement): Record must cost a few ns
// so the generator can record every request; quantiles and merges run once
// per report or per thread and may cost microseconds.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "firedrill/workload/histogram.h"

namespace {

using firedrill::workload::LatencyHistogram;

// Latencies around 1 ms with a long tail, spread over many buckets so the
// counts array is touched the way a real run touches it.
std::vector<std::int64_t> Latencies(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::lognormal_distribution<double> lognormal(std::log(1e6), 1.5);
  std::vector<std::int64_t> values(count);
  for (std::int64_t& v : values) v = static_cast<std::int64_t>(std::min(lognormal(random), 1e12));
  return values;
}

LatencyHistogram Filled(std::size_t count, std::uint64_t seed) {
  LatencyHistogram histogram;
  for (const std::int64_t v : Latencies(count, seed)) histogram.Record(v);
  return histogram;
}

void BM_Record(benchmark::State& state) {
  const std::vector<std::int64_t> values = Latencies(1 << 16, 1);
  LatencyHistogram histogram;
  std::size_t i = 0;
  for (auto _ : state) {
    histogram.Record(values[i]);
    i = (i + 1) & (values.size() - 1);
  }
  benchmark::DoNotOptimize(histogram.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record);

// The same value every time: the cost without cache misses on the counts.
void BM_RecordSameValue(benchmark::State& state) {
  LatencyHistogram histogram;
  std::int64_t value = 1'234'567;
  for (auto _ : state) {
    benchmark::DoNotOptimize(value);
    histogram.Record(value);
  }
  benchmark::DoNotOptimize(histogram.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordSameValue);

void BM_ValueAtQuantile(benchmark::State& state) {
  const LatencyHistogram histogram = Filled(1'000'000, 2);
  const double q = static_cast<double>(state.range(0)) / 1000.0;
  for (auto _ : state) benchmark::DoNotOptimize(histogram.ValueAtQuantile(q));
}
BENCHMARK(BM_ValueAtQuantile)->Arg(500)->Arg(990)->Arg(999);

void BM_Merge(benchmark::State& state) {
  const LatencyHistogram a = Filled(1'000'000, 3);
  const LatencyHistogram b = Filled(1'000'000, 4);
  // Merging into the same histogram again and again costs the same each time
  // (the counts only grow), and needs no paused copy.
  LatencyHistogram into = a;
  for (auto _ : state) {
    benchmark::DoNotOptimize(into.Merge(b).ok());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Merge);

void BM_PercentileTable(benchmark::State& state) {
  const LatencyHistogram histogram = Filled(1'000'000, 5);
  for (auto _ : state) benchmark::DoNotOptimize(histogram.PercentileTable());
}
BENCHMARK(BM_PercentileTable);

void BM_JsonRoundTrip(benchmark::State& state) {
  const LatencyHistogram histogram = Filled(1'000'000, 6);
  for (auto _ : state) {
    auto back = LatencyHistogram::FromJsonString(histogram.ToJsonString());
    benchmark::DoNotOptimize(back.ok());
  }
}
BENCHMARK(BM_JsonRoundTrip);

}  // namespace

BENCHMARK_MAIN();
