#include "firedrill/gpu/buffer.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "cuda_backend.h"

namespace firedrill::gpu {
namespace {

constexpr std::size_t kHostAlignment = 64;

Status CheckRange(std::size_t offset, std::size_t bytes, std::size_t size) {
  if (offset > size || bytes > size - offset) {
    return FD_STATUS(StatusCode::kInvalidArgument, "range [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
                                                       ") is outside a buffer of " + std::to_string(size) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

Result<DeviceBuffer> DeviceBuffer::Allocate(Backend backend, std::size_t bytes) {
  DeviceBuffer buffer;
  buffer.backend_ = backend;
  buffer.bytes_ = bytes;
  if (bytes == 0) return buffer;
  if (backend == Backend::kCuda) {
    FD_RETURN_IF_ERROR(cuda::Allocate(bytes, &buffer.data_));
    return buffer;
  }
  const std::size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  buffer.data_ = std::aligned_alloc(kHostAlignment, rounded);
  if (buffer.data_ == nullptr) {
    buffer.bytes_ = 0;
    return FD_STATUS(StatusCode::kResourceExhausted,
                     "out of host memory: allocating " + std::to_string(bytes) + " bytes failed");
  }
  return buffer;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ledger_(std::move(other.ledger_)), backend_(other.backend_), data_(other.data_), bytes_(other.bytes_) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    ledger_ = std::move(other.ledger_);
    backend_ = other.backend_;
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { Release(); }

void DeviceBuffer::Release() {
  if (ledger_ != nullptr) {
    ledger_->Return(bytes_);
    ledger_ = nullptr;
  }
  if (data_ == nullptr) return;
  if (backend_ == Backend::kCuda) {
    cuda::Free(data_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  bytes_ = 0;
}

Status DeviceBuffer::Upload(const void* host, std::size_t bytes, std::size_t offset) {
  FD_RETURN_IF_ERROR(CheckRange(offset, bytes, bytes_));
  char* destination = static_cast<char*>(data_) + offset;
  if (backend_ == Backend::kCuda) return cuda::CopyToDevice(destination, host, bytes);
  if (bytes > 0) std::memcpy(destination, host, bytes);
  return Status::Ok();
}

Status DeviceBuffer::Download(void* host, std::size_t bytes, std::size_t offset) const {
  FD_RETURN_IF_ERROR(CheckRange(offset, bytes, bytes_));
  const char* source = static_cast<const char*>(data_) + offset;
  if (backend_ == Backend::kCuda) return cuda::CopyToHost(host, source, bytes);
  if (bytes > 0) std::memcpy(host, source, bytes);
  return Status::Ok();
}

Status DeviceBuffer::EnsureAtLeast(Backend backend, std::size_t bytes) {
  if (bytes_ >= bytes && backend_ == backend && (data_ != nullptr || bytes == 0)) return Status::Ok();
  FD_ASSIGN_OR_RETURN(*this, Allocate(backend, bytes));
  return Status::Ok();
}

Status DeviceBuffer::CopyFrom(const DeviceBuffer& source) {
  FD_RETURN_IF_ERROR(CheckRange(0, source.bytes_, bytes_));
  if (source.backend_ != backend_) {
    return FD_STATUS(StatusCode::kInvalidArgument, "copy between buffers on different backends");
  }
  if (source.bytes_ == 0) return Status::Ok();
  if (backend_ == Backend::kCuda) return cuda::CopyOnDevice(data_, source.data_, source.bytes_);
  std::memcpy(data_, source.data_, source.bytes_);
  return Status::Ok();
}

Status DeviceBuffer::Fill(std::uint8_t byte) {
  if (bytes_ == 0) return Status::Ok();
  if (backend_ == Backend::kCuda) return cuda::Memset(data_, byte, bytes_);
  std::memset(data_, byte, bytes_);
  return Status::Ok();
}

}  // namespace firedrill::gpu
