// The GPU injectors on a real GPU (label gpu; ci/gpu-check runs it on an
// H100/H200), against hsof-pipeline on its CUDA backend: each fault is
// started, seen where a user sees it (the pipeline's GPU exporter, NVML, a
// kernel's rate), stopped, and seen gone. The CPU twins of the same
// injectors are tested in injection_test and pipeline_fault_test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../net/http_client.h"
#include "../pipeline/spawn.h"
#include "firedrill/gpu/device.h"
#include "firedrill/gpu/stress.h"
#include "firedrill/gpu/telemetry.h"
#include "firedrill/injectors/injection.h"
#include "firedrill/injectors/undo.h"

namespace firedrill::injectors {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using firedrill::testing::HttpCall;

constexpr char kToken[] = "gpu-injection-test-token";

// Polls `reading` (real time: the exporter refreshes its gauges every second,
// NVML samples on its own period) until `done` holds or 10 s pass; returns
// the last reading.
double WaitFor(const std::function<double()>& reading, const std::function<bool(double)>& done) {
  double value = reading();
  for (const auto deadline = std::chrono::steady_clock::now() + 10s; !done(value) && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(50ms);
    value = reading();
  }
  return value;
}

class GpuInjectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new firedrill::testing::SuitePipeline("firedrill-gpu-injection",
                                                   {"--backend", "cuda", "--workers", "1", "--enable-faults"},
                                                   {{"HSOF_FAULTS_TOKEN", kToken}});
  }
  static void TearDownTestSuite() { delete suite_; }
  void SetUp() override {
    ASSERT_FALSE(suite_->pipeline().ports.is_discarded()) << "hsof-pipeline did not start on its CUDA backend";
    const Result<gpu::DeviceInfo> device = gpu::ProbeDevice(gpu::BackendChoice::kCuda);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = *device;
    journal_path_ = suite_->directory() + "/journal-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db";
    auto journal = Journal::Open(journal_path_);
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
    context_.journal = journal_.get();
    context_.clock = &clock_;
    context_.pipeline_grpc = suite_->pipeline().grpc();
    context_.faults_token = kToken;
    context_.gpu.backend = "cuda";
    context_.gpu.hog_binary = firedrill::testing::BuiltProgram("firedrill-gpu-hog", GPU_HOG_BINARY);
  }
  // A gauge of the pipeline's GPU exporter for GPU 0; -1 when absent.
  double Exporter(const std::string& name) const {
    const std::string url =
        "http://127.0.0.1:" + std::to_string(suite_->pipeline().ports["gpu_exporter"].get<int>()) + "/metrics";
    const std::string metrics = HttpCall("GET", url).body;
    const std::string series = name + "{gpu_id=\"0\"} ";
    const std::size_t at = metrics.find(series);
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + series.size()));
  }
  double MemoryInUse() const { return Exporter("hsof_gpu_memory_used_bytes"); }
  // FP32 FMA/s a half-second kernel reaches now, in a process of its own as
  // the pipeline is: what contention takes away. (A kernel in this process
  // would share its context with the burn and measure that context's own
  // scheduling instead; between processes the card time-slices.)
  double FmaRate() {
    // Bounded, so a child stuck on the card cannot hold the GPU check.
    const std::string command = "timeout 60 '" + fs::read_symlink("/proc/self/exe").string() + "' --fma-rate";
    FILE* probe = popen(command.c_str(), "r");
    if (probe == nullptr) {
      ADD_FAILURE() << "could not start " << command;
      return 0.0;
    }
    double rate = 0.0;
    const bool read = std::fscanf(probe, "%lf", &rate) == 1;
    const int status = pclose(probe);
    EXPECT_TRUE(read && status == 0) << command << " failed (exit status " << WEXITSTATUS(status) << ")";
    return read ? rate : 0.0;
  }
  double Total() const { return static_cast<double>(device_.total_memory); }

  static firedrill::testing::SuitePipeline* suite_;
  gpu::DeviceInfo device_;
  std::string journal_path_;
  RealClock clock_;
  std::unique_ptr<Journal> journal_;
  InjectionContext context_;
};
firedrill::testing::SuitePipeline* GpuInjectionTest::suite_ = nullptr;

// Half of the card, held by another process as a noisy neighbour holds it:
// the exporter (device-wide, from NVML) shows it, a second hog that does not
// fit is refused as out of memory, and stopping gives it all back.
TEST_F(GpuInjectionTest, MemoryHogHoldsHalfTheCardInAProcessOfItsOwn) {
  const double before = WaitFor([&] { return MemoryInUse(); }, [](double used) { return used >= 0; });
  ASSERT_GE(before, 0) << "the exporter reports no device memory";
  auto hog = StartInjection("gpu-memory-hog", {{"share", "50%"}}, context_);
  ASSERT_TRUE(hog.ok()) << hog.status();
  std::printf("%s\n", (*hog)->Describe().c_str());
  const double during = WaitFor([&] { return MemoryInUse(); }, [&](double used) { return used >= before + 0.45 * Total(); });
  EXPECT_GE(during, before + 0.45 * Total()) << "the exporter does not show the neighbour's memory";
  auto second = StartInjection("gpu-memory-hog", {{"share", "60%"}}, context_);
  EXPECT_EQ(second.status().code(), StatusCode::kResourceExhausted) << second.status();
  EXPECT_NE(second.status().message().find("gpu-memory-hog: out of memory: "), std::string::npos) << second.status();
  const pid_t helper = (*journal_->OpenFaults())[0].undo["pid"].get<pid_t>();
  ASSERT_TRUE((*hog)->Renew().ok());
  ASSERT_TRUE((*hog)->Stop().ok());
  EXPECT_EQ(ProcessState(helper), '?') << "the helper ended with the fault";
  const double after = WaitFor([&] { return MemoryInUse(); }, [&](double used) { return used <= before + 0.02 * Total(); });
  EXPECT_LE(after, before + 0.02 * Total()) << "the memory did not come back";
  EXPECT_TRUE(journal_->OpenFaults()->empty());
  std::printf("device memory in use: %.1f GiB before, %.1f GiB with the hog, %.1f GiB after\n", before / (1 << 30),
              during / (1 << 30), after / (1 << 30));
}

// Firedrill killed outright while a hog holds 90% of the card: the helper
// sees its owner die and frees the memory; recover finds nothing to undo.
TEST_F(GpuInjectionTest, MemoryHogEndsWhenFiredrillIsKilled) {
  const double before = WaitFor([&] { return MemoryInUse(); }, [](double used) { return used >= 0; });
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);  // the hog helper the child starts inherits neither end
  const pid_t owner = fork();
  ASSERT_GE(owner, 0) << "fork";
  if (owner == 0) try {
    // The child stands for Firedrill: its own journal connection, its hog.
    // It never outlives the test by long, whatever happens to the parent.
    alarm(120);
    close(ready[0]);
    auto journal = Journal::Open(journal_path_);
    InjectionContext context = context_;
    context.journal = journal.ok() ? journal->get() : nullptr;
    auto hog = journal.ok() ? StartInjection("gpu-memory-hog", {{"share", "90%"}}, context)
                            : Result<std::unique_ptr<Injection>>(journal.status());
    const char said = hog.ok() ? 'y' : 'n';
    (void)!write(ready[1], &said, 1);
    if (!hog.ok()) _exit(1);
    for (;;) pause();
  } catch (...) {
    _exit(2);  // never back into gtest in the child
  }
  close(ready[1]);  // a child that dies before answering gives end of file
  // Every way out of this test kills the child.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid <= 0) return;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reaper{owner};
  char said = 0;
  const ssize_t got = read(ready[0], &said, 1);
  close(ready[0]);
  ASSERT_EQ(got, 1) << "the child died before it answered";
  ASSERT_EQ(said, 'y') << "the hog did not start in the child";
  const double during = WaitFor([&] { return MemoryInUse(); }, [&](double used) { return used >= before + 0.85 * Total(); });
  EXPECT_GE(during, before + 0.85 * Total());
  const auto open = journal_->OpenFaults();
  ASSERT_EQ(open->size(), 1u);
  const pid_t helper = (*open)[0].undo["pid"].get<pid_t>();
  kill(owner, SIGKILL);
  waitpid(owner, nullptr, 0);
  reaper.pid = -1;
  const auto killed = std::chrono::steady_clock::now();
  WaitFor([&] { return ProcessState(helper) == '?' ? 1.0 : 0.0; }, [](double gone) { return gone > 0; });
  EXPECT_EQ(ProcessState(helper), '?') << "the helper outlived its owner";
  const double after = WaitFor([&] { return MemoryInUse(); }, [&](double used) { return used <= before + 0.02 * Total(); });
  EXPECT_LE(after, before + 0.02 * Total());
  std::printf("90%% of the card given back %.0f ms after its owner's SIGKILL (exporter refresh included)\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed).count());
  const auto report =
      Recover(*journal_, std::chrono::duration_cast<std::chrono::milliseconds>(clock_.WallNow().time_since_epoch()).count());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->undone.empty() && report->failures.empty()) << "recover found something still held";
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

// A compute burn at full intensity takes the card from a kernel in another
// process: the kernel's FMA rate falls while the burn runs and comes back after.
TEST_F(GpuInjectionTest, ComputeBurnSlowsKernelsBesideIt) {
  const double alone = FmaRate();
  auto neighbour = StartInjection("gpu-compute-burn", {{"intensity", "100%"}, {"mode", "compute"}}, context_);
  ASSERT_TRUE(neighbour.ok()) << neighbour.status();
  const double beside = FmaRate();
  ASSERT_TRUE((*neighbour)->Stop().ok());
  const double after = FmaRate();
  std::printf("FP32 FMA: %.1f TFLOP/s alone, %.1f beside the burn, %.1f after\n", alone / 1e12, beside / 1e12,
              after / 1e12);
  EXPECT_LT(beside, 0.75 * alone) << "the burn took nothing from the kernel";
  EXPECT_GT(after, 0.85 * alone) << "the kernel did not get its SMs back";
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

// On a real card, thermal is an overlay on what the exporter reports: the
// temperature the alerts read climbs to the target while NVML's own reading
// of the die stays where it was (the card is never heated or reclocked), and
// the overlay goes with the fault.
TEST_F(GpuInjectionTest, ThermalOverlaysTheExporterAndLeavesTheCardAlone) {
  auto nvml = gpu::NvmlTelemetry::Open();
  ASSERT_TRUE(nvml.ok()) << nvml.status();
  const double die = (*nvml)->Read()->temperature_c.value;
  ASSERT_LT(die, 85) << "the card is already hot: not a fair test";
  // No contention here: a burn would heat the die for real.
  auto thermal = StartInjection("thermal", {{"temperature", "95"}, {"contention", "0%"}}, context_);
  ASSERT_TRUE(thermal.ok()) << thermal.status();
  const double overlaid = WaitFor([&] { return Exporter("hsof_gpu_temperature_celsius"); }, [](double c) { return c >= 94; });
  EXPECT_GE(overlaid, 94) << "the exporter does not show the overlay";
  EXPECT_LT((*nvml)->Read()->temperature_c.value, die + 10) << "the die itself should not move";
  ASSERT_TRUE((*thermal)->Stop().ok());
  const double after = WaitFor([&] { return Exporter("hsof_gpu_temperature_celsius"); }, [&](double c) { return c < 85; });
  EXPECT_LT(after, 85) << "the overlay outlived the fault";
  EXPECT_NEAR(after, (*nvml)->Read()->temperature_c.value, 5) << "the exporter reads NVML again";
  std::printf("die %.0f C; the exporter showed %.0f C under the fault and %.0f C after\n", die, overlaid, after);
}

// On a card, thermal brings real contention by default: a burn on half the
// SMs beside the pipeline, so a kernel's FMA rate falls while it is hot.
TEST_F(GpuInjectionTest, ThermalOnACardSlowsKernelsForReal) {
  const double cool = FmaRate();
  auto thermal = StartInjection("thermal", {{"temperature", "92"}}, context_);
  ASSERT_TRUE(thermal.ok()) << thermal.status();
  EXPECT_NE((*thermal)->Describe().find("real contention beside it: gpu-compute-burn"), std::string::npos)
      << (*thermal)->Describe();
  const double hot = FmaRate();
  ASSERT_TRUE((*thermal)->Stop().ok());
  std::printf("FP32 FMA: %.1f TFLOP/s cool, %.1f under the thermal fault\n", cool / 1e12, hot / 1e12);
  EXPECT_LT(hot, 0.85 * cool) << "the thermal fault slowed nothing on the card";
  EXPECT_TRUE(journal_->OpenFaults()->empty());
}

// `--fma-rate`: the FMA rate a half-second kernel reaches, printed alone.
int PrintFmaRate() {
  const Result<gpu::DeviceInfo> device = gpu::ProbeDevice(gpu::BackendChoice::kCuda);
  if (!device.ok()) {
    std::fprintf(stderr, "%s\n", device.status().ToString().c_str());
    return 1;
  }
  RealClock clock;
  const auto burn = gpu::ComputeBurn(*device, clock, 500ms, 1.0);
  if (!burn.ok()) {
    std::fprintf(stderr, "%s\n", burn.status().ToString().c_str());
    return 1;
  }
  std::printf("%.6e\n", burn->Rate());
  return 0;
}

}  // namespace
}  // namespace firedrill::injectors

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--fma-rate") return firedrill::injectors::PrintFmaRate();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
