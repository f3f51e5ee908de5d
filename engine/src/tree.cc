#include "tree.h"

#include <yaml-cpp/yaml.h>

#include <map>

namespace firedrill::engine {
namespace {

class Builder {
 public:
  Builder(const std::string& file, Diagnostics* diagnostics, const ParseLimits& limits)
      : file_(file), diagnostics_(diagnostics), limits_(limits) {}

  bool Build(const YAML::Node& node, int depth, int fallback_line, int fallback_column,
             TreeNode* out) {
    if (++nodes_ > limits_.max_nodes) {
      if (!reported_size_) {
        Report(fallback_line, fallback_column,
               "document too large: more than " + std::to_string(limits_.max_nodes) +
                   " values after expanding aliases");
        reported_size_ = true;
      }
      return false;
    }
    const YAML::Mark mark = node.Mark();
    out->line = mark.line >= 0 ? mark.line + 1 : fallback_line;
    out->column = mark.column >= 0 ? mark.column + 1 : fallback_column;
    if (depth > limits_.max_depth) {
      Report(out->line, out->column,
             "nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
      return false;
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out->kind = TreeNode::Kind::kNull;
        return true;
      case YAML::NodeType::Scalar:
        out->kind = TreeNode::Kind::kScalar;
        out->scalar = node.Scalar();
        return true;
      case YAML::NodeType::Sequence:
        out->kind = TreeNode::Kind::kList;
        for (const YAML::Node& item : node) {
          out->items.emplace_back();
          if (!Build(item, depth + 1, out->line, out->column, &out->items.back())) return false;
        }
        return true;
      case YAML::NodeType::Map: {
        out->kind = TreeNode::Kind::kMap;
        std::map<std::string, int> seen;
        for (const auto& entry : node) {
          const YAML::Mark key_mark = entry.first.Mark();
          TreeKey key{"", key_mark.line + 1, key_mark.column + 1};
          if (!entry.first.IsScalar()) {
            Report(key.line, key.column, "a key must be a plain name, not " +
                                             std::string(entry.first.IsMap() ? "a mapping" : "a list"));
            return false;
          }
          key.name = entry.first.Scalar();
          auto [it, inserted] = seen.emplace(key.name, key.line);
          if (!inserted) {
            Report(key.line, key.column, "key \"" + key.name + "\" is repeated (first at line " +
                                             std::to_string(it->second) + "); keep one");
            ok_ = false;
          }
          out->entries.emplace_back(key, TreeNode{});
          if (!Build(entry.second, depth + 1, key.line, key.column, &out->entries.back().second)) {
            return false;
          }
        }
        return true;
      }
    }
    return true;
  }

  bool ok() const { return ok_; }

 private:
  void Report(int line, int column, std::string message) {
    diagnostics_->push_back(Diagnostic{file_, line, column, std::move(message)});
  }

  const std::string& file_;
  Diagnostics* diagnostics_;
  const ParseLimits& limits_;
  std::size_t nodes_ = 0;
  bool reported_size_ = false;
  bool ok_ = true;
};

// Position of byte `offset` in `text`, 1-based, columns counted in bytes.
std::pair<int, int> PositionOf(const std::string& text, std::size_t offset) {
  int line = 1;
  int column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

bool LineStartsWithTab(const std::string& text, int line) {
  std::size_t offset = 0;
  for (int current = 1; current < line; ++current) {
    offset = text.find('\n', offset);
    if (offset == std::string::npos) return false;
    ++offset;
  }
  while (offset < text.size() && text[offset] == ' ') ++offset;
  return offset < text.size() && text[offset] == '\t';
}

}  // namespace

const TreeNode* TreeNode::Find(std::string_view key) const {
  for (const auto& [k, value] : entries) {
    if (k.name == key) return &value;
  }
  return nullptr;
}

TreeNode* TreeNode::Find(std::string_view key) {
  for (auto& [k, value] : entries) {
    if (k.name == key) return &value;
  }
  return nullptr;
}

std::string DescribeNode(const TreeNode& node) {
  switch (node.kind) {
    case TreeNode::Kind::kNull: return "nothing";
    case TreeNode::Kind::kList: return "a list";
    case TreeNode::Kind::kMap: return "a mapping";
    case TreeNode::Kind::kScalar: {
      std::string shown = node.scalar.size() > 40 ? node.scalar.substr(0, 40) + "..." : node.scalar;
      for (char& c : shown) {
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
      }
      return "\"" + shown + "\"";
    }
  }
  return "a value";
}

bool ParseTree(const std::string& file, const std::string& text, TreeNode* root,
               Diagnostics* diagnostics, const ParseLimits& limits) {
  if (text.size() > limits.max_bytes) {
    diagnostics->push_back(Diagnostic{file, 1, 1,
                                      "file is " + std::to_string(text.size()) +
                                          " bytes; scenario and runbook files are limited to " +
                                          std::to_string(limits.max_bytes) + " bytes"});
    return false;
  }
  if (const std::size_t nul = text.find('\0'); nul != std::string::npos) {
    auto [line, column] = PositionOf(text, nul);
    diagnostics->push_back(
        Diagnostic{file, line, column, "file contains a NUL byte; expected a YAML text file"});
    return false;
  }
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    const int line = e.mark.line >= 0 ? e.mark.line + 1 : 1;
    const int column = e.mark.column >= 0 ? e.mark.column + 1 : 1;
    std::string message = "not valid YAML: " + e.msg;
    if (LineStartsWithTab(text, line)) message += " (YAML indents with spaces; this line starts with a tab)";
    diagnostics->push_back(Diagnostic{file, line, column, std::move(message)});
    return false;
  } catch (const std::exception& e) {
    diagnostics->push_back(Diagnostic{file, 1, 1, std::string("not valid YAML: ") + e.what()});
    return false;
  }
  if (documents.empty() || documents.front().IsNull()) {
    diagnostics->push_back(Diagnostic{file, 1, 1, "file is empty; expected a mapping starting with apiVersion: firedrill/v1"});
    return false;
  }
  if (documents.size() > 1) {
    const YAML::Mark mark = documents[1].Mark();
    diagnostics->push_back(Diagnostic{file, mark.line >= 0 ? mark.line + 1 : 1,
                                      mark.column >= 0 ? mark.column + 1 : 1,
                                      "file holds more than one YAML document; put each scenario or runbook in its own file"});
    return false;
  }
  Builder builder(file, diagnostics, limits);
  try {
    if (!builder.Build(documents.front(), 0, 1, 1, root)) return false;
  } catch (const YAML::Exception& e) {
    diagnostics->push_back(Diagnostic{file, e.mark.line + 1, e.mark.column + 1, "not valid YAML: " + e.msg});
    return false;
  }
  return builder.ok();
}

std::string Diagnostic::ToString() const {
  if (file.empty()) return message;  // the message names its own place
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::ostream& operator<<(std::ostream& os, const Diagnostic& diagnostic) {
  return os << diagnostic.ToString();
}

}  // namespace firedrill::engine
