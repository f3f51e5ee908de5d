// Starts the real hsof-pipeline binary for process-level tests and reads its
// ready line from a pipe (--ready-fd): no polling for ports.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "firedrill/core/spawn.h"

namespace firedrill::testing {

// A program beside the running test (in a device bundle every program sits
// in one bin/), else where the build put it.
inline std::string BuiltProgram(const std::string& name, const std::string& built_path) {
  const std::filesystem::path beside = BesideThisProgram(name);
  return !beside.empty() && std::filesystem::exists(beside) ? beside.string() : built_path;
}

struct SpawnedPipeline {
  pid_t pid = -1;
  nlohmann::json ports;  // {"http", "gpu_exporter", "grpc", "pid"}; discarded when it did not start
  std::string http() const {
    return "http://127.0.0.1:" + std::to_string(ports["http"].get<int>());
  }
  std::string grpc() const { return "127.0.0.1:" + std::to_string(ports["grpc"].get<int>()); }
};

// `flags` follow --data-dir DIRECTORY; `environment` is added to the child's.
// The child's stdout and stderr go to DIRECTORY/pipeline.log, and it dies with
// the test: one left behind by a failed assertion would hold ctest's output
// pipe open, and ctest would wait for it.
inline SpawnedPipeline SpawnPipeline(const std::string& directory, std::vector<std::string> flags,
                                     const std::map<std::string, std::string>& environment = {}) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  std::fflush(nullptr);  // or the child's freopen writes the test's buffered output a second time
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the test died before prctl
    close(fds[0]);
    freopen((directory + "/pipeline.log").c_str(), "a", stderr);
    freopen((directory + "/pipeline.log").c_str(), "a", stdout);
    for (const auto& [name, value] : environment) setenv(name.c_str(), value.c_str(), 1);
    flags.insert(flags.begin(),
                 {"hsof-pipeline", "--data-dir", directory, "--ready-fd", std::to_string(fds[1])});
    std::vector<char*> argv;
    for (std::string& flag : flags) argv.push_back(flag.data());
    argv.push_back(nullptr);
    execv(BuiltProgram("hsof-pipeline", HSOF_PIPELINE_BINARY).c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string line;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
  close(fds[0]);
  SpawnedPipeline pipeline;
  pipeline.pid = pid;
  pipeline.ports = nlohmann::json::parse(line, nullptr, false);
  EXPECT_FALSE(pipeline.ports.is_discarded()) << "hsof-pipeline did not start: '" << line << "'";
  return pipeline;
}

// SIGTERM, then the exit code (-1 when it did not exit normally).
inline int TerminatePipeline(const SpawnedPipeline& pipeline) {
  kill(pipeline.pid, SIGTERM);
  int status = 0;
  waitpid(pipeline.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A pipeline a test suite shares, in a fresh folder under the temporary
// directory that goes with it: make one in SetUpTestSuite, delete it in
// TearDownTestSuite.
class SuitePipeline {
 public:
  SuitePipeline(const std::string& name, std::vector<std::string> flags,
                const std::map<std::string, std::string>& environment = {})
      : directory_((std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))).string()) {
    std::filesystem::create_directories(directory_ + "/data");
    pipeline_ = SpawnPipeline(directory_ + "/data", std::move(flags), environment);
  }
  ~SuitePipeline() {
    TerminatePipeline(pipeline_);
    std::filesystem::remove_all(directory_);
  }
  const std::string& directory() const { return directory_; }
  const SpawnedPipeline& pipeline() const { return pipeline_; }

 private:
  std::string directory_;
  SpawnedPipeline pipeline_;
};

}  // namespace firedrill::testing
