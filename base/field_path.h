// base/field_path.h — field paths and the reasons every input reader words alike.
//
// Owns: how a field path is written (`spec.ingress[0].from[1]`, Kubernetes' field.Path form)
// and the common reasons of a decode error, in the words Kubernetes' validation uses
// (`Required value`, `Invalid value: ...`, `unknown field "x"`, `duplicate field "x"`), so that
// the JSON reader (base/json_fields.h) and the YAML readers in config/ say the same thing.
// Pure functions, any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace picket::base {

// `parent.child` (just `child` at the top) and `parent[i]`.
inline std::string Child(std::string_view parent, std::string_view child) {
  std::string out(parent);
  if (!out.empty()) out += '.';
  out += child;
  return out;
}
inline std::string Index(std::string_view parent, size_t i) {
  std::string out(parent);
  out += '[';
  out += std::to_string(i);
  out += ']';
  return out;
}

inline constexpr std::string_view kRequiredValue = "Required value";

// `unknown field "x"` and `duplicate field "x"`.
inline std::string UnknownField(std::string_view key) {
  return "unknown field \"" + std::string(key) + "\"";
}
inline std::string DuplicateField(std::string_view key) {
  return "duplicate field \"" + std::string(key) + "\"";
}

// `Invalid value: <shown>: <why>` — `shown` is the offending value as the input spelled it
// (JSON text; strings quoted), cut to a readable length by the caller's helper.
inline std::string InvalidValue(std::string_view shown, std::string_view why) {
  return "Invalid value: " + std::string(shown) + ": " + std::string(why);
}

}  // namespace picket::base
