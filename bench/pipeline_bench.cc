// hsof-pipeline's API paths over real HTTP on loopback: a /metrics scrape
// with every metric populated, and job submission paced at a fixed rate with
// its latency distribution (the jobs themselves queue: no workers run).
#include <benchmark/benchmark.h>
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "firedrill/core/clock.h"
#include "firedrill/core/log.h"
#include "firedrill/net/http_server.h"
#include "firedrill/pipeline/service.h"

namespace {

using namespace std::chrono_literals;
using firedrill::pipeline::PipelineService;

// One service and listener for the whole program, in a fresh directory.
struct Target {
  Target() {
    char pattern[] = "/tmp/firedrill-bench-XXXXXX";
    directory = mkdtemp(pattern);
    firedrill::pipeline::ServiceOptions options;
    options.data_dir = directory;
    options.workers = 1;
    options.host_device_memory = std::uint64_t{1} << 30;
    service = std::move(PipelineService::Start(options, clock, logger)).value();
    server =
        std::move(firedrill::net::HttpServer::Start({}, [this](const firedrill::net::HttpRequest&
                                                                   request) {
          return service->HandleHttp(request);
        })).value();
  }
  ~Target() {
    server.reset();
    service.reset();
    std::filesystem::remove_all(directory);
  }
  firedrill::RealClock clock;
  std::ostringstream log;
  firedrill::Logger logger{log, clock};
  std::string directory;
  std::unique_ptr<PipelineService> service;
  std::unique_ptr<firedrill::net::HttpServer> server;
};

Target& SharedTarget() {
  static Target target;
  return target;
}

std::size_t Discard(char*, std::size_t size, std::size_t count, void*) { return size * count; }

// A keep-alive client, as a scraper or a load generator holds one.
struct Client {
  Client() {
    curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  }
  ~Client() { curl_easy_cleanup(curl); }
  long Get(const std::string& url) {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    return Perform();
  }
  long Post(const std::string& url, const std::string& body) {
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    return Perform();
  }
  long Perform() {
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }
  CURL* curl;
};

void BM_MetricsScrape(benchmark::State& state) {
  Target& target = SharedTarget();
  // Every series populated: a finished job fills the stage, quality and
  // inference-latency metrics.
  Client client;
  client.Post(
      target.server->url() + "/v1/jobs",
      R"({"mode":"fast","dataset":{"samples":2000,"features":200,"informative":5,"decoys":2}})");
  (void)target.service->WaitForJob(1, 60s);
  for (auto _ : state) {
    if (client.Get(target.server->url() + "/metrics") != 200)
      return state.SkipWithError("scrape failed");
  }
  state.counters["bytes"] = static_cast<double>(target.service->metrics().Serialize().size());
}
BENCHMARK(BM_MetricsScrape)->UseRealTime()->Unit(benchmark::kMillisecond);

// `rate` submissions a second for `seconds`, each with its own key; reports
// the achieved rate and latency percentiles (from the intended send time, so
// a stall shows as latency rather than as a lower rate).
void BM_SubmitPaced(benchmark::State& state) {
  Target& target = SharedTarget();
  (void)target.service->SetWorkers(0);  // the jobs queue; only admission is measured
  const double rate = static_cast<double>(state.range(0));
  const int count = static_cast<int>(rate * 2);
  Client client;
  static int next_key = 0;
  std::vector<double> latencies;
  double achieved = 0;
  for (auto _ : state) {
    latencies.clear();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
      const auto intended = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                        std::chrono::duration<double>(i / rate));
      std::this_thread::sleep_until(intended);  // pacing the load, not waiting for a result
      const std::string body = R"({"idempotency_key":"bench-)" + std::to_string(next_key++) +
                               R"(","dataset":{"samples":2000,"features":200,"informative":5}})";
      if (client.Post(target.server->url() + "/v1/jobs", body) != 202)
        return state.SkipWithError("submit failed");
      latencies.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - intended)
              .count());
    }
    achieved =
        count / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::sort(latencies.begin(), latencies.end());
  state.counters["achieved_per_s"] = achieved;
  state.counters["p50_ms"] = latencies[latencies.size() / 2];
  state.counters["p99_ms"] = latencies[latencies.size() * 99 / 100];
  state.counters["max_ms"] = latencies.back();
  (void)target.service->SetWorkers(1);
}
BENCHMARK(BM_SubmitPaced)->Arg(500)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
