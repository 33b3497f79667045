// net/xds_message.h — the messages of Picket's xDS-like control protocol (control/PROTOCOL.md).
//
// Owns: the C++ form of every frame body a control server and a sidecar exchange (named as in
// Envoy's xDS: DiscoveryRequest/Response, DeltaDiscoveryRequest/Response, plus the stream's
// terminal Status and Keepalive), `DecodeMessage` (untrusted JSON text → Message, with a precise
// error naming the field) and `EncodeMessage` (Message → JSON text). Resource payloads stay
// opaque JSON here; each type's consumer validates its own payload.
//
// Payloads are never re-serialised on the way through. To send, a resource carries its payload
// as JSON text (`Resource::encoded`, encoded once by the control server and spliced verbatim
// into every frame that carries it). A decoded response keeps the frame's parsed document
// (`Payloads`) and each resource's `value` is a view into it: the sidecar parses a payload
// exactly once, when it parses the frame. A `value` is valid while some copy of its message
// (which shares the document) lives.
//
// Pure values and functions; thread-compatible. Shared by control/ and proxy/xds/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/error.h"
#include "base/json.h"

namespace picket::net {

// Type URLs (PROTOCOL.md §5).
// Address map: one resource per pod ("ns/name"), all pods; sent as deltas.
inline constexpr std::string_view kAddressEntryType = "type.picket.dev/picket.v1.AddressEntry";
// One pod's policy ("ns/name"); a sidecar may subscribe to its own pod's only.
inline constexpr std::string_view kPodPolicyType = "type.picket.dev/picket.v1.PodPolicy";
// Service map: one resource per Service ("ns/name").
inline constexpr std::string_view kServiceType = "type.picket.dev/picket.v1.Service";

// gRPC status codes used in error_detail and in the terminal Status.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 3,
  kNotFound = 5,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

struct Status {
  int code = 0;
  std::string message;
  friend bool operator==(const Status&, const Status&) = default;
};

// Who a sidecar is. Sent on the first request of a stream only.
struct Node {
  Node() = default;
  // `udp_sctp_enforced` last and optional, so a Node that says nothing of it reads as before.
  Node(std::string id, std::string ns, std::string pod, std::string user_agent,
       std::optional<bool> udp_sctp_enforced = std::nullopt)
      : id(std::move(id)),
        ns(std::move(ns)),
        pod(std::move(pod)),
        user_agent(std::move(user_agent)),
        udp_sctp_enforced(udp_sctp_enforced) {}

  std::string id;          // free-form, unique per sidecar instance (e.g. "picket-proxy~ns/pod")
  std::string ns;          // the pod's namespace
  std::string pod;         // the pod's name
  std::string user_agent;  // e.g. "picket-proxy/0.1"
  // From `node.metadata`, free-form as Envoy's Node.metadata (keys this reader does not know are
  // ignored): whether this sidecar gives new UDP and SCTP flows a policy verdict (its verdict
  // queue is bound). nullopt: not said (unknown).
  std::optional<bool> udp_sctp_enforced;
  friend bool operator==(const Node&, const Node&) = default;
};

struct Resource {
  std::string name;
  std::string version;
  // The type-specific payload: `encoded` JSON text when sending; when received, `value`, a view
  // into the message's document (and `encoded` empty).
  std::string encoded;
  base::JsonValue value;
  // Sending only: the whole resource object, {"name":…,"version":…,"resource":…}, encoded once
  // by EncodeWireResource and shared by every response that carries it (the control server's
  // store); the three fields above are then unused.
  std::shared_ptr<const std::string> wire = nullptr;

  // The payload's JSON text, whichever way it is held.
  std::string PayloadJson() const;
  friend bool operator==(const Resource& a, const Resource& b) {
    return a.name == b.name && a.version == b.version && a.PayloadJson() == b.PayloadJson();
  }
};

// One resource as responses carry it (Resource::wire): its payload JSON spliced verbatim.
std::string EncodeWireResource(std::string_view name, std::string_view version,
                               std::string_view payload);

// The parsed frame a decoded response's resource values point into; copies share it. Not part
// of what a message says, so it compares equal to any other.
struct Payloads {
  std::shared_ptr<const base::JsonDocument> document;
  friend bool operator==(const Payloads&, const Payloads&) { return true; }
};

struct DiscoveryRequest {
  std::optional<Node> node;
  std::string version_info;  // last applied version of this type; empty at first
  std::vector<std::string> resource_names;
  std::string type_url;
  std::string response_nonce;          // nonce being ACKed/NACKed; empty on a subscribe
  std::optional<Status> error_detail;  // present == NACK
  friend bool operator==(const DiscoveryRequest&, const DiscoveryRequest&) = default;
};

struct DiscoveryResponse {
  std::string version_info;
  std::vector<Resource> resources;  // the full set for this subscriber (state of the world)
  std::string type_url;
  std::string nonce;
  std::string control_plane;  // server identifier, informational
  Payloads payloads;          // set by DecodeMessage
  friend bool operator==(const DiscoveryResponse&, const DiscoveryResponse&) = default;
};

struct DeltaDiscoveryRequest {
  std::optional<Node> node;
  std::string type_url;
  std::vector<std::string> resource_names_subscribe;
  std::vector<std::string> resource_names_unsubscribe;
  std::map<std::string, std::string> initial_resource_versions;  // first request after reconnect
  std::string response_nonce;
  std::optional<Status> error_detail;
  friend bool operator==(const DeltaDiscoveryRequest&, const DeltaDiscoveryRequest&) = default;
};

struct DeltaDiscoveryResponse {
  std::string system_version_info;  // informational
  std::vector<Resource> resources;  // added or changed
  std::string type_url;
  std::vector<std::string> removed_resources;
  std::string nonce;
  std::string control_plane;
  Payloads payloads;  // set by DecodeMessage
  friend bool operator==(const DeltaDiscoveryResponse&, const DeltaDiscoveryResponse&) = default;
};

// Server → sidecar, last frame before the server closes the stream (like gRPC trailers).
struct StreamStatus {
  Status status;
  friend bool operator==(const StreamStatus&, const StreamStatus&) = default;
};

// Either side; the server answers each one (PROTOCOL.md §4).
struct Keepalive {
  friend bool operator==(const Keepalive&, const Keepalive&) = default;
};

using Message = std::variant<DiscoveryRequest, DiscoveryResponse, DeltaDiscoveryRequest,
                             DeltaDiscoveryResponse, StreamStatus, Keepalive>;

// Parses and validates one frame body. The error names the field (the first problem found):
// "discovery_request.type_url: Invalid value: 1: expected a string".
[[nodiscard]] base::Result<Message> DecodeMessage(std::string_view body);
std::string EncodeMessage(const Message& message);
// The message framed (net/frame.h) in one buffer: EncodeFrame(EncodeMessage(m)) without the copy.
std::string EncodeFramedMessage(const Message& message);

// The name of a message's envelope key ("discovery_request", ...), for logs.
std::string_view MessageName(const Message& message);

}  // namespace picket::net
