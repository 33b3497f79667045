// config/yaml_documents.h — a YAML stream split into documents, safely (config-internal).
//
// Owns: turning text into its `---` documents with yaml-cpp without its LoadAll, which loops
// forever (allocating) on some malformed streams in 0.7 — a stray `,` is enough
// (jbeder/yaml-cpp#1040, fixed upstream by #1319 after 0.7). Documents are split at `---` / `...`
// lines and parsed one by one with YAML::Load; a document marker at column 0 always ends a
// document in YAML, even inside block or quoted scalars, so the split is exact. Marks in each
// document count from its first line: add `line_offset`. Never throws; any thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.h"

namespace picket::config {

// One document and where it starts in its file.
struct YamlDocument {
  YAML::Node root;
  int line_offset = 0;               // file line = line in the document + line_offset
  std::optional<Error> parse_error;  // set (and root null) when the document is malformed
};

// Every document of `text`, in order (empty documents included, as null roots). A malformed
// document carries `file:line: YAML parse error: <msg>`; the others still parse.
[[nodiscard]] std::vector<YamlDocument> ParseYamlDocuments(std::string_view text,
                                                           const std::string& file);

}  // namespace picket::config
