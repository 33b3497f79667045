// inject/admission.cc — see admission.h.
#include "inject/admission.h"

#include "inject/json_patch.h"

namespace picket::inject {

using base::Error;
namespace {

using config::Node;

constexpr char kApiVersion[] = "admission.k8s.io/v1";
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

AdmissionReply BadRequest(std::string message) {
  return AdmissionReply{400, message + "\n", {}, {}};
}

// The response envelope: same apiVersion and kind, uid echoed.
Node Envelope(const std::string& uid) {
  Node review = Node::Mapping();
  review.Set("apiVersion", Node::String(kApiVersion));
  review.Set("kind", Node::String("AdmissionReview"));
  Node& response = review.Set("response", Node::Mapping());
  response.Set("uid", Node::String(uid));
  return review;
}

void SetWarnings(Node& response, const std::vector<std::string>& warnings) {
  if (warnings.empty()) return;
  Node& list = response.Set("warnings", Node::Sequence());
  for (const std::string& w : warnings) list.Append(Node::String(w.substr(0, 250)));
}

AdmissionReply Allow(const std::string& uid, const std::string& warning) {
  Node review = Envelope(uid);
  Node& response = *review.Find("response");
  response.Set("allowed", Node::Bool(true));
  std::vector<std::string> warnings;
  if (!warning.empty()) warnings.push_back(warning);
  SetWarnings(response, warnings);
  return AdmissionReply{200, config::EmitJson(review), warnings, {}};
}

AdmissionReply Deny(const std::string& uid, int code, const std::string& message) {
  Node reply = Envelope(uid);
  Node& response = *reply.Find("response");
  response.Set("allowed", Node::Bool(false));
  Node& status = response.Set("status", Node::Mapping());
  status.Set("code", Node::Int(code));
  status.Set("message", Node::String(message));
  return AdmissionReply{200, config::EmitJson(reply), {}, message};
}

}  // namespace

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8) |
                 static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t v = static_cast<unsigned char>(data[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t v = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

base::Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::unexpected(Error::Of("base64 length is not a multiple of 4"));
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::unexpected(Error::Of("invalid base64 padding"));
      v[j] = value(c);
      if (v[j] < 0) return std::unexpected(Error::Of("invalid base64 character"));
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((n >> 16) & 0xFF);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(n & 0xFF);
  }
  return out;
}

AdmissionReply HandleAdmissionReview(std::string_view body, const InjectOptions& options) {
  auto parsed = config::ParseJson(body, "request body");
  if (!parsed) return BadRequest("malformed AdmissionReview: " + parsed.error().ToString());
  const Node& review = *parsed;
  if (!review.IsMapping()) return BadRequest("malformed AdmissionReview: not a JSON object");
  if (review.StringAt("kind") != "AdmissionReview") {
    return BadRequest("expected kind AdmissionReview, got \"" + review.StringAt("kind") + "\"");
  }
  if (review.StringAt("apiVersion") != kApiVersion) {
    return BadRequest("expected apiVersion " + std::string(kApiVersion) + ", got \"" +
                      review.StringAt("apiVersion") + "\"");
  }
  const Node* request = review.Find("request");
  if (request == nullptr || !request->IsMapping()) {
    return BadRequest("AdmissionReview.request: Required value");
  }
  const Node* uid = request->Find("uid");
  if (uid == nullptr || !uid->IsString() || uid->AsString().empty()) {
    return BadRequest("AdmissionReview.request.uid: Required value");
  }
  const Node* kind = request->Find("kind");
  const bool is_pod = kind != nullptr && kind->IsMapping() && kind->StringAt("kind") == "Pod" &&
                      kind->StringAt("group").empty();
  if (!is_pod) return Allow(uid->AsString(), "");
  const Node* object = request->Find("object");
  if (object == nullptr || !object->IsMapping()) {
    return BadRequest("AdmissionReview.request.object: must be the Pod object");
  }

  Node pod = *object;
  const std::string ns = request->StringAt("namespace");
  std::string name = request->StringAt("name");
  if (const Node* md = pod.Find("metadata"); name.empty() && md != nullptr) {
    name = md->StringAt("name").empty() ? md->StringAt("generateName") + "*" : md->StringAt("name");
  }
  const std::string what = "Pod \"" + (ns.empty() ? name : ns + "/" + name) + "\"";
  Node* spec = pod.Find("spec");
  if (spec == nullptr || !spec->IsMapping()) {
    return BadRequest("AdmissionReview.request.object.spec: Required value");
  }
  Node& md = pod.MappingAt("metadata");
  spec = pod.Find("spec");  // MappingAt may have moved members
  if (options.enforcement == Enforcement::kStrict) {
    std::vector<Error> violations = StrictViolations(md, *spec, options);
    if (!violations.empty()) {
      std::string message = "picket: " + what + " is refused under strict enforcement:";
      for (const Error& e : violations) message += " " + e.field + ": " + e.reason + ";";
      message.pop_back();
      return Deny(uid->AsString(), 403, message);
    }
  }
  auto result = InjectPod(md, *spec, what, options);
  if (!result) {
    return Deny(uid->AsString(), 400,
                "picket: cannot inject the sidecar: " + result.error().ToString());
  }
  if (result->outcome != PodOutcome::kInjected) return Allow(uid->AsString(), result->note);

  Node patch = CreatePatch(*object, pod);
  Node reply = Envelope(uid->AsString());
  Node& response = *reply.Find("response");
  response.Set("allowed", Node::Bool(true));
  response.Set("patchType", Node::String("JSONPatch"));
  response.Set("patch", Node::String(Base64Encode(config::EmitJson(patch))));
  SetWarnings(response, result->warnings);
  return AdmissionReply{200, config::EmitJson(reply), result->warnings, {}};
}

}  // namespace picket::inject
