// base/version.cc — see version.h.
#include "base/version.h"

#include "base/build_info.h"

namespace picket::base {

std::string_view Version() { return "0.2.0"; }

std::string_view GitCommit() { return PICKET_GIT_COMMIT; }

std::string VersionLine(std::string_view binary) {
  std::string line(binary);
  line.append(" ").append(Version()).append(" (").append(GitCommit()).append(")");
  return line;
}

}  // namespace picket::base
