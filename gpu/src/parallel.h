// The CPU twins' one thread pool: fn(i) for every i in [0, count), items
// dealt round-robin to at most one thread per core; returns when all are done.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace firedrill::gpu {

template <typename Fn>
void ParallelFor(std::size_t count, Fn fn) {
  if (count == 0) return;
  const std::size_t threads =
      std::max<std::size_t>(1, std::min<std::size_t>(std::thread::hardware_concurrency(), count));
  auto work = [&](std::size_t first) {
    for (std::size_t i = first; i < count; i += threads) fn(i);
  };
  std::vector<std::thread> workers;
  for (std::size_t t = 1; t < threads; ++t) workers.emplace_back(work, t);
  work(0);
  for (auto& worker : workers) worker.join();
}

}  // namespace firedrill::gpu
