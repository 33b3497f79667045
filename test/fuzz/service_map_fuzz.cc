// libFuzzer target for the sidecar's service-map decoding: bytes → strict JSON →
// DecodeServiceEntry → ServiceMap::Build → Find. Whatever the input, each step returns a value
// or an error. Build and run: test/fuzz/build_service_map.sh run service_map 60
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/json.h"
#include "proxy/xds/service_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto json = picket::base::ParseJson(input);
  if (!json) return 0;
  // The name the entry must carry; the seed corpus uses it.
  auto entry = picket::proxy::xds::DecodeServiceEntry(json->root(), "shop/web");
  if (!entry) return 0;
  auto map = picket::proxy::xds::ServiceMap::Build({{"shop/web", *entry}});
  if (!map) return 0;
  for (const auto& vip : entry->cluster_ips) {
    for (const auto& port : entry->ports) {
      if ((*map)->Find(vip, port.port, port.protocol) == nullptr) __builtin_trap();
    }
  }
  return 0;
}
