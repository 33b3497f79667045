// config/manifest_defaults.cc — see manifest_defaults.h.
#include "config/manifest_defaults.h"

namespace picket::config {

void DefaultPolicyTypes(const std::vector<std::string>& types, NetworkPolicy* policy) {
  if (types.empty()) {
    policy->policy_types_ingress = true;
    policy->policy_types_egress = !policy->egress.empty();
    return;
  }
  policy->policy_types_ingress = false;
  policy->policy_types_egress = false;
  for (const std::string& t : types) {
    if (t == "Ingress") policy->policy_types_ingress = true;
    if (t == "Egress") policy->policy_types_egress = true;
  }
}

void DefaultNamespaceLabels(Namespace* ns) { ns->labels[kNamespaceNameLabel] = ns->name; }

}  // namespace picket::config
