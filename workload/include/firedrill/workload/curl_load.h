// Request load through libcurl's multi interface, for what the native
// HTTP/1.1 client does not speak: https:// targets and HTTP/2 (ALPN over
// TLS, prior knowledge over clear text). Same measurement as RunHttpLoad —
// latency from each request's intended send time beside the uncorrected
// figure, schedule lag, generator CPU — on one thread. libcurl's poll waits
// in whole milliseconds, so its schedule lag is coarser than the native
// client's; use http:// with HTTP/1.1 where timing matters most.
//
// Thread-safety: blocks the caller; the progress callback runs on it.
#pragma once

#include "firedrill/core/status.h"
#include "firedrill/workload/http_load.h"
#include "firedrill/workload/load_report.h"

namespace firedrill::workload {

enum class CurlHttpVersion { kHttp1_1, kHttp2 };

// options.threads is not used (one thread); options.connections caps the
// requests in flight (over HTTP/2 they share connections as streams).
Result<LoadReport> RunCurlLoad(const HttpLoadOptions& options, CurlHttpVersion version);

}  // namespace firedrill::workload
