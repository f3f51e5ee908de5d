// A YAML document as a plain tree with source positions: what the validator
// walks. Building it bounds the work (size, depth, alias expansion), keeps
// duplicate keys visible, and lets parameters be substituted in place.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "firedrill/engine/diagnostic.h"

namespace firedrill::engine {

struct TreeNode;
struct TreeEntry;

struct TreeKey {
  std::string name;
  int line = 0;
  int column = 0;
};

struct TreeNode {
  enum class Kind { kNull, kScalar, kList, kMap };
  Kind kind = Kind::kNull;
  int line = 0;  // 1-based
  int column = 0;
  std::string scalar;
  std::vector<TreeNode> items;
  std::vector<TreeEntry> entries;  // in file order
  // Set when a parameter supplied the value, for messages:
  // "parameter \"rate\" (from -p)".
  std::string origin;
  // Set once a problem with this value has been reported (an undefined
  // parameter, say), so the validator does not report it again.
  bool reported = false;

  const TreeNode* Find(std::string_view key) const;
  TreeNode* Find(std::string_view key);
  bool IsScalar() const { return kind == Kind::kScalar; }
};

struct TreeEntry {
  TreeKey key;
  TreeNode value;
};

struct ParseLimits {
  std::size_t max_bytes = 4 << 20;
  int max_depth = 64;
  std::size_t max_nodes = 200'000;  // after alias expansion
};

// Parses one YAML document. On failure, adds diagnostics (with `file` as the
// name) and returns false; never throws.
bool ParseTree(const std::string& file, const std::string& text, TreeNode* root,
               Diagnostics* diagnostics, const ParseLimits& limits = {});

// "a list", "a mapping", "the string \"x\"", "nothing": for type mismatches.
std::string DescribeNode(const TreeNode& node);

}  // namespace firedrill::engine
