// libFuzzer target: JSON Patch (inject/json_patch.h) and the JSON reader it sits on. The input is
// split at the first NUL into two JSON texts A and B. Invariants checked: no crash or sanitizer
// report; ApplyPatch(A, B) either fails with a message or yields a document that survives a JSON
// round trip; and ApplyPatch(A, CreatePatch(A, B)) == B whenever both parse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/document.h"
#include "inject/json_patch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view a_text = in.substr(0, nul);
  std::string_view b_text = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  picket::config::ParseLimits limits;
  limits.max_nodes = 20000;
  auto a = picket::config::ParseJson(a_text, "a", limits);
  auto b = picket::config::ParseJson(b_text, "b", limits);
  if (a) {
    auto back = picket::config::ParseJson(picket::config::EmitJson(*a), "a2", limits);
    if (!back || !(*back == *a)) abort();
  }
  if (a && b) {
    auto applied = picket::inject::ApplyPatch(*a, *b);
    if (applied) {
      auto back = picket::config::ParseJson(picket::config::EmitJson(*applied), "r");
      if (!back) abort();
    } else if (applied.error().reason.empty()) {
      abort();
    }
    picket::config::Node patch = picket::inject::CreatePatch(*a, *b);
    auto diffed = picket::inject::ApplyPatch(*a, patch);
    if (!diffed || !(*diffed == *b)) abort();
  }
  return 0;
}
