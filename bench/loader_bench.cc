// How fast scenario files load: `firedrill validate` runs over whole folders
// in CI and from editors on save. Most of the time goes to yaml-cpp's
// scanner (about 85% under callgrind), so this tracks our share on top.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "firedrill/core/units.h"
#include "firedrill/engine/loader.h"

namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The largest file in the corpus: every injector, check and expectation.
void BM_LoadScenarioText(benchmark::State& state) {
  const std::string text = ReadFile(FIREDRILL_SOURCE_DIR "/tests/scenarios/valid/everything.yaml");
  firedrill::engine::LoadOptions options;
  options.check_references = false;
  for (auto _ : state) {
    auto result = firedrill::engine::LoadText("everything.yaml", text, options);
    benchmark::DoNotOptimize(result);
    if (!result.ok()) state.SkipWithError("corpus file did not load");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_LoadScenarioText);

// The same file with its rules file and runbook read and checked.
void BM_LoadScenarioWithReferences(benchmark::State& state) {
  for (auto _ : state) {
    auto result = firedrill::engine::LoadFile(FIREDRILL_SOURCE_DIR "/scenarios/gpu-memory-exhaustion.yaml");
    benchmark::DoNotOptimize(result);
    if (!result.ok()) state.SkipWithError("scenario did not load");
  }
}
BENCHMARK(BM_LoadScenarioWithReferences);

void BM_ParseDuration(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(firedrill::ParseDuration("1h30m15s"));
}
BENCHMARK(BM_ParseDuration);

}  // namespace

BENCHMARK_MAIN();
