#include "firedrill/core/clock.h"

#include <cmath>

namespace firedrill {

TimerId TimerQueue::Add(MonotonicTime deadline, std::function<void()> callback) {
  const TimerId id = next_id_++;
  timers_.emplace(Key{deadline, id}, std::move(callback));
  deadlines_.emplace(id, deadline);
  return id;
}

bool TimerQueue::Remove(TimerId id) {
  auto it = deadlines_.find(id);
  if (it == deadlines_.end()) return false;
  timers_.erase(Key{it->second, id});
  deadlines_.erase(it);
  return true;
}

MonotonicTime TimerQueue::NextDeadline() const { return timers_.begin()->first.first; }

std::function<void()> TimerQueue::PopDue(MonotonicTime now, MonotonicTime* deadline) {
  if (timers_.empty()) return nullptr;
  auto first = timers_.begin();
  if (first->first.first > now) return nullptr;
  if (deadline != nullptr) *deadline = first->first.first;
  std::function<void()> callback = std::move(first->second);
  deadlines_.erase(first->first.second);
  timers_.erase(first);
  return callback;
}

// ---- RealClock ----

RealClock::~RealClock() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

TimerId RealClock::ScheduleAt(MonotonicTime deadline, std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  if (!thread_.joinable()) thread_ = std::thread([this] { RunTimers(); });
  const TimerId id = queue_.Add(deadline, std::move(callback));
  changed_.notify_all();
  return id;
}

bool RealClock::Cancel(TimerId id) {
  std::lock_guard lock(mutex_);
  return queue_.Remove(id);
}

void RealClock::SleepUntil(MonotonicTime deadline) { std::this_thread::sleep_until(deadline); }

void RealClock::RunTimers() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (queue_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const MonotonicTime next = queue_.NextDeadline();
    if (next > Now()) {
      changed_.wait_until(lock, next);
      continue;
    }
    std::function<void()> callback = queue_.PopDue(Now(), nullptr);
    if (!callback) continue;
    lock.unlock();
    callback();
    lock.lock();
  }
}

// ---- SimulatedClock ----

SimulatedClock::SimulatedClock(WallTime wall_start) : wall_start_(wall_start) {}

MonotonicTime SimulatedClock::Now() const {
  std::lock_guard lock(mutex_);
  return now_;
}

WallTime SimulatedClock::WallNow() const {
  std::lock_guard lock(mutex_);
  return wall_start_ + std::chrono::duration_cast<WallTime::duration>(now_.time_since_epoch());
}

TimerId SimulatedClock::ScheduleAt(MonotonicTime deadline, std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  return queue_.Add(deadline, std::move(callback));
}

bool SimulatedClock::Cancel(TimerId id) {
  std::lock_guard lock(mutex_);
  return queue_.Remove(id);
}

void SimulatedClock::SleepUntil(MonotonicTime deadline) {
  std::unique_lock lock(mutex_);
  ++sleepers_;
  changed_.notify_all();
  changed_.wait(lock, [&] { return now_ >= deadline; });
  --sleepers_;
}

void SimulatedClock::Advance(Duration delta) { AdvanceTo(Now() + delta); }

void SimulatedClock::AdvanceTo(MonotonicTime target) {
  std::unique_lock lock(mutex_);
  for (;;) {
    MonotonicTime deadline;
    std::function<void()> callback = queue_.PopDue(target, &deadline);
    if (!callback) break;
    if (deadline > now_) now_ = deadline;
    changed_.notify_all();
    lock.unlock();
    callback();
    lock.lock();
  }
  if (target > now_) now_ = target;
  changed_.notify_all();
}

bool SimulatedClock::AdvanceToNextTimer() {
  MonotonicTime next;
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) return false;
    next = queue_.NextDeadline();
  }
  AdvanceTo(next);
  return true;
}

std::size_t SimulatedClock::PendingTimers() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

int SimulatedClock::Sleepers() const {
  std::lock_guard lock(mutex_);
  return sleepers_;
}

void SimulatedClock::WaitForSleepers(int count) const {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return sleepers_ >= count; });
}

// ---- ScaledClock ----

namespace {

// The base clock's readings at time zero: now, or as they were at a past
// `time_zero` (the monotonic one moved back by the real time since).
std::pair<MonotonicTime, WallTime> Origins(Clock& base, std::optional<WallTime> time_zero) {
  const MonotonicTime now = base.Now();
  const WallTime wall_now = base.WallNow();
  if (!time_zero || *time_zero >= wall_now) return {now, wall_now};
  return {now - std::chrono::duration_cast<Duration>(wall_now - *time_zero), *time_zero};
}

}  // namespace

ScaledClock::ScaledClock(Clock& base, double scale, std::optional<WallTime> time_zero)
    : ScaledClock(base, scale, Origins(base, time_zero)) {}

ScaledClock::ScaledClock(Clock& base, double scale, std::pair<MonotonicTime, WallTime> origins)
    : base_(base), scale_(scale > 0 ? scale : 1), origin_(origins.first), wall_origin_(origins.second) {}

namespace {

// origin + offset * scale (or / scale), saturating at the end of time, never
// overflowing. Dividing rather than multiplying by a reciprocal keeps whole
// results whole (480 s / 60 is exactly 8 s).
MonotonicTime Stretch(MonotonicTime origin, Duration offset, long double scale, bool divide, bool round_up) {
  const long double room = static_cast<long double>((MonotonicTime::max() - origin).count());
  const long double value = static_cast<long double>(offset.count());
  const long double stretched = divide ? value / scale : value * scale;
  if (stretched >= room) return MonotonicTime::max();
  const long double whole = round_up ? std::ceil(stretched) : std::floor(stretched);
  return origin + Duration(static_cast<Duration::rep>(whole));
}

}  // namespace

MonotonicTime ScaledClock::Now() const {
  const Duration real = base_.Now() - origin_;
  return Stretch(origin_, real, scale_, /*divide=*/false, /*round_up=*/false);
}

WallTime ScaledClock::WallNow() const {
  return wall_origin_ + std::chrono::duration_cast<WallTime::duration>(Now() - origin_);
}

MonotonicTime ScaledClock::ToBase(MonotonicTime deadline) const {
  if (deadline <= origin_) return deadline;  // already due
  // Rounded up: when the base reaches it, drill time has reached `deadline`.
  return Stretch(origin_, deadline - origin_, scale_, /*divide=*/true, /*round_up=*/true);
}

TimerId ScaledClock::ScheduleAt(MonotonicTime deadline, std::function<void()> callback) {
  return base_.ScheduleAt(ToBase(deadline), std::move(callback));
}

}  // namespace firedrill
