// config/manifest_network_policy.h — NetworkPolicy spec and label selectors: decode, validate,
// default (config-internal).
//
// Owns: ValidateNetworkPolicySpec, ValidateNetworkPolicyPort, ValidateNetworkPolicyPeer,
// ValidateIPBlock and ValidateLabelSelector of kube-apiserver, reproduced with identical field
// paths, messages and order (kubernetes pkg/apis/networking/validation/validation.go), over
// yaml-cpp nodes. Every field of the spec is known: anything else is `unknown field "x"`. Not
// thread-safe per reader.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "config/manifest_loader.h"
#include "config/model.h"
#include "config/yaml_fields.h"

namespace picket::config {

// `spec` may be null/absent (an empty spec). Fills pod_selector, ingress, egress and the
// defaulted policy types of `out`.
void DecodeNetworkPolicySpec(const YAML::Node& spec, const LoadOptions& options, FieldReader& r,
                             NetworkPolicy* out);

// A metav1.LabelSelector at `path` (a map; the caller handles null). matchLabels become `In`
// requirements first (sorted by key), then matchExpressions in order.
[[nodiscard]] LabelSelector DecodeLabelSelector(const YAML::Node& node, const std::string& path,
                                                FieldReader& r);

// ValidateLabels: every key (IsQualifiedName) and value (IsValidLabelValue) of `labels` at
// `path`; `lines` maps keys to their lines (missing keys use `fallback_line`).
void ValidateLabels(const Labels& labels, const std::map<std::string, int>& lines,
                    int fallback_line, const std::string& path, FieldReader& r);

}  // namespace picket::config
