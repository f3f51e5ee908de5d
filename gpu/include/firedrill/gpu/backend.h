// The compute backends. See device.h for how one is chosen.
#pragma once

#include <string_view>

namespace firedrill::gpu {

enum class Backend { kCuda, kCpu, kSimulated };
enum class BackendChoice { kAuto, kCuda, kCpu, kSimulated };

std::string_view BackendName(Backend backend);
bool ParseBackendChoice(std::string_view text, BackendChoice* choice);

}  // namespace firedrill::gpu
