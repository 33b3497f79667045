// Validation of NetworkPolicy, Pod and Namespace objects: every check of kube-apiserver's
// ValidateNetworkPolicy (pkg/apis/networking/validation/validation.go) with the
// API server's exact field path and message, plus wrong types and unknown fields. Each error is
// `t.yaml:<line>: <Kind ns/name>: <path>: <reason>`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/manifest_loader.h"
#include "test/config/manifest_test_util.h"

namespace picket::config {
namespace {

using ::picket::config::testing::ErrorsOf;
using ::picket::config::testing::MustLoad;
using ::picket::config::testing::Policy;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kNp[] = "t.yaml:1: NetworkPolicy x/p: ";
// Policy() puts `spec:` on line 6; the first spec line is 7.
std::string At(int line, std::string_view rest) {
  return "t.yaml:" + std::to_string(line) + ": NetworkPolicy x/p: " + std::string(rest);
}

std::vector<std::string> SpecErrors(std::string_view spec, const LoadOptions& options = {}) {
  return ErrorsOf(Policy(spec), options);
}

TEST(ManifestValidationTest, ValidPolicyHasNoErrors) {
  MustLoad(Policy(R"(  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {}
    - namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [a]}]}
      podSelector: {matchExpressions: [{key: tier, operator: Exists}]}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
    - {port: 80}
    - {port: http, protocol: UDP}
    - {port: 1000, endPort: 2000, protocol: SCTP}
  policyTypes: [Ingress]
)"));
}

TEST(ManifestValidationTest, MetadataName) {
  EXPECT_THAT(
      ErrorsOf("kind: NetworkPolicy\nmetadata:\n  name: Bad_Name\n  namespace: x\n"),
      ElementsAre("t.yaml:3: NetworkPolicy x/Bad_Name: metadata.name: Invalid value: \"Bad_Name\": "
                  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                  "characters, '-' or '.', and must start and end with an alphanumeric character "
                  "(e.g. 'example.com', regex used for validation is "
                  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
  EXPECT_THAT(ErrorsOf("kind: NetworkPolicy\nmetadata:\n  namespace: x\n"),
              ElementsAre("t.yaml:3: NetworkPolicy x/: metadata.name: Required value: name or "
                          "generateName is required"));
  EXPECT_THAT(ErrorsOf("kind: NetworkPolicy\n"),
              ElementsAre("t.yaml:1: NetworkPolicy default/: metadata.name: Required value: name "
                          "or generateName is required"));
}

TEST(ManifestValidationTest, MetadataNamespaceIsADns1123Label) {
  EXPECT_THAT(ErrorsOf("kind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: a.b\n"),
              ElementsAre(::testing::StartsWith(
                  "t.yaml:4: NetworkPolicy a.b/p: metadata.namespace: Invalid value: \"a.b\": a "
                  "lowercase RFC 1123 label must consist of")));
}

TEST(ManifestValidationTest, MetadataLabels) {
  EXPECT_THAT(ErrorsOf("kind: Pod\nmetadata:\n  name: a\n  labels:\n    ok: fine\n    'bad key': "
                       "v\n    k: 'bad value'\n"),
              ElementsAre(::testing::StartsWith("t.yaml:6: Pod default/a: metadata.labels: "
                                                "Invalid value: \"bad key\": name part must "
                                                "consist of"),
                          ::testing::StartsWith("t.yaml:7: Pod default/a: metadata.labels: "
                                                "Invalid value: \"bad value\": a valid label must "
                                                "be an empty string")));
}

TEST(ManifestValidationTest, ProtocolIsCaseSensitive) {
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - protocol: tcp\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].protocol: Unsupported value: \"tcp\": "
                             "supported values: \"TCP\", \"UDP\", \"SCTP\"")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - protocol: ICMP\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": "
                             "supported values: \"TCP\", \"UDP\", \"SCTP\"")));
}

TEST(ManifestValidationTest, NumericPortRange) {
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: 0\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].port: Invalid value: 0: must be between "
                             "1 and 65535, inclusive")));
  EXPECT_THAT(SpecErrors("  egress:\n  - ports:\n    - port: 65536\n"),
              ElementsAre(At(9,
                             "spec.egress[0].ports[0].port: Invalid value: 65536: must be "
                             "between 1 and 65535, inclusive")));
  EXPECT_THAT(SpecErrors("  egress:\n  - ports:\n    - port: -5\n"),
              ElementsAre(At(9,
                             "spec.egress[0].ports[0].port: Invalid value: -5: must be "
                             "between 1 and 65535, inclusive")));
}

TEST(ManifestValidationTest, EndPort) {
  // kube-apiserver prints `port`'s value in this message (validation.go passes port.Port.IntVal).
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: 80\n      endPort: 79\n"),
              ElementsAre(At(10,
                             "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be "
                             "greater than or equal to `port`")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: 80\n      endPort: 70000\n"),
              ElementsAre(At(10,
                             "spec.ingress[0].ports[0].endPort: Invalid value: 70000: must be "
                             "between 1 and 65535, inclusive")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: 80\n      endPort: 0\n"),
              ElementsAre(At(10,
                             "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be "
                             "greater than or equal to `port`"),
                          At(10,
                             "spec.ingress[0].ports[0].endPort: Invalid value: 0: must be "
                             "between 1 and 65535, inclusive")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: http\n      endPort: 90\n"),
              ElementsAre(At(10,
                             "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be "
                             "specified when `port` is non-numeric")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - endPort: 90\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be "
                             "specified when `port` is not specified")));
  LoadResult r = MustLoad(Policy("  ingress:\n  - ports:\n    - {port: 80, endPort: 80}\n"));
  ASSERT_EQ(r.cluster.policies.size(), 1u);
  EXPECT_EQ(r.cluster.policies[0].ingress[0].ports[0].end_port, 80);
}

TEST(ManifestValidationTest, NamedPorts) {
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: \"80\"\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].port: Invalid value: \"80\": must "
                             "contain at least one letter (a-z)")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: this-name-is-too-long\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].port: Invalid value: "
                             "\"this-name-is-too-long\": must be no more than 15 characters")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: Http\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].port: Invalid value: \"Http\": must "
                             "contain only alpha-numeric characters (a-z, 0-9), and hyphens "
                             "(-)")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: a--b\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].port: Invalid value: \"a--b\": must not "
                             "contain consecutive hyphens")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - ports:\n    - port: web-\n"),
              ElementsAre(At(9,
                             "spec.ingress[0].ports[0].port: Invalid value: \"web-\": must not "
                             "begin or end with a hyphen")));
}

TEST(ManifestValidationTest, Peers) {
  EXPECT_THAT(SpecErrors("  ingress:\n  - from:\n    - {}\n"),
              ElementsAre(At(9, "spec.ingress[0].from[0]: Required value: must specify a peer")));
  EXPECT_THAT(SpecErrors("  egress:\n  - to:\n    - podSelector: null\n"),
              ElementsAre(At(9, "spec.egress[0].to[0]: Required value: must specify a peer")));
  EXPECT_THAT(
      SpecErrors("  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: "
                 "{}\n"),
      ElementsAre(At(9,
                     "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and "
                     "another peer")));
  EXPECT_THAT(SpecErrors("  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      "
                         "namespaceSelector: {}\n"),
              ElementsAre(At(9,
                             "spec.egress[0].to[0]: Forbidden: may not specify both ipBlock "
                             "and another peer")));
}

TEST(ManifestValidationTest, IpBlock) {
  EXPECT_THAT(SpecErrors("  ingress:\n  - from:\n    - ipBlock: {cidr: \"\"}\n"),
              ElementsAre(At(9, "spec.ingress[0].from[0].ipBlock.cidr: Required value")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - from:\n    - ipBlock: {}\n"),
              ElementsAre(At(9, "spec.ingress[0].from[0].ipBlock.cidr: Required value")));
  EXPECT_THAT(SpecErrors("  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/33\n"),
              ElementsAre(At(10,
                             "spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "
                             "\"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 "
                             "or 2001:db8::/64)")));
  EXPECT_THAT(SpecErrors(R"(  ingress:
  - from:
    - podSelector: {}
    - ipBlock:
        cidr: 10.0.0.0/8
        except:
        - 10.1.0.0/16
        - 10.0.0.0/8
        - 11.0.0.0/16
        - 10.0.0.0/4
        - fd00::/64
        - nonsense
)"),
              ElementsAre(At(14,
                             "spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: "
                             "\"10.0.0.0/8\": must be a strict subset of `cidr`"),
                          At(15,
                             "spec.ingress[0].from[1].ipBlock.except[2]: Invalid value: "
                             "\"11.0.0.0/16\": must be a strict subset of `cidr`"),
                          At(16,
                             "spec.ingress[0].from[1].ipBlock.except[3]: Invalid value: "
                             "\"10.0.0.0/4\": must be a strict subset of `cidr`"),
                          At(17,
                             "spec.ingress[0].from[1].ipBlock.except[4]: Invalid value: "
                             "\"fd00::/64\": must be a strict subset of `cidr`"),
                          At(18,
                             "spec.ingress[0].from[1].ipBlock.except[5]: Invalid value: "
                             "\"nonsense\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or "
                             "2001:db8::/64)")));
}

TEST(ManifestValidationTest, StrictCidrOption) {
  std::string spec = R"(  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.5/8
        except: [010.1.0.0/16]
    - ipBlock:
        cidr: ::ffff:10.0.0.0/104
)";
  EXPECT_THAT(SpecErrors(spec), IsEmpty());
  LoadOptions strict;
  strict.strict_cidr = true;
  EXPECT_THAT(SpecErrors(spec, strict),
              ElementsAre(At(10,
                             "spec.egress[0].to[0].ipBlock.cidr: Invalid value: "
                             "\"10.0.0.5/8\": must not have bits set beyond the prefix length"),
                          At(11,
                             "spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "
                             "\"010.1.0.0/16\": must not have leading 0s in IP or prefix "
                             "length"),
                          At(13,
                             "spec.egress[0].to[1].ipBlock.cidr: Invalid value: "
                             "\"::ffff:10.0.0.0/104\": must not have an IPv4-mapped IPv6 "
                             "address")));
}

TEST(ManifestValidationTest, PolicyTypes) {
  EXPECT_THAT(SpecErrors("  policyTypes: [Ingress, Egress, Ingress]\n"),
              ElementsAre(At(7,
                             "spec.policyTypes: Invalid value: &[]networking.PolicyType{"
                             "\"Ingress\", \"Egress\", \"Ingress\"}: may not specify more than "
                             "two policyTypes")));
  EXPECT_THAT(SpecErrors("  policyTypes:\n  - Ingress\n  - ingress\n"),
              ElementsAre(At(9,
                             "spec.policyTypes[1]: Unsupported value: \"ingress\": supported "
                             "values: \"Ingress\", \"Egress\"")));
  // Duplicates are accepted by the API server.
  EXPECT_THAT(SpecErrors("  policyTypes: [Egress, Egress]\n"), IsEmpty());
}

TEST(ManifestValidationTest, SelectorRequirements) {
  EXPECT_THAT(SpecErrors(R"(  podSelector:
    matchExpressions:
    - {key: a, operator: Equals, values: [x]}
    - {key: b, operator: In}
    - {key: c, operator: NotIn, values: []}
    - {key: d, operator: Exists, values: [x]}
    - {key: e, operator: DoesNotExist, values: [y]}
    - {key: "bad key", operator: Exists}
    - {key: f, operator: In, values: ["bad value"]}
)"),
              ElementsAre(At(9,
                             "spec.podSelector.matchExpressions[0].operator: Invalid value: "
                             "\"Equals\": not a valid selector operator"),
                          At(10,
                             "spec.podSelector.matchExpressions[1].values: Required value: "
                             "must be specified when `operator` is 'In' or 'NotIn'"),
                          At(11,
                             "spec.podSelector.matchExpressions[2].values: Required value: "
                             "must be specified when `operator` is 'In' or 'NotIn'"),
                          At(12,
                             "spec.podSelector.matchExpressions[3].values: Forbidden: may not "
                             "be specified when `operator` is 'Exists' or 'DoesNotExist'"),
                          At(13,
                             "spec.podSelector.matchExpressions[4].values: Forbidden: may not "
                             "be specified when `operator` is 'Exists' or 'DoesNotExist'"),
                          ::testing::StartsWith(At(14,
                                                   "spec.podSelector.matchExpressions[5].key: "
                                                   "Invalid value: \"bad key\": name part "
                                                   "must consist of")),
                          ::testing::StartsWith(At(15,
                                                   "spec.podSelector.matchExpressions[6]."
                                                   "values[0]: Invalid value: \"bad value\": "
                                                   "a valid label must be"))));
}

TEST(ManifestValidationTest, MatchLabelsKeysAndValues) {
  EXPECT_THAT(
      SpecErrors("  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels:\n       "
                 "   example.com/ok: yes\n          -bad: x\n          good: -bad\n"),
      ElementsAre(::testing::StartsWith(At(12,
                                           "spec.ingress[0].from[0].namespaceSelector.matchLabels: "
                                           "Invalid value: \"-bad\": name part must consist of")),
                  ::testing::StartsWith(At(13,
                                           "spec.ingress[0].from[0].namespaceSelector.matchLabels: "
                                           "Invalid value: \"-bad\": a valid label must be"))));
}

TEST(ManifestValidationTest, ErrorsFollowTheApiServerOrder) {
  // Protocol before port before endPort, ports before peers, ingress before egress, policyTypes
  // last — whatever the order of keys in the file.
  EXPECT_THAT(SpecErrors(R"(  policyTypes: [Sideways]
  egress:
  - to: [{}]
  ingress:
  - from: [{}]
    ports:
    - {endPort: 5, port: 0, protocol: tcp}
)"),
              ElementsAre(At(13,
                             "spec.ingress[0].ports[0].protocol: Unsupported value: \"tcp\": "
                             "supported values: \"TCP\", \"UDP\", \"SCTP\""),
                          At(13,
                             "spec.ingress[0].ports[0].port: Invalid value: 0: must be "
                             "between 1 and 65535, inclusive"),
                          At(11, "spec.ingress[0].from[0]: Required value: must specify a peer"),
                          At(9, "spec.egress[0].to[0]: Required value: must specify a peer"),
                          At(7,
                             "spec.policyTypes[0]: Unsupported value: \"Sideways\": supported "
                             "values: \"Ingress\", \"Egress\"")));
}

TEST(ManifestValidationTest, UnknownFields) {
  EXPECT_THAT(SpecErrors(R"(  podSelecter: {}
  ingress:
  - form: []
    ports:
    - {prot: 80}
  egress:
  - from: []
    to:
    - podSelector: {matchLabel: {a: b}}
      ipblock: {}
    - ipBlock: {cidr: 10.0.0.0/8, exclude: []}
)"),
              ElementsAre(At(7, "spec.podSelecter: unknown field \"podSelecter\""),
                          At(9, "spec.ingress[0].form: unknown field \"form\""),
                          At(11, "spec.ingress[0].ports[0].prot: unknown field \"prot\""),
                          At(13, "spec.egress[0].from: unknown field \"from\""),
                          At(16, "spec.egress[0].to[0].ipblock: unknown field \"ipblock\""),
                          At(15,
                             "spec.egress[0].to[0].podSelector.matchLabel: unknown field "
                             "\"matchLabel\""),
                          At(17,
                             "spec.egress[0].to[1].ipBlock.exclude: unknown field "
                             "\"exclude\"")));
  EXPECT_THAT(ErrorsOf("kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nstatus: {}\n"),
              ElementsAre("t.yaml:3: NetworkPolicy x/p: status: unknown field \"status\""));
  // Pods and Namespaces: only the fields Picket reads are checked; the rest is normal Kubernetes.
  MustLoad(
      "kind: Pod\nmetadata: {name: a, uid: u, annotations: {x: y}}\nspec:\n  nodeName: n\n"
      "  containers: [{name: c, image: i, ports: [{containerPort: 80, hostPort: 8080}]}]\n"
      "status: {phase: Running}\n");
}

TEST(ManifestValidationTest, DuplicateKeys) {
  EXPECT_THAT(SpecErrors("  podSelector: {}\n  podSelector: {}\n"),
              ElementsAre(At(8, "spec.podSelector: duplicate field \"podSelector\"")));
}

TEST(ManifestValidationTest, WrongTypes) {
  EXPECT_THAT(
      SpecErrors(R"(  podSelector: []
  ingress:
    from: []
  egress:
  - ports:
    - port: [1]
    - port: {a: 1}
    - port: 8.5
    - port: true
    - endPort: "90"
      port: 80
    - protocol: 6
    to: {podSelector: {}}
  policyTypes: Ingress
)"),
      ElementsAre(At(7, "spec.podSelector: Invalid type: expected a map, got a list"),
                  At(9, "spec.ingress: Invalid type: expected a list, got a map"),
                  At(12,
                     "spec.egress[0].ports[0].port: Invalid type: expected an integer or a "
                     "string, got a list"),
                  At(13,
                     "spec.egress[0].ports[1].port: Invalid type: expected an integer or a "
                     "string, got a map"),
                  At(14,
                     "spec.egress[0].ports[2].port: Invalid type: expected an integer or a "
                     "string, got a number"),
                  At(15,
                     "spec.egress[0].ports[3].port: Invalid type: expected an integer or a "
                     "string, got a boolean"),
                  At(16,
                     "spec.egress[0].ports[4].endPort: Invalid type: expected an integer, got "
                     "a string"),
                  At(18,
                     "spec.egress[0].ports[5].protocol: Invalid type: expected a string, got "
                     "an integer"),
                  At(19, "spec.egress[0].to: Invalid type: expected a list, got a map"),
                  At(20, "spec.policyTypes: Invalid type: expected a list, got a string")));
  EXPECT_THAT(ErrorsOf("kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: 5\n"),
              ElementsAre("t.yaml:3: NetworkPolicy x/p: spec: Invalid type: expected a map, got "
                          "an integer"));
  EXPECT_THAT(ErrorsOf("kind: NetworkPolicy\nmetadata: []\n"),
              ElementsAre("t.yaml:2: NetworkPolicy default/: metadata: Invalid type: expected a "
                          "map, got a list"));
  EXPECT_THAT(ErrorsOf("kind: NetworkPolicy\nmetadata: {name: 5, namespace: x}\n"),
              ElementsAre("t.yaml:2: NetworkPolicy x/: metadata.name: Invalid type: expected a "
                          "string, got an integer"));
  EXPECT_THAT(ErrorsOf("kind: [Pod]\n"),
              ElementsAre("t.yaml:1: kind: Invalid type: expected a string, got a list"));
}

TEST(ManifestValidationTest, PodFields) {
  EXPECT_THAT(
      ErrorsOf(R"(kind: Pod
metadata: {name: a, namespace: x}
spec:
  initContainers:
  - ports: [{containerPort: 0}]
  containers:
  - ports:
    - {containerPort: 80, name: HTTP}
    - {containerPort: 81, protocol: tcp}
    - {containerPort: "82"}
    - {name: web}
  - ports: {containerPort: 1}
  hostNetwork: 1
status:
  podIPs: [{ip: 10.0.0.300}, {}]
)"),
      ElementsAre("t.yaml:5: Pod x/a: spec.initContainers[0].ports[0].containerPort: Invalid "
                  "value: 0: must be between 1 and 65535, inclusive",
                  "t.yaml:8: Pod x/a: spec.containers[0].ports[0].name: Invalid value: \"HTTP\": "
                  "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                  "t.yaml:8: Pod x/a: spec.containers[0].ports[0].name: Invalid value: \"HTTP\": "
                  "must contain at least one letter (a-z)",
                  "t.yaml:9: Pod x/a: spec.containers[0].ports[1].protocol: Unsupported value: "
                  "\"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                  "t.yaml:10: Pod x/a: spec.containers[0].ports[2].containerPort: Invalid type: "
                  "expected an integer, got a string",
                  "t.yaml:11: Pod x/a: spec.containers[0].ports[3].containerPort: Invalid value: "
                  "0: must be between 1 and 65535, inclusive",
                  "t.yaml:12: Pod x/a: spec.containers[1].ports: Invalid type: expected a list, "
                  "got a map",
                  "t.yaml:13: Pod x/a: spec.hostNetwork: Invalid type: expected a boolean, got an "
                  "integer",
                  "t.yaml:15: Pod x/a: status.podIPs[0].ip: Invalid value: \"10.0.0.300\": must "
                  "be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                  "t.yaml:15: Pod x/a: status.podIPs[1].ip: Required value"));
}

// status.hostIPs / status.hostIP (the pod's node) are validated as podIPs / podIP are.
TEST(ManifestValidationTest, PodHostIps) {
  EXPECT_THAT(ErrorsOf(R"(kind: Pod
metadata: {name: a, namespace: x}
status:
  hostIP: 10.0.0.1
  hostIPs:
  - {ip: 10.0.0.1}
  - {ip: 192.168.0.256}
  - {}
  - ip: [fd00::1]
  - 5
)"),
              ElementsAre("t.yaml:7: Pod x/a: status.hostIPs[1].ip: Invalid value: "
                          "\"192.168.0.256\": must be a valid IP address, (e.g. 10.9.8.7 or "
                          "2001:db8::ffff)",
                          "t.yaml:8: Pod x/a: status.hostIPs[2].ip: Required value",
                          "t.yaml:9: Pod x/a: status.hostIPs[3].ip: Invalid type: expected a "
                          "string, got a list",
                          "t.yaml:10: Pod x/a: status.hostIPs[4]: Invalid type: expected a map, "
                          "got an integer"));
  EXPECT_THAT(ErrorsOf("kind: Pod\nmetadata: {name: a, namespace: x}\nstatus:\n"
                       "  hostIP: node-1\n"),
              ElementsAre("t.yaml:4: Pod x/a: status.hostIP: Invalid value: \"node-1\": must be "
                          "a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
  EXPECT_THAT(ErrorsOf("kind: Pod\nmetadata: {name: a, namespace: x}\nstatus:\n"
                       "  hostIPs: {ip: 10.0.0.1}\n"),
              ElementsAre("t.yaml:4: Pod x/a: status.hostIPs: Invalid type: expected a list, got "
                          "a map"));
}

TEST(ManifestValidationTest, NamespaceName) {
  EXPECT_THAT(ErrorsOf("kind: Namespace\nmetadata: {}\n"),
              ElementsAre("t.yaml:2: Namespace: metadata.name: Required value: name or "
                          "generateName is required"));
  EXPECT_THAT(ErrorsOf("kind: Namespace\nmetadata: {name: a.b}\n"),
              ElementsAre(::testing::StartsWith(
                  "t.yaml:2: Namespace a.b: metadata.name: Invalid value: \"a.b\": a lowercase RFC "
                  "1123 label must consist of")));
}

TEST(ManifestValidationTest, ReportsEveryErrorOfARun) {
  std::vector<std::string> errors = ErrorsOf(R"(kind: NetworkPolicy
metadata: {name: a, namespace: x}
spec:
  ingress: [{from: [{}]}]
---
kind: Pod
metadata: {name: b, namespace: x}
spec: {containers: [{ports: [{containerPort: 0}]}]}
---
kind: NetworkPolicy
metadata: {name: c, namespace: x}
spec: {egress: [{ports: [{port: 0}]}]}
)");
  EXPECT_THAT(errors,
              ElementsAre("t.yaml:4: NetworkPolicy x/a: spec.ingress[0].from[0]: Required value: "
                          "must specify a peer",
                          "t.yaml:8: Pod x/b: spec.containers[0].ports[0].containerPort: Invalid "
                          "value: 0: must be between 1 and 65535, inclusive",
                          "t.yaml:12: NetworkPolicy x/c: spec.egress[0].ports[0].port: Invalid "
                          "value: 0: must be between 1 and 65535, inclusive"));
}

}  // namespace
}  // namespace picket::config
