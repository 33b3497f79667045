// config/label_validation.h — Kubernetes' generic string checks, message for message.
//
// Owns: the name, label and port-name predicates of apimachinery's util/validation
// (IsDNS1123Subdomain, IsDNS1123Label, IsQualifiedName, IsValidLabelValue, IsValidPortName,
// IsValidPortNum) and protocol names. Each check returns the API server's messages (empty when
// valid), in its order, so callers can render `field: Invalid value: "x": <message>` exactly as
// kube-apiserver does. Pure functions; callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"

namespace picket::config {

// metadata.name of most objects (NetworkPolicy, Pod): at most 253 characters.
[[nodiscard]] std::vector<std::string> IsDns1123Subdomain(std::string_view value);

// Namespace names: at most 63 characters, no dots.
[[nodiscard]] std::vector<std::string> IsDns1123Label(std::string_view value);

// Label keys and selector keys: `[prefix/]name`.
[[nodiscard]] std::vector<std::string> IsQualifiedName(std::string_view value);

// Label values (and selector values).
[[nodiscard]] std::vector<std::string> IsValidLabelValue(std::string_view value);

// IANA_SVC_NAME: named container ports and named NetworkPolicy ports.
[[nodiscard]] std::vector<std::string> IsValidPortName(std::string_view value);

// 1..65535.
[[nodiscard]] std::vector<std::string> IsValidPortNum(int64_t value);

// "TCP", "UDP" or "SCTP" — case-sensitive, as the API server requires — or nullopt.
[[nodiscard]] std::optional<Protocol> ParseProtocol(std::string_view name);

// Go's strconv.Quote (what `%q` prints): how field errors show string values.
[[nodiscard]] std::string GoQuote(std::string_view value);

}  // namespace picket::config
