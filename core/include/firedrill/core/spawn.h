// posix_spawn attributes for a child Firedrill starts and may have to end:
// its own process group (so ending it ends all of it, and Ctrl-C at the
// terminal reaches Firedrill first), and no signal blocked or ignored that
// Firedrill blocks for itself. And where Firedrill's own helper programs are.
#pragma once

#include <signal.h>
#include <spawn.h>

#include <filesystem>
#include <string_view>

namespace firedrill {

// `name` in the folder of the running program, where an install or a bundle
// puts the helpers (firedrill-gpu-hog, hsof-pipeline); empty if the running
// program cannot be found.
inline std::filesystem::path BesideThisProgram(std::string_view name) {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : self.parent_path() / name;
}

// Initialises `attributes`; the caller destroys them.
inline void InitChildAttributes(posix_spawnattr_t* attributes) {
  posix_spawnattr_init(attributes);
  sigset_t none;
  sigset_t defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  posix_spawnattr_setflags(attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(attributes, 0);
  posix_spawnattr_setsigmask(attributes, &none);
  posix_spawnattr_setsigdefault(attributes, &defaults);
}

}  // namespace firedrill
