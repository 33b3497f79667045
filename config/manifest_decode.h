// config/manifest_decode.h — one YAML document → Namespace/Pod/NetworkPolicy values
// (config-internal; yaml-cpp types never leave config/).
//
// Owns: the walk over a parsed document: picking objects (a single object, `kind: List` /
// `*List` items, empty documents), type checks, unknown fields (strict inside NetworkPolicy),
// API-server validation with exact field paths and messages (kubernetes
// pkg/apis/networking/validation/validation.go) and defaulting (pkg/apis/networking/v1/defaults.go:
// policyTypes, protocol TCP; the `kubernetes.io/metadata.name` Namespace label). Used by
// manifest_loader.cc for files, text and `kind: List` alike, so every object decodes identically.
// Not thread-safe per context; independent contexts may run on any threads.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.h"
#include "config/manifest_loader.h"
#include "config/model.h"
#include "config/yaml_documents.h"
#include "config/yaml_fields.h"

namespace picket::config {

struct DecodeContext {
  std::string file;
  LoadOptions options;
  Errors* errors = nullptr;                     // every problem found is appended here
  std::vector<std::string>* notices = nullptr;  // skipped kinds
  NodeBudget* budget = nullptr;
  int line_offset = 0;  // lines before the document (YamlDocument::line_offset)
};

// Appends the Namespaces, Pods and NetworkPolicies `doc` holds to `out` (objects with errors are
// reported and left out). Never throws.
void DecodeDocument(const YAML::Node& doc, const DecodeContext& ctx, Cluster* out);

// Reports, for every object whose kind, namespace and name repeat an earlier one, an error at
// the later one naming the first location.
void CheckDuplicates(const Cluster& cluster, Errors* errors);

}  // namespace picket::config
