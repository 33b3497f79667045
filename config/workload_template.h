// config/workload_template.h — addresses for the pods the offline commands make from workload
// templates (LoadOptions::workload_templates in config/manifest_loader.h).
//
// Owns: the documented ranges those pods take their IPs from — 192.0.2.0/24 (RFC 5737,
// TEST-NET-1) first, then 2001:db8::/32 (RFC 3849) — so they can never be mistaken for a real
// pod's address, and the assignment order: the template pods sorted by namespace then name, each
// given the next address not already held by any pod of the cluster. The same manifests give the
// same addresses on every run. Pure function; any thread.
#pragma once

#include "config/model.h"

namespace picket::config {

// Gives every pod with `template_of` set and no IP one address (IPv4 while 192.0.2.1–254 has a
// free one, then IPv6 2001:db8::N).
void AssignTemplateAddresses(Cluster* cluster);

}  // namespace picket::config
