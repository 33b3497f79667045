// config/error.h — the error value every fallible input path returns.
//
// Owns: `Error` (one problem: where, which object, which field, why) and `Errors` (all problems
// of one run). Rendering follows STYLE.md: `file:line: Kind ns/name: field.path: reason`.
// Thread-compatible plain values.
#pragma once

#include <string>
#include <vector>

namespace picket::config {

struct Error {
  std::string file;    // may be empty (e.g. a pushed resource or a command-line value)
  int line = 0;        // 1-based; 0 when unknown
  std::string object;  // e.g. "NetworkPolicy x/deny-all"; may be empty
  std::string field;   // e.g. "spec.ingress[0].from[1].ipBlock.except[0]"; may be empty
  std::string reason;  // e.g. "Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, ..."

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
};

using Errors = std::vector<Error>;

}  // namespace picket::config
