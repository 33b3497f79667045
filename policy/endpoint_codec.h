// policy/endpoint_codec.h — internal: resource structs (config/endpoint_resource.h) → policy
// values, with field-path errors prefixed by `field`. Used by the decoders of
// policy/endpoint_policy.h; exposed for tests. Pure functions, any thread.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "config/endpoint_resource.h"
#include "policy/endpoint_policy.h"

namespace picket::policy {

[[nodiscard]] std::expected<AddressEntry, config::Errors> ConvertAddressEntry(
    const config::AddressEntryResource& in, std::string_view file, const std::string& field);
[[nodiscard]] std::expected<PodPolicy, config::Errors> ConvertPodPolicy(
    const config::PodPolicyResource& in, std::string_view file, const std::string& field);

}  // namespace picket::policy
