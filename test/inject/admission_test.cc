// Tests inject/admission.h: the AdmissionReview v1 handler without a network.
#include "inject/admission.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/document.h"
#include "inject/json_patch.h"

namespace picket::inject {
namespace {

using config::Node;

// The shape of the Kubernetes documentation's example request, for a Pod CREATE.
std::string Review(const std::string& object, const std::string& kind = "Pod") {
  return R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
    "uid":"705ab4f5-6393-11e8-b7cc-42010a800002",
    "kind":{"group":"","version":"v1","kind":")" +
         kind + R"("},
    "resource":{"group":"","version":"v1","resource":"pods"},
    "requestKind":{"group":"","version":"v1","kind":")" +
         kind + R"("},
    "requestResource":{"group":"","version":"v1","resource":"pods"},
    "name":"","namespace":"shop","operation":"CREATE",
    "userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller",
                "uid":"014fbff9a07c","groups":["system:serviceaccounts"]},
    "object":)" +
         object + R"(,
    "oldObject":null,"dryRun":false,
    "options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}})";
}

const char kPod[] = R"({"apiVersion":"v1","kind":"Pod",
  "metadata":{"generateName":"web-7d4b9c-","namespace":"shop","labels":{"app":"web"}},
  "spec":{"containers":[{"name":"web","image":"nginx:1.25","ports":[{"containerPort":80}]}]}})";

Node ParseReply(const AdmissionReply& r) {
  EXPECT_EQ(r.status, 200) << r.body;
  auto n = config::ParseJson(r.body, "reply");
  EXPECT_TRUE(n.has_value()) << r.body;
  return n ? *n : Node();
}

TEST(Admission, PatchEqualsTheCliInjection) {
  InjectOptions o;
  AdmissionReply r = HandleAdmissionReview(Review(kPod), o);
  Node reply = ParseReply(r);
  EXPECT_EQ(reply.StringAt("apiVersion"), "admission.k8s.io/v1");
  EXPECT_EQ(reply.StringAt("kind"), "AdmissionReview");
  const Node& response = *reply.Find("response");
  EXPECT_EQ(response.StringAt("uid"), "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_TRUE(response.Find("allowed")->AsBool());
  EXPECT_EQ(response.StringAt("patchType"), "JSONPatch");
  auto patch_json = Base64Decode(response.StringAt("patch"));
  ASSERT_TRUE(patch_json.has_value());
  auto patch = config::ParseJson(*patch_json, "patch");
  ASSERT_TRUE(patch.has_value());
  auto patched = ApplyPatch(*config::ParseJson(kPod, "pod"), *patch);
  ASSERT_TRUE(patched.has_value()) << patched.error().ToString();

  // What the CLI makes of the same pod.
  auto cli = InjectYamlText(kPod, "pod.json", o);
  ASSERT_TRUE(cli.has_value()) << cli.error().ToString();
  auto docs = config::ParseYamlDocuments(cli->yaml, "cli");
  ASSERT_TRUE(docs.has_value());
  ASSERT_EQ(docs->size(), 1u);
  EXPECT_EQ(*patched, (*docs)[0]);
}

TEST(Admission, SkipsWithoutPatch) {
  struct Case {
    std::string object;
    const char* warning;
  } cases[] = {
      {R"({"metadata":{"name":"a","annotations":{"picket.dev/inject":"false"}},"spec":{"containers":[{"name":"c"}]}})",
       "sidecar injection disabled"},
      {R"({"metadata":{"name":"a","labels":{"picket.dev/inject":"no"}},"spec":{"containers":[{"name":"c"}]}})",
       "sidecar injection disabled"},
      {R"({"metadata":{"name":"a"},"spec":{"hostNetwork":true,"containers":[{"name":"c"}]}})",
       "host networking"},
      {R"({"metadata":{"name":"a","annotations":{"picket.dev/status":"{}"}},"spec":{"containers":[{"name":"c"}]}})",
       "already injected"},
  };
  for (const Case& c : cases) {
    Node reply = ParseReply(HandleAdmissionReview(Review(c.object), InjectOptions{}));
    const Node& response = *reply.Find("response");
    EXPECT_TRUE(response.Find("allowed")->AsBool());
    EXPECT_EQ(response.Find("patch"), nullptr);
    EXPECT_EQ(response.Find("patchType"), nullptr);
    ASSERT_NE(response.Find("warnings"), nullptr);
    EXPECT_NE(response.Find("warnings")->items()[0].AsString().find(c.warning), std::string::npos);
  }
  // Not a pod: allowed, untouched.
  Node reply = ParseReply(HandleAdmissionReview(Review("{}", "Service"), InjectOptions{}));
  EXPECT_TRUE(reply.Find("response")->Find("allowed")->AsBool());
  EXPECT_EQ(reply.Find("response")->Find("patch"), nullptr);
}

TEST(Admission, DeniesWhatCannotBeInjected) {
  Node reply = ParseReply(HandleAdmissionReview(
      Review(R"({"metadata":{"name":"a"},"spec":{"containers":[{"name":"picket-proxy"}]}})"),
      InjectOptions{}));
  const Node& response = *reply.Find("response");
  EXPECT_FALSE(response.Find("allowed")->AsBool());
  EXPECT_NE(response.Find("status")->StringAt("message").find("picket-proxy"), std::string::npos);
}

TEST(Admission, MalformedRequestsAre400) {
  const std::string bad[] = {
      "",
      "{",
      "[]",
      R"({"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}})",
      R"({"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}})",
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})",
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}})",
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"object":7}})",
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"object":{"metadata":{}}}})",
      std::string(100000, '['),
  };
  for (const std::string& body : bad) {
    AdmissionReply r = HandleAdmissionReview(body, InjectOptions{});
    EXPECT_EQ(r.status, 400) << body.substr(0, 80);
    EXPECT_FALSE(r.body.empty());
  }
}

// A pod with one app container `app` (plus `extra_containers`), pod-level `spec_extra` and
// metadata `metadata_extra` (JSON members, without braces).
std::string StrictPod(const std::string& metadata_extra, const std::string& spec_extra,
                      const std::string& container_extra = "",
                      const std::string& extra_containers = "") {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"shop")" +
         (metadata_extra.empty() ? "" : "," + metadata_extra) + R"(},"spec":{)" +
         (spec_extra.empty() ? "" : spec_extra + ",") +
         R"("containers":[{"name":"app","image":"app:1")" +
         (container_extra.empty() ? "" : "," + container_extra) + "}" + extra_containers + "]}}";
}

InjectOptions Strict() {
  InjectOptions o;
  o.enforcement = Enforcement::kStrict;
  return o;
}

// The pod a permissive reply makes: the request's object with the patch applied.
Node Patched(const std::string& object, const Node& response) {
  auto patch_json = Base64Decode(response.StringAt("patch"));
  EXPECT_TRUE(patch_json.has_value());
  auto patch = config::ParseJson(patch_json.value_or("[]"), "patch");
  EXPECT_TRUE(patch.has_value());
  auto patched = ApplyPatch(*config::ParseJson(object, "pod"), patch.value_or(Node::Sequence()));
  EXPECT_TRUE(patched.has_value());
  return patched.value_or(Node());
}

std::vector<std::string> Strings(const Node* list) {
  std::vector<std::string> out;
  if (list == nullptr) return out;
  for (const Node& n : list->items()) out.push_back(n.AsString());
  return out;
}

// The app container (`app`) of a pod.
const Node* App(const Node& pod) {
  for (const Node& c : pod.Find("spec")->Find("containers")->items()) {
    if (c.StringAt("name") == "app") return &c;
  }
  return nullptr;
}

struct StrictCase {
  std::string object;
  std::string field;   // the field path the refusal names
  bool injected;       // a permissive namespace injects it (rather than skipping it)
  bool app_adds_caps;  // the author added NET_RAW/NET_ADMIN: permissive keeps them
};

std::vector<StrictCase> StrictCases() {
  return {
      {StrictPod(R"("annotations":{"picket.dev/inject":"false"})", ""),
       "metadata.annotations[picket.dev/inject]", false, false},
      {StrictPod(R"("labels":{"picket.dev/inject":"no"})", ""),
       "metadata.labels[picket.dev/inject]", false, false},
      {StrictPod(R"("annotations":{"picket.dev/exclude-outbound-cidrs":"0.0.0.0/0,::/0"})", ""),
       "metadata.annotations[picket.dev/exclude-outbound-cidrs]", true, false},
      {StrictPod(R"("annotations":{"picket.dev/exclude-outbound-ports":"443"})", ""),
       "metadata.annotations[picket.dev/exclude-outbound-ports]", true, false},
      {StrictPod(R"("annotations":{"picket.dev/exclude-inbound-ports":"8080"})", ""),
       "metadata.annotations[picket.dev/exclude-inbound-ports]", true, false},
      {StrictPod(R"("annotations":{"picket.dev/include-outbound-cidrs":"10.0.0.0/8"})", ""),
       "metadata.annotations[picket.dev/include-outbound-cidrs]", true, false},
      {StrictPod(R"("annotations":{"picket.dev/keep-capabilities":"NET_RAW"})", ""),
       "metadata.annotations[picket.dev/keep-capabilities]", true, true},
      {StrictPod("", R"("securityContext":{"runAsUser":1337})"), "spec.securityContext.runAsUser",
       true, false},
      {StrictPod("", R"("securityContext":{"runAsGroup":1337,"fsGroup":1337})"),
       "spec.securityContext.runAsGroup", true, false},
      {StrictPod("", "", R"("securityContext":{"runAsUser":1337})"),
       "spec.containers[0].securityContext.runAsUser", true, false},
      {StrictPod(
           "",
           R"("initContainers":[{"name":"i","image":"i:1","securityContext":{"runAsGroup":1337}}])"),
       "spec.initContainers[0].securityContext.runAsGroup", true, false},
      {StrictPod("", "", R"("securityContext":{"capabilities":{"add":["NET_RAW"]}})"),
       "spec.containers[0].securityContext.capabilities.add", true, true},
      {StrictPod("", "", R"("securityContext":{"capabilities":{"add":["ALL"]}})"),
       "spec.containers[0].securityContext.capabilities.add", true, true},
      {StrictPod(
           "", "", "",
           R"(,{"name":"b","image":"b:1","securityContext":{"capabilities":{"add":["cap_net_admin"]}}})"),
       "spec.containers[1].securityContext.capabilities.add", true, false},
      {StrictPod("", "", R"("securityContext":{"privileged":true})"),
       "spec.containers[0].securityContext.privileged", true, false},
      {StrictPod("", R"("hostNetwork":true)"), "spec.hostNetwork", false, false},
      {StrictPod(R"("annotations":{"picket.dev/status":"{}"})", ""),
       "metadata.annotations[picket.dev/status]", false, false},
      // A look-alike sidecar: Picket's name and image, someone else's command.
      {StrictPod(R"("annotations":{"picket.dev/status":"{}"})", "", "",
                 R"(,{"name":"picket-proxy","image":"picket/picket:latest","command":["sh"],
                     "securityContext":{"runAsUser":1337}})"),
       "spec.containers[1].securityContext.runAsUser", false, false},
  };
}

TEST(AdmissionStrict, RefusesEveryWayOutNamingTheFieldAndTheLabel) {
  for (const StrictCase& c : StrictCases()) {
    AdmissionReply a = HandleAdmissionReview(Review(c.object), Strict());
    Node reply = ParseReply(a);
    const Node& response = *reply.Find("response");
    EXPECT_EQ(response.StringAt("uid"), "705ab4f5-6393-11e8-b7cc-42010a800002");
    EXPECT_FALSE(response.Find("allowed")->AsBool()) << c.object;
    EXPECT_EQ(response.Find("patch"), nullptr);
    ASSERT_NE(response.Find("status"), nullptr) << c.object;
    EXPECT_EQ(response.Find("status")->Find("code")->AsInt(), 403);
    const std::string message = response.Find("status")->StringAt("message");
    EXPECT_NE(message.find(c.field + ": Forbidden"), std::string::npos) << message;
    EXPECT_NE(message.find("picket.dev/enforcement=strict"), std::string::npos) << message;
    EXPECT_NE(message.find("Pod \"shop/p\""), std::string::npos) << message;
    EXPECT_EQ(a.denial, message);  // what the webhook logs
  }
}

TEST(AdmissionStrict, PermissiveNamespacesStillAcceptThemWithTheCapabilityDrop) {
  for (const StrictCase& c : StrictCases()) {
    Node reply = ParseReply(HandleAdmissionReview(Review(c.object), InjectOptions{}));
    const Node& response = *reply.Find("response");
    EXPECT_TRUE(response.Find("allowed")->AsBool()) << c.object;
    if (!c.injected) {
      EXPECT_EQ(response.Find("patch"), nullptr) << c.object;
      continue;
    }
    Node pod = Patched(c.object, response);
    const Node* app = App(pod);
    ASSERT_NE(app, nullptr) << c.object;
    const Node* sc = app->Find("securityContext");
    ASSERT_NE(sc, nullptr) << c.object;
    const std::vector<std::string> drop = Strings(sc->Find("capabilities")->Find("drop"));
    if (c.app_adds_caps) {
      // Kept, and said so.
      EXPECT_EQ(std::count(drop.begin(), drop.end(), "NET_RAW"), 0) << c.object;
      std::string warnings;
      for (const std::string& w : Strings(response.Find("warnings"))) warnings += w + "\n";
      EXPECT_NE(warnings.find("NET_RAW"), std::string::npos) << c.object;
    } else {
      EXPECT_EQ(drop, (std::vector<std::string>{"NET_ADMIN", "NET_RAW"})) << c.object;
    }
  }
}

TEST(AdmissionStrict, ListsEveryViolation) {
  const std::string object =
      StrictPod(R"("annotations":{"picket.dev/exclude-outbound-cidrs":"0.0.0.0/0"})",
                R"("securityContext":{"runAsGroup":1337})",
                R"("securityContext":{"capabilities":{"add":["NET_ADMIN"]}})");
  Node reply = ParseReply(HandleAdmissionReview(Review(object), Strict()));
  const std::string message = reply.Find("response")->Find("status")->StringAt("message");
  for (const char* field :
       {"metadata.annotations[picket.dev/exclude-outbound-cidrs]",
        "spec.securityContext.runAsGroup", "spec.containers[0].securityContext.capabilities.add"}) {
    EXPECT_NE(message.find(field), std::string::npos) << field << " in " << message;
  }
}

TEST(AdmissionStrict, AcceptsOrdinaryAndAlreadyInjectedPods) {
  const std::string fine[] = {
      kPod,
      StrictPod(
          R"("labels":{"picket.dev/inject":"true"},"annotations":{"picket.dev/include-outbound-cidrs":"*"})",
          R"("securityContext":{"runAsUser":1000,"runAsGroup":1000,"fsGroup":1337,"supplementalGroups":[1337]})",
          R"("securityContext":{"capabilities":{"add":["NET_BIND_SERVICE"],"drop":["ALL"]}})"),
  };
  for (const std::string& object : fine) {
    Node reply = ParseReply(HandleAdmissionReview(Review(object), Strict()));
    const Node& response = *reply.Find("response");
    EXPECT_TRUE(response.Find("allowed")->AsBool()) << reply.Find("response")->Find("status");
    EXPECT_EQ(response.StringAt("patchType"), "JSONPatch");
    Node pod = Patched(object, response);
    const Node* app = App(pod);
    if (app == nullptr) app = &pod.Find("spec")->Find("containers")->items()[1];
    const std::vector<std::string> drop =
        Strings(app->Find("securityContext")->Find("capabilities")->Find("drop"));
    EXPECT_TRUE(drop == (std::vector<std::string>{"NET_ADMIN", "NET_RAW"}) ||
                drop == (std::vector<std::string>{"ALL"}));
  }
  // What `picket-inject inject` produced (picket-proxy runs as 1337, picket-init adds
  // NET_ADMIN/NET_RAW) passes, unchanged.
  auto cli = InjectYamlText(kPod, "pod.json", InjectOptions{});
  ASSERT_TRUE(cli.has_value());
  auto docs = config::ParseYamlDocuments(cli->yaml, "cli");
  ASSERT_TRUE(docs.has_value());
  Node reply = ParseReply(HandleAdmissionReview(Review(config::EmitJson((*docs)[0])), Strict()));
  EXPECT_TRUE(reply.Find("response")->Find("allowed")->AsBool());
  EXPECT_EQ(reply.Find("response")->Find("patch"), nullptr);
}

TEST(AdmissionStrict, TheCliRefusesTheSame) {
  auto r =
      InjectYamlText(StrictPod("", R"("securityContext":{"runAsUser":1337})"), "p.json", Strict());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().ToString().find("spec.securityContext.runAsUser: Forbidden"),
            std::string::npos)
      << r.error().ToString();
}

TEST(AdmissionKeepCapabilities, KeepsWhatTheAnnotationNamesAndRejectsOthers) {
  const std::string kept =
      StrictPod(R"("annotations":{"picket.dev/keep-capabilities":"net_raw, NET_ADMIN"})", "");
  AdmissionReply a = HandleAdmissionReview(Review(kept), InjectOptions{});
  Node reply = ParseReply(a);
  const Node& response = *reply.Find("response");
  ASSERT_TRUE(response.Find("allowed")->AsBool());
  EXPECT_EQ(Strings(response.Find("warnings")), a.warnings);  // what the webhook logs
  EXPECT_TRUE(a.denial.empty());
  Node pod = Patched(kept, response);
  const Node* sc = App(pod)->Find("securityContext");
  EXPECT_TRUE(sc == nullptr || Strings(sc->Find("capabilities")->Find("drop")).empty());
  ASSERT_NE(response.Find("warnings"), nullptr);
  const std::string warning = response.Find("warnings")->items()[0].AsString();
  EXPECT_NE(warning.find("keep-capabilities keeps NET_RAW,NET_ADMIN"), std::string::npos)
      << warning;

  const std::string bad =
      StrictPod(R"("annotations":{"picket.dev/keep-capabilities":"SYS_ADMIN"})", "");
  reply = ParseReply(HandleAdmissionReview(Review(bad), InjectOptions{}));
  EXPECT_FALSE(reply.Find("response")->Find("allowed")->AsBool());
  EXPECT_NE(reply.Find("response")
                ->Find("status")
                ->StringAt("message")
                .find("metadata.annotations[picket.dev/keep-capabilities]: Unsupported value"),
            std::string::npos);
}

// The webhook shares the injector: picket.dev/capture: verdict (with UDP/SCTP off, too) gives
// the same pod as the CLI — NET_ADMIN on the sidecar only — also under strict enforcement; any
// other value is denied with the annotation's field path.
TEST(AdmissionCapture, VerdictAsTheCliAndBadValuesDenied) {
  const std::string verdict = StrictPod(
      R"("annotations":{"picket.dev/capture":"verdict","picket.dev/udp-sctp":"false"})", "");
  Node reply = ParseReply(HandleAdmissionReview(Review(verdict), InjectOptions{}));
  ASSERT_TRUE(reply.Find("response")->Find("allowed")->AsBool());
  Node pod = Patched(verdict, *reply.Find("response"));
  auto cli = InjectYamlText(verdict, "pod.json", InjectOptions{});
  ASSERT_TRUE(cli.has_value()) << cli.error().ToString();
  auto docs = config::ParseYamlDocuments(cli->yaml, "cli");
  ASSERT_TRUE(docs.has_value());
  EXPECT_EQ(pod, (*docs)[0]);
  const Node& proxy = pod.Find("spec")->Find("containers")->items()[0];
  ASSERT_EQ(proxy.StringAt("name"), "picket-proxy");
  const std::vector<std::string> args = Strings(proxy.Find("args"));
  EXPECT_NE(std::find(args.begin(), args.end(), "--capture=verdict"), args.end());
  EXPECT_EQ(Strings(proxy.Find("securityContext")->Find("capabilities")->Find("add")),
            (std::vector<std::string>{"NET_ADMIN", "NET_BIND_SERVICE", "SETGID", "SETUID"}));
  const Node& init = pod.Find("spec")->Find("initContainers")->items()[0];
  const std::vector<std::string> init_args = Strings(init.Find("args"));
  EXPECT_NE(std::find(init_args.begin(), init_args.end(), "--capture=verdict"), init_args.end());
  EXPECT_EQ(Strings(App(pod)->Find("securityContext")->Find("capabilities")->Find("drop")),
            (std::vector<std::string>{"NET_ADMIN", "NET_RAW"}));

  // Verdict mode takes nothing out of enforcement: strict injects it (UDP/SCTP left on).
  const std::string strict_verdict =
      StrictPod(R"("annotations":{"picket.dev/capture":"verdict"})", "");
  reply = ParseReply(HandleAdmissionReview(Review(strict_verdict), Strict()));
  EXPECT_TRUE(reply.Find("response")->Find("allowed")->AsBool());

  const std::string bad = StrictPod(R"("annotations":{"picket.dev/capture":"tproxy"})", "");
  reply = ParseReply(HandleAdmissionReview(Review(bad), InjectOptions{}));
  EXPECT_FALSE(reply.Find("response")->Find("allowed")->AsBool());
  const std::string message = reply.Find("response")->Find("status")->StringAt("message");
  EXPECT_NE(message.find("metadata.annotations[picket.dev/capture]: Unsupported value: "
                         "\"tproxy\": supported values: \"relay\", \"verdict\""),
            std::string::npos)
      << message;
}

TEST(Base64, RoundTripsAndRejects) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\x00\x10"}) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(Base64Decode("Zm9").has_value());
  EXPECT_FALSE(Base64Decode("Zm=v").has_value());
  EXPECT_FALSE(Base64Decode("Zm9*").has_value());
}

}  // namespace
}  // namespace picket::inject
