// config/endpoint_slice.h — a discovery.k8s.io/v1 EndpointSlice's body: decode, validate, default
// (config-internal).
//
// Owns: the parts of kube-apiserver's ValidateEndpointSlice (pkg/apis/discovery/validation) that
// the service map needs — addressType, endpoints[].addresses (at least 1, at most 100, each of
// the addressType), endpoints[].conditions.ready, endpoints[].targetRef (a Pod's name),
// ports[].name/port/protocol (protocol defaulted to TCP as SetDefaults_EndpointPort does; at most
// 20000 ports, at most 1000 endpoints) — with the API server's field paths and messages
// (`file:line: EndpointSlice ns/name: endpoints[0].addresses[0]: reason`). Other fields
// (nodeName, hints, …) are ordinary Kubernetes and ignored. Metadata, including the
// `kubernetes.io/service-name` label, is decoded by the caller (manifest_decode.cc). Only
// config/*.cc include this header (it exposes yaml-cpp types). Not thread-safe per reader.
#pragma once

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_fields.h"

namespace picket::config {

inline constexpr size_t kMaxSliceEndpoints = 1000;  // maxEndpoints
inline constexpr size_t kMaxSliceAddresses = 100;   // maxAddresses
inline constexpr size_t kMaxSlicePorts = 20000;     // maxPorts

// `root` is the whole object. Fills address_type, endpoints and ports of `out`; every problem is
// reported through `r`. `strict_ip` mirrors LoadOptions::strict_cidr.
void DecodeEndpointSliceBody(const YAML::Node& root, bool strict_ip, FieldReader& r,
                             EndpointSlice* out);

}  // namespace picket::config
