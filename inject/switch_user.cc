// inject/switch_user.cc — see switch_user.h.
#include "inject/switch_user.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace picket::inject {
namespace {

using base::Error;

Error Errno(const std::string& what) { return Error::Of(what + ": " + std::strerror(errno)); }

struct CapSets {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
};

bool Permitted(const CapSets& s, int cap) {
  return (s.data[cap / 32].permitted & (1u << (cap % 32))) != 0;
}

}  // namespace

base::Result<std::vector<int>> SwitchUserKeeping(uid_t uid, gid_t gid, std::span<const int> keep) {
  CapSets now;
  if (syscall(SYS_capget, &now.header, now.data) != 0) return std::unexpected(Errno("capget"));
  std::vector<int> kept;
  for (int cap : keep) {
    if (cap < 0 || cap > CAP_LAST_CAP) {
      return std::unexpected(Error::Of("capability " + std::to_string(cap) + " out of range"));
    }
    if (Permitted(now, cap)) kept.push_back(cap);
  }

  if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) {
    if (geteuid() != 0) {
      return std::unexpected(Error::Of("running as uid " + std::to_string(geteuid()) +
                                       ", not root: cannot switch to uid " + std::to_string(uid) +
                                       " gid " + std::to_string(gid)));
    }
    // Keep the permitted set through the uid change (cleared on the next exec without ambient).
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return std::unexpected(Errno("PR_SET_KEEPCAPS"));
    if (setgroups(0, nullptr) != 0) return std::unexpected(Errno("setgroups"));
    if (setresgid(gid, gid, gid) != 0) return std::unexpected(Errno("setresgid"));
    if (setresuid(uid, uid, uid) != 0) return std::unexpected(Errno("setresuid"));
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return std::unexpected(Errno("PR_SET_KEEPCAPS"));
  }

  CapSets want;
  for (int cap : kept) {
    const __u32 bit = 1u << (cap % 32);
    want.data[cap / 32].permitted |= bit;
    want.data[cap / 32].effective |= bit;
    want.data[cap / 32].inheritable |= bit;
  }
  if (syscall(SYS_capset, &want.header, want.data) != 0) return std::unexpected(Errno("capset"));
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return std::unexpected(Errno("PR_CAP_AMBIENT_CLEAR_ALL"));
  }
  for (int cap : kept) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
      return std::unexpected(Errno("PR_CAP_AMBIENT_RAISE " + std::to_string(cap)));
    }
  }
  return kept;
}

}  // namespace picket::inject
