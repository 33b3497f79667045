// config/service.h — a Service's spec: decode, validate, default (config-internal).
//
// Owns: the parts of kube-apiserver's ValidateService that the service map needs —
// spec.type, spec.clusterIP / spec.clusterIPs, spec.ports[] (name, port, targetPort
// int-or-name, protocol defaulted to TCP) and spec.selector — with the API server's field paths
// and messages (`file:line: Service ns/name: spec.ports[0].targetPort: reason`). Other Service
// fields are ordinary Kubernetes and ignored (as for Pods). Metadata is decoded by the caller
// (manifest_decode.cc). Only config/*.cc include this header (it exposes yaml-cpp types). Not
// thread-safe per reader.
#pragma once

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_fields.h"

namespace picket::config {

// `spec` may be null/absent. Fills cluster_ips, ports and selector of `out`; every problem is
// reported through `r`. `strict_ip` mirrors LoadOptions::strict_cidr.
void DecodeServiceSpec(const YAML::Node& spec, bool strict_ip, FieldReader& r, Service* out);

}  // namespace picket::config
