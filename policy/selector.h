// policy/selector.h — Kubernetes label-selector matching and a canonical text for selectors.
//
// Owns: `Matches` (k8s.io/apimachinery labels/selector.go `Requirement.Matches`) and `Describe`,
// the canonical one-line rendering used as a dedup key and in `explain` output.
// Pure functions; any thread.
#pragma once

#include <string>

#include "config/model.h"

namespace picket::policy {

// True iff every requirement of `selector` holds for `labels`; the empty selector matches all.
[[nodiscard]] bool Matches(const config::LabelSelector& selector, const config::Labels& labels);

// `{}` for the empty selector, else e.g. `{app=web, tier in (a,b), !legacy}`. Requirements are
// rendered in a sorted order so that equal selectors have equal text.
[[nodiscard]] std::string Describe(const config::LabelSelector& selector);

}  // namespace picket::policy
