// Clock: the one seam through which Firedrill reads time and waits.
//
// Production code takes a Clock& and never calls std::chrono clocks or sleeps
// directly, so tests can drive it with SimulatedClock, whose time moves only
// when the test advances it. Timers fire in a defined order: by deadline, and
// timers with the same deadline in the order they were scheduled.
//
// Thread-safety: every method of both clocks may be called from any thread.
// Timer callbacks run without the clock's lock held, so they may schedule or
// cancel timers; they must not block for long.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace firedrill {

using Duration = std::chrono::nanoseconds;
using MonotonicTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using TimerId = std::uint64_t;

class Clock {
 public:
  virtual ~Clock() = default;

  virtual MonotonicTime Now() const = 0;
  virtual WallTime WallNow() const = 0;

  // Runs `callback` once at `deadline`, or as soon as possible when the
  // deadline has passed. Returns an id for Cancel.
  virtual TimerId ScheduleAt(MonotonicTime deadline, std::function<void()> callback) = 0;
  TimerId ScheduleAfter(Duration delay, std::function<void()> callback) {
    return ScheduleAt(Now() + delay, std::move(callback));
  }
  // True when the timer was still pending and now never fires.
  virtual bool Cancel(TimerId id) = 0;

  // Blocks the calling thread until Now() >= deadline.
  virtual void SleepUntil(MonotonicTime deadline) = 0;
  void SleepFor(Duration delay) { SleepUntil(Now() + delay); }
};

// Pending timers ordered by (deadline, scheduling sequence). Not thread-safe;
// the clocks guard it with their own mutex.
class TimerQueue {
 public:
  TimerId Add(MonotonicTime deadline, std::function<void()> callback);
  bool Remove(TimerId id);
  bool empty() const { return timers_.empty(); }
  std::size_t size() const { return timers_.size(); }
  MonotonicTime NextDeadline() const;  // requires !empty()
  // Removes and returns the earliest timer's callback if it is due at `now`.
  std::function<void()> PopDue(MonotonicTime now, MonotonicTime* deadline);

 private:
  using Key = std::pair<MonotonicTime, TimerId>;
  std::map<Key, std::function<void()>> timers_;
  std::map<TimerId, MonotonicTime> deadlines_;
  TimerId next_id_ = 1;
};

// Wall-clock time. Timers run on one background thread started on first use.
class RealClock final : public Clock {
 public:
  RealClock() = default;
  ~RealClock() override;
  RealClock(const RealClock&) = delete;
  RealClock& operator=(const RealClock&) = delete;

  MonotonicTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  TimerId ScheduleAt(MonotonicTime deadline, std::function<void()> callback) override;
  bool Cancel(TimerId id) override;
  void SleepUntil(MonotonicTime deadline) override;

 private:
  void RunTimers();

  std::mutex mutex_;
  std::condition_variable changed_;
  TimerQueue queue_;
  bool stopping_ = false;
  std::thread thread_;
};

// Time that moves only when Advance* is called. Timer callbacks run on the
// advancing thread, each with Now() equal to its deadline. Threads blocked in
// SleepUntil wake once an advance passes their deadline.
class SimulatedClock final : public Clock {
 public:
  // Starts at a fixed, arbitrary instant so runs are reproducible.
  explicit SimulatedClock(WallTime wall_start = WallTime(std::chrono::seconds(1'767'225'600)));

  MonotonicTime Now() const override;
  WallTime WallNow() const override;
  TimerId ScheduleAt(MonotonicTime deadline, std::function<void()> callback) override;
  bool Cancel(TimerId id) override;
  void SleepUntil(MonotonicTime deadline) override;

  // Moves time forward by `delta`, firing every timer that falls due on the
  // way, including timers scheduled by those callbacks.
  void Advance(Duration delta);
  void AdvanceTo(MonotonicTime target);
  // Jumps to the earliest pending timer and fires it (and any others due at
  // the same instant). False when no timer is pending.
  bool AdvanceToNextTimer();
  std::size_t PendingTimers() const;
  // Number of threads currently blocked in SleepUntil; lets a test wait until
  // a worker has gone to sleep before advancing, without sleeping itself.
  int Sleepers() const;
  void WaitForSleepers(int count) const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  MonotonicTime now_{};
  const WallTime wall_start_;
  TimerQueue queue_;
  int sleepers_ = 0;
};

// Drill time: another clock's time run `scale` times faster from the moment
// it is made, for drills compressed by a time scale. A target, monitoring
// and faults that all read drill time see a 15-minute drill as 15 minutes
// (stage durations, backup ages, leases, `for` windows) while it takes
// 15 / scale real minutes. Wall time moves at the same speed from the real
// wall time at the start, or from `time_zero` when one is given: a process
// joining a drill under way (a restarted pipeline) then keeps the drill's
// wall clock instead of starting its own.
class ScaledClock final : public Clock {
 public:
  // scale > 0; a time_zero later than now counts as now.
  ScaledClock(Clock& base, double scale, std::optional<WallTime> time_zero = std::nullopt);

  MonotonicTime Now() const override;
  WallTime WallNow() const override;
  TimerId ScheduleAt(MonotonicTime deadline, std::function<void()> callback) override;
  bool Cancel(TimerId id) override { return base_.Cancel(id); }
  void SleepUntil(MonotonicTime deadline) override { base_.SleepUntil(ToBase(deadline)); }
  double scale() const { return scale_; }
  WallTime time_zero() const { return wall_origin_; }

 private:
  ScaledClock(Clock& base, double scale, std::pair<MonotonicTime, WallTime> origins);
  MonotonicTime ToBase(MonotonicTime deadline) const;

  Clock& base_;
  const double scale_;
  const MonotonicTime origin_;
  const WallTime wall_origin_;
};

}  // namespace firedrill
