#include "config/bootstrap.h"

#include <gtest/gtest.h>

namespace picket::config {
namespace {

constexpr const char* kMinimal = R"(node:
  namespace: default
  name: client
  ips: [10.0.0.1]
policy_file: /etc/picket/policy.json
)";

std::string Render(const Errors& errors) {
  std::string out;
  for (const Error& e : errors) out += e.ToString() + "\n";
  return out;
}

TEST(BootstrapTest, MinimalGetsDefaults) {
  auto b = ParseBootstrap(kMinimal, "b.yaml");
  ASSERT_TRUE(b) << Render(b.error());
  EXPECT_EQ(b->node.ns, "default");
  EXPECT_EQ(b->node.name, "client");
  EXPECT_EQ(b->node.ips, std::vector<std::string>{"10.0.0.1"});
  EXPECT_EQ(b->listeners.outbound_port, 15001);
  EXPECT_EQ(b->listeners.inbound_port, 15006);
  EXPECT_EQ(b->admin.host, "127.0.0.1");
  EXPECT_EQ(b->admin.port, 15000);
  EXPECT_FALSE(b->admin.metrics_port.has_value());  // no metrics listener unless asked
  EXPECT_EQ(b->process_log, "stderr");
  EXPECT_EQ(b->flow_log.path, "stdout");
  EXPECT_FALSE(b->flow_log.log_allowed);
  EXPECT_EQ(b->flow_log.lines_per_second, 1000u);
  EXPECT_EQ(b->flow_log.bytes_per_second, 1u << 20);
  EXPECT_TRUE(b->recheck_on_policy_change);
  EXPECT_EQ(b->workers, 0u);
  EXPECT_EQ(b->limits.max_connections, 0u);
  EXPECT_EQ(b->timeouts.connect, std::chrono::seconds(5));
  EXPECT_FALSE(b->xds.has_value());
  EXPECT_EQ(b->source_file, "b.yaml");
}

TEST(BootstrapTest, FullFile) {
  auto b = ParseBootstrap(R"(node:
  namespace: prod
  name: web-0
  ips: [10.1.0.7, "fd00::7"]
listeners: {outbound_port: 16001, inbound_port: 16006, ipv6: false}
admin: {address: "[::1]:16000", metrics_port: 15090}
flow_log:
  path: /var/log/flows.json
  max_size: 1Mi
  max_files: 5
  log_allowed: true
  rate_per_source: 10
  recent: 50
  lines_per_second: 200
  bytes_per_second: 256Ki
  recent_tuples: 1000
limits: {max_connections: 100, buffer_size: 32Ki, pipe_size: 256Ki, splice: false}
timeouts: {connect: 250ms, idle: 10m, drain: 2s}
recheck_on_policy_change: false
process_log: stdout
workers: 2
xds:
  address: control.picket:15010
  tls: {cert: c.pem, key: k.pem, ca: ca.pem}
)",
                          "full.yaml");
  ASSERT_TRUE(b) << Render(b.error());
  EXPECT_EQ(b->node.ips.size(), 2u);
  EXPECT_EQ(b->listeners.outbound_port, 16001);
  EXPECT_FALSE(b->listeners.ipv6);
  EXPECT_EQ(b->admin.host, "::1");
  EXPECT_EQ(b->admin.port, 16000);
  EXPECT_EQ(b->admin.metrics_port, 15090);
  EXPECT_EQ(b->flow_log.max_size_bytes, 1u << 20);
  EXPECT_EQ(b->flow_log.max_files, 5u);
  EXPECT_TRUE(b->flow_log.log_allowed);
  EXPECT_EQ(b->flow_log.lines_per_second, 200u);
  EXPECT_EQ(b->flow_log.bytes_per_second, 256u * 1024);
  EXPECT_EQ(b->flow_log.recent_tuples, 1000u);
  EXPECT_EQ(b->limits.buffer_size, 32u * 1024);
  EXPECT_FALSE(b->limits.splice);
  EXPECT_EQ(b->timeouts.connect, std::chrono::milliseconds(250));
  EXPECT_EQ(b->timeouts.idle, std::chrono::minutes(10));
  EXPECT_FALSE(b->recheck_on_policy_change);
  EXPECT_EQ(b->process_log, "stdout");
  EXPECT_EQ(b->workers, 2u);
  ASSERT_TRUE(b->xds);
  EXPECT_EQ(b->xds->address, "control.picket:15010");
  EXPECT_EQ(b->xds->tls.ca, "ca.pem");
}

TEST(BootstrapTest, UnknownKeysAreErrorsWithLineAndPath) {
  auto b = ParseBootstrap(R"(node:
  namespace: default
  name: client
  ips: [10.0.0.1]
  colour: blue
policy_file: p.json
timeouts: {conect: 5s}
)",
                          "b.yaml");
  ASSERT_FALSE(b);
  std::string text = Render(b.error());
  EXPECT_NE(
      text.find("b.yaml:5: node.colour: unknown field (known: namespace, name, ips, node_name)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("b.yaml:7: timeouts.conect: unknown field"), std::string::npos) << text;
  EXPECT_EQ(b.error().size(), 2u);  // every error of the run, not just the first
}

TEST(BootstrapTest, MetricsPortIsAPortOtherThanTheListeners) {
  for (const auto& [value, expected] : {
           std::pair{"0", "b.yaml:5: admin.metrics_port: must be between 1 and 65535"},
           std::pair{"http", "b.yaml:5: admin.metrics_port: must be a non-negative integer"},
           std::pair{"15006",
                     "admin.metrics_port: must differ from listeners.outbound_port and "
                     "listeners.inbound_port"},
       }) {
    auto b = ParseBootstrap(std::string(R"(node:
  namespace: default
  name: client
  ips: [10.0.0.1]
admin: {metrics_port: )") + value +
                                R"(}
policy_file: p.json
)",
                            "b.yaml");
    ASSERT_FALSE(b) << value;
    const std::string text = Render(b.error());
    EXPECT_NE(text.find(expected), std::string::npos) << text;
  }
}

TEST(BootstrapTest, ReportsEveryBadValue) {
  auto b = ParseBootstrap(R"(node:
  namespace: Default
  name: client
  ips: [10.0.0.300]
listeners: {outbound_port: 70000, inbound_port: 15006}
admin: {address: "0.0.0.0:15000"}
timeouts: {idle: 5 minutes, drain: 0s}
limits: {buffer_size: 12}
recheck_on_policy_change: maybe
workers: -1
process_log: syslog
)",
                          "bad.yaml");
  ASSERT_FALSE(b);
  std::string text = Render(b.error());
  for (const char* expected : {
           "bad.yaml:2: node.namespace: must be a lowercase RFC 1123 name",
           "bad.yaml:4: node.ips[0]: must be an IPv4 or IPv6 address",
           "bad.yaml:5: listeners.outbound_port: must be between 1 and 65535",
           "bad.yaml:6: admin.address: must be a loopback address",
           "bad.yaml:7: timeouts.idle: must be a duration such as 250ms, 5s, 10m or 1h",
           "bad.yaml:7: timeouts.drain: must be greater than zero",
           "bad.yaml:8: limits.buffer_size: must be between 4096 and 16777216 bytes",
           "bad.yaml:9: recheck_on_policy_change: must be true or false",
           "bad.yaml:10: workers: must be a non-negative integer",
           "bad.yaml:11: process_log: Unsupported value: \"syslog\": supported values: "
           "\"stderr\", \"stdout\"",
           "policy_file: Required value",
       }) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\n" << text;
  }
}

TEST(BootstrapTest, RequiredFields) {
  auto b = ParseBootstrap("policy_file: p.json\n", "b.yaml");
  ASSERT_FALSE(b);
  EXPECT_NE(Render(b.error()).find("node: Required value"), std::string::npos);
  auto c = ParseBootstrap("node: {namespace: a, name: b}\npolicy_file: p\n", "c.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(Render(c.error()).find("c.yaml:1: node.ips: Required value"), std::string::npos)
      << Render(c.error());
}

TEST(BootstrapTest, SamePortsAndTlsHalvesRejected) {
  auto b = ParseBootstrap(R"(node: {namespace: a, name: b, ips: [10.0.0.1]}
listeners: {outbound_port: 15001, inbound_port: 15001}
xds: {address: "c:1", tls: {cert: c.pem}}
)",
                          "b.yaml");
  ASSERT_FALSE(b);
  std::string text = Render(b.error());
  EXPECT_NE(text.find("listeners.inbound_port: must differ"), std::string::npos) << text;
  EXPECT_NE(text.find("xds.tls: cert and key must be given together"), std::string::npos) << text;
}

TEST(BootstrapTest, OnePolicySourceAndXdsNeedsMutualTls) {
  auto b = ParseBootstrap(R"(node: {namespace: a, name: b, ips: [10.0.0.1]}
policy_file: p.json
xds: {address: "c:1", tls: {cert: c.pem, key: k.pem, ca: ca.pem}}
)",
                          "b.yaml");
  ASSERT_FALSE(b);
  std::string text = Render(b.error());
  EXPECT_NE(text.find("b.yaml:2: policy_file: Forbidden: policy_file and xds are mutually "
                      "exclusive"),
            std::string::npos)
      << text;
  auto c = ParseBootstrap(R"(node: {namespace: a, name: b, ips: [10.0.0.1]}
xds: {address: "c:1"}
)",
                          "c.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(Render(c.error()).find("xds.tls: Required value: ca, and cert and key or token_file "
                                   "and csr_address"),
            std::string::npos)
      << Render(c.error());
}

TEST(BootstrapTest, XdsTokenIdentity) {
  auto b = ParseBootstrap(R"(node: {namespace: a, name: b, ips: [10.0.0.1]}
xds: {address: "c:15012", tls: {ca: ca.pem, token_file: /var/run/secrets/picket/token,
      csr_address: "c:15014"}}
)",
                          "b.yaml");
  ASSERT_TRUE(b) << Render(b.error());
  EXPECT_EQ(b->xds->tls.token_file, "/var/run/secrets/picket/token");
  EXPECT_EQ(b->xds->tls.csr_address, "c:15014");
  EXPECT_TRUE(b->xds->tls.cert.empty());
  const std::pair<const char*, const char*> bad[] = {
      {"{ca: ca.pem, token_file: t}", "xds.tls: token_file and csr_address must be given together"},
      {"{ca: ca.pem, token_file: t, csr_address: nope}", "xds.tls.csr_address: must be host:port"},
      {"{ca: ca.pem, token_file: t, csr_address: \"c:1\", cert: c, key: k}", "not both"},
      {"{token_file: t, csr_address: \"c:1\"}", "xds.tls: Required value: ca"},
  };
  for (const auto& [tls, want] : bad) {
    const std::string text =
        "node: {namespace: a, name: b, ips: [10.0.0.1]}\n"
        "xds: {address: \"c:1\", tls: " +
        std::string(tls) + "}\n";
    auto c = ParseBootstrap(text, "c.yaml");
    ASSERT_FALSE(c) << tls;
    EXPECT_NE(Render(c.error()).find(want), std::string::npos) << Render(c.error());
  }
}

TEST(BootstrapTest, XdsFallbackAddressesAreHostPortsAndBounded) {
  auto b = ParseBootstrap(R"(node: {namespace: a, name: b, ips: [10.0.0.1]}
xds: {address: "c:1", fallback_addresses: ["c-1:15012", "[fd00::1]:15012"],
      tls: {cert: c.pem, key: k.pem, ca: ca.pem}}
)",
                          "b.yaml");
  ASSERT_TRUE(b) << Render(b.error());
  EXPECT_EQ(b->xds->fallback_addresses, (std::vector<std::string>{"c-1:15012", "[fd00::1]:15012"}));
  auto c = ParseBootstrap(R"(node: {namespace: a, name: b, ips: [10.0.0.1]}
xds: {address: "c:1", fallback_addresses: ["c-1:15012", "nope"],
      tls: {cert: c.pem, key: k.pem, ca: ca.pem}}
)",
                          "c.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(Render(c.error()).find("c.yaml:2: xds.fallback_addresses[1]: must be host:port"),
            std::string::npos)
      << Render(c.error());
  std::string many;
  for (int i = 0; i <= 16; ++i) many += (i ? ", " : "") + std::string("\"c:1\"");
  auto d = ParseBootstrap(
      "node: {namespace: a, name: b, ips: [10.0.0.1]}\nxds: {address: \"c:1\", "
      "fallback_addresses: [" +
          many + "], tls: {cert: c.pem, key: k.pem, ca: ca.pem}}\n",
      "d.yaml");
  ASSERT_FALSE(d);
  EXPECT_NE(Render(d.error()).find("xds.fallback_addresses: must be a list of at most 16"),
            std::string::npos)
      << Render(d.error());
}

TEST(BootstrapTest, PassthroughSourcesMustMatchTheirFamily) {
  auto ok = ParseBootstrap(std::string(kMinimal) + "listeners: {inbound_passthrough_v6: \"\"}\n",
                           "b.yaml");
  ASSERT_TRUE(ok) << Render(ok.error());
  EXPECT_EQ(ok->listeners.inbound_passthrough_v4, "127.0.0.7");
  EXPECT_EQ(ok->listeners.inbound_passthrough_v6, "");
  auto bad = ParseBootstrap(
      std::string(kMinimal) + "listeners: {inbound_passthrough_v4: \"::7\"}\n", "b.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(Render(bad.error()).find("b.yaml:6: listeners.inbound_passthrough_v4: must be an IPv4"),
            std::string::npos)
      << Render(bad.error());
}

TEST(BootstrapTest, SyntaxErrorHasALine) {
  auto b = ParseBootstrap("node: [\n", "s.yaml");
  ASSERT_FALSE(b);
  ASSERT_EQ(b.error().size(), 1u);
  EXPECT_EQ(b.error()[0].file, "s.yaml");
  EXPECT_GT(b.error()[0].line, 0);
}

TEST(BootstrapTest, NotAMapping) {
  auto b = ParseBootstrap("- a\n- b\n", "l.yaml");
  ASSERT_FALSE(b);
  EXPECT_NE(Render(b.error()).find("must be a mapping"), std::string::npos);
}

TEST(BootstrapTest, MissingFile) {
  auto b = LoadBootstrap("/nonexistent/bootstrap.yaml");
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error()[0].ToString(), "/nonexistent/bootstrap.yaml: cannot open file");
}

}  // namespace
}  // namespace picket::config

namespace picket::config {
namespace {

TEST(BootstrapTest, UdpSctpEnforcementIsExplicitAndBounded) {
  auto off = ParseBootstrap(std::string(kMinimal), "b.yaml");
  ASSERT_TRUE(off) << Render(off.error());
  EXPECT_FALSE(off->udp_sctp.enforce);  // the injector writes `enforce: true`
  EXPECT_EQ(off->udp_sctp.queue, 15000);
  auto on = ParseBootstrap(std::string(kMinimal) +
                               "udp_sctp: {enforce: true, queue: 7, "
                               "queue_max_len: 100}\n",
                           "b.yaml");
  ASSERT_TRUE(on) << Render(on.error());
  EXPECT_TRUE(on->udp_sctp.enforce);
  EXPECT_EQ(on->udp_sctp.queue, 7);
  EXPECT_EQ(on->udp_sctp.queue_max_len, 100u);
  auto bad = ParseBootstrap(std::string(kMinimal) +
                                "udp_sctp: {enforce: yes please, queue: "
                                "65536, queue_max_len: 0, bypass: true}\n",
                            "bad.yaml");
  ASSERT_FALSE(bad);
  const std::string text = Render(bad.error());
  for (const char* expected : {"udp_sctp.enforce: must be true or false",
                               "udp_sctp.queue:", "udp_sctp.queue_max_len:", "udp_sctp.bypass"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\n" << text;
  }
}

TEST(BootstrapTest, VerdictQueuesAreBounded) {
  auto two =
      ParseBootstrap(std::string(kMinimal) + "udp_sctp: {enforce: true, queues: 2}\n", "b.yaml");
  ASSERT_TRUE(two) << Render(two.error());
  EXPECT_EQ(two->udp_sctp.queues, 2);
  EXPECT_EQ(ParseBootstrap(kMinimal, "b.yaml")->udp_sctp.queues, 1);
  for (const char* bad : {"udp_sctp: {queues: 0}\n", "udp_sctp: {queues: 65}\n",
                          "udp_sctp: {queue: 65535, queues: 2}\n"}) {
    auto r = ParseBootstrap(std::string(kMinimal) + bad, "bad.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(Render(r.error()).find("udp_sctp.queues"), std::string::npos) << Render(r.error());
  }
}

TEST(BootstrapTest, TheVerdictCacheIsOnByDefaultAndBounded) {
  auto plain = ParseBootstrap(std::string(kMinimal), "b.yaml");
  ASSERT_TRUE(plain) << Render(plain.error());
  EXPECT_TRUE(plain->verdict_cache.enabled);
  EXPECT_EQ(plain->verdict_cache.max_entries, 16384u);
  EXPECT_EQ(plain->verdict_cache.ttl, std::chrono::seconds(60));
  auto set = ParseBootstrap(
      std::string(kMinimal) + "verdict_cache: {enabled: false, max_entries: 2, ttl: 1s}\n",
      "b.yaml");
  ASSERT_TRUE(set) << Render(set.error());
  EXPECT_FALSE(set->verdict_cache.enabled);
  EXPECT_EQ(set->verdict_cache.max_entries, 2u);
  EXPECT_EQ(set->verdict_cache.ttl, std::chrono::seconds(1));
  for (auto [bad, expected] :
       {std::pair{"verdict_cache: {max_entries: 0}\n", "verdict_cache.max_entries"},
        std::pair{"verdict_cache: {max_entries: 1048577}\n", "verdict_cache.max_entries"},
        std::pair{"verdict_cache: {ttl: 999ms}\n", "verdict_cache.ttl: must be between 1s and 24h"},
        std::pair{"verdict_cache: {ttl: 25h}\n", "verdict_cache.ttl: must be between 1s and 24h"},
        std::pair{"verdict_cache: {enabled: maybe}\n", "verdict_cache.enabled"},
        std::pair{"verdict_cache: {size: 3}\n", "verdict_cache.size"}}) {
    auto r = ParseBootstrap(std::string(kMinimal) + bad, "bad.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(Render(r.error()).find(expected), std::string::npos) << Render(r.error());
  }
}

TEST(BootstrapTest, CaptureModeIsRelayUnlessVerdictIsAsked) {
  auto relay = ParseBootstrap(std::string(kMinimal), "b.yaml");
  ASSERT_TRUE(relay) << Render(relay.error());
  EXPECT_EQ(relay->capture, CaptureMode::kRelay);
  auto verdict = ParseBootstrap(std::string(kMinimal) + "capture: verdict\n", "b.yaml");
  ASSERT_TRUE(verdict) << Render(verdict.error());
  EXPECT_EQ(verdict->capture, CaptureMode::kVerdict);
  EXPECT_STREQ(CaptureModeName(verdict->capture), "verdict");
  auto bad = ParseBootstrap(std::string(kMinimal) + "capture: tproxy\n", "bad.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(Render(bad.error())
                .find("capture: Unsupported value: \"tproxy\": supported values: "
                      "\"relay\", \"verdict\""),
            std::string::npos)
      << Render(bad.error());
  // The marks: inside the mask, and "reject" is not "judged".
  EXPECT_EQ(kVerdictMarkReject & ~kVerdictMarkMask, 0u);
  EXPECT_EQ(kVerdictMarkJudged & ~kVerdictMarkMask, 0u);
  EXPECT_NE(kVerdictMarkReject, kVerdictMarkJudged);
}

// The Kubernetes node (flow records' node_name): optional, a lowercase RFC 1123 subdomain.
TEST(BootstrapTest, NodeNameIsOptionalAndValidated) {
  auto absent = ParseBootstrap(kMinimal, "a.yaml");
  ASSERT_TRUE(absent) << Render(absent.error());
  EXPECT_EQ(absent->node.node_name, "");
  auto set = ParseBootstrap(
      "node: {namespace: a, name: b, ips: [10.0.0.1], node_name: worker-1.example}\n"
      "policy_file: p\n",
      "s.yaml");
  ASSERT_TRUE(set) << Render(set.error());
  EXPECT_EQ(set->node.node_name, "worker-1.example");
  for (const char* bad : {"Worker_1", "\"\"", "[a]"}) {
    auto b =
        ParseBootstrap(std::string("node: {namespace: a, name: b, ips: [10.0.0.1], node_name: ") +
                           bad + "}\npolicy_file: p\n",
                       "b.yaml");
    ASSERT_FALSE(b) << bad;
    EXPECT_NE(Render(b.error()).find("b.yaml:1: node.node_name: must be"), std::string::npos)
        << Render(b.error());
  }
}

}  // namespace
}  // namespace picket::config
