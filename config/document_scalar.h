// config/document_scalar.h — internal to config/document*.cc: YAML 1.1 plain-scalar resolution
// and number parsing shared by the YAML reader, the JSON reader and the YAML writer (whose quoting
// must agree with what the reader resolves). Not part of //config:document's interface.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "config/document.h"

namespace picket::config::document_internal {

// What a plain (unquoted) YAML scalar means, as go-yaml v2 / kubectl read it.
Node ResolvePlainScalar(const std::string& s);
// A decimal floating-point literal (optionally signed); overflow becomes ±infinity.
std::optional<double> ParseDoubleText(std::string_view s);
// Length of the valid UTF-8 sequence at the start of `s` (1-4), or 0 when it is not valid
// (overlong forms and surrogates included); `s` must not be empty.
size_t Utf8SequenceLength(std::string_view s);

}  // namespace picket::config::document_internal
