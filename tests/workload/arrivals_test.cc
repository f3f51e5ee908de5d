#include "firedrill/workload/arrivals.h"

#include <gtest/gtest.h>

#include <iostream>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>

// Counts heap allocations, so a test can show that schedules allocate
// nothing per arrival. Plain malloc underneath; the count is all that changes.
// Not inlined: GCC would otherwise see free() meet operator new's pointer and
// warn (-Wmismatched-new-delete).
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* memory) noexcept { std::free(memory); }
[[gnu::noinline]] void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }

namespace firedrill::workload {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::vector<Duration> Drain(ArrivalSchedule& schedule) {
  std::vector<Duration> sends;
  while (std::optional<Duration> at = schedule.Next()) sends.push_back(*at);
  EXPECT_FALSE(schedule.Next().has_value()) << "a finished schedule stays finished";
  return sends;
}

// Sends at or before `t`.
std::size_t CountUpTo(const std::vector<Duration>& sends, Duration t) {
  return static_cast<std::size_t>(std::upper_bound(sends.begin(), sends.end(), t) - sends.begin());
}

std::size_t CountIn(const std::vector<Duration>& sends, Duration from, Duration to) {
  return static_cast<std::size_t>(std::lower_bound(sends.begin(), sends.end(), to) -
                                  std::lower_bound(sends.begin(), sends.end(), from));
}

std::uint64_t Seed(std::uint64_t seed) {
  std::printf("[   seed   ] %llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

std::unique_ptr<ArrivalSchedule> Make(std::string_view kind, const json& fields, Duration phase,
                                      std::uint64_t seed = 1) {
  Result<std::unique_ptr<ArrivalSchedule>> schedule =
      MakeArrivalSchedule(kind, fields, phase, seed, {});
  EXPECT_TRUE(schedule.ok()) << schedule.status();
  return schedule.ok() ? std::move(schedule).value() : nullptr;
}

std::string MakeError(std::string_view kind, const json& fields) {
  Result<std::unique_ptr<ArrivalSchedule>> schedule = MakeArrivalSchedule(kind, fields, 10s, 1, {});
  EXPECT_FALSE(schedule.ok());
  EXPECT_EQ(schedule.status().code(), StatusCode::kInvalidArgument);
  return schedule.status().message();
}

TEST(ArrivalsTest, ConstantSpacingIsExact) {
  // 4/s: sends at 125ms, 375ms, ... — every 250ms to the nanosecond.
  const std::vector<Duration> sends = Drain(*ConstantArrivals(Rate{4}, 10s));
  ASSERT_EQ(sends.size(), 40u);
  for (std::size_t k = 0; k < sends.size(); ++k) {
    EXPECT_EQ(sends[k], 125ms + 250ms * static_cast<long>(k)) << k;
  }
  // 3/s does not divide a second: no drift, each send within 1ns of (k+1/2)/3 s.
  const std::vector<Duration> thirds = Drain(*ConstantArrivals(Rate{3}, 100s));
  ASSERT_EQ(thirds.size(), 300u);
  for (std::size_t k = 0; k < thirds.size(); ++k) {
    const double ideal = (static_cast<double>(k) + 0.5) / 3 * 1e9;
    EXPECT_LE(std::abs(static_cast<double>(thirds[k].count()) - ideal), 1.0) << k;
  }
}

TEST(ArrivalsTest, SubOnePerSecondRates) {
  // 0.2/s: one send every 5s, the first half a gap in.
  const std::vector<Duration> sends = Drain(*Make("constant", {{"rate", "0.2/s"}}, 60s));
  ASSERT_EQ(sends.size(), 12u);
  EXPECT_EQ(sends.front(), 2500ms);
  for (std::size_t k = 1; k < sends.size(); ++k) EXPECT_EQ(sends[k] - sends[k - 1], 5s);
  // 12/m is the same rate.
  EXPECT_EQ(Drain(*Make("constant", {{"rate", "12/m"}}, 60s)), sends);
  // 1/h over 2h: at 30m and 90m.
  EXPECT_EQ(Drain(*Make("constant", {{"rate", "1/h"}}, 2h)), (std::vector<Duration>{30min, 90min}));
  // A phase shorter than half a gap sends nothing; a JSON number is per second.
  EXPECT_TRUE(Drain(*Make("constant", {{"rate", 0.2}}, 2s)).empty());
  EXPECT_EQ(Drain(*Make("constant", {{"rate", 0.2}}, 3s)), std::vector<Duration>{2500ms});
  // Poisson at 0.2/s over a long phase averages one send per 5s.
  const std::uint64_t seed = Seed(20260101);
  const std::size_t count = Drain(*PoissonArrivals(Rate{0.2}, 100'000s, seed)).size();
  EXPECT_NEAR(static_cast<double>(count), 20'000, 5 * std::sqrt(20'000.0));
}

TEST(ArrivalsTest, ZeroRateAndEmptyPhaseSendNothing) {
  EXPECT_TRUE(Drain(*ConstantArrivals(Rate{0}, 10s)).empty());
  EXPECT_TRUE(Drain(*PoissonArrivals(Rate{0}, 10s, 1)).empty());
  EXPECT_TRUE(Drain(*ConstantArrivals(Rate{100}, 0s)).empty());
  EXPECT_TRUE(Drain(*RampArrivals(Rate{0}, Rate{0}, 10s)).empty());
}

TEST(ArrivalsTest, PoissonCountAndGapsMatchTheProcess) {
  const std::uint64_t seed = Seed(0x5eed'f17e'd411ULL);
  const double rate = 100;
  const Duration phase = 1000s;
  const std::vector<Duration> sends = Drain(*PoissonArrivals(Rate{rate}, phase, seed));
  // The count is Poisson with mean and variance rate * T = 1e5: within 5 sigma.
  const double mean_count = rate * 1000;
  EXPECT_NEAR(static_cast<double>(sends.size()), mean_count, 5 * std::sqrt(mean_count));
  ASSERT_GT(sends.size(), 1000u);
  EXPECT_LT(sends.back(), phase);
  // Exponential gaps have coefficient of variation 1. The sample standard
  // deviation of n exponential gaps has relative sd sqrt((kurtosis-1)/4n) =
  // sqrt(2/n); 5 of those bound the CV's error.
  double sum = 0;
  double sum_squares = 0;
  Duration previous{0};
  for (const Duration at : sends) {
    ASSERT_GE(at, previous);
    const double gap = std::chrono::duration<double>(at - previous).count();
    sum += gap;
    sum_squares += gap * gap;
    previous = at;
  }
  const double n = static_cast<double>(sends.size());
  const double mean_gap = sum / n;
  const double cv = std::sqrt(sum_squares / n - mean_gap * mean_gap) / mean_gap;
  EXPECT_NEAR(mean_gap, 1 / rate, 5 * (1 / rate) / std::sqrt(n));
  EXPECT_NEAR(cv, 1.0, 5 * std::sqrt(2 / n));
}

TEST(ArrivalsTest, PoissonIsDeterministicForASeed) {
  const std::uint64_t seed = Seed(42);
  const std::vector<Duration> first = Drain(*Make("poisson", {{"rate", "50/s"}}, 60s, seed));
  EXPECT_EQ(Drain(*Make("poisson", {{"rate", "50/s"}}, 60s, seed)), first);
  EXPECT_NE(Drain(*Make("poisson", {{"rate", "50/s"}}, 60s, seed + 1)), first);
}

// Sends at or before t versus the integrated rate: within 1 everywhere.
void ExpectFollows(const std::vector<Duration>& sends, Duration phase,
                   const std::function<double(double)>& integral) {
  for (Duration t{0}; t < phase; t += 50ms) {
    const double expected = integral(std::chrono::duration<double>(t).count());
    EXPECT_LE(std::abs(static_cast<double>(CountUpTo(sends, t)) - expected), 1.0)
        << "at " << FormatDuration(t);
  }
}

TEST(ArrivalsTest, RampFollowsTheIntegratedRate) {
  // 1/s to 9/s over 100s: the integral is t + 0.04 t^2, 500 in all.
  const std::unique_ptr<ArrivalSchedule> up = Make("ramp", {{"from", "1/s"}, {"to", "9/s"}}, 100s);
  EXPECT_DOUBLE_EQ(up->expected_sends(), 500);
  const std::vector<Duration> sends = Drain(*up);
  EXPECT_EQ(sends.size(), 500u);
  ExpectFollows(sends, 100s, [](double t) { return t + 0.04 * t * t; });
  // Not stepwise: gaps shrink send by send.
  for (std::size_t k = 2; k < sends.size(); ++k) {
    EXPECT_LE(sends[k] - sends[k - 1], sends[k - 1] - sends[k - 2] + 1ns) << k;
  }

  // Down to zero, and up from zero (nothing at t = 0 when the rate there is 0).
  const std::vector<Duration> down = Drain(*RampArrivals(Rate{10}, Rate{0}, 60s));
  EXPECT_EQ(down.size(), 300u);
  ExpectFollows(down, 60s, [](double t) { return 10 * t - t * t / 12; });
  const std::vector<Duration> from_zero = Drain(*RampArrivals(Rate{0}, Rate{10}, 60s));
  EXPECT_EQ(from_zero.size(), 300u);
  EXPECT_GT(from_zero.front(), 1s);
  ExpectFollows(from_zero, 60s, [](double t) { return t * t / 12; });

  // A sub-1/s ramp: 0 to 0.2/s over 100s integrates to 10.
  EXPECT_EQ(Drain(*RampArrivals(Rate{0}, Rate{0.2}, 100s)).size(), 10u);
}

TEST(ArrivalsTest, StepsCountPerWindow) {
  const json fields = {{"steps", json::array({{{"rate", "2/s"}, {"duration", "10s"}},
                                              {{"rate", "0/s"}, {"duration", "10s"}},
                                              {{"rate", "5/s"}, {"duration", "10s"}}})}};
  // The steps cover 30s of a 40s phase: the last rate holds to the end.
  const std::unique_ptr<ArrivalSchedule> schedule = Make("steps", fields, 40s);
  EXPECT_DOUBLE_EQ(schedule->expected_sends(), 20 + 0 + 50 + 50);
  const std::vector<Duration> sends = Drain(*schedule);
  EXPECT_EQ(CountIn(sends, 0s, 10s), 20u);
  EXPECT_EQ(CountIn(sends, 10s, 20s), 0u);
  EXPECT_EQ(CountIn(sends, 20s, 30s), 50u);
  EXPECT_EQ(CountIn(sends, 30s, 40s), 50u);
  EXPECT_EQ(sends.size(), 120u);
  // The pacing carries across a step: the first send of the 5/s step is
  // half a 5/s gap in.
  EXPECT_EQ(sends[20], 20s + 100ms);

  // A phase shorter than the steps cuts them off.
  EXPECT_EQ(Drain(*Make("steps", fields, 15s)).size(), 20u);
  EXPECT_NE(MakeError("steps", {{"steps", json::array()}}).find("expected a list"),
            std::string::npos);
  EXPECT_EQ(MakeError("steps", {{"steps", json::array({{{"rate", "2/x"}, {"duration", "1s"}}})}}),
            "arrival steps: step 1: field 'rate': bad rate \"2/x\" (unknown unit \"x\"): expected "
            "a count per unit of time, e.g. 20/s, 3/m, 100/h");
}

TEST(ArrivalsTest, SpikesCountPerWindow) {
  // 1/s, with 2s bursts of 11/s every 10s starting at 10s: per period 22 in
  // the burst and 8 after it.
  const json fields = {{"base", "1/s"}, {"peak", "11/s"}, {"every", "10s"}, {"length", "2s"}};
  const std::unique_ptr<ArrivalSchedule> schedule = Make("spike", fields, 60s);
  EXPECT_DOUBLE_EQ(schedule->expected_sends(), 10 + 5 * 30);
  const std::vector<Duration> sends = Drain(*schedule);
  EXPECT_EQ(sends.size(), 160u);
  EXPECT_EQ(CountIn(sends, 0s, 10s), 10u);
  for (int period = 1; period < 6; ++period) {
    const Duration start = 10s * period;
    EXPECT_EQ(CountIn(sends, start, start + 2s), 22u) << period;
    EXPECT_EQ(CountIn(sends, start + 2s, start + 10s), 8u) << period;
  }
  // A phase that ends inside a burst.
  const std::unique_ptr<ArrivalSchedule> cut = Make("spike", fields, 21s);
  EXPECT_DOUBLE_EQ(cut->expected_sends(), 10 + 30 + 11);
  EXPECT_EQ(Drain(*cut).size(), 51u);
  // Sub-1/s base with no traffic but the bursts.
  const std::vector<Duration> bursts_only = Drain(
      *Make("spike", {{"base", "0/s"}, {"peak", "1/s"}, {"every", "1m"}, {"length", "4s"}}, 5min));
  EXPECT_EQ(bursts_only,
            (std::vector<Duration>{60500ms, 61500ms, 62500ms, 63500ms, 120500ms, 121500ms, 122500ms,
                                   123500ms, 180500ms, 181500ms, 182500ms, 183500ms, 240500ms,
                                   241500ms, 242500ms, 243500ms}));
  EXPECT_EQ(
      MakeError("spike", {{"base", "1/s"}, {"peak", "2/s"}, {"every", "1s"}, {"length", "2s"}}),
      "arrival spike: length (2s) must be between 0s and every (1s)");
  EXPECT_EQ(
      MakeError("spike", {{"base", "1/s"}, {"peak", "2/s"}, {"every", "0s"}, {"length", "0s"}}),
      "arrival spike: every must be longer than 0s");
}

TEST(ArrivalsTest, FactoryReportsBadFields) {
  EXPECT_EQ(MakeError("constant", json::object()), "arrival constant: missing field 'rate'");
  EXPECT_EQ(MakeError("poisson", {{"rate", "fast"}}),
            "arrival poisson: field 'rate': bad rate \"fast\": expected a count per unit of time, "
            "e.g. 20/s, 3/m, 100/h");
  EXPECT_EQ(MakeError("ramp", {{"from", "1/s"}, {"to", true}}),
            "arrival ramp: field 'to': expected a rate (a count per unit of time, e.g. 20/s, 3/m, "
            "100/h), got true");
  EXPECT_EQ(
      MakeError("spike", {{"base", "1/s"}, {"peak", "2/s"}, {"every", "soon"}, {"length", "1s"}})
          .rfind("arrival spike: field 'every': bad duration \"soon\"", 0),
      0u);
  EXPECT_EQ(MakeError("burst", {{"rate", "1/s"}}),
            "unknown arrival process \"burst\"; expected constant, poisson, ramp, steps, spike, "
            "trace or closed");
  EXPECT_EQ(MakeError("closed", {{"users", "4"}}),
            "arrival closed: sends depend on when jobs finish; use MakeClosedLoop");
  EXPECT_EQ(MakeError("trace", {{"file", ""}}),
            "arrival trace: field 'file': expected a file name, got \"\"");
}

TEST(ArrivalsTest, SchedulesDoNotAllocatePerArrival) {
  const std::uint64_t seed = Seed(7);
  std::vector<std::unique_ptr<ArrivalSchedule>> schedules;
  schedules.push_back(ConstantArrivals(Rate{1000}, 100s));
  schedules.push_back(PoissonArrivals(Rate{1000}, 100s, seed));
  schedules.push_back(RampArrivals(Rate{500}, Rate{1500}, 100s));
  schedules.push_back(StepArrivals({{Rate{500}, 50s}, {Rate{1500}, 50s}}, 100s).value());
  schedules.push_back(SpikeArrivals({Rate{900}, Rate{1900}, 1s, 100ms}, 100s).value());
  for (std::unique_ptr<ArrivalSchedule>& schedule : schedules) {
    const long before = g_allocations.load();
    const auto start = std::chrono::steady_clock::now();
    std::size_t count = 0;
    Duration last{0};
    while (std::optional<Duration> at = schedule->Next()) {
      ++count;
      last = *at;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(g_allocations.load(), before);
    EXPECT_NEAR(static_cast<double>(count), 100'000, 5 * std::sqrt(100'000.0));
    EXPECT_LT(last, 100s);
    std::printf("%zu arrivals in %.2f ms\n", count, seconds * 1e3);
  }
}

TEST(ClosedLoopTest, UsersSendAfterThinkTime) {
  Result<ClosedLoop> loop = MakeClosedLoop({{"users", "4"}, {"thinkTime", "2s"}}, 10s);
  ASSERT_TRUE(loop.ok()) << loop.status();
  EXPECT_EQ(loop->users(), 4);
  EXPECT_EQ(loop->think_time(), 2s);
  // First sends spread over one think time.
  EXPECT_EQ(loop->FirstSend(0), 0s);
  EXPECT_EQ(loop->FirstSend(1), 500ms);
  EXPECT_EQ(loop->FirstSend(3), 1500ms);
  EXPECT_EQ(loop->FirstSend(4), std::nullopt);
  // User 1's job took 2.5s: it thinks for 2s, then sends again.
  EXPECT_EQ(loop->NextSend(1, 3s), 5s);
  EXPECT_EQ(loop->NextSend(1, 7999ms), 9999ms);
  EXPECT_EQ(loop->NextSend(1, 8s), std::nullopt);  // 10s is the phase end
  EXPECT_EQ(loop->NextSend(1, 11s), std::nullopt);
  EXPECT_EQ(loop->NextSend(-1, 1s), std::nullopt);

  // No think time: everyone starts at once and resends on completion.
  Result<ClosedLoop> eager = MakeClosedLoop({{"users", 3}}, 10s);
  ASSERT_TRUE(eager.ok()) << eager.status();
  EXPECT_EQ(eager->FirstSend(2), 0s);
  EXPECT_EQ(eager->NextSend(2, 1234ms), 1234ms);

  EXPECT_EQ(MakeClosedLoop({{"users", "0"}}, 10s).status().message(),
            "arrival closed: field 'users': expected an integer from 1 to 100000, got \"0\"");
  EXPECT_EQ(MakeClosedLoop(json::object(), 10s).status().message(),
            "arrival closed: missing field 'users'");
}

// ---- trace files ------------------------------------------------------------

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("firedrill-trace-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  // The message for a bad trace file, with the path replaced by "F".
  std::string Error(const std::string& text) {
    const std::string path = Write("bad.csv", text);
    Result<std::unique_ptr<ArrivalSchedule>> schedule = TraceArrivals(path, 1, 1h);
    EXPECT_FALSE(schedule.ok());
    EXPECT_EQ(schedule.status().code(), StatusCode::kInvalidArgument);
    const std::string& message = schedule.status().message();
    if (message.rfind(path, 0) != 0) return message;
    std::string relative = "F";
    relative.append(message, path.size());
    return relative;
  }

  std::filesystem::path dir_;
};

TEST_F(TraceTest, ReplaysRowsWithTheirJobs) {
  Write("trace.csv",
        "\xEF\xBB\xBFoffset, samples,features,informative,mode\r\n"
        "0,1000,100,10,fast\r\n"
        "\r\n"
        "1.5s,2000,200,20,balanced\r\n"
        "1.5, 3000 ,300,30,accurate\n"
        "2m,4000,400,40,fast\n"
        "130,5000,500,50,fast");
  // The engine's form: a path relative to the scenario's folder.
  Result<std::unique_ptr<ArrivalSchedule>> made =
      MakeArrivalSchedule("trace", {{"file", "trace.csv"}}, 10min, 1, dir_);
  ASSERT_TRUE(made.ok()) << made.status();
  ArrivalSchedule& schedule = **made;
  EXPECT_EQ(schedule.shape(), nullptr);
  EXPECT_DOUBLE_EQ(schedule.expected_sends(), 5);
  const std::vector<std::pair<Duration, JobShape>> expected = {
      {0s, {1000, 100, 10, 20, 0.1, JobMode::kFast, "", 0}},
      {1500ms, {2000, 200, 20, 20, 0.1, JobMode::kBalanced, "", 0}},
      {1500ms, {3000, 300, 30, 20, 0.1, JobMode::kAccurate, "", 0}},
      {2min, {4000, 400, 40, 20, 0.1, JobMode::kFast, "", 0}},
      {130s, {5000, 500, 50, 20, 0.1, JobMode::kFast, "", 0}},
  };
  for (const auto& [offset, shape] : expected) {
    EXPECT_EQ(schedule.Next(), offset);
    ASSERT_NE(schedule.shape(), nullptr);
    EXPECT_EQ(*schedule.shape(), shape);
  }
  EXPECT_EQ(schedule.Next(), std::nullopt);

  // speed 2 halves the offsets; the phase end cuts rows off.
  Result<std::unique_ptr<ArrivalSchedule>> fast =
      MakeArrivalSchedule("trace", {{"file", "trace.csv"}, {"speed", "2"}}, 65s, 1, dir_);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_EQ(Drain(**fast), (std::vector<Duration>{0s, 750ms, 750ms, 60s}));
}

TEST_F(TraceTest, ColumnsMayComeInAnyOrder) {
  const Result<std::vector<TraceRow>> rows =
      ParseTrace("mode,informative,features,samples,offset\naccurate,3,30,300,250ms\n", "t.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].offset, 250ms);
  EXPECT_EQ((*rows)[0].shape, (JobShape{300, 30, 3, 20, 0.1, JobMode::kAccurate, "", 0}));
}

TEST_F(TraceTest, BadFilesGetFileLineColumnMessages) {
  const std::string header = "offset,samples,features,informative,mode\n";
  EXPECT_EQ(
      Error(""),
      "F:1:1: empty trace file; expected a header row offset,samples,features,informative,mode");
  EXPECT_EQ(
      Error("\n  \n"),
      "F:1:1: empty trace file; expected a header row offset,samples,features,informative,mode");
  EXPECT_EQ(Error("offset,samples,features,informativ,mode\n0,1,1,0,fast\n"),
            "F:1:25: unknown column \"informativ\"; the first row must be the header "
            "offset,samples,features,informative,mode (in any order)");
  EXPECT_EQ(Error("0,100,10,1,fast\n"),
            "F:1:1: unknown column \"0\"; the first row must be the header "
            "offset,samples,features,informative,mode (in any order)");
  EXPECT_EQ(Error("offset,samples,features,informative\n0,1,1,0\n"),
            "F:1:36: the header lacks column \"mode\"; expected "
            "offset,samples,features,informative,mode");
  EXPECT_EQ(Error("offset,samples,features,samples,mode\n"),
            "F:1:25: column \"samples\" appears twice");
  EXPECT_EQ(Error(header), "F:2:1: no rows after the header; expected one row per job");
  EXPECT_EQ(Error(header + "2s,100,10,1,fast\n1s,100,10,1,fast\n"),
            "F:3:1: offset 1s is before the previous row's 2s; rows must be in non-decreasing "
            "offset order");
  EXPECT_EQ(Error(header + "0.5,12x,10,1,fast\n"),
            "F:2:5: samples: expected an integer from 1 to 100000000, got \"12x\"");
  EXPECT_EQ(Error(header + "0.5,100,0,0,fast\n"),
            "F:2:9: features: expected an integer from 1 to 10000000, got \"0\"");
  EXPECT_EQ(Error(header + "0.5,100,10,,fast\n"), "F:2:12: informative: missing value");
  EXPECT_EQ(Error(header + "0.5,100,10,11,fast\n"),
            "F:2:12: informative: 11 is more than features (10)");
  EXPECT_EQ(Error(header + "soon,100,10,1,fast\n"),
            "F:2:1: offset: expected a duration like 1.5s or a number of seconds, got \"soon\"");
  EXPECT_EQ(Error(header + "-1,100,10,1,fast\n"),
            "F:2:1: offset: must not be negative, got \"-1\"");
  EXPECT_EQ(Error(header + "1e3,100,10,1,fast\n"),
            "F:2:1: offset: expected a duration like 1.5s or a number of seconds, got \"1e3\"");
  EXPECT_EQ(Error(header + "0,100,10,1,slow\n"),
            "F:2:12: mode: expected fast, balanced or accurate, got \"slow\"");
  EXPECT_EQ(Error(header + "0,100,10,1,fast\n1s,100,10,1\n"),
            "F:3:12: expected 5 fields (offset,samples,features,informative,mode), got 4");
  EXPECT_EQ(Error(header + "0,100,10,1,fast,extra\n"),
            "F:2:17: expected 5 fields (offset,samples,features,informative,mode), got 6");
  EXPECT_EQ(Error(header + "0,100,10,1,fast\r\n\r\n1s,\"100\",10,1,fast\r\n"),
            "F:4:4: samples: expected an integer from 1 to 100000000, got \"\"100\"\"");
}

TEST_F(TraceTest, MissingFileAndBadSpeed) {
  const std::string missing = (dir_ / "nope.csv").string();
  Result<std::unique_ptr<ArrivalSchedule>> schedule = TraceArrivals(missing, 1, 1h);
  EXPECT_EQ(schedule.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(schedule.status().message(),
            missing + ": cannot read trace file: No such file or directory");
  EXPECT_EQ(TraceArrivals(dir_, 1, 1h).status().message(),
            dir_.string() + ": is a directory, not a trace file");
  const std::string good =
      Write("good.csv", "offset,samples,features,informative,mode\n0,1,1,0,fast\n");
  EXPECT_EQ(TraceArrivals(good, 0, 1h).status().message(),
            good + ": trace speed must be a positive number");
  EXPECT_TRUE(TraceArrivals(good, 1000, 1h).ok());
}

TEST(ShareOfSchedule, SharesInterleaveToTheWholeSchedule) {
  constexpr std::uint64_t kSeed = 20261128;
  std::cout << "seed " << kSeed << "\n";
  std::vector<Duration> whole;
  auto schedule = PoissonArrivals(Rate{500}, 2s, kSeed);
  while (auto next = schedule->Next()) whole.push_back(*next);
  for (int shares : {1, 2, 3, 7}) {
    std::vector<Duration> merged;
    for (int index = 0; index < shares; ++index) {
      auto share = ShareOfSchedule(PoissonArrivals(Rate{500}, 2s, kSeed), index, shares);
      std::size_t position = static_cast<std::size_t>(index);
      while (auto next = share->Next()) {
        ASSERT_LT(position, whole.size());
        EXPECT_EQ(*next, whole[position]) << shares << " shares, share " << index;
        merged.push_back(*next);
        position += static_cast<std::size_t>(shares);
      }
      EXPECT_FALSE(share->Next().has_value());
    }
    EXPECT_EQ(merged.size(), whole.size()) << shares << " shares";
  }
}

}  // namespace
}  // namespace firedrill::workload
