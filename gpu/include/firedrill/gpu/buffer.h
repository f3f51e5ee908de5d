// Memory on the chosen backend: device memory for CUDA, 64-byte aligned host
// memory for the CPU and simulated backends. Move-only; freed on destruction.
//
// Thread-safety: one owner at a time; distinct buffers are independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "firedrill/core/status.h"
#include "firedrill/gpu/backend.h"

namespace firedrill::gpu {

// Counts the bytes a Device's arena has handed out; buffers give theirs back
// when freed, however long they outlive the call that made them.
class MemoryLedger {
 public:
  virtual ~MemoryLedger() = default;
  virtual void Return(std::size_t bytes) = 0;
};

class DeviceBuffer {
 public:
  // Fails with kResourceExhausted (never aborts) when memory is short.
  static Result<DeviceBuffer> Allocate(Backend backend, std::size_t bytes);

  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  Status Upload(const void* host, std::size_t bytes, std::size_t offset = 0);
  Status Download(void* host, std::size_t bytes, std::size_t offset = 0) const;
  // Makes this a buffer of at least `bytes` on `backend`, reallocating (and
  // dropping the contents) only when it is smaller or elsewhere.
  Status EnsureAtLeast(Backend backend, std::size_t bytes);
  // Copies all of `source` (same backend, no larger than this) and waits.
  Status CopyFrom(const DeviceBuffer& source);
  // Sets every byte, e.g. to poison outputs before a kernel writes them.
  Status Fill(std::uint8_t byte);

  template <typename T>
  T* as() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* as() const {
    return static_cast<const T*>(data_);
  }
  std::size_t bytes() const { return bytes_; }
  Backend backend() const { return backend_; }

  // Makes the buffer report its bytes to `ledger` when it is freed.
  void set_ledger(std::shared_ptr<MemoryLedger> ledger) { ledger_ = std::move(ledger); }

 private:
  void Release();

  std::shared_ptr<MemoryLedger> ledger_;
  Backend backend_ = Backend::kCpu;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace firedrill::gpu
