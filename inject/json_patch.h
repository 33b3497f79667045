// inject/json_patch.h — RFC 6902 JSON Patch: computing one from two documents, and applying one.
//
// Owns: `CreatePatch` (the diff the admission webhook returns: `add` for new members and inserted
// array elements, `remove`, `replace`; whole arrays and maps are added when their parent lacks
// them: RFC 6902 `add` needs an existing parent), `ApplyPatch` (all six operations with RFC 6901
// pointers, for tests, fuzzing and tools) and pointer escaping (`~` → `~0`, `/` → `~1`).
//
// Pure functions; any thread.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "base/error.h"
#include "config/document.h"

namespace picket::inject {

// One RFC 6901 reference token, escaped.
std::string EscapePointerToken(std::string_view token);

// A patch (a sequence of operation objects) that turns `original` into `mutated`.
config::Node CreatePatch(const config::Node& original, const config::Node& mutated);

// Applies `patch` to `document`. Any failing operation fails the whole patch (the input is not
// modified: it is taken by value).
[[nodiscard]] base::Result<config::Node> ApplyPatch(config::Node document,
                                                    const config::Node& patch);

}  // namespace picket::inject
