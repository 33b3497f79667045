// Tests inject/admission.h: the AdmissionReview v1 handler without a network.
#include "inject/admission.h"

#include <gtest/gtest.h>

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
