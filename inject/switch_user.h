// inject/switch_user.h — the sidecar becomes uid 1337 and keeps NET_ADMIN, and nothing else.
//
// Owns: SwitchUserKeeping. The sidecar needs CAP_NET_ADMIN (the verdict queue — UDP/SCTP, and
// TCP in verdict mode — and conntrack) and must run as the proxy uid (1337: the capture rules let
// its traffic through by owner). Kubernetes cannot give both: a capability added to a non-root
// container is lost at the container's first execve(2), because the runtime sets no ambient
// capabilities and the injected `allowPrivilegeEscalation: false` (no_new_privs) ignores file
// capabilities (capabilities(7), "Transformation of capabilities during execve()"). So the injected
// sidecar starts as root with `capabilities: {drop: [ALL], add: [NET_ADMIN, SETGID, SETUID]}`, and
// `picket-inject bootstrap --user --group --exec` switches before the exec — the way HAProxy's
// `user` with `setcap` does: no supplementary groups, the real, effective and saved ids set,
// and of the capabilities only those kept (and held) left in permitted, effective, inheritable
// and ambient, so that they survive the exec into picket-proxy. SETUID and SETGID are gone
// afterwards: the proxy cannot become root again.
//
// Linux only; raw capget/capset and prctl, no libcap. Call single-threaded, right before exec.
#pragma once

#include <sys/types.h>

#include <span>
#include <vector>

#include "base/error.h"

namespace picket::inject {

// Switches the process to uid/gid keeping only those of `keep` (CAP_* numbers) it holds.
// Returns the capabilities kept. Started as another uid than root, it only checks that it
// already is uid/gid (and carries `keep` across the exec all the same). An error means the
// switch did not happen completely; the caller must not exec then.
[[nodiscard]] base::Result<std::vector<int>> SwitchUserKeeping(uid_t uid, gid_t gid,
                                                               std::span<const int> keep);

}  // namespace picket::inject
