// base/version.h — what `--version` prints: Picket's release and the git commit it was built from.
//
// Owns: the one version string of every binary. The commit is stamped at build time
// (tools/workspace_status.sh → //base:build_info_h) and reads "unknown" when the tree was not a
// git checkout. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace picket::base {

// "0.2.0"
std::string_view Version();
// The short commit hash ("8e79ccc65050", "…-dirty" for a modified tree) or "unknown".
std::string_view GitCommit();
// "<binary> <version> (<commit>)", e.g. "picket-proxy 0.2.0 (8e79ccc65050)".
std::string VersionLine(std::string_view binary);

}  // namespace picket::base
