#include "firedrill/core/clock.h"

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <atomic>
#include <thread>
#include <vector>

namespace firedrill {
namespace {

using namespace std::chrono_literals;

TEST(SimulatedClockTest, TimeMovesOnlyWhenAdvanced) {
  SimulatedClock clock;
  const MonotonicTime start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(1500ms);
  EXPECT_EQ(clock.Now() - start, 1500ms);
  EXPECT_EQ(clock.WallNow() - SimulatedClock().WallNow(), 1500ms);
}

TEST(SimulatedClockTest, TimersFireByDeadlineThenBySchedulingOrder) {
  SimulatedClock clock;
  std::vector<std::string> fired;
  clock.ScheduleAfter(3s, [&] { fired.push_back("c@3s"); });
  clock.ScheduleAfter(1s, [&] { fired.push_back("a@1s"); });
  clock.ScheduleAfter(2s, [&] { fired.push_back("b1@2s"); });
  clock.ScheduleAfter(2s, [&] { fired.push_back("b2@2s"); });
  clock.ScheduleAfter(2s, [&] { fired.push_back("b3@2s"); });
  clock.Advance(2s);
  EXPECT_EQ(fired, (std::vector<std::string>{"a@1s", "b1@2s", "b2@2s", "b3@2s"}));
  clock.Advance(999ms);
  EXPECT_EQ(fired.size(), 4u);
  clock.Advance(1ms);
  EXPECT_EQ(fired.back(), "c@3s");
  EXPECT_EQ(clock.PendingTimers(), 0u);
}

TEST(SimulatedClockTest, CallbackSeesItsOwnDeadlineAsNow) {
  SimulatedClock clock;
  const MonotonicTime start = clock.Now();
  std::vector<Duration> seen;
  clock.ScheduleAfter(250ms, [&] { seen.push_back(clock.Now() - start); });
  clock.ScheduleAfter(4s, [&] { seen.push_back(clock.Now() - start); });
  clock.Advance(10s);
  EXPECT_EQ(seen, (std::vector<Duration>{250ms, 4s}));
  EXPECT_EQ(clock.Now() - start, 10s);
}

TEST(SimulatedClockTest, TimersScheduledByCallbacksFireInTheSameAdvance) {
  SimulatedClock clock;
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    clock.ScheduleAfter(1s, tick);  // a periodic timer
  };
  clock.ScheduleAfter(1s, tick);
  clock.Advance(10s);
  EXPECT_EQ(ticks, 10);
  EXPECT_EQ(clock.PendingTimers(), 1u);
}

TEST(SimulatedClockTest, CancelledTimersNeverFire) {
  SimulatedClock clock;
  bool fired = false;
  const TimerId id = clock.ScheduleAfter(1s, [&] { fired = true; });
  EXPECT_TRUE(clock.Cancel(id));
  EXPECT_FALSE(clock.Cancel(id));
  clock.Advance(5s);
  EXPECT_FALSE(fired);
}

TEST(SimulatedClockTest, PastDeadlinesFireOnTheNextAdvance) {
  SimulatedClock clock;
  clock.Advance(10s);
  bool fired = false;
  clock.ScheduleAt(clock.Now() - 5s, [&] { fired = true; });
  clock.Advance(0s);
  EXPECT_TRUE(fired);
}

TEST(SimulatedClockTest, AdvanceToNextTimerJumpsExactly) {
  SimulatedClock clock;
  const MonotonicTime start = clock.Now();
  int fired = 0;
  clock.ScheduleAfter(7s, [&] { ++fired; });
  clock.ScheduleAfter(7s, [&] { ++fired; });
  EXPECT_TRUE(clock.AdvanceToNextTimer());
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(clock.Now() - start, 7s);
  EXPECT_FALSE(clock.AdvanceToNextTimer());
}

TEST(SimulatedClockTest, SleepUntilWakesWhenTimeIsAdvancedPastIt) {
  SimulatedClock clock;
  const MonotonicTime deadline = clock.Now() + 30s;
  std::promise<MonotonicTime> woke;
  std::thread sleeper([&] {
    clock.SleepUntil(deadline);
    woke.set_value(clock.Now());
  });
  clock.WaitForSleepers(1);
  clock.Advance(29s);
  auto result = woke.get_future();
  // Still asleep: time has not reached the deadline. wait_for(0) only polls.
  EXPECT_EQ(result.wait_for(0s), std::future_status::timeout);
  clock.Advance(1s);
  sleeper.join();
  EXPECT_GE(result.get(), deadline);
  EXPECT_EQ(clock.Sleepers(), 0);
}

TEST(RealClockTest, DueTimerFiresOnTheTimerThread) {
  RealClock clock;
  std::promise<std::thread::id> fired;
  clock.ScheduleAfter(0s, [&] { fired.set_value(std::this_thread::get_id()); });
  auto future = fired.get_future();
  ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
  EXPECT_NE(future.get(), std::this_thread::get_id());
}

TEST(RealClockTest, CancelledTimerDoesNotFireAndShutdownIsClean) {
  bool fired = false;
  {
    RealClock clock;
    const TimerId id = clock.ScheduleAfter(1h, [&] { fired = true; });
    EXPECT_TRUE(clock.Cancel(id));
    clock.ScheduleAfter(2h, [&] { fired = true; });  // pending at destruction
  }
  EXPECT_FALSE(fired);
}

TEST(RealClockTest, NowIsMonotonic) {
  RealClock clock;
  const MonotonicTime a = clock.Now();
  const MonotonicTime b = clock.Now();
  EXPECT_LE(a, b);
}

// Drill time over a simulated base: a second of base time is a minute of
// drill time at scale 60, for reading, timers and sleeps alike.
TEST(ScaledClockTest, DrillTimeRunsScaleTimesFaster) {
  SimulatedClock base;
  ScaledClock drill(base, 60);
  const MonotonicTime start = drill.Now();
  const WallTime wall_start = drill.WallNow();
  base.Advance(std::chrono::seconds(1));
  EXPECT_EQ(drill.Now() - start, std::chrono::minutes(1));
  EXPECT_EQ(drill.WallNow() - wall_start, std::chrono::minutes(1));
  bool fired = false;
  drill.ScheduleAfter(std::chrono::minutes(5), [&] { fired = true; });
  base.Advance(std::chrono::milliseconds(4999));
  EXPECT_FALSE(fired);
  base.Advance(std::chrono::milliseconds(1));
  EXPECT_TRUE(fired) << "five drill minutes are five real seconds";
  const MonotonicTime wake_at = drill.Now() + std::chrono::minutes(2);
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    drill.SleepUntil(wake_at);
    woke = true;
  });
  base.WaitForSleepers(1);
  base.Advance(std::chrono::milliseconds(1999));
  EXPECT_FALSE(woke.load()) << "a drill second early";
  base.Advance(std::chrono::milliseconds(1));
  sleeper.join();
  EXPECT_GE(drill.Now(), wake_at);
  EXPECT_EQ(ScaledClock(base, 0).scale(), 1) << "a scale that is not positive is taken as 1";
}

// A pipeline restarted 10 real seconds into a drill at scale 20 keeps the
// drill's wall clock (200 s in), so backup names and ages agree across the
// restart; a time zero in the future counts as now.
TEST(ScaledClockTest, AClockJoiningADrillKeepsItsWallClock) {
  SimulatedClock base;
  ScaledClock drill(base, 20);
  base.Advance(std::chrono::seconds(10));
  ScaledClock joined(base, 20, drill.time_zero());
  EXPECT_EQ(joined.time_zero(), drill.time_zero());
  EXPECT_EQ(joined.WallNow(), drill.WallNow());
  EXPECT_EQ(joined.WallNow() - drill.time_zero(), std::chrono::seconds(200));
  base.Advance(std::chrono::seconds(3));
  EXPECT_EQ(joined.WallNow(), drill.WallNow());
  const MonotonicTime start = joined.Now();
  bool fired = false;
  joined.ScheduleAfter(std::chrono::seconds(40), [&] { fired = true; });
  base.Advance(std::chrono::seconds(2));
  EXPECT_TRUE(fired) << "timers still run 20x: " << (joined.Now() - start).count();
  const ScaledClock own(base, 20);
  EXPECT_EQ(ScaledClock(base, 20, base.WallNow() + std::chrono::hours(1)).time_zero(), own.time_zero());
}

// A scale that does not divide evenly: a timer never fires before its drill
// deadline, and the end of time stays the end of time at any scale.
TEST(ScaledClockTest, DeadlinesRoundUpAndNeverOverflow) {
  SimulatedClock base;
  ScaledClock drill(base, 7);
  const MonotonicTime deadline = drill.Now() + std::chrono::seconds(1);
  MonotonicTime seen{};
  drill.ScheduleAt(deadline, [&] { seen = drill.Now(); });
  base.Advance(std::chrono::seconds(1));
  EXPECT_GE(seen, deadline);
  bool never = false;
  drill.ScheduleAt(MonotonicTime::max(), [&] { never = true; });
  ScaledClock slow(base, 0.001);
  slow.ScheduleAt(MonotonicTime::max(), [&] { never = true; });
  base.Advance(std::chrono::hours(24 * 365));
  EXPECT_FALSE(never);
  ScaledClock fast(base, 10000);
  base.Advance(std::chrono::hours(24 * 365 * 100));
  EXPECT_EQ(fast.Now(), MonotonicTime::max()) << "saturates instead of wrapping";
}

}  // namespace
}  // namespace firedrill
