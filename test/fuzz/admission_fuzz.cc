// libFuzzer target: the admission webhook's request handler (inject/admission.h) on arbitrary
// bodies. Invariants checked: no crash or sanitizer report; a 200 answer is valid JSON with the
// AdmissionReview envelope; a returned patch is valid base64 of a JSON Patch that applies cleanly
// to the request's object; anything else is a 400 with a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/document.h"
#include "inject/admission.h"
#include "inject/json_patch.h"

using picket::config::Node;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  picket::inject::AdmissionReply reply =
      picket::inject::HandleAdmissionReview(body, picket::inject::InjectOptions{});
  if (reply.status != 200) {
    if (reply.status != 400 || reply.body.empty()) abort();
    return 0;
  }
  auto out = picket::config::ParseJson(reply.body, "reply");
  if (!out || out->StringAt("kind") != "AdmissionReview") abort();
  const Node* response = out->Find("response");
  if (response == nullptr || response->Find("allowed") == nullptr) abort();
  const Node* patch = response->Find("patch");
  if (patch == nullptr) return 0;
  if (response->StringAt("patchType") != "JSONPatch") abort();
  auto patch_json = picket::inject::Base64Decode(patch->AsString());
  if (!patch_json) abort();
  auto ops = picket::config::ParseJson(*patch_json, "patch");
  if (!ops) abort();
  auto in = picket::config::ParseJson(body, "in");
  if (!in) abort();
  const Node* object = in->Find("request")->Find("object");
  if (!picket::inject::ApplyPatch(*object, *ops)) abort();
  return 0;
}
