// libFuzzer target for promtool unit-test files: whatever the file says,
// `rules test` reports a verdict (placed errors for broken files) and never
// crashes. The bytes become a test file beside HSOF's rule file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "firedrill/alerts/rules_test.h"

namespace {

std::filesystem::path& Directory() {
  static std::filesystem::path directory =
      std::filesystem::temp_directory_path() /
      ("firedrill-rules-test-fuzz-" + std::to_string(::getpid()));
  return directory;
}

const std::string& TestPath() {
  static const std::string path = [] {
    const auto& directory = Directory();
    std::filesystem::create_directories(directory);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(Directory(), ignored);
    });
    std::filesystem::copy_file(FIREDRILL_SOURCE_DIR "/rules/hsof-alerts.yml",
                               directory / "rules.yml",
                               std::filesystem::copy_options::overwrite_existing);
    return (directory / "test.yml").string();
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream file(TestPath(), std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::ostringstream out, err;
  const auto outcome = firedrill::alerts::RunRulesTests({TestPath()}, {}, out, err);
  if (outcome.files != 1 || outcome.failed + outcome.invalid > 1) __builtin_trap();
  if ((outcome.failed + outcome.invalid == 0) !=
      (out.str().find("  SUCCESS") != std::string::npos)) {
    __builtin_trap();
  }
  return 0;
}
