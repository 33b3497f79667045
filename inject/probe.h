// inject/probe.h — `picket-inject probe`: one HTTP request to the sidecar's admin endpoint.
//
// Owns: the probe the injected sidecar's readiness (and startup) probe runs and the operator's
// way to drain a sidecar or stop a classic Job's (`kubectl exec POD -c picket-proxy --
// picket-inject probe --socket=/etc/picket/run/admin/admin.sock --method=POST --path=/drain
// --user=1337 --group=1337`). Two transports: the admin Unix socket (`--socket`, the default of
// injected pods: only uid 1337 can open it, so an app that binds 127.0.0.1:15000 while its
// sidecar restarts cannot answer the probe in its place) or loopback TCP
// (`--url=http://127.0.0.1:PORT/PATH`, read-only endpoints). Success is an HTTP 200. Each step is
// bounded by a 2 s timeout. The socket's directory is the proxy uid's, mode 0700, and the sidecar
// container runs as root without CAP_DAC_OVERRIDE, so exec'd probes pass `--user=1337`: the
// command (inject_main.cc) switches to it first; a refused connect names the directory's uid.
//
// Blocking; any thread.
#pragma once

#include <string>

#include "base/error.h"

namespace picket::inject {

struct ProbeRequest {
  std::string url = "http://127.0.0.1:15000/ready";  // used when `socket` is empty
  std::string socket;                                // the admin Unix socket
  std::string path = "/ready";                       // with `socket`
  std::string method = "GET";                        // GET or POST
};

// The status line's code (e.g. 200), or an error: a bad request (`usage` set: exit 2), or the
// endpoint could not be reached or answered nothing HTTP (exit 1).
struct ProbeError {
  base::Error error;
  bool usage = false;
};
[[nodiscard]] std::expected<int, ProbeError> Probe(const ProbeRequest& request);

}  // namespace picket::inject
