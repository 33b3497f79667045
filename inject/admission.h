// inject/admission.h — the admission webhook's request handler, without any I/O.
//
// Owns: turning the body of `POST /inject` (an AdmissionReview v1, k8s.io/api admission/v1) into
// the HTTP status and body to answer with. A Pod is mutated with inject/injector.h and the
// difference is returned as a base64 RFC 6902 patch (`patchType: JSONPatch`); a pod that is
// already injected, opted out, on the host network, or not a Pod at all is allowed unchanged
// (with a warning saying why, when there is a reason). A pod that cannot be injected (e.g. a
// container already named picket-proxy) is denied with the reason — Picket fails closed.
// Malformed bodies get 400 and a message naming the problem. Warnings from the injection
// (capabilities left to the app) are returned as AdmissionReview warnings and in `warnings`.
//
// Under `Enforcement::kStrict` (the /inject-strict path) a pod with any StrictViolations
// (inject/injector.h) is denied with code 403 and a message listing every field path and the
// namespace label picket.dev/enforcement=strict — opted-out and hostNetwork pods included.
//
// The namespace filter (`picket-injection: enabled`) is the MutatingWebhookConfiguration's
// namespaceSelector (an AdmissionReview carries only the namespace's name), as Istio does.
//
// Pure function; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "inject/injector.h"

namespace picket::inject {

struct AdmissionReply {
  int status = 200;
  std::string body;  // application/json for 200; text/plain otherwise
  std::vector<std::string> warnings;
  std::string denial;  // the status message when the review answers allowed: false
};

AdmissionReply HandleAdmissionReview(std::string_view body, const InjectOptions& options);

std::string Base64Encode(std::string_view data);
// Strict RFC 4648 decoding with padding; error on anything else.
[[nodiscard]] base::Result<std::string> Base64Decode(std::string_view text);

}  // namespace picket::inject
