// Device memory shared between processes, for the CPU and simulated devices.
// On a GPU the driver does this: memory one process holds is not free for
// another. The CPU twins share a folder instead: each process that holds
// device memory keeps one file there with the bytes it holds, under an
// exclusive lock that the kernel drops when the process ends in any way
// (SIGKILL too), so a holder that is gone counts for nothing.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "firedrill/core/status.h"

namespace firedrill::gpu {

class SharedDeviceMemory {
 public:
  // Opens (creating) the folder and this process's record in it.
  static Result<std::unique_ptr<SharedDeviceMemory>> Open(const std::string& directory);
  ~SharedDeviceMemory();  // removes this process's record
  SharedDeviceMemory(const SharedDeviceMemory&) = delete;
  SharedDeviceMemory& operator=(const SharedDeviceMemory&) = delete;

  // Records that this process holds `bytes` now.
  Status Hold(std::uint64_t bytes);
  // Records `bytes` only if they fit in `capacity` beside what live others
  // hold, checked and recorded under a lock on the folder, so two processes
  // cannot both take the last of the device (unlocked if the folder is
  // gone). Otherwise kResourceExhausted, saying what others hold, and the
  // record is left as it was.
  Status HoldWithin(std::uint64_t bytes, std::uint64_t capacity);
  // Bytes that live processes other than this record hold; removes the
  // records of holders that are gone.
  std::uint64_t HeldByOthers() const;
  const std::string& directory() const { return directory_; }

 private:
  SharedDeviceMemory(std::string directory, std::string path, int fd)
      : directory_(std::move(directory)), path_(std::move(path)), fd_(fd) {}
  std::string directory_;
  std::string path_;
  int fd_;
  mutable std::mutex mutex_;
};

}  // namespace firedrill::gpu
