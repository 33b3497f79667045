// inject/json_patch.cc — see json_patch.h.
#include "inject/json_patch.h"

#include <charconv>
#include <utility>
#include <vector>

namespace picket::inject {

using base::Error;
namespace {

using config::Node;

Node Op(const char* op, const std::string& path) {
  Node n = Node::Mapping();
  n.Set("op", Node::String(op));
  n.Set("path", Node::String(path));
  return n;
}

void Diff(const Node& a, const Node& b, const std::string& path, Node& ops) {
  if (a == b) return;
  if (a.IsMapping() && b.IsMapping()) {
    for (const config::Member& m : a.members()) {
      if (b.Find(m.key) == nullptr)
        ops.Append(Op("remove", path + "/" + EscapePointerToken(m.key)));
    }
    for (const config::Member& m : b.members()) {
      const std::string p = path + "/" + EscapePointerToken(m.key);
      const Node* old = a.Find(m.key);
      if (old == nullptr) {
        Node op = Op("add", p);
        op.Set("value", m.value);
        ops.Append(std::move(op));
      } else {
        Diff(*old, m.value, p, ops);
      }
    }
    return;
  }
  if (a.IsSequence() && b.IsSequence()) {
    const auto& x = a.items();
    const auto& y = b.items();
    size_t prefix = 0;
    while (prefix < x.size() && prefix < y.size() && x[prefix] == y[prefix]) ++prefix;
    size_t suffix = 0;
    while (suffix < x.size() - prefix && suffix < y.size() - prefix &&
           x[x.size() - 1 - suffix] == y[y.size() - 1 - suffix]) {
      ++suffix;
    }
    const size_t x_mid = x.size() - prefix - suffix;
    const size_t y_mid = y.size() - prefix - suffix;
    if (x_mid == 0) {  // pure insertion
      for (size_t i = 0; i < y_mid; ++i) {
        Node op = Op("add", path + "/" + std::to_string(prefix + i));
        op.Set("value", y[prefix + i]);
        ops.Append(std::move(op));
      }
      return;
    }
    if (y_mid == 0) {  // pure removal
      for (size_t i = 0; i < x_mid; ++i)
        ops.Append(Op("remove", path + "/" + std::to_string(prefix)));
      return;
    }
    if (x_mid == y_mid) {
      for (size_t i = 0; i < x_mid; ++i) {
        Diff(x[prefix + i], y[prefix + i], path + "/" + std::to_string(prefix + i), ops);
      }
      return;
    }
  }
  Node op = Op("replace", path);
  op.Set("value", b);
  ops.Append(std::move(op));
}

// Splits a JSON Pointer into unescaped tokens.
base::Result<std::vector<std::string>> ParsePointer(const std::string& pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/')
    return std::unexpected(Error::Of("path \"" + pointer + "\" must start with '/'"));
  std::string cur;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    if (pointer[i] == '~') {
      if (i + 1 < pointer.size() && pointer[i + 1] == '0') {
        cur += '~';
      } else if (i + 1 < pointer.size() && pointer[i + 1] == '1') {
        cur += '/';
      } else {
        return std::unexpected(Error::Of("path \"" + pointer + "\" has an invalid '~' escape"));
      }
      ++i;
      continue;
    }
    cur += pointer[i];
  }
  return tokens;
}

// An array index token: digits without leading zeros (or "-" when allowed).
base::Result<size_t> ParseIndex(const std::string& token, size_t size, bool allow_end) {
  if (allow_end && token == "-") return size;
  if (token.empty() || (token.size() > 1 && token[0] == '0')) {
    return std::unexpected(Error::Of("invalid array index \"" + token + "\""));
  }
  size_t v = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (ec != std::errc() || ptr != token.data() + token.size()) {
    return std::unexpected(Error::Of("invalid array index \"" + token + "\""));
  }
  if (v > size || (!allow_end && v == size)) {
    return std::unexpected(Error::Of("array index " + token + " out of range"));
  }
  return v;
}

// The node a pointer designates (nullptr with an error message when absent).
Node* Resolve(Node& root, const std::vector<std::string>& tokens, size_t count, std::string* err) {
  Node* cur = &root;
  for (size_t i = 0; i < count; ++i) {
    if (cur->IsMapping()) {
      cur = cur->Find(tokens[i]);
      if (cur == nullptr) {
        *err = "member \"" + tokens[i] + "\" does not exist";
        return nullptr;
      }
    } else if (cur->IsSequence()) {
      auto idx = ParseIndex(tokens[i], cur->items().size(), false);
      if (!idx) {
        *err = idx.error().reason;
        return nullptr;
      }
      cur = &cur->items()[*idx];
    } else {
      *err = "cannot descend into a scalar at \"" + tokens[i] + "\"";
      return nullptr;
    }
  }
  return cur;
}

base::Result<void> Add(Node& doc, const std::vector<std::string>& t, Node value) {
  if (t.empty()) {
    doc = std::move(value);
    return {};
  }
  std::string err;
  Node* parent = Resolve(doc, t, t.size() - 1, &err);
  if (parent == nullptr) return std::unexpected(Error::Of("parent does not exist: " + err));
  if (parent->IsMapping()) {
    parent->Set(t.back(), std::move(value));
    return {};
  }
  if (parent->IsSequence()) {
    auto idx = ParseIndex(t.back(), parent->items().size(), true);
    if (!idx) return std::unexpected(idx.error());
    parent->items().insert(parent->items().begin() + static_cast<std::ptrdiff_t>(*idx),
                           std::move(value));
    return {};
  }
  return std::unexpected(Error::Of("parent is not an object or array"));
}

base::Result<Node> Remove(Node& doc, const std::vector<std::string>& t) {
  if (t.empty()) return std::unexpected(Error::Of("cannot remove the whole document"));
  std::string err;
  Node* parent = Resolve(doc, t, t.size() - 1, &err);
  if (parent == nullptr) return std::unexpected(Error::Of(err));
  if (parent->IsMapping()) {
    Node* v = parent->Find(t.back());
    if (v == nullptr)
      return std::unexpected(Error::Of("member \"" + t.back() + "\" does not exist"));
    Node out = std::move(*v);
    parent->Erase(t.back());
    return out;
  }
  if (parent->IsSequence()) {
    auto idx = ParseIndex(t.back(), parent->items().size(), false);
    if (!idx) return std::unexpected(idx.error());
    Node out = std::move(parent->items()[*idx]);
    parent->items().erase(parent->items().begin() + static_cast<std::ptrdiff_t>(*idx));
    return out;
  }
  return std::unexpected(Error::Of("parent is not an object or array"));
}

bool IsPrefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() > b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

Node CreatePatch(const Node& original, const Node& mutated) {
  Node ops = Node::Sequence();
  Diff(original, mutated, "", ops);
  return ops;
}

base::Result<Node> ApplyPatch(Node doc, const Node& patch) {
  if (!patch.IsSequence()) return std::unexpected(Error::Of("a JSON Patch must be an array"));
  for (size_t i = 0; i < patch.items().size(); ++i) {
    const Node& op = patch.items()[i];
    const std::string where = "operation " + std::to_string(i);
    auto fail = [&](std::string reason) {
      return std::unexpected(Error::Of(std::move(reason)).Context(where));
    };
    if (!op.IsMapping()) return fail("must be an object");
    const std::string& name = op.StringAt("op");
    const Node* path_node = op.Find("path");
    if (path_node == nullptr || !path_node->IsString()) {
      return fail("\"path\" must be a string");
    }
    auto path = ParsePointer(path_node->AsString());
    if (!path) return std::unexpected(std::move(path.error()).Context(where));
    const Node* value = op.Find("value");
    auto need_value = [&]() -> base::Result<void> {
      if (value == nullptr) return std::unexpected(Error::Of("\"value\" is required for " + name));
      return {};
    };
    base::Result<void> r;
    if (name == "add") {
      if (r = need_value(); r) r = Add(doc, *path, *value);
    } else if (name == "remove") {
      auto removed = Remove(doc, *path);
      if (!removed) r = std::unexpected(removed.error());
    } else if (name == "replace") {
      if (r = need_value(); r) {
        std::string err;
        Node* target = Resolve(doc, *path, path->size(), &err);
        if (target == nullptr) {
          r = std::unexpected(Error::Of(err));
        } else {
          *target = *value;
        }
      }
    } else if (name == "move" || name == "copy") {
      const Node* from_node = op.Find("from");
      if (from_node == nullptr || !from_node->IsString()) {
        return fail("\"from\" must be a string");
      }
      auto from = ParsePointer(from_node->AsString());
      if (!from) return std::unexpected(std::move(from.error()).Context(where));
      if (name == "move" && *from != *path && IsPrefix(*from, *path)) {
        return fail("cannot move a value into itself");
      }
      std::string err;
      Node* source = Resolve(doc, *from, from->size(), &err);
      if (source == nullptr) return fail("from: " + err);
      Node copy = *source;
      if (name == "move") {
        auto removed = Remove(doc, *from);
        if (!removed) return std::unexpected(std::move(removed.error()).Context(where));
      }
      r = Add(doc, *path, std::move(copy));
    } else if (name == "test") {
      if (r = need_value(); r) {
        std::string err;
        Node* target = Resolve(doc, *path, path->size(), &err);
        if (target == nullptr) {
          r = std::unexpected(Error::Of(err));
        } else if (!(*target == *value)) {
          r = std::unexpected(Error::Of("test failed: the value differs"));
        }
      }
    } else {
      return fail("unknown op \"" + name + "\"");
    }
    if (!r) return std::unexpected(std::move(r.error()).Context(where));
  }
  return doc;
}

}  // namespace picket::inject
