// policy/ip_address.h — the policy model's names for base/ip.h's address values.
//
// `policy::IpAddress`, `policy::IpPrefix` and `policy::IpAddressHash` are base's types (one
// parser, one containment test, one hash); this header only keeps the names the policy model,
// the filters and the proxy were written against. Include base/ip.h in new code.
#pragma once

#include "base/ip.h"

namespace picket::policy {

using base::IpAddress;
using base::IpAddressHash;
using base::IpPrefix;

}  // namespace picket::policy
