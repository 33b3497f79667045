// filters/close_reason.h — why a connection ended, as a closed set of stable names.
//
// Owns: `CloseReason` and its stable snake_case names. These names appear in flow records
// (`close_reason`), in per-reason counters (`/stats/prometheus`) and in tests; never rename one.
// Lives in filters/ because a filter's deny carries one; the proxy uses the same values for
// every other way a connection ends. Plain values, any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace picket::filters {

enum class CloseReason : uint8_t {
  kNormal,                  // both directions finished with FIN
  kPolicyDenied,            // the pod is isolated in this direction and no rule matched
  kNoPolicyYet,             // fail closed: no policy snapshot loaded
  kUpstreamConnectFailed,   // connect() to the original destination failed (refused, unreachable)
  kUpstreamConnectTimeout,  // connect() did not complete within the connect timeout
  kPeerReset,               // either side reset (or a socket error) and the reset was propagated
  kIdleTimeout,             // no byte moved either way for the idle timeout
  kPolicyChanged,           // a policy update no longer allows the established connection
  kShutdown,                // the drain timeout expired while shutting down
  kConnectionLimit,         // the connection limit was reached
  kLoopDetected,            // addressed to the proxy's own listener (no redirect happened)
  kResourceExhausted,       // a socket or pipe could not be created (EMFILE, ENOBUFS, ...)
};

inline constexpr std::array<CloseReason, 12> kAllCloseReasons = {
    CloseReason::kNormal,
    CloseReason::kPolicyDenied,
    CloseReason::kNoPolicyYet,
    CloseReason::kUpstreamConnectFailed,
    CloseReason::kUpstreamConnectTimeout,
    CloseReason::kPeerReset,
    CloseReason::kIdleTimeout,
    CloseReason::kPolicyChanged,
    CloseReason::kShutdown,
    CloseReason::kConnectionLimit,
    CloseReason::kLoopDetected,
    CloseReason::kResourceExhausted,
};

constexpr std::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kNormal:
      return "normal";
    case CloseReason::kPolicyDenied:
      return "policy_denied";
    case CloseReason::kNoPolicyYet:
      return "no_policy_yet";
    case CloseReason::kUpstreamConnectFailed:
      return "upstream_connect_failed";
    case CloseReason::kUpstreamConnectTimeout:
      return "upstream_connect_timeout";
    case CloseReason::kPeerReset:
      return "peer_reset";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kPolicyChanged:
      return "policy_changed";
    case CloseReason::kShutdown:
      return "shutdown";
    case CloseReason::kConnectionLimit:
      return "connection_limit";
    case CloseReason::kLoopDetected:
      return "loop_detected";
    case CloseReason::kResourceExhausted:
      return "resource_exhausted";
  }
  return "unknown";
}

constexpr size_t CloseReasonIndex(CloseReason reason) { return static_cast<size_t>(reason); }

std::optional<CloseReason> ParseCloseReason(std::string_view name);

}  // namespace picket::filters
