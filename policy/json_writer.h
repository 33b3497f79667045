// policy/json_writer.h — forwards to the one JSON string escaper, base/json.h.
//
// Kept only until its users call base::AppendJsonString directly (then this file goes).
#pragma once

#include <string>
#include <string_view>

#include "base/json.h"

namespace picket::policy {

using base::AppendJsonString;

inline std::string JsonString(std::string_view s) {
  std::string out;
  base::AppendJsonString(out, s);
  return out;
}

}  // namespace picket::policy
