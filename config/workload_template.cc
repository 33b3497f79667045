// config/workload_template.cc — see workload_template.h.
#include "config/workload_template.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace picket::config {

void AssignTemplateAddresses(Cluster* cluster) {
  std::set<std::string> used;
  std::vector<Pod*> templates;
  for (Pod& pod : cluster->pods) {
    used.insert(pod.ips.begin(), pod.ips.end());
    if (!pod.template_of.empty() && pod.ips.empty()) templates.push_back(&pod);
  }
  std::sort(templates.begin(), templates.end(), [](const Pod* a, const Pod* b) {
    return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
  });
  unsigned v4 = 1;
  unsigned v6 = 1;
  for (Pod* pod : templates) {
    std::string ip;
    while (v4 <= 254 && used.contains(ip = "192.0.2." + std::to_string(v4))) ++v4;
    if (v4 <= 254) {
      ++v4;
    } else {
      char text[32];
      do {
        if (v6 >> 16) {
          std::snprintf(text, sizeof text, "2001:db8::%x:%x", v6 >> 16, v6 & 0xffff);
        } else {
          std::snprintf(text, sizeof text, "2001:db8::%x", v6);
        }
        ++v6;
      } while (used.contains(ip = text));
    }
    used.insert(ip);
    pod->ips.push_back(ip);
  }
}

}  // namespace picket::config
