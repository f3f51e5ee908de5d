// posix_spawn attributes for a child Firedrill starts and may have to end:
// its own process group (so ending it ends all of it, and Ctrl-C at the
// terminal reaches Firedrill first), and no signal blocked or ignored that
// Firedrill blocks for itself.
#pragma once

#include <signal.h>
#include <spawn.h>

namespace firedrill {

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
