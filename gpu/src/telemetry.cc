#include "firedrill/gpu/telemetry.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>

namespace firedrill::gpu {

std::string_view ReadingSourceName(ReadingSource source) {
  switch (source) {
    case ReadingSource::kNvml: return "nvml";
    case ReadingSource::kSimulated: return "simulated";
    case ReadingSource::kOverlay: return "overlay";
  }
  return "simulated";
}

void ApplyOverlay(const TelemetryOverlay& overlay, Telemetry* telemetry) {
  if (overlay.temperature_c) telemetry->temperature_c = {*overlay.temperature_c, ReadingSource::kOverlay};
  if (overlay.temperature_offset_c != 0) {
    telemetry->temperature_c = {telemetry->temperature_c.value + overlay.temperature_offset_c, ReadingSource::kOverlay};
  }
  if (overlay.sm_clock_mhz) telemetry->sm_clock_mhz = {*overlay.sm_clock_mhz, ReadingSource::kOverlay};
  if (overlay.clock_event_reasons) {
    telemetry->clock_event_reasons = {static_cast<double>(*overlay.clock_event_reasons), ReadingSource::kOverlay};
  }
}

// ---- simulated device ----

SimulatedDevice::SimulatedDevice(const Clock& clock, ThermalModel model, std::uint64_t memory_total_bytes)
    : clock_(clock), model_(model), memory_total_(memory_total_bytes), last_(clock.Now()),
      temperature_c_(model.ambient_c + model.thermal_resistance_c_per_w * model.idle_power_w) {}

void SimulatedDevice::SetUtilization(double share) {
  std::lock_guard lock(mutex_);
  AdvanceLocked();
  utilization_ = std::clamp(share, 0.0, 1.0);
}

void SimulatedDevice::SetMemoryUsed(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  memory_used_ = std::min(bytes, memory_total_);
}

void SimulatedDevice::SetMemoryHeldElsewhere(std::function<std::uint64_t()> held) {
  std::lock_guard lock(mutex_);
  held_elsewhere_ = std::move(held);
}

void SimulatedDevice::SetCoolingLoss(double factor) {
  std::lock_guard lock(mutex_);
  AdvanceLocked();
  cooling_loss_ = std::max(1e-3, factor);
}

double SimulatedDevice::ThrottleLocked() const {
  if (temperature_c_ <= model_.slowdown_c) return 1.0;
  return std::max(model_.min_throttle, 1.0 - model_.throttle_per_c * (temperature_c_ - model_.slowdown_c));
}

// Integrates dT/dt = (T_steady - T) / tau in steps short enough (1/20 of tau)
// that throttling, which feeds back into power, is followed closely; each
// step is exact for its constant inputs.
void SimulatedDevice::AdvanceLocked() {
  const MonotonicTime now = clock_.Now();
  const double tau = std::chrono::duration<double>(model_.time_constant).count();
  double remaining = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  while (remaining > 0) {
    const double step = std::min(remaining, tau / 20);
    const double power = model_.idle_power_w + (model_.max_power_w - model_.idle_power_w) * utilization_ * ThrottleLocked();
    const double steady = model_.ambient_c + model_.thermal_resistance_c_per_w * cooling_loss_ * power;
    temperature_c_ = steady + (temperature_c_ - steady) * std::exp(-step / tau);
    remaining -= step;
  }
}

double SimulatedDevice::Temperature() {
  std::lock_guard lock(mutex_);
  AdvanceLocked();
  return temperature_c_;
}

double SimulatedDevice::ThrottleFactor() {
  std::lock_guard lock(mutex_);
  AdvanceLocked();
  return ThrottleLocked();
}

Telemetry SimulatedDevice::Read() {
  std::lock_guard lock(mutex_);
  AdvanceLocked();
  const ReadingSource s = ReadingSource::kSimulated;
  const double throttle = ThrottleLocked();
  Telemetry t;
  t.temperature_c = {temperature_c_, s};
  t.slowdown_threshold_c = {model_.slowdown_c, s};
  t.shutdown_threshold_c = {model_.shutdown_c, s};
  t.max_operating_c = {model_.max_operating_c, s};
  t.utilization_percent = {utilization_ * 100, s};
  const std::uint64_t elsewhere = held_elsewhere_ ? held_elsewhere_() : 0;
  t.memory_used_bytes = {static_cast<double>(std::min(memory_total_, memory_used_ + elsewhere)), s};
  t.memory_total_bytes = {static_cast<double>(memory_total_), s};
  t.power_watts = {model_.idle_power_w + (model_.max_power_w - model_.idle_power_w) * utilization_ * throttle, s};
  t.sm_clock_mhz = {model_.sm_clock_mhz * throttle, s};
  t.memory_clock_mhz = {model_.memory_clock_mhz, s};
  t.clock_event_reasons = {throttle < 1 ? static_cast<double>(kClockEventSwThermalSlowdown) : 0.0, s};
  return t;
}

// ---- NVML ----

// The subset of nvml.h used here. Values are NVML's documented ABI.
namespace nvml {
using Return = int;
using Device = struct DeviceOpaque*;
constexpr Return kSuccess = 0;
constexpr int kTemperatureGpu = 0;
constexpr int kThresholdShutdown = 0, kThresholdSlowdown = 1, kThresholdGpuMax = 3;
constexpr int kClockSm = 1, kClockMem = 2;
struct Utilization {
  unsigned int gpu;
  unsigned int memory;
};
struct Memory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
}  // namespace nvml

struct NvmlTelemetry::Api {
  void* library = nullptr;
  nvml::Device device = nullptr;
  nvml::Return (*init)() = nullptr;
  nvml::Return (*shutdown)() = nullptr;
  const char* (*error_string)(nvml::Return) = nullptr;
  nvml::Return (*handle_by_index)(unsigned int, nvml::Device*) = nullptr;
  nvml::Return (*temperature)(nvml::Device, int, unsigned int*) = nullptr;
  nvml::Return (*threshold)(nvml::Device, int, unsigned int*) = nullptr;
  nvml::Return (*clock_info)(nvml::Device, int, unsigned int*) = nullptr;
  nvml::Return (*power_usage)(nvml::Device, unsigned int*) = nullptr;
  nvml::Return (*utilization)(nvml::Device, nvml::Utilization*) = nullptr;
  nvml::Return (*memory_info)(nvml::Device, nvml::Memory*) = nullptr;
  nvml::Return (*clock_reasons)(nvml::Device, unsigned long long*) = nullptr;

  std::string Error(nvml::Return code) const {
    return error_string ? error_string(code) : "NVML error " + std::to_string(code);
  }
};

NvmlTelemetry::NvmlTelemetry(std::unique_ptr<Api> api) : api_(std::move(api)) {}

NvmlTelemetry::~NvmlTelemetry() {
  if (api_->shutdown) api_->shutdown();
  if (api_->library) dlclose(api_->library);
}

Result<std::unique_ptr<NvmlTelemetry>> NvmlTelemetry::Open(unsigned device_index) {
  auto api = std::make_unique<Api>();
  api->library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (api->library == nullptr) {
    return FD_STATUS(StatusCode::kUnavailable, std::string("NVML is not available: ") + dlerror());
  }
  auto load = [&](auto& function, const char* name) {
    function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(dlsym(api->library, name));
    return function != nullptr;
  };
  // Older drivers name the clock-reason call "ThrottleReasons".
  const bool loaded = load(api->init, "nvmlInit_v2") && load(api->shutdown, "nvmlShutdown") &&
                      load(api->error_string, "nvmlErrorString") &&
                      load(api->handle_by_index, "nvmlDeviceGetHandleByIndex_v2") &&
                      load(api->temperature, "nvmlDeviceGetTemperature") &&
                      load(api->threshold, "nvmlDeviceGetTemperatureThreshold") &&
                      load(api->clock_info, "nvmlDeviceGetClockInfo") &&
                      load(api->power_usage, "nvmlDeviceGetPowerUsage") &&
                      load(api->utilization, "nvmlDeviceGetUtilizationRates") &&
                      load(api->memory_info, "nvmlDeviceGetMemoryInfo") &&
                      (load(api->clock_reasons, "nvmlDeviceGetCurrentClocksEventReasons") ||
                       load(api->clock_reasons, "nvmlDeviceGetCurrentClocksThrottleReasons"));
  if (!loaded) {
    dlclose(api->library);
    return FD_STATUS(StatusCode::kUnavailable, "libnvidia-ml.so.1 lacks a function Firedrill needs");
  }
  if (const nvml::Return code = api->init(); code != nvml::kSuccess) {
    const std::string why = api->Error(code);
    dlclose(api->library);
    return FD_STATUS(StatusCode::kUnavailable, "nvmlInit failed: " + why);
  }
  if (const nvml::Return code = api->handle_by_index(device_index, &api->device); code != nvml::kSuccess) {
    const std::string why = api->Error(code);
    api->shutdown();
    dlclose(api->library);
    return FD_STATUS(StatusCode::kUnavailable, "NVML has no device " + std::to_string(device_index) + ": " + why);
  }
  return std::unique_ptr<NvmlTelemetry>(new NvmlTelemetry(std::move(api)));
}

Result<Telemetry> NvmlTelemetry::Read() {
  std::lock_guard lock(mutex_);
  const Api& api = *api_;
  const ReadingSource s = ReadingSource::kNvml;
  Telemetry t;
  unsigned int value = 0;
  auto check = [&](nvml::Return code, const char* what) -> Status {
    if (code == nvml::kSuccess) return Status::Ok();
    return FD_STATUS(StatusCode::kUnavailable, std::string(what) + ": " + api.Error(code));
  };
  FD_RETURN_IF_ERROR(check(api.temperature(api.device, nvml::kTemperatureGpu, &value), "temperature"));
  t.temperature_c = {double(value), s};
  FD_RETURN_IF_ERROR(check(api.threshold(api.device, nvml::kThresholdSlowdown, &value), "slowdown threshold"));
  t.slowdown_threshold_c = {double(value), s};
  FD_RETURN_IF_ERROR(check(api.threshold(api.device, nvml::kThresholdShutdown, &value), "shutdown threshold"));
  t.shutdown_threshold_c = {double(value), s};
  FD_RETURN_IF_ERROR(check(api.threshold(api.device, nvml::kThresholdGpuMax, &value), "GPU max threshold"));
  t.max_operating_c = {double(value), s};
  FD_RETURN_IF_ERROR(check(api.clock_info(api.device, nvml::kClockSm, &value), "SM clock"));
  t.sm_clock_mhz = {double(value), s};
  FD_RETURN_IF_ERROR(check(api.clock_info(api.device, nvml::kClockMem, &value), "memory clock"));
  t.memory_clock_mhz = {double(value), s};
  FD_RETURN_IF_ERROR(check(api.power_usage(api.device, &value), "power"));
  t.power_watts = {value / 1000.0, s};  // NVML reports milliwatts
  nvml::Utilization utilization{};
  FD_RETURN_IF_ERROR(check(api.utilization(api.device, &utilization), "utilization"));
  t.utilization_percent = {double(utilization.gpu), s};
  nvml::Memory memory{};
  FD_RETURN_IF_ERROR(check(api.memory_info(api.device, &memory), "memory"));
  t.memory_used_bytes = {double(memory.used), s};
  t.memory_total_bytes = {double(memory.total), s};
  unsigned long long reasons = 0;
  FD_RETURN_IF_ERROR(check(api.clock_reasons(api.device, &reasons), "clock event reasons"));
  t.clock_event_reasons = {double(reasons), s};
  return t;
}

}  // namespace firedrill::gpu
