// test/config/manifest_test_util.h — helpers shared by the manifest loader tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/manifest_loader.h"

namespace picket::config::testing {

// Loads `text` (as "t.yaml") and returns the rendered errors; empty when it loaded.
inline std::vector<std::string> ErrorsOf(std::string_view text, const LoadOptions& options = {}) {
  auto result = LoadManifestText(text, "t.yaml", options);
  std::vector<std::string> out;
  if (result) return out;
  for (const Error& e : result.error()) out.push_back(e.ToString());
  return out;
}

// Loads `text` and fails the test (printing every error) unless it loads.
inline LoadResult MustLoad(std::string_view text, const LoadOptions& options = {}) {
  auto result = LoadManifestText(text, "t.yaml", options);
  if (!result) {
    std::string all;
    for (const Error& e : result.error()) all += e.ToString() + "\n";
    ADD_FAILURE() << "unexpected errors:\n" << all;
    return {};
  }
  return *std::move(result);
}

// A NetworkPolicy x/p whose spec is `spec` (indented by the caller at 2 spaces under `spec:`).
inline std::string Policy(std::string_view spec) {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n"
         "  namespace: x\nspec:\n" +
         std::string(spec);
}

}  // namespace picket::config::testing
