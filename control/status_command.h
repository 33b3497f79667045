// control/status_command.h — `picket-control status`: what `istioctl proxy-status` shows, for one
// control server replica.
//
// Owns: reading a replica's admin /status (control/serve_admin.h, fetched with
// control/admin_client.h) into a `ProxyStatus` and printing it: a header line for the replica
// (admin address, source, ready, objects or files) and one row per connected sidecar — pod
// (ns/name), the xDS node id, for the address map and the pod's policy the version it ACKed and
// whether that is what the replica would send now (SYNCED: it is; NOT SENT: nothing of that type
// was pushed yet; STALE: anything else — a newer version exists, a push awaits its ACK or was
// NACKed), its last NACK (type, message, age) and when it connected (RFC 3339, UTC wall clock).
// `--output json` prints the same as one JSON object.
//
// Main thread of the command; blocks on the admin endpoint.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "control/flags.h"

namespace picket::control {

struct TypeSync {
  std::string acked_version;  // empty: nothing ACKed
  std::string latest_version;
  std::string sync;  // "SYNCED", "STALE" or "NOT SENT"
};

struct SidecarRow {
  std::string pod;  // "ns/name"
  std::string node;
  TypeSync addresses;  // type.picket.dev/picket.v1.AddressEntry
  TypeSync policy;     // type.picket.dev/picket.v1.PodPolicy
  struct Nack {
    std::string type;  // "addresses" or "policy"
    std::string message;
    std::string version;
    uint64_t at_unix_ms = 0;
  };
  std::optional<Nack> last_nack;  // the most recent over both types
  uint64_t connected_unix_ms = 0;
};

struct ProxyStatus {
  std::string source;  // "kubernetes ...", "directory ..."
  bool ready = false;
  uint64_t objects = 0;              // files or objects the current state comes from
  std::vector<SidecarRow> sidecars;  // active streams, by pod
};

// Reads a /status body. Errors name the field that was missing or of the wrong type
// ("/status: sidecars[1].connected_unix_ms: missing"). Streams not yet active are skipped.
[[nodiscard]] base::Result<ProxyStatus> ParseProxyStatus(std::string_view status_json);
// "2026-12-07T07:10:03Z" (seconds; UTC).
std::string Rfc3339Utc(uint64_t unix_ms);
// The table; `now_unix_ms` dates the NACK ages.
std::string FormatProxyStatusText(const ProxyStatus& status, const std::string& admin,
                                  uint64_t now_unix_ms);
std::string FormatProxyStatusJson(const ProxyStatus& status, const std::string& admin,
                                  uint64_t now_unix_ms);

// The `status` row of picket-control's command table (control/flags.h).
CommandRun AddStatus(CLI::App& sub);

}  // namespace picket::control
