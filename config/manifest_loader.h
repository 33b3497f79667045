// config/manifest_loader.h — Kubernetes manifests (files, directories, text) → config::Cluster.
//
// Owns: reading multi-document YAML and `kind: List`, picking out Namespace, Pod,
// NetworkPolicy and Service (other kinds are skipped with a one-line notice), validating them as
// the API server does (kubernetes pkg/apis/networking/validation/validation.go) and applying
// Kubernetes defaulting (pkg/apis/networking/v1/defaults.go; the Namespace name label). Pure
// functions over text and files; no globals; callable from any thread. yaml-cpp stays inside
// config/ and none of its exceptions escape.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.h"
#include "config/model.h"

namespace picket::config {

// Default cap on one manifest file: far above any real cluster's file, far below what would
// stall the control server (a 600 MB file cost 2.5 GB and 15 s to parse).
inline constexpr uint64_t kDefaultMaxManifestBytes = 64u << 20;

struct LoadOptions {
  // Files larger than this are refused before they are read (`file: too large: ...`).
  uint64_t max_file_bytes = kDefaultMaxManifestBytes;
  // Mirror the API server's StrictIPCIDRValidation gate (leading zeros, IPv4-mapped IPv6,
  // host bits set are errors). Off by default, as in Kubernetes 1.33.
  bool strict_cidr = false;
  // For the offline commands (never `serve`): each Deployment, StatefulSet, DaemonSet,
  // ReplicaSet, Job and CronJob becomes one Pod `<workload>-template` of the workload's
  // namespace from its pod template (labels, container ports, hostNetwork), with `template_of`
  // set and no IP (config/workload_template.h assigns them). Always added, even when pods of the
  // workload are in the manifests too. Otherwise workloads are skipped with a notice.
  bool workload_templates = false;
};

struct LoadResult {
  Cluster cluster;
  std::vector<std::string> notices;  // e.g. "a.yaml:12: skipping ConfigMap x/c (kind not used)"
};

// Parses `text` (named `file_name` in errors). Reports every error of the text in one go; on any
// error returns them all and no cluster.
[[nodiscard]] std::expected<LoadResult, Errors> LoadManifestText(std::string_view text,
                                                                 std::string_view file_name,
                                                                 const LoadOptions& options = {});

// Reads the whole file at `path` if it holds at most `max_bytes`: the size is checked before
// reading (stat) and the read itself stops past the limit (the file may grow meanwhile).
// Errors: `path: cannot read: <reason>` or `path: too large: N bytes (limit M)`.
[[nodiscard]] std::expected<std::string, Error> ReadManifestFile(const std::string& path,
                                                                 uint64_t max_bytes);

// Loads files and directories (recursively, `*.yaml`, `*.yml`, `*.json`, sorted by path) into one
// Cluster. Duplicate objects (same kind, namespace and name) are an error.
[[nodiscard]] std::expected<LoadResult, Errors> LoadManifestPaths(
    const std::vector<std::string>& paths, const LoadOptions& options = {});

}  // namespace picket::config
