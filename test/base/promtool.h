// test/base/promtool.h — runs the real `promtool check metrics` (Prometheus 2.42, Debian's
// package unpacked by tools/install-deps.sh into /opt/prometheus-2.42; override with
// PROMTOOL=...) on a /stats/prometheus body and returns what it reports beyond an allowlist.
//
// A missing promtool is a test failure (ADD_FAILURE naming the path), never a skip. Test-thread
// only.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "test/base/cli_contract.h"

namespace picket::testing {

inline std::string PromtoolPath() {
  const char* env = std::getenv("PROMTOOL");
  return env != nullptr && *env != '\0' ? env : "/opt/prometheus-2.42/usr/bin/promtool";
}

// Runs `promtool check metrics` on `text`. Returns "" when promtool reported nothing or only
// lines of `allowed` (its lint notes, e.g. `m counter metrics should have "_total" suffix`) and
// exited accordingly (0, or 3 for lint notes); otherwise what is wrong, with promtool's output.
inline std::string PromtoolUnexpected(const std::string& text,
                                      const std::set<std::string>& allowed) {
  const std::string promtool = PromtoolPath();
  if (access(promtool.c_str(), X_OK) != 0) {
    return "no promtool at " + promtool +
           " (tools/install-deps.sh unpacks Debian's prometheus package there; or set PROMTOOL)";
  }
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/promtool-input-" +
                           std::to_string(getpid()) + ".txt";
  std::ofstream(path, std::ios::binary) << text;
  const BinaryRun run =
      RunBinary({"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"", promtool, path});
  std::remove(path.c_str());
  std::istringstream lines(run.out + run.err);
  std::string line, unexpected;
  size_t notes = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    ++notes;
    if (!allowed.contains(line)) unexpected += "  " + line + "\n";
  }
  const int want = notes == 0 ? 0 : 3;  // promtool: 3 = lint problems only
  if (unexpected.empty() && run.code == want) return "";
  return "promtool exited " + std::to_string(run.code) + " (want " + std::to_string(want) +
         "); not in the allowlist:\n" + unexpected + "full output:\n" + run.out + run.err;
}

}  // namespace picket::testing
