// Starts one of tests/'s tiny servers for one test and stops it after.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace firedrill::workload::testing {

class TinyServer {
 public:
  // `binary`: tiny-http-server by default, or tiny-grpc-server (both print
  // "port N" once listening).
  explicit TinyServer(std::vector<std::string> flags = {}, const char* binary = TINY_HTTP_SERVER) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      std::vector<char*> argv{const_cast<char*>(binary)};
      for (std::string& flag : flags) argv.push_back(flag.data());
      argv.push_back(nullptr);
      execv(binary, argv.data());
      _exit(127);
    }
    close(out[1]);
    FILE* stream = fdopen(out[0], "r");
    EXPECT_EQ(std::fscanf(stream, "port %d", &port_), 1);
    std::fclose(stream);
  }
  ~TinyServer() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hello"; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace firedrill::workload::testing
