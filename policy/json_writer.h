// policy/json_writer.h — the few JSON-writing helpers policy/ and its tools need.
//
// Owns: string escaping (RFC 8259) for hand-written, deterministic JSON. Decoding lives in
// config/ (yaml-cpp); policy/ only ever writes. Pure functions, any thread.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace picket::policy {

inline void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

inline std::string JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

}  // namespace picket::policy
