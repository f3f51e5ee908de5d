#include "firedrill/workload/stress_phase.h"

#include <nlohmann/json.hpp>

#include "firedrill/gpu/stress.h"

namespace firedrill::workload {

Result<StressMode> ParseStressMode(std::string_view text) {
  if (text == "compute") return StressMode::kCompute;
  if (text == "bandwidth") return StressMode::kBandwidth;
  if (text == "memory") return StressMode::kMemory;
  return FD_STATUS(StatusCode::kInvalidArgument,
                   "stress mode \"" + std::string(text) + "\": expected compute, bandwidth or memory");
}

std::string_view StressModeName(StressMode mode) {
  switch (mode) {
    case StressMode::kCompute:
      return "compute";
    case StressMode::kBandwidth:
      return "bandwidth";
    case StressMode::kMemory:
      return "memory";
  }
  return "?";
}

double StressResult::Rate() const {
  if (busy_seconds <= 0) return 0;
  return (flops > 0 ? flops : bytes) / busy_seconds;
}

nlohmann::json StressResult::ToJson() const {
  nlohmann::json out = {{"mode", StressModeName(mode)},
                        {"intensity", intensity},
                        {"seconds", std::chrono::duration<double>(ran).count()},
                        {"slices", slices}};
  if (mode == StressMode::kCompute) out["flops_per_second"] = Rate();
  if (mode == StressMode::kBandwidth) out["bytes_per_second"] = Rate();
  if (mode == StressMode::kMemory) {
    out["held_bytes"] = held_bytes;
    out["take_seconds"] = std::chrono::duration<double>(take_time).count();
  }
  if (!status.ok()) out["error"] = status.ToString();
  return out;
}

Result<std::unique_ptr<StressPhase>> StressPhase::Start(const StressOptions& options, const gpu::DeviceInfo& device,
                                                        Clock& clock) {
  if (!(options.intensity > 0 && options.intensity <= 1)) {
    return FD_STATUS(StatusCode::kInvalidArgument,
                     "stress intensity must be in (0, 1], got " + std::to_string(options.intensity));
  }
  if (options.length <= Duration::zero() || options.slice <= Duration::zero()) {
    return FD_STATUS(StatusCode::kInvalidArgument, "stress length and slice must be positive");
  }
  std::unique_ptr<StressPhase> phase(new StressPhase(options, device, clock));
  phase->thread_ = std::thread([raw = phase.get()] { raw->Run(); });
  return phase;
}

StressPhase::StressPhase(const StressOptions& options, const gpu::DeviceInfo& device, Clock& clock)
    : options_(options), device_(device), clock_(clock) {
  result_.mode = options.mode;
  result_.intensity = options.intensity;
}

StressPhase::~StressPhase() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

void StressPhase::Stop() { stop_.store(true); }

StressResult StressPhase::Wait() {
  if (thread_.joinable()) thread_.join();
  return result_;
}

void StressPhase::Run() {
  const MonotonicTime start = clock_.Now();
  const MonotonicTime end = start + options_.length;
  if (options_.mode == StressMode::kMemory) {
    std::uint64_t bytes = 0;
    if (device_.backend == gpu::Backend::kCuda) {
      Result<std::uint64_t> free_bytes = gpu::MemoryHog::FreeDeviceMemory(device_.backend);
      if (!free_bytes.ok()) {
        result_.status = free_bytes.status();
        return;
      }
      bytes = static_cast<std::uint64_t>(static_cast<double>(*free_bytes) * options_.intensity);
    } else {
      bytes = static_cast<std::uint64_t>(static_cast<double>(options_.memory_cap) * options_.intensity);
    }
    Result<gpu::MemoryHog> hog = gpu::MemoryHog::Take(device_.backend, bytes, clock_);
    if (!hog.ok()) {
      result_.status = hog.status();
      return;
    }
    result_.held_bytes = hog->bytes();
    result_.take_time = hog->take_time();
    // Held until the phase ends or a stop; checked every slice.
    while (!stop_.load() && clock_.Now() < end) {
      clock_.SleepUntil(std::min(end, clock_.Now() + options_.slice));
    }
    result_.status = hog->Release();
    result_.ran = clock_.Now() - start;
    return;
  }
  while (!stop_.load()) {
    const MonotonicTime now = clock_.Now();
    if (now >= end) break;
    const Duration slice = std::min<Duration>(options_.slice, end - now);
    Result<gpu::BurnResult> burn =
        options_.mode == StressMode::kCompute
            ? gpu::ComputeBurn(device_, clock_, slice, options_.intensity)
            : gpu::BandwidthBurn(device_, clock_, options_.bandwidth_buffer_bytes, slice, options_.intensity);
    if (!burn.ok()) {
      result_.status = burn.status();
      break;
    }
    ++result_.slices;
    result_.busy_seconds += burn->seconds;
    result_.flops += burn->flops;
    result_.bytes += burn->bytes;
  }
  result_.ran = clock_.Now() - start;
}

}  // namespace firedrill::workload
