// libcurl's global state is set up once per process, before the first
// handle, by whichever client comes first.
#pragma once

#include <curl/curl.h>

#include <mutex>

namespace firedrill::workload::internal {

inline void InitCurl() {
  static std::once_flag initialized;
  std::call_once(initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace firedrill::workload::internal
