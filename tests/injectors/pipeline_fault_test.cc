// In-process faults through the real pipeline's Faults service: each is
// started, seen where a user would see it (the exporter's answer, the health
// report), stopped, and seen gone.
#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <set>
#include <thread>
#include <nlohmann/json.hpp>

#include "../net/http_client.h"
#include "../pipeline/spawn.h"
#include "firedrill/injectors/injection.h"
#include "firedrill/injectors/undo.h"

namespace firedrill::injectors {
namespace {

namespace fs = std::filesystem;
using firedrill::testing::HttpCall;

constexpr char kToken[] = "pipeline-fault-test-token";

class PipelineFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new firedrill::testing::SuitePipeline(
        "firedrill-pipeline-fault",
        {"--backend", "cpu", "--workers", "1", "--enable-faults", "--device-memory", "1GiB", "--shared-device-memory",
         DeviceFolder()},
        {{"HSOF_FAULTS_TOKEN", kToken}});
    directory_ = &suite_->directory();
    pipeline_ = &suite_->pipeline();
  }
  static void TearDownTestSuite() {
    delete suite_;
    fs::remove_all(DeviceFolder());
  }
  static std::string DeviceFolder() {
    return fs::temp_directory_path() / ("firedrill-pipeline-fault-device-" + std::to_string(getpid()));
  }
  void SetUp() override {
    ASSERT_FALSE(pipeline_->ports.is_discarded());
    auto journal = Journal::Open(*directory_ + "/journal-" +
                                 ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db");
    ASSERT_TRUE(journal.ok());
    journal_ = std::move(*journal);
    context_.journal = journal_.get();
    context_.clock = &clock_;
    context_.pipeline_grpc = pipeline_->grpc();
    context_.faults_token = kToken;
  }
  // Submits a small job and waits for its end: "completed", or "failed: why".
  std::string RunJob(const std::string& key) const {
    const auto submitted = HttpCall("POST", pipeline_->http() + "/v1/jobs",
                                    R"({"idempotency_key": ")" + key +
                                        R"(", "mode": "fast", "dataset": {"samples": 200, "features": 40, "informative": 4}})");
    const nlohmann::json job = nlohmann::json::parse(submitted.body, nullptr, false);
    if (submitted.status != 202 || job.is_discarded()) return "not accepted: " + submitted.body;
    const std::string url = pipeline_->http() + "/v1/jobs/" + job["id"].dump();
    for (int poll = 0; poll < 3000; ++poll) {
      const nlohmann::json now = nlohmann::json::parse(HttpCall("GET", url).body, nullptr, false);
      const std::string state = now.is_discarded() ? "" : now.value("state", "");
      if (state == "completed") return state;
      if (state == "failed") return "failed: " + now.value("error", "");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "no end in 30 s";
  }
  std::string Exporter() const {
    return "http://127.0.0.1:" + std::to_string(pipeline_->ports["gpu_exporter"].get<int>()) + "/metrics";
  }

  static firedrill::testing::SuitePipeline* suite_;
  static const std::string* directory_;
  static const firedrill::testing::SpawnedPipeline* pipeline_;
  RealClock clock_;
  std::unique_ptr<Journal> journal_;
  InjectionContext context_;
};
firedrill::testing::SuitePipeline* PipelineFaultTest::suite_ = nullptr;
const std::string* PipelineFaultTest::directory_ = nullptr;
const firedrill::testing::SpawnedPipeline* PipelineFaultTest::pipeline_ = nullptr;

TEST_F(PipelineFaultTest, ExporterDownAnswers503UntilStopped) {
  ASSERT_EQ(HttpCall("GET", Exporter()).status, 200);
  auto fault = StartInjection("exporter-down", nlohmann::json::object(), context_);
  ASSERT_TRUE(fault.ok()) << fault.status();
  EXPECT_EQ(HttpCall("GET", Exporter()).status, 503);
  EXPECT_EQ(journal_->OpenFaults()->size(), 1u);
  EXPECT_TRUE((*fault)->State().active());
  ASSERT_TRUE((*fault)->Renew().ok());
  ASSERT_TRUE((*fault)->Stop().ok());
  EXPECT_EQ((*fault)->State().phase, InjectionState::kStopped);
  EXPECT_EQ(HttpCall("GET", Exporter()).status, 200);
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

TEST_F(PipelineFaultTest, DatabaseUnavailableRefusesSubmissionsUntilStopped) {
  const auto submit = [&](const std::string& key) {
    return HttpCall("POST", pipeline_->http() + "/v1/jobs",
                    R"({"idempotency_key": ")" + key + R"(", "mode": "fast", "dataset": {"samples": 200, "features": 40, "informative": 4}})")
        .status;
  };
  ASSERT_EQ(submit("before"), 202);
  auto fault = StartInjection("database-unavailable", nlohmann::json::object(), context_);
  ASSERT_TRUE(fault.ok()) << fault.status();
  EXPECT_NE((*fault)->Describe().find("database-unavailable in the pipeline"), std::string::npos);
  EXPECT_EQ(submit("during"), 503);
  ASSERT_TRUE((*fault)->Stop().ok());
  EXPECT_EQ(submit("after"), 202);
}

// A network fault on the pipeline's HTTP API, through the proxy in front of
// it: a health check through the proxy slows by the added latency, and is
// quick again once the fault stops.
TEST_F(PipelineFaultTest, NetworkLatencyOnTheHttpApiUntilStopped) {
  auto proxy = TcpProxy::Start("127.0.0.1:" + std::to_string(pipeline_->ports["http"].get<int>()), 1, clock_);
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  context_.proxies["http"] = proxy->get();
  const std::string health = "http://" + (*proxy)->address() + "/health";
  const auto timed_health = [&] {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(HttpCall("GET", health).status, 200);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  timed_health();
  auto fault = StartInjection("network", {{"endpoint", "http"}, {"latency", "200ms"}}, context_);
  ASSERT_TRUE(fault.ok()) << fault.status();
  EXPECT_NE((*fault)->Describe().find("latency 200ms"), std::string::npos) << (*fault)->Describe();
  EXPECT_EQ(journal_->OpenFaults()->size(), 1u);
  // A new connection: a round trip for the request and its answer.
  EXPECT_GE(timed_health(), 0.4);
  EXPECT_TRUE((*fault)->State().active());
  EXPECT_EQ(StartInjection("network", {{"endpoint", "http"}, {"reset", "10%"}}, context_).status().code(),
            StatusCode::kInvalidArgument)
      << "one network fault per proxy at a time";
  ASSERT_TRUE((*fault)->Renew().ok());
  ASSERT_TRUE((*fault)->Stop().ok());
  EXPECT_LT(timed_health(), 0.2);
  EXPECT_TRUE(journal_->OpenFaults()->empty());
  EXPECT_EQ(StartInjection("network", {{"endpoint", "grpc"}, {"latency", "1s"}}, context_).status().code(),
            StatusCode::kInvalidArgument)
      << "no proxy in front of the gRPC listener";
}

// A separate process holds all the device's memory: the pipeline's jobs
// cannot allocate on the device, as beside a real noisy neighbour, and fall
// back to the CPU (HSOF's documented behaviour, counted by reason), until the
// hog is stopped.
TEST_F(PipelineFaultTest, GpuMemoryHogStarvesJobsUntilStopped) {
  context_.gpu.backend = "cpu";
  context_.gpu.shared_device_memory = DeviceFolder();
  context_.gpu.device_memory = std::uint64_t{1} << 30;
  context_.gpu.hog_binary = GPU_HOG_BINARY;
  const auto out_of_memory_fallbacks = [&] {
    const std::string metrics = HttpCall("GET", pipeline_->http() + "/metrics").body;
    const std::string series = "hsof_cpu_fallbacks_total{reason=\"out_of_memory\"} ";
    const std::size_t at = metrics.find(series);
    return at == std::string::npos ? 0.0 : std::stod(metrics.substr(at + series.size()));
  };
  // What the GPU exporter says is in use on the device (what
  // GPUMemoryExhaustion watches); its gauges are refreshed every second.
  const auto memory_in_use = [&] {
    const std::string metrics = HttpCall("GET", Exporter()).body;
    const std::string series = "hsof_gpu_memory_used_bytes{gpu_id=\"0\"} ";
    const std::size_t at = metrics.find(series);
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + series.size()));
  };
  const auto wait_for_memory = [&](auto done) {
    for (int poll = 0; poll < 500 && !done(memory_in_use()); ++poll) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return memory_in_use();
  };
  ASSERT_EQ(RunJob("hog-before"), "completed");
  const double before = out_of_memory_fallbacks();
  auto hog = StartInjection("gpu-memory-hog", {{"share", "100%"}}, context_);
  ASSERT_TRUE(hog.ok()) << hog.status();
  EXPECT_NE((*hog)->Describe().find("a separate process holds 100% of the 1GiB device"), std::string::npos)
      << (*hog)->Describe();
  const auto open = journal_->OpenFaults();
  ASSERT_EQ(open->size(), 1u);
  const pid_t helper = (*open)[0].undo["pid"].get<pid_t>();
  EXPECT_NE(ProcessState(helper), '?') << "the memory is held by another process";
  EXPECT_TRUE((*hog)->State().active());
  EXPECT_GE(wait_for_memory([](double used) { return used >= double(1 << 30); }), double(1 << 30))
      << "the exporter shows the neighbour's memory in use";
  EXPECT_EQ(RunJob("hog-during"), "completed");
  EXPECT_EQ(out_of_memory_fallbacks(), before + 1) << "the job could not get device memory";
  // A second hog finds nothing free, and says so.
  auto second = StartInjection("gpu-memory-hog", {{"share", "10%"}}, context_);
  EXPECT_EQ(second.status().code(), StatusCode::kResourceExhausted) << second.status();
  EXPECT_NE(second.status().message().find("gpu-memory-hog: out of memory: 102.4MiB asked while other processes hold"),
            std::string::npos)
      << second.status();
  ASSERT_TRUE((*hog)->Renew().ok());
  ASSERT_TRUE((*hog)->Stop().ok());
  EXPECT_EQ(ProcessState(helper), '?') << "the helper ended with the fault";
  EXPECT_LT(wait_for_memory([](double used) { return used >= 0 && used < double(1 << 30); }), double(1 << 30));
  EXPECT_EQ(RunJob("hog-after"), "completed");
  EXPECT_EQ(out_of_memory_fallbacks(), before + 1) << "with the hog gone the job ran on the device";
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

// Every in-process fault, started through the injector: the pipeline shows
// it in force (hsof_faults_active) and not once stopped. What each one does
// inside the pipeline is tested with its Faults service (faults_test.cc);
// exporter-down, database-unavailable and the hogs above show their effects
// through this path too.
TEST_F(PipelineFaultTest, EveryPipelineFaultStartsAndStopsThroughTheInjector) {
  const std::vector<std::pair<std::string, nlohmann::json>> faults = {
      {"stage-stall", {{"stage", "2"}}},
      {"error-injection", {{"share", "50%"}}},
      {"inference-delay", {{"delay", "1ms"}}},
      {"metamodel-corruption", {{"noise", "0.1"}}},
      {"exporter-down", nlohmann::json::object()},
      {"database-unavailable", nlohmann::json::object()},
      {"backup-target-failure", nlohmann::json::object()},
      {"backup-scheduler-stop", nlohmann::json::object()},
      {"config-fault", {{"key", "MAX_CONCURRENT_BATCHES"}, {"value", "1"}}},
      {"gpu-memory-leak", {{"perJob", "1MiB"}}},
      {"feeder-stall", nlohmann::json::object()},
      // On a device without the thermal model, thermal is the telemetry overlay.
      {"thermal", {{"temperature", "95"}}},
  };
  const auto active = [&](const std::string& kind) {
    const std::string metrics = HttpCall("GET", pipeline_->http() + "/metrics").body;
    for (const std::string& as : {kind, std::string("telemetry-overlay")}) {
      if (metrics.find("hsof_faults_active{kind=\"" + as + "\"} 1") != std::string::npos) return true;
    }
    return false;
  };
  for (const auto& [kind, fields] : faults) {
    auto fault = StartInjection(kind, fields, context_);
    ASSERT_TRUE(fault.ok()) << kind << ": " << fault.status();
    EXPECT_TRUE(active(kind)) << kind << " is not in force in the pipeline";
    EXPECT_TRUE((*fault)->State().active()) << kind;
    ASSERT_TRUE((*fault)->Stop().ok()) << kind;
    EXPECT_FALSE(active(kind)) << kind << " is still in force after stop";
  }
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

// thermal with `contention`: the pipeline's fault and a real burn beside it,
// one fault to the drill and two journal rows, both ended by one Stop. On
// the CPU twins there is no contention unless asked for.
TEST_F(PipelineFaultTest, ThermalWithContentionBurnsBesideThePipeline) {
  context_.gpu.backend = "cpu";
  const auto hot_in_pipeline = [&] {
    const std::string metrics = HttpCall("GET", pipeline_->http() + "/metrics").body;
    return metrics.find("hsof_faults_active{kind=\"thermal\"} 1") != std::string::npos ||
           metrics.find("hsof_faults_active{kind=\"telemetry-overlay\"} 1") != std::string::npos;
  };
  const auto open_kinds = [&] {
    std::multiset<std::string> kinds;
    const auto open = journal_->OpenFaults();
    for (const FaultRecord& row : *open) kinds.insert(row.kind);
    return kinds;
  };
  auto plain = StartInjection("thermal", {{"temperature", "95"}}, context_);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(open_kinds(), std::multiset<std::string>{"thermal"});
  ASSERT_TRUE((*plain)->Stop().ok());

  const std::clock_t cpu_before = std::clock();
  auto hot = StartInjection("thermal", {{"temperature", "95"}, {"contention", "50%"}}, context_);
  ASSERT_TRUE(hot.ok()) << hot.status();
  EXPECT_NE((*hot)->Describe().find("; real contention beside it: gpu-compute-burn: compute burn at 50%"), std::string::npos)
      << (*hot)->Describe();
  EXPECT_EQ((*hot)->kind(), "thermal");
  EXPECT_EQ(open_kinds(), (std::multiset<std::string>{"gpu-compute-burn", "thermal"}));
  EXPECT_TRUE(hot_in_pipeline());
  // Two rows, one fault: under a cap of 2 one more fits, and no third.
  context_.limits.max_concurrent_faults = 2;
  auto second = StartInjection("exporter-down", nlohmann::json::object(), context_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(StartInjection("feeder-stall", nlohmann::json::object(), context_).status().message(),
            "feeder-stall: 2 fault(s) already running, the drill's cap is 2");
  ASSERT_TRUE((*second)->Stop().ok());
  EXPECT_TRUE((*hot)->State().active());
  // Real work beside the pipeline: wait (bounded) for a tenth of a CPU second.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (double(std::clock() - cpu_before) / CLOCKS_PER_SEC < 0.1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(double(std::clock() - cpu_before) / CLOCKS_PER_SEC, 0.1);
  ASSERT_TRUE((*hot)->Renew().ok());
  ASSERT_TRUE((*hot)->Stop().ok());
  EXPECT_FALSE(hot_in_pipeline());
  EXPECT_EQ((*hot)->State().phase, InjectionState::kStopped);
  EXPECT_TRUE(journal_->OpenFaults()->empty());

  context_.limits.dry_run = true;
  auto guess = StartInjection("thermal", {{"temperature", "95"}}, context_);
  ASSERT_TRUE(guess.ok()) << guess.status();
  EXPECT_NE((*guess)->Describe().find("if the pipeline is on a GPU of this host"), std::string::npos)
      << "a dry run cannot know the device: " << (*guess)->Describe();
  auto planned = StartInjection("thermal", {{"temperature", "95"}, {"contention", "20%"}}, context_);
  ASSERT_TRUE(planned.ok()) << planned.status();
  EXPECT_EQ((*planned)->Describe().rfind("dry run: would thermal through the pipeline's Faults service", 0), 0u)
      << (*planned)->Describe();
  EXPECT_NE((*planned)->Describe().find("; and gpu-compute-burn: compute burn at 20%"), std::string::npos)
      << (*planned)->Describe();
  EXPECT_TRUE(journal_->OpenFaults()->empty());
  EXPECT_EQ(StartInjection("thermal", {{"temperature", "95"}, {"contention", "lots"}}, context_).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(PipelineFaultTest, BadParametersAndWrongTokensAreRefused) {
  auto fault = StartInjection("stage-stall", {{"stage", "9"}}, context_);
  EXPECT_EQ(fault.status().code(), StatusCode::kInvalidArgument) << fault.status();
  context_.faults_token = "wrong";
  fault = StartInjection("exporter-down", nlohmann::json::object(), context_);
  EXPECT_EQ(fault.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(fault.status().message().find("the pipeline refused it"), std::string::npos);
  context_.pipeline_grpc = "10.0.0.1:50051";
  EXPECT_NE(StartInjection("exporter-down", nlohmann::json::object(), context_).status().message().find(
                "not on loopback and not among the drill's allowed hosts"),
            std::string::npos);
  EXPECT_TRUE(journal_->OpenFaults()->empty()) << "a refused fault leaves no open row";
}

}  // namespace
}  // namespace firedrill::injectors
