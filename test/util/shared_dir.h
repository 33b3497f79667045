// test/util/shared_dir.h — where `../shared` (conformance cases, reference data) is at test time.
//
// Owns: one function, SharedDir(). CI places shared/ next to the repository root (../shared);
// Bazel runs tests from a runfiles tree elsewhere, so the root is found by resolving the runfiles
// symlink of test/util/shared_dir_anchor.txt back into the source tree. `PICKET_SHARED_DIR`
// overrides it. Tests using it depend on //test/util:shared_dir and are tagged `no-sandbox`.
// Header-only; callable from any thread.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace picket::test {

// The absolute path of the shared directory, or "" (with `why` set) when it cannot be found.
inline std::string SharedDir(std::string* why = nullptr) {
  namespace fs = std::filesystem;
  auto fail = [&](std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return std::string();
  };
  if (const char* env = std::getenv("PICKET_SHARED_DIR"); env != nullptr && *env != '\0') {
    std::error_code ec;
    if (!fs::is_directory(env, ec))
      return fail(std::string("PICKET_SHARED_DIR=") + env + " is not a directory");
    return fs::canonical(env, ec).string();
  }
  std::string anchor = "test/util/shared_dir_anchor.txt";
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr && workspace != nullptr) {
    anchor = std::string(srcdir) + "/" + workspace + "/" + anchor;
  }
  std::error_code ec;
  fs::path real = fs::canonical(anchor, ec);  // follows the runfiles symlink into the source tree
  if (ec) return fail("cannot resolve " + anchor + ": " + ec.message());
  fs::path shared = real.parent_path().parent_path().parent_path().parent_path() / "shared";
  if (!fs::is_directory(shared, ec)) {
    return fail(shared.string() + " is not a directory (set PICKET_SHARED_DIR)");
  }
  return fs::canonical(shared, ec).string();
}

}  // namespace picket::test
