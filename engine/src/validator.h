// Checks a TreeNode against a spec::Schema and reports every mismatch with
// its position: unknown keys (with a "did you mean"), missing required keys,
// wrong types, bad units, values out of range, unknown kinds, repeated names.
#pragma once

#include <string>

#include "firedrill/core/spec.h"
#include "firedrill/engine/diagnostic.h"
#include "tree.h"

namespace firedrill::engine {

class Validator {
 public:
  Validator(std::string file, Diagnostics* diagnostics)
      : file_(std::move(file)), diagnostics_(diagnostics) {}

  // `path` names the node in messages ("timeline[hog].inject"); "" is the
  // top level.
  void Check(const TreeNode& node, const spec::Schema& schema, const std::string& path);

  // Checks one scalar against a scalar type; returns the problem or "".
  static std::string CheckScalar(const std::string& text, const spec::Schema& schema);

  void Report(int line, int column, std::string message);
  void Report(const TreeNode& node, std::string message) {
    Report(node.line, node.column, std::move(message));
  }

 private:
  // `exactly_one_of`: the object's groups, or the chosen variant's.
  void CheckFields(const TreeNode& node, const std::vector<const spec::Field*>& fields,
                   const spec::Schema& schema, const std::vector<std::vector<std::string>>& exactly_one_of,
                   const std::string& path, const std::string& allowed_extra_key);

  std::string file_;
  Diagnostics* diagnostics_;
};

// "timeline[hog]" for a list item with a name field, else "timeline[2]".
std::string ItemPath(const std::string& path, const TreeNode& item, std::size_t index);
std::string FieldPath(const std::string& path, const std::string& field);

// The validated tree as JSON: scalars as text, lists and mappings as such.
nlohmann::json TreeToJson(const TreeNode& node);

}  // namespace firedrill::engine
