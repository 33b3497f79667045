// policy/selector.cc — label-selector matching (labels/selector.go).
#include "policy/selector.h"

#include <algorithm>
#include <vector>

namespace picket::policy {

bool Matches(const config::LabelSelector& selector, const config::Labels& labels) {
  for (const config::SelectorRequirement& r : selector.requirements) {
    auto it = labels.find(r.key);
    const bool present = it != labels.end();
    switch (r.op) {
      case config::SelectorOperator::kIn:
        if (!present || std::find(r.values.begin(), r.values.end(), it->second) == r.values.end())
          return false;
        break;
      case config::SelectorOperator::kNotIn:
        // "NotIn: true if the key is absent, otherwise value not in set" (Requirement.Matches).
        if (present && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end())
          return false;
        break;
      case config::SelectorOperator::kExists:
        if (!present) return false;
        break;
      case config::SelectorOperator::kDoesNotExist:
        if (present) return false;
        break;
    }
  }
  return true;
}

std::string Describe(const config::LabelSelector& selector) {
  std::vector<std::string> parts;
  for (const config::SelectorRequirement& r : selector.requirements) {
    std::vector<std::string> values = r.values;
    std::sort(values.begin(), values.end());
    std::string joined;
    for (const std::string& v : values) joined += (joined.empty() ? "" : ",") + v;
    switch (r.op) {
      case config::SelectorOperator::kIn:
        parts.push_back(values.size() == 1 ? r.key + "=" + joined : r.key + " in (" + joined + ")");
        break;
      case config::SelectorOperator::kNotIn:
        parts.push_back(r.key + " notin (" + joined + ")");
        break;
      case config::SelectorOperator::kExists:
        parts.push_back(r.key);
        break;
      case config::SelectorOperator::kDoesNotExist:
        parts.push_back("!" + r.key);
        break;
    }
  }
  std::sort(parts.begin(), parts.end());
  parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
  std::string out = "{";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out + "}";
}

}  // namespace picket::policy
