// Device telemetry: what the GPU exporter serves and what thermal faults act
// on. Each reading says where it came from — NVML on a real GPU, the
// simulated device's model, or an overlay a fault put on top — so metrics,
// health and reports can label simulated and overlaid values as such.
//
// Thread-safety: SimulatedDevice and NvmlTelemetry are safe to call from any
// thread; Overlay is set and read under the owner's lock.
#pragma once

#include <cstdint>
#include <memory>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "firedrill/core/clock.h"
#include "firedrill/core/status.h"

namespace firedrill::gpu {

enum class ReadingSource { kNvml, kSimulated, kOverlay };
std::string_view ReadingSourceName(ReadingSource source);

struct Reading {
  double value = 0;
  ReadingSource source = ReadingSource::kSimulated;
};

// NVML's clock-event (throttle) reason bits that Firedrill reports.
inline constexpr std::uint64_t kClockEventSwThermalSlowdown = 0x20;
inline constexpr std::uint64_t kClockEventHwThermalSlowdown = 0x40;
inline constexpr std::uint64_t kClockEventSwPowerCap = 0x04;

struct Telemetry {
  Reading temperature_c;
  Reading slowdown_threshold_c;
  Reading shutdown_threshold_c;
  Reading max_operating_c;
  Reading utilization_percent;
  Reading memory_used_bytes;
  Reading memory_total_bytes;
  Reading power_watts;
  Reading sm_clock_mhz;
  Reading memory_clock_mhz;
  Reading clock_event_reasons;  // bit mask, as NVML reports it
};

// A fault's changes to readings: each set field replaces the reading;
// `temperature_offset_c` is added to it. Applied by ApplyOverlay.
struct TelemetryOverlay {
  std::optional<double> temperature_c;
  double temperature_offset_c = 0;
  std::optional<double> sm_clock_mhz;
  std::optional<std::uint64_t> clock_event_reasons;
  bool empty() const {
    return !temperature_c && temperature_offset_c == 0 && !sm_clock_mhz && !clock_event_reasons;
  }
};
void ApplyOverlay(const TelemetryOverlay& overlay, Telemetry* telemetry);

// First-order thermal model of a GPU. Defaults follow an H100 measured here:
// idle die 34 °C; 70 s of 369 W FP32 load took it to 54 °C without
// throttling; NVML thresholds slowdown 89 °C, GPU max 87 °C, shutdown 95 °C.
struct ThermalModel {
  double ambient_c = 34;
  double thermal_resistance_c_per_w = 0.06;  // healthy cooling: +22 °C at 370 W
  Duration time_constant = std::chrono::seconds(60);
  double idle_power_w = 70;
  double max_power_w = 370;
  double slowdown_c = 89;
  double max_operating_c = 87;
  double shutdown_c = 95;
  double throttle_per_c = 0.15;  // clock share lost per °C above slowdown
  double min_throttle = 0.3;
  double sm_clock_mhz = 1980;
  double memory_clock_mhz = 2619;
};

// The simulated device's telemetry: utilisation as set by the scheduler,
// memory as the arena reports, power from utilisation, temperature from the
// thermal model integrated on the injected clock. A cooling fault multiplies
// the thermal resistance; above the slowdown threshold the device throttles,
// which cuts both its power and the speed of work run on it.
class SimulatedDevice {
 public:
  SimulatedDevice(const Clock& clock, ThermalModel model, std::uint64_t memory_total_bytes);

  void SetUtilization(double share);  // 0..1
  void SetMemoryUsed(std::uint64_t bytes);
  // Memory other processes hold on this device (SharedDeviceMemory), read
  // with each reading as NVML would report it.
  void SetMemoryHeldElsewhere(std::function<std::uint64_t()> held);
  // Cooling fault: 1 is healthy cooling, 5 means the die sheds heat 5x worse.
  void SetCoolingLoss(double factor);

  double Temperature();
  // 1 at full speed; below 1 while thermally throttled. Work scales by it.
  double ThrottleFactor();
  Telemetry Read();

 private:
  void AdvanceLocked();
  double ThrottleLocked() const;

  const Clock& clock_;
  const ThermalModel model_;
  const std::uint64_t memory_total_;
  std::mutex mutex_;
  MonotonicTime last_;
  double temperature_c_;
  double utilization_ = 0;
  double cooling_loss_ = 1;
  std::uint64_t memory_used_ = 0;
  std::function<std::uint64_t()> held_elsewhere_;
};

// NVML, loaded at run time with dlopen (the header is not installed on the
// build machines, so the few calls used are declared by hand).
class NvmlTelemetry {
 public:
  // Fails with kUnavailable, saying why, where libnvidia-ml or a GPU is missing.
  static Result<std::unique_ptr<NvmlTelemetry>> Open(unsigned device_index = 0);
  ~NvmlTelemetry();
  NvmlTelemetry(const NvmlTelemetry&) = delete;
  NvmlTelemetry& operator=(const NvmlTelemetry&) = delete;

  Result<Telemetry> Read();

 private:
  struct Api;
  explicit NvmlTelemetry(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
  std::mutex mutex_;
};

}  // namespace firedrill::gpu
