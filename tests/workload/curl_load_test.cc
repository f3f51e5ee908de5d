#include "firedrill/workload/curl_load.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "tiny_server.h"

namespace firedrill::workload {
namespace {

using namespace std::chrono_literals;
using testing::TinyServer;

HttpLoadOptions OpenLoop(const std::string& url, double rate, Duration length) {
  HttpLoadOptions options;
  options.url = url;
  options.connections = 8;
  options.duration = length;
  options.offered_rate = rate;
  options.schedule = [=](int, int) -> Result<std::unique_ptr<ArrivalSchedule>> {
    return ConstantArrivals(Rate{rate}, length);
  };
  return options;
}

TEST(CurlLoad, OpenLoopOverHttp11SendsTheSchedule) {
  TinyServer server({}, TINY_HTTP_SERVER);
  auto report = RunCurlLoad(OpenLoop(server.url(), 400, 500ms), CurlHttpVersion::kHttp1_1);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->transport, "curl-http1.1");
  EXPECT_EQ(report->scheduled, 200);
  EXPECT_EQ(report->answered, 200) << report->Summary();
  EXPECT_EQ(report->statuses.at("200"), 200);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->schedule_lag.count(), 200u);
}

// A real HTTP/2 server over TLS: Debian's prometheus-node-exporter with a
// certificate made for the test, on a port it picks and logs.
class TlsExporter {
 public:
  TlsExporter() {
    char pattern[] = "/tmp/firedrill-h2-XXXXXX";
    directory_ = mkdtemp(pattern);
    const std::string openssl = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                                "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
                                directory_ + "/key.pem -out " + directory_ + "/cert.pem 2>/dev/null";
    EXPECT_EQ(std::system(openssl.c_str()), 0);
    std::FILE* config = std::fopen((directory_ + "/web.yml").c_str(), "w");
    std::fprintf(config, "tls_server_config:\n  cert_file: %s/cert.pem\n  key_file: %s/key.pem\n",
                 directory_.c_str(), directory_.c_str());
    std::fclose(config);
    int err[2];
    EXPECT_EQ(pipe(err), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(err[1], STDERR_FILENO);
      close(err[0]);
      const std::string web_config = "--web.config.file=" + directory_ + "/web.yml";
      execl("/usr/bin/prometheus-node-exporter", "prometheus-node-exporter", "--web.listen-address=127.0.0.1:0",
            web_config.c_str(), "--collector.disable-defaults", nullptr);
      _exit(127);
    }
    close(err[1]);
    // Its log says where it listens: read until that line.
    std::FILE* log = fdopen(err[0], "r");
    char line[1024];
    while (std::fgets(line, sizeof line, log) != nullptr) {
      if (const char* at = std::strstr(line, "address=127.0.0.1:"); at != nullptr && std::strstr(line, "Listening")) {
        port_ = std::atoi(at + std::strlen("address=127.0.0.1:"));
        break;
      }
    }
    log_ = log;
  }
  ~TlsExporter() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    if (log_ != nullptr) std::fclose(log_);
    std::filesystem::remove_all(directory_);
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/metrics"; }
  std::string ca_file() const { return directory_ + "/cert.pem"; }
  int port() const { return port_; }

 private:
  std::string directory_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::FILE* log_ = nullptr;
};

TEST(CurlLoad, Http2OverTlsAgainstARealServer) {
  TlsExporter exporter;
  ASSERT_GT(exporter.port(), 0);
  HttpLoadOptions options = OpenLoop(exporter.url(), 100, 300ms);
  options.tls_ca_file = exporter.ca_file();
  auto report = RunCurlLoad(options, CurlHttpVersion::kHttp2);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->transport, "curl-h2");
  EXPECT_EQ(report->answered, 30) << report->Summary();
  EXPECT_EQ(report->statuses.at("200"), 30);
  EXPECT_EQ(report->protocols.at("HTTP/2"), 30);  // negotiated by ALPN, not assumed
  // Without the test's CA the certificate is refused: errors, not answers.
  options.tls_ca_file.clear();
  report = RunCurlLoad(options, CurlHttpVersion::kHttp2);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->answered, 0);
  EXPECT_GT(report->errors, 0);
}

TEST(CurlLoad, RefusesNonLoopbackAndBadUrls) {
  HttpLoadOptions options;
  options.url = "https://192.0.2.1/";
  EXPECT_NE(RunCurlLoad(options, CurlHttpVersion::kHttp2).status().message().find("not a loopback address"),
            std::string::npos);
  options.url = "ftp://127.0.0.1/";
  EXPECT_EQ(RunCurlLoad(options, CurlHttpVersion::kHttp1_1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace firedrill::workload
