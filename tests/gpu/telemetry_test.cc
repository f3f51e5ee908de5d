#include "firedrill/gpu/telemetry.h"

#include <gtest/gtest.h>

namespace firedrill::gpu {
namespace {

using namespace std::chrono_literals;

TEST(SimulatedDeviceTest, HealthyCoolingUnderFullLoadStaysCool) {
  SimulatedClock clock;
  SimulatedDevice device(clock, ThermalModel{}, 80ull << 30);
  device.SetUtilization(1.0);
  clock.Advance(70s);
  // Like the H100 measured here: 70 s of full load, +20 °C, no throttling.
  EXPECT_GT(device.Temperature(), 50);
  EXPECT_LT(device.Temperature(), 60);
  EXPECT_DOUBLE_EQ(device.ThrottleFactor(), 1.0);
}

// A cooling failure heats the die past the 85 °C alert within its modelled
// time, it throttles above the slowdown threshold, never reaches shutdown,
// and cools once the fault ends.
TEST(SimulatedDeviceTest, CoolingFaultHeatsThrottlesAndRecovers) {
  SimulatedClock clock;
  const ThermalModel model;
  SimulatedDevice device(clock, model, 80ull << 30);
  device.SetUtilization(1.0);
  clock.Advance(5min);
  const double before = device.Temperature();
  EXPECT_LT(before, 60);

  device.SetCoolingLoss(5);
  Duration to_alert{0};
  double peak = 0;
  bool throttled_when_hot = false;
  for (Duration t = 1s; t <= 5min; t += 1s) {
    clock.Advance(1s);
    const double temperature = device.Temperature();
    peak = std::max(peak, temperature);
    if (to_alert == Duration(0) && temperature > 85) to_alert = t;
    if (temperature > model.slowdown_c + 0.5) throttled_when_hot = throttled_when_hot || device.ThrottleFactor() < 1;
  }
  ASSERT_GT(to_alert, Duration(0)) << "never passed 85 °C; peak " << peak;
  EXPECT_LT(to_alert, model.time_constant) << "passed 85 °C only after " << to_alert.count() << " ns";
  EXPECT_TRUE(throttled_when_hot);
  EXPECT_GT(peak, model.slowdown_c);
  EXPECT_LT(peak, model.shutdown_c);
  const Telemetry hot = device.Read();
  EXPECT_EQ(hot.temperature_c.source, ReadingSource::kSimulated);
  EXPECT_EQ(static_cast<std::uint64_t>(hot.clock_event_reasons.value) & kClockEventSwThermalSlowdown,
            kClockEventSwThermalSlowdown);
  EXPECT_LT(hot.sm_clock_mhz.value, model.sm_clock_mhz);

  device.SetCoolingLoss(1);
  clock.Advance(5min);
  EXPECT_LT(device.Temperature(), 80);
  EXPECT_DOUBLE_EQ(device.ThrottleFactor(), 1.0);
}

TEST(SimulatedDeviceTest, PowerAndUtilisationFollowTheLoad) {
  SimulatedClock clock;
  const ThermalModel model;
  SimulatedDevice device(clock, model, 1ull << 30);
  device.SetUtilization(0.5);
  device.SetMemoryUsed(256ull << 20);
  const Telemetry t = device.Read();
  EXPECT_DOUBLE_EQ(t.utilization_percent.value, 50);
  EXPECT_DOUBLE_EQ(t.power_watts.value, model.idle_power_w + 0.5 * (model.max_power_w - model.idle_power_w));
  EXPECT_DOUBLE_EQ(t.memory_used_bytes.value, double(256ull << 20));
  EXPECT_DOUBLE_EQ(t.slowdown_threshold_c.value, 89);
}

TEST(TelemetryOverlayTest, OverlaidReadingsSayTheyAreOverlaid) {
  SimulatedClock clock;
  SimulatedDevice device(clock, ThermalModel{}, 1ull << 30);
  Telemetry t = device.Read();
  const double real = t.temperature_c.value;
  TelemetryOverlay overlay;
  overlay.temperature_offset_c = 40;
  overlay.clock_event_reasons = kClockEventHwThermalSlowdown;
  ApplyOverlay(overlay, &t);
  EXPECT_DOUBLE_EQ(t.temperature_c.value, real + 40);
  EXPECT_EQ(t.temperature_c.source, ReadingSource::kOverlay);
  EXPECT_EQ(t.clock_event_reasons.source, ReadingSource::kOverlay);
  EXPECT_EQ(t.power_watts.source, ReadingSource::kSimulated);
  EXPECT_EQ(ReadingSourceName(ReadingSource::kOverlay), "overlay");
}

// Here there is no driver: NVML must fail with a reason, not crash. On a GPU
// machine it must read plausible values.
TEST(NvmlTelemetryTest, OpensWhereADriverExistsAndSaysWhyNotElsewhere) {
  auto nvml = NvmlTelemetry::Open();
  if (!nvml.ok()) {
    EXPECT_EQ(nvml.status().code(), StatusCode::kUnavailable);
    EXPECT_FALSE(nvml.status().message().empty());
    return;
  }
  const Result<Telemetry> t = (*nvml)->Read();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->temperature_c.source, ReadingSource::kNvml);
  EXPECT_GT(t->temperature_c.value, 0);
  EXPECT_GT(t->slowdown_threshold_c.value, t->temperature_c.value);
  EXPECT_GT(t->memory_total_bytes.value, 0);
}

}  // namespace
}  // namespace firedrill::gpu
