// Ctrl-C, SIGTERM and SIGHUP, taken by a thread that waits for them, never
// in the middle of starting or undoing a fault.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace firedrill::cli {

// Blocks the ending signals in the calling thread and returns their set.
// Call it before any thread starts, so that every thread inherits the mask.
inline sigset_t BlockEndingSignals() {
  sigset_t ending;
  sigemptyset(&ending);
  sigaddset(&ending, SIGINT);
  sigaddset(&ending, SIGTERM);
  sigaddset(&ending, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &ending, nullptr);
  return ending;
}

}  // namespace firedrill::cli
