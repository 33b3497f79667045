// config/manifest_defaults.h — Kubernetes defaulting of the objects the loader produces.
//
// Owns: SetDefaults_NetworkPolicy's policyTypes rule (kubernetes pkg/apis/networking/v1/
// defaults.go) and the `kubernetes.io/metadata.name` label the control plane puts on every
// Namespace. The protocol default (TCP, SetDefaults_NetworkPolicyPort) is the model's own default
// value. Pure functions; any thread.
#pragma once

#include <string>
#include <vector>

#include "config/model.h"

namespace picket::config {

inline constexpr char kNamespaceNameLabel[] = "kubernetes.io/metadata.name";

// `types` as written (absent and [] are both empty). "If len(policyTypes) == 0, set it to
// [Ingress], then append Egress only if len(egress) != 0" — so `egress: []` does not isolate
// egress. Unknown entries are ignored here (validation reports them).
void DefaultPolicyTypes(const std::vector<std::string>& types, NetworkPolicy* policy);

// The API server sets (and overwrites) kubernetes.io/metadata.name=<name> on every Namespace.
void DefaultNamespaceLabels(Namespace* ns);

}  // namespace picket::config
