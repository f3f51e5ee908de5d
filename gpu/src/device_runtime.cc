#include <algorithm>
#include <cmath>

#include "firedrill/core/units.h"
#include "firedrill/gpu/device.h"
#include "firedrill/gpu/shared_memory.h"
#include "firedrill/gpu/telemetry.h"

namespace firedrill::gpu {

// The arena's books: a budget and what is out. Buffers it hands out keep it
// alive and return their bytes when freed.
class DeviceArena final : public MemoryLedger {
 public:
  DeviceArena(std::uint64_t capacity, double fraction, SimulatedDevice* simulated, SharedDeviceMemory* shared)
      : capacity_(capacity),
        budget_(static_cast<std::uint64_t>(static_cast<double>(capacity) * fraction)),
        fraction_(fraction),
        simulated_(simulated),
        shared_(shared) {}

  Status Reserve(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    if (bytes > budget_ || used_ > budget_ - bytes) {
      return FD_STATUS(StatusCode::kResourceExhausted,
                       "GPU memory budget exhausted: asked for " + FormatSize(bytes) + " with " + FormatSize(used_) +
                           " of " + FormatSize(budget_) + " in use (GPU_MEMORY_FRACTION=" + FormatRatio(fraction_) + ")");
    }
    if (shared_ != nullptr) {
      // What another process holds is not free here, whatever our budget says.
      if (Status fits = shared_->HoldWithin(used_ + bytes, capacity_); !fits.ok()) {
        if (fits.code() != StatusCode::kResourceExhausted) return fits;
        return FD_STATUS(StatusCode::kResourceExhausted, "GPU out of memory: asked for " + FormatSize(bytes) + " while " +
                                                             fits.message() + " and this one " + FormatSize(used_));
      }
    }
    used_ += bytes;
    // The shared record was written with the check above.
    if (simulated_ != nullptr) simulated_->SetMemoryUsed(used_);
    return Status::Ok();
  }

  void Return(std::size_t bytes) override {
    std::lock_guard lock(mutex_);
    used_ -= std::min<std::uint64_t>(used_, bytes);
    Publish();
  }

  void SetFraction(double fraction) {
    std::lock_guard lock(mutex_);
    budget_ = static_cast<std::uint64_t>(static_cast<double>(capacity_) * fraction);
    fraction_ = fraction;
  }
  std::uint64_t budget() const {
    std::lock_guard lock(mutex_);
    return budget_;
  }
  std::uint64_t used() const {
    std::lock_guard lock(mutex_);
    return used_;
  }
  // The simulated device dies with the Device; buffers may outlive both.
  void Detach() {
    std::lock_guard lock(mutex_);
    simulated_ = nullptr;
    shared_ = nullptr;
  }

 private:
  void Publish() {
    if (simulated_ != nullptr) simulated_->SetMemoryUsed(used_);
    if (shared_ != nullptr) (void)shared_->Hold(used_);  // best effort: a record others read
  }

  mutable std::mutex mutex_;
  const std::uint64_t capacity_;
  std::uint64_t budget_;
  double fraction_;
  std::uint64_t used_ = 0;
  SimulatedDevice* simulated_;
  SharedDeviceMemory* shared_;
};

namespace {

Status CheckFraction(double fraction) {
  if (!(fraction > 0 && fraction <= 1)) {
    return FD_STATUS(StatusCode::kInvalidArgument, "GPU_MEMORY_FRACTION must be in (0, 1], got " + std::to_string(fraction));
  }
  return Status::Ok();
}

Status CheckBatches(int limit) {
  if (limit < 1) {
    return FD_STATUS(StatusCode::kInvalidArgument, "MAX_CONCURRENT_BATCHES must be at least 1, got " + std::to_string(limit));
  }
  return Status::Ok();
}

}  // namespace

Device::Device(DeviceInfo info, const DeviceOptions& options, Clock& clock, std::unique_ptr<SharedDeviceMemory> shared)
    : info_(std::move(info)),
      clock_(clock),
      capacity_(info_.backend == Backend::kCuda ? info_.total_memory : options.host_device_memory),
      shared_(std::move(shared)),
      max_batches_(options.max_concurrent_batches) {
  if (info_.backend == Backend::kSimulated) {
    simulated_ = std::make_unique<SimulatedDevice>(clock, ThermalModel{}, capacity_);
    if (shared_ != nullptr) simulated_->SetMemoryHeldElsewhere([shared = shared_.get()] { return shared->HeldByOthers(); });
  }
  arena_ = std::make_shared<DeviceArena>(capacity_, options.memory_fraction, simulated_.get(), shared_.get());
}

Device::~Device() { arena_->Detach(); }

Result<std::unique_ptr<Device>> Device::Open(const DeviceOptions& options, Clock& clock, Logger& logger) {
  FD_RETURN_IF_ERROR(CheckFraction(options.memory_fraction));
  FD_RETURN_IF_ERROR(CheckBatches(options.max_concurrent_batches));
  FD_ASSIGN_OR_RETURN(DeviceInfo info, ProbeDevice(options.backend));
  LogDeviceChoice(logger, info);
  // On a GPU the driver shares device memory between processes already.
  std::unique_ptr<SharedDeviceMemory> shared;
  if (!options.shared_memory_dir.empty() && info.backend != Backend::kCuda) {
    FD_ASSIGN_OR_RETURN(shared, SharedDeviceMemory::Open(options.shared_memory_dir));
  }
  return std::unique_ptr<Device>(new Device(std::move(info), options, clock, std::move(shared)));
}

Result<DeviceBuffer> Device::Allocate(std::size_t bytes) {
  FD_RETURN_IF_ERROR(arena_->Reserve(bytes));
  Result<DeviceBuffer> buffer = DeviceBuffer::Allocate(info_.backend, bytes);
  if (!buffer.ok()) {
    arena_->Return(bytes);
    return buffer.status();
  }
  buffer->set_ledger(arena_);
  return buffer;
}

std::uint64_t Device::memory_budget() const { return arena_->budget(); }
std::uint64_t Device::memory_used() const { return arena_->used(); }
std::uint64_t Device::memory_held_by_others() const { return shared_ != nullptr ? shared_->HeldByOthers() : 0; }

Status Device::SetMemoryFraction(double fraction) {
  FD_RETURN_IF_ERROR(CheckFraction(fraction));
  arena_->SetFraction(fraction);
  return Status::Ok();
}

Device::BatchSlot& Device::BatchSlot::operator=(BatchSlot&& other) noexcept {
  if (this != &other) {
    if (device_ != nullptr) device_->ReleaseBatch();
    device_ = std::exchange(other.device_, nullptr);
  }
  return *this;
}

Device::BatchSlot::~BatchSlot() {
  if (device_ != nullptr) device_->ReleaseBatch();
}

Device::BatchSlot Device::AcquireBatch() {
  std::unique_lock lock(mutex_);
  batch_freed_.wait(lock, [&] { return running_batches_ < max_batches_; });
  ++running_batches_;
  return BatchSlot(this);
}

Device::BatchSlot Device::TryAcquireBatch() {
  std::lock_guard lock(mutex_);
  if (running_batches_ >= max_batches_) return BatchSlot();
  ++running_batches_;
  return BatchSlot(this);
}

void Device::ReleaseBatch() {
  {
    std::lock_guard lock(mutex_);
    --running_batches_;
  }
  batch_freed_.notify_all();
}

Status Device::SetMaxConcurrentBatches(int limit) {
  FD_RETURN_IF_ERROR(CheckBatches(limit));
  {
    std::lock_guard lock(mutex_);
    max_batches_ = limit;
  }
  batch_freed_.notify_all();
  return Status::Ok();
}

int Device::running_batches() const {
  std::lock_guard lock(mutex_);
  return running_batches_;
}

Status Device::SetThrottle(double factor) {
  if (!(factor > 0 && factor <= 1)) {
    return FD_STATUS(StatusCode::kInvalidArgument, "throttle must be in (0, 1], got " + std::to_string(factor));
  }
  std::lock_guard lock(mutex_);
  throttle_ = factor;
  return Status::Ok();
}

double Device::throttle() {
  double factor;
  {
    std::lock_guard lock(mutex_);
    factor = throttle_;
  }
  if (simulated_ != nullptr) factor *= simulated_->ThrottleFactor();
  return factor;
}

void Device::ApplyThrottle(Duration work) {
  const double factor = throttle();
  if (factor >= 1 || work <= Duration(0)) return;
  clock_.SleepFor(Duration(static_cast<Duration::rep>(std::llround(static_cast<double>(work.count()) * (1 / factor - 1)))));
}

}  // namespace firedrill::gpu
