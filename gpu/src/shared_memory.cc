#include "firedrill/gpu/shared_memory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "firedrill/core/units.h"

namespace firedrill::gpu {
namespace {

constexpr char kSuffix[] = ".held";

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<std::unique_ptr<SharedDeviceMemory>> SharedDeviceMemory::Open(const std::string& directory) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) {
    return FD_STATUS(StatusCode::kUnavailable, "shared device memory " + directory + ": " + error.message());
  }
  // Locked under a name readers skip, then renamed into place: a reader
  // never mistakes a record being made for one whose holder is gone.
  const std::string name = std::to_string(getpid()) + "-" + std::to_string(std::random_device{}());
  const std::string making = directory + "/" + name + ".new";
  const std::string path = directory + "/" + name + kSuffix;
  const int fd = open(making.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return FD_STATUS(StatusCode::kUnavailable, "shared device memory " + making + ": " + std::strerror(errno));
  }
  const std::uint64_t zero = 0;
  if (flock(fd, LOCK_EX) != 0 || pwrite(fd, &zero, sizeof zero, 0) != sizeof zero ||
      rename(making.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    unlink(making.c_str());
    return FD_STATUS(StatusCode::kUnavailable, "shared device memory " + path + ": " + why);
  }
  return std::unique_ptr<SharedDeviceMemory>(new SharedDeviceMemory(directory, path, fd));
}

SharedDeviceMemory::~SharedDeviceMemory() {
  unlink(path_.c_str());
  close(fd_);
}

Status SharedDeviceMemory::Hold(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  if (pwrite(fd_, &bytes, sizeof bytes, 0) != sizeof bytes) {
    return FD_STATUS(StatusCode::kUnavailable, "shared device memory " + path_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status SharedDeviceMemory::HoldWithin(std::uint64_t bytes, std::uint64_t capacity) {
  // The folder itself is the lock: no extra file to leave behind. A folder
  // that went away cannot be locked; the check then runs unlocked, as a
  // best effort, rather than failing every allocation.
  const int folder = open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder >= 0) (void)flock(folder, LOCK_EX);
  const std::uint64_t others = HeldByOthers();
  Status held = Status::Ok();
  if (others > capacity || bytes > capacity - others) {
    held = FD_STATUS(StatusCode::kResourceExhausted,
                     "other processes hold " + FormatSize(others) + " of the device's " + FormatSize(capacity));
  } else {
    held = Hold(bytes);
  }
  if (folder >= 0) close(folder);  // drops the lock
  return held;
}

std::uint64_t SharedDeviceMemory::HeldByOthers() const {
  std::uint64_t total = 0;
  DIR* folder = opendir(directory_.c_str());
  if (folder == nullptr) return 0;
  while (const dirent* entry = readdir(folder)) {
    const std::string name = entry->d_name;
    const std::string path = directory_ + "/" + name;
    if (!EndsWith(name, kSuffix) || path == path_) continue;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
      unlink(path.c_str());  // no one holds it: its process is gone
    } else {
      std::uint64_t bytes = 0;
      if (pread(fd, &bytes, sizeof bytes, 0) == sizeof bytes) total += bytes;
    }
    close(fd);
  }
  closedir(folder);
  return total;
}

}  // namespace firedrill::gpu
