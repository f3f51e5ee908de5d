// A problem found in a user's file, with the place it points at. Printed as
// "file:line:column: message", the form editors and CI annotators jump to.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace firedrill::engine {

struct Diagnostic {
  std::string file;  // as the user named it; "command line" for -p problems
  int line = 0;      // 1-based; 0 when the problem has no position
  int column = 0;
  std::string message;

  std::string ToString() const;
  bool operator==(const Diagnostic&) const = default;
};

using Diagnostics = std::vector<Diagnostic>;

std::ostream& operator<<(std::ostream& os, const Diagnostic& diagnostic);

}  // namespace firedrill::engine
