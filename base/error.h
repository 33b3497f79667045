// base/error.h — the one error value of Picket.
//
// Owns: `Error` (one problem: where — file and line, or an object and a field path — and why)
// and `Errors` (every problem of one run), rendered one way everywhere:
// `file:line: Kind ns/name: field.path: reason`, omitting the parts that are empty. Every
// fallible boundary returns `std::expected<T, Error>` (or `Errors` where one run reports all
// problems); nothing else carries failure as a bare string.
//
// Depends on nothing of ours. Plain values; thread-compatible.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace picket::base {

struct Error {
  std::string file;    // may be empty (e.g. a pushed resource or a command-line value)
  int line = 0;        // 1-based; 0 when unknown
  std::string object;  // e.g. "NetworkPolicy x/deny-all"; may be empty
  std::string field;   // e.g. "spec.ingress[0].from[1].ipBlock.except[0]"; may be empty
  std::string reason;  // e.g. "Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, ..."

  // An error that is only a reason (a system call, a peer, a command line).
  static Error Of(std::string reason) {
    Error e;
    e.reason = std::move(reason);
    return e;
  }
  // An error at a field path.
  static Error At(std::string field, std::string reason) {
    Error e;
    e.field = std::move(field);
    e.reason = std::move(reason);
    return e;
  }

  // The same error one level further out: `prefix` is joined in front of the field path
  // ("spec" + "ingress[0]" → "spec.ingress[0]"; "items[3]" + "" → "items[3]").
  Error Under(std::string_view prefix) && {
    if (!prefix.empty()) {
      if (field.empty()) {
        field = std::string(prefix);
      } else if (field.front() == '[') {
        field = std::string(prefix) + field;
      } else {
        field = std::string(prefix) + "." + field;
      }
    }
    return std::move(*this);
  }
  // The same error with a leading context for its reason ("connect 10.0.0.1:80: " + reason).
  Error Context(std::string_view context) && {
    reason = std::string(context) + ": " + reason;
    return std::move(*this);
  }

  // `file:line: Kind ns/name: field: reason`, omitting the parts that are empty.
  std::string ToString() const {
    std::string out;
    if (!file.empty()) {
      out += file;
      if (line > 0) out += ":" + std::to_string(line);
      out += ": ";
    }
    if (!object.empty()) out += object + ": ";
    if (!field.empty()) out += field + ": ";
    out += reason;
    return out;
  }

  friend bool operator==(const Error&, const Error&) = default;
};

using Errors = std::vector<Error>;

// One error per line, in order (no trailing newline).
inline std::string ToString(const Errors& errors) {
  std::string out;
  for (const Error& e : errors) {
    if (!out.empty()) out += '\n';
    out += e.ToString();
  }
  return out;
}

// Several errors as one, for a channel that carries one message (an xDS NACK's error_detail):
// the first error as it is when it is alone, else every error rendered, joined by "; ".
inline Error Summarize(const Errors& errors) {
  if (errors.size() == 1) return errors.front();
  std::string reason;
  for (const Error& e : errors) {
    if (!reason.empty()) reason += "; ";
    reason += e.ToString();
  }
  return Error::Of(std::move(reason));
}

// The shorthand of a fallible boundary's return type.
template <typename T>
using Result = std::expected<T, Error>;

}  // namespace picket::base
