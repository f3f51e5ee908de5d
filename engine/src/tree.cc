#include "tree.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <sstream>

namespace firedrill::engine {
namespace {

// Builds a TreeNode from yaml-cpp's parser events. Going through events
// rather than YAML::Load keeps positions for keys, sees duplicate keys, and
// bounds depth and alias expansion before anything large is built.
class TreeBuilder final : public YAML::EventHandler {
 public:
  TreeBuilder(const std::string& file, Diagnostics* diagnostics, const ParseLimits& limits)
      : file_(file), diagnostics_(diagnostics), limits_(limits) {}

  bool failed() const { return failed_; }
  bool duplicate_keys() const { return duplicate_keys_; }
  bool empty() const { return !has_root_; }
  TreeNode& root() { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    TreeNode* node = Attach(mark);
    if (node == nullptr) return;
    node->kind = TreeNode::Kind::kNull;
    Anchor(anchor, *node, 1);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (failed_) return;
    if (it == anchors_.end()) return Fail(mark, "alias refers to an anchor that is not complete yet");
    if (!Count(it->second.second, mark)) return;
    TreeNode* node = Attach(mark, /*counted=*/true);
    if (node == nullptr) return;
    const int line = node->line;
    const int column = node->column;
    *node = it->second.first;
    node->line = line;  // messages point at the alias, where the user wrote it
    node->column = column;
  }

  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    if (failed_) return;
    Frame* top = stack_.empty() ? nullptr : &stack_.back();
    if (top != nullptr && top->node->kind == TreeNode::Kind::kMap && top->expecting_key) {
      if (!Count(1, mark)) return;
      TakeKey(*top, TreeKey{value, Line(mark), Column(mark)});
      return;
    }
    TreeNode* node = Attach(mark);
    if (node == nullptr) return;
    node->kind = TreeNode::Kind::kScalar;
    node->scalar = value;
    Anchor(anchor, *node, 1);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor, TreeNode::Kind::kList);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor, TreeNode::Kind::kMap);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    TreeNode* node;
    YAML::anchor_t anchor;
    std::size_t first_node_count;  // nodes counted when this container opened
    bool expecting_key = true;
    TreeKey pending_key;
    std::map<std::string, int> seen_keys;
  };

  static int Line(const YAML::Mark& mark) { return mark.line >= 0 ? mark.line + 1 : 0; }
  static int Column(const YAML::Mark& mark) { return mark.column >= 0 ? mark.column + 1 : 0; }

  void Fail(const YAML::Mark& mark, std::string message) {
    if (failed_) return;
    failed_ = true;
    diagnostics_->push_back(Diagnostic{file_, std::max(1, Line(mark)), std::max(1, Column(mark)), std::move(message)});
  }

  bool Count(std::size_t nodes, const YAML::Mark& mark) {
    nodes_ += nodes;
    if (nodes_ > limits_.max_nodes) {
      Fail(mark, "document too large: more than " + std::to_string(limits_.max_nodes) +
                     " values after expanding aliases");
      return false;
    }
    return true;
  }

  void TakeKey(Frame& frame, TreeKey key) {
    auto [it, inserted] = frame.seen_keys.emplace(key.name, key.line);
    if (!inserted) {
      diagnostics_->push_back(Diagnostic{file_, key.line, key.column,
                                         "key \"" + key.name + "\" is repeated (first at line " +
                                             std::to_string(it->second) + "); keep one"});
      duplicate_keys_ = true;
    }
    frame.pending_key = std::move(key);
    frame.expecting_key = false;
  }

  // Makes room for the next value in the open container (or the root) and
  // returns it with its position set; nullptr when building has failed.
  TreeNode* Attach(const YAML::Mark& mark, bool counted = false) {
    if (failed_) return nullptr;
    if (!counted && !Count(1, mark)) return nullptr;
    TreeNode* node = nullptr;
    int fallback_line = 1;
    int fallback_column = 1;
    if (stack_.empty()) {
      if (has_root_) {
        Fail(mark, "unexpected content after the document");
        return nullptr;
      }
      has_root_ = true;
      node = &root_;
    } else {
      Frame& top = stack_.back();
      if (top.node->kind == TreeNode::Kind::kList) {
        top.node->items.emplace_back();
        node = &top.node->items.back();
        fallback_line = top.node->line;
        fallback_column = top.node->column;
      } else if (top.expecting_key) {
        Fail(mark, "a key must be a plain name, not a list or a mapping");
        return nullptr;
      } else {
        top.node->entries.push_back(TreeEntry{top.pending_key, TreeNode{}});
        node = &top.node->entries.back().value;
        top.expecting_key = true;
        fallback_line = top.pending_key.line;
        fallback_column = top.pending_key.column;
      }
    }
    node->line = Line(mark) > 0 ? Line(mark) : fallback_line;
    node->column = Column(mark) > 0 ? Column(mark) : fallback_column;
    return node;
  }

  void Open(const YAML::Mark& mark, YAML::anchor_t anchor, TreeNode::Kind kind) {
    TreeNode* node = Attach(mark);
    if (node == nullptr) {
      ++ignored_depth_;
      return;
    }
    node->kind = kind;
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      Fail(mark, "nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
      ++ignored_depth_;
      return;
    }
    stack_.push_back(Frame{node, anchor, nodes_, true, TreeKey{}, {}});
  }

  void Close() {
    if (ignored_depth_ > 0) {
      --ignored_depth_;
      return;
    }
    if (stack_.empty()) return;
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    Anchor(frame.anchor, *frame.node, nodes_ - frame.first_node_count + 1);
  }

  void Anchor(YAML::anchor_t anchor, const TreeNode& node, std::size_t size) {
    if (anchor != YAML::NullAnchor && !failed_) anchors_[anchor] = {node, size};
  }

  const std::string& file_;
  Diagnostics* diagnostics_;
  const ParseLimits& limits_;
  TreeNode root_;
  bool has_root_ = false;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, std::pair<TreeNode, std::size_t>> anchors_;
  std::size_t nodes_ = 0;
  int ignored_depth_ = 0;
  bool failed_ = false;
  bool duplicate_keys_ = false;
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

// True when `text` holds anything but blank lines, comments and markers.
bool HasContent(const std::string& text) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    if (line.compare(first, 3, "---") == 0 || line.compare(first, 3, "...") == 0) continue;
    return true;
  }
  return false;
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
  std::istringstream stream(text);
  TreeBuilder builder(file, diagnostics, limits);
  try {
    YAML::Parser parser(stream);
    // One document is read, then one more call tells whether another
    // follows. (YAML::LoadAll is not used: yaml-cpp 0.7 loops forever on
    // input such as a lone ",".)
    if (!parser.HandleNextDocument(builder) || builder.empty()) {
      diagnostics->push_back(Diagnostic{file, 1, 1, "file is empty; expected a mapping starting with apiVersion: firedrill/v1"});
      return false;
    }
    if (builder.failed()) return false;
    TreeBuilder next(file, diagnostics, limits);
    const bool another = parser.HandleNextDocument(next) && !next.empty();
    if (another && next.root().kind != TreeNode::Kind::kNull) {
      diagnostics->push_back(Diagnostic{file, std::max(1, next.root().line), std::max(1, next.root().column),
                                        "file holds more than one YAML document; put each scenario or runbook in its own file"});
      return false;
    }
    if (builder.root().kind == TreeNode::Kind::kNull) {
      if (HasContent(text)) {
        diagnostics->push_back(Diagnostic{file, builder.root().line, builder.root().column,
                                          "not valid YAML: nothing could be read here; expected a mapping"});
      } else {
        diagnostics->push_back(Diagnostic{file, 1, 1, "file is empty; expected a mapping starting with apiVersion: firedrill/v1"});
      }
      return false;
    }
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
  if (builder.duplicate_keys()) return false;
  *root = std::move(builder.root());
  return true;
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
