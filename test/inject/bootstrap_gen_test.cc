// Tests inject/bootstrap_gen.h: the bootstrap a sidecar builds from the downward API.
#include "inject/bootstrap_gen.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "config/bootstrap.h"

namespace picket::inject {
namespace {

TEST(Bootstrap, FromDownwardApiValues) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-7d4b9c-x2x9z";
  p.ips = {"10.244.1.7,fd00:10:244:1::7", "10.244.1.7"};  // status.podIPs is comma-separated
  p.xds_address = "picket-control.picket-system.svc:15012";
  p.xds_cert = "/etc/picket/certs/tls.crt";
  p.xds_key = "/etc/picket/certs/tls.key";
  p.xds_ca = "/etc/picket/certs/ca.crt";
  auto doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  EXPECT_EQ(config::EmitYaml(*doc),
            "node:\n"
            "  namespace: shop\n"
            "  name: web-7d4b9c-x2x9z\n"
            "  ips:\n"
            "  - \"10.244.1.7\"\n"
            "  - fd00:10:244:1::7\n"
            "listeners:\n"
            "  outbound_port: 15001\n"
            "  inbound_port: 15006\n"
            "admin:\n"
            "  address: \"127.0.0.1:15000\"\n"
            "udp_sctp:\n"
            "  enforce: true\n"
            "  queue: 15000\n"
            "xds:\n"
            "  address: picket-control.picket-system.svc:15012\n"
            "  tls:\n"
            "    cert: /etc/picket/certs/tls.crt\n"
            "    key: /etc/picket/certs/tls.key\n"
            "    ca: /etc/picket/certs/ca.crt\n");
}

// What we generate is what picket-proxy accepts (config/bootstrap.h), both policy sources.
TEST(Bootstrap, UdpSctpOptOutIsExplicitAndTheProxyReadsIt) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "dns";
  p.ips = {"10.0.0.9"};
  p.policy_file = "/etc/picket/policy.json";
  p.nfqueue = 77;
  for (bool on : {true, false}) {
    p.udp_sctp = on;
    auto doc = BuildBootstrap(p);
    ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
    auto parsed = config::ParseBootstrap(config::EmitYaml(*doc), "gen.yaml");
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->udp_sctp.enforce, on);
    EXPECT_EQ(parsed->udp_sctp.queue, 77);
  }
}

// TCP verdict mode: written as the top-level `capture: verdict`, which the proxy reads; relay
// (the parser's default) writes nothing. The queue is written either way, also without UDP/SCTP.
TEST(Bootstrap, CaptureVerdictIsWrittenAndTheProxyReadsIt) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "api";
  p.ips = {"10.0.0.9"};
  p.policy_file = "/etc/picket/policy.json";
  p.nfqueue = 77;
  for (bool udp_sctp : {true, false}) {
    p.udp_sctp = udp_sctp;
    p.capture = config::CaptureMode::kVerdict;
    auto doc = BuildBootstrap(p);
    ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
    const std::string text = config::EmitYaml(*doc);
    EXPECT_NE(text.find("\ncapture: verdict\n"), std::string::npos) << text;
    auto parsed = config::ParseBootstrap(text, "gen.yaml");
    ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
    EXPECT_EQ(parsed->capture, config::CaptureMode::kVerdict);
    EXPECT_EQ(parsed->udp_sctp.enforce, udp_sctp);
    EXPECT_EQ(parsed->udp_sctp.queue, 77);

    p.capture = config::CaptureMode::kRelay;
    doc = BuildBootstrap(p);
    ASSERT_TRUE(doc.has_value());
    EXPECT_EQ(config::EmitYaml(*doc).find("capture"), std::string::npos);
    parsed = config::ParseBootstrap(config::EmitYaml(*doc), "gen.yaml");
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->capture, config::CaptureMode::kRelay);
  }
}

TEST(Bootstrap, TheProxyAcceptsIt) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7,fd00::7"};
  p.policy_file = "/etc/picket/policy.json";
  p.flow_log = "/var/log/picket/flows.jsonl";
  auto doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  auto parsed = config::ParseBootstrap(config::EmitYaml(*doc), "generated.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
  EXPECT_EQ(parsed->node.ns, "shop");
  EXPECT_EQ(parsed->node.name, "web-0");
  EXPECT_EQ(parsed->node.ips, (std::vector<std::string>{"10.0.0.7", "fd00::7"}));
  EXPECT_EQ(parsed->policy_file, "/etc/picket/policy.json");
  EXPECT_EQ(parsed->flow_log.path, "/var/log/picket/flows.jsonl");
  EXPECT_EQ(parsed->listeners.outbound_port, 15001);
  EXPECT_EQ(parsed->admin.port, 15000);

  p.policy_file.clear();
  p.xds_address = "picket-control.picket-system.svc:15012";
  p.xds_cert = "/c";
  p.xds_key = "/k";
  p.xds_ca = "/ca";
  doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value());
  parsed = config::ParseBootstrap(config::EmitYaml(*doc), "generated.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
  ASSERT_TRUE(parsed->xds.has_value());
  EXPECT_EQ(parsed->xds->address, "picket-control.picket-system.svc:15012");
  EXPECT_EQ(parsed->xds->tls.key, "/k");
}

// The injected sidecar's identity: its projected token and the control server's certificate
// endpoint instead of certificate files.
TEST(Bootstrap, XdsTokenIdentity) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7"};
  p.xds_address = "picket-control.picket-system.svc:15012";
  p.xds_token_file = "/etc/picket/certs/token";
  p.xds_csr_address = "picket-control.picket-system.svc:15014";
  p.xds_ca = "/etc/picket/certs/ca.crt";
  auto doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  auto parsed = config::ParseBootstrap(config::EmitYaml(*doc), "generated.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
  EXPECT_EQ(parsed->xds->tls.token_file, "/etc/picket/certs/token");
  EXPECT_EQ(parsed->xds->tls.csr_address, "picket-control.picket-system.svc:15014");
  EXPECT_TRUE(parsed->xds->tls.cert.empty());

  BootstrapParams both = p;
  both.xds_cert = "/c";
  both.xds_key = "/k";
  ASSERT_FALSE(BuildBootstrap(both).has_value());
  EXPECT_NE(BuildBootstrap(both).error().ToString().find("not both"), std::string::npos);
  BootstrapParams no_csr = p;
  no_csr.xds_csr_address.clear();
  ASSERT_FALSE(BuildBootstrap(no_csr).has_value());
  EXPECT_NE(BuildBootstrap(no_csr).error().ToString().find("needs --xds-csr-address"),
            std::string::npos)
      << BuildBootstrap(no_csr).error().ToString();
  BootstrapParams bad = p;
  bad.xds_csr_address = "nope";
  ASSERT_FALSE(BuildBootstrap(bad).has_value());
  EXPECT_NE(BuildBootstrap(bad).error().ToString().find("--xds-csr-address"), std::string::npos);
}

// The injected sidecar's admin Unix socket: in the bootstrap as admin.socket, as the proxy reads
// it; a relative path, one directly under "/" or one too long for sun_path is refused.
TEST(Bootstrap, AdminSocket) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7"};
  p.policy_file = "/etc/picket/policy.json";
  p.admin_socket = "/etc/picket/run/admin/admin.sock";
  auto doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  auto parsed = config::ParseBootstrap(config::EmitYaml(*doc), "generated.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
  EXPECT_EQ(parsed->admin.socket, "/etc/picket/run/admin/admin.sock");
  EXPECT_EQ(parsed->admin.port, 15000);
  for (const char* bad : {"admin.sock", "/admin.sock", "/run/dir/", "relative/admin.sock"}) {
    p.admin_socket = bad;
    auto refused = BuildBootstrap(p);
    ASSERT_FALSE(refused.has_value()) << bad;
    EXPECT_EQ(refused.error().field, "--admin-socket") << bad;
  }
  p.admin_socket = "/run/" + std::string(120, 'x') + "/a.sock";
  EXPECT_FALSE(BuildBootstrap(p).has_value());
}

// --metrics-port: admin.metrics_port as the proxy reads it; none by default; not a listener's.
TEST(Bootstrap, MetricsPort) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7"};
  p.policy_file = "/etc/picket/policy.json";
  auto none = BuildBootstrap(p);
  ASSERT_TRUE(none.has_value()) << none.error().ToString();
  auto parsed = config::ParseBootstrap(config::EmitYaml(*none), "generated.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
  EXPECT_FALSE(parsed->admin.metrics_port.has_value());
  p.metrics_port = 15090;
  auto doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  parsed = config::ParseBootstrap(config::EmitYaml(*doc), "generated.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
  EXPECT_EQ(parsed->admin.metrics_port, 15090);
  p.metrics_port = p.inbound_port;
  auto refused = BuildBootstrap(p);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().field, "--metrics-port");
}

// --process-log: the bootstrap's process_log, as the proxy reads it.
TEST(Bootstrap, ProcessLog) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7"};
  p.policy_file = "/etc/picket/policy.json";
  p.process_log = "stdout";
  auto doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  auto parsed = config::ParseBootstrap(config::EmitYaml(*doc), "generated.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
  EXPECT_EQ(parsed->process_log, "stdout");
  p.process_log = "syslog";
  auto refused = BuildBootstrap(p);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().field, "--process-log");
}

TEST(Bootstrap, RejectsBadInput) {
  BootstrapParams ok;
  ok.ns = "a";
  ok.pod = "b";
  ok.ips = {"10.0.0.1"};
  ok.policy_file = "/p.yaml";
  ASSERT_TRUE(BuildBootstrap(ok).has_value());
  auto with = [&](auto mutate) {
    BootstrapParams p = ok;
    mutate(p);
    return BuildBootstrap(p);
  };
  EXPECT_FALSE(with([](BootstrapParams& p) { p.ns = "Bad_NS"; }).has_value());
  EXPECT_FALSE(with([](BootstrapParams& p) { p.pod = ""; }).has_value());
  EXPECT_FALSE(with([](BootstrapParams& p) { p.ips = {"10.0.0.300"}; }).has_value());
  EXPECT_FALSE(with([](BootstrapParams& p) { p.ips = {"$(POD_IPS)"}; }).has_value());
  EXPECT_FALSE(with([](BootstrapParams& p) { p.ips = {}; }).has_value());
  EXPECT_FALSE(with([](BootstrapParams& p) { p.policy_file = ""; }).has_value());
  auto bad_node = with([](BootstrapParams& p) { p.node_name = "$(NODE_NAME)"; });
  ASSERT_FALSE(bad_node.has_value());
  EXPECT_NE(bad_node.error().ToString().find("--node-name"), std::string::npos)
      << bad_node.error().ToString();
}

// The Kubernetes node (downward API spec.nodeName) becomes node.node_name, which the proxy reads;
// without it the field is left out (flow records then omit node_name).
TEST(Bootstrap, NodeNameFromTheDownwardApi) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7"};
  p.policy_file = "/p.yaml";
  auto without = BuildBootstrap(p);
  ASSERT_TRUE(without.has_value()) << without.error().ToString();
  EXPECT_EQ(config::EmitYaml(*without).find("node_name"), std::string::npos);
  p.node_name = "kind-worker2";
  auto doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  EXPECT_NE(config::EmitYaml(*doc).find("  node_name: kind-worker2\n"), std::string::npos)
      << config::EmitYaml(*doc);
  auto parsed = config::ParseBootstrap(config::EmitYaml(*doc), "generated.yaml");
  ASSERT_TRUE(parsed.has_value()) << parsed.error()[0].ToString();
  EXPECT_EQ(parsed->node.node_name, "kind-worker2");
}

// picket-proxy refuses an xds section without cert, key and ca; the generator refuses first and
// names exactly the flags that are missing.
TEST(Bootstrap, XdsNeedsEveryTlsFlag) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7"};
  p.xds_address = "picket-control.picket-system.svc:15012";
  auto doc = BuildBootstrap(p);
  ASSERT_FALSE(doc.has_value());
  EXPECT_NE(
      doc.error().ToString().find("--xds-address needs mutual TLS: missing --xds-cert, --xds-key, "
                                  "--xds-ca"),
      std::string::npos)
      << doc.error().ToString();

  p.xds_key = "/k";
  doc = BuildBootstrap(p);
  ASSERT_FALSE(doc.has_value());
  EXPECT_NE(doc.error().ToString().find("missing --xds-cert, --xds-ca ("), std::string::npos)
      << doc.error().ToString();

  p.xds_cert = "/c";
  p.xds_ca = "/ca";
  EXPECT_TRUE(BuildBootstrap(p).has_value());

  // TLS files without an xDS address would be silently dropped: refused too.
  p.xds_address.clear();
  p.policy_file = "/p.json";
  doc = BuildBootstrap(p);
  ASSERT_FALSE(doc.has_value());
  EXPECT_NE(doc.error().ToString().find(
                "--xds-cert, --xds-key, --xds-ca: only meaningful with --xds-address"),
            std::string::npos)
      << doc.error().ToString();
}

TEST(Bootstrap, XdsAddressMustBeHostPort) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7"};
  p.xds_cert = "/c";
  p.xds_key = "/k";
  p.xds_ca = "/ca";
  for (const char* bad : {"picket-control", ":15012", "host:", "host:0", "host:65536", "host:1x"}) {
    p.xds_address = bad;
    auto doc = BuildBootstrap(p);
    ASSERT_FALSE(doc.has_value()) << bad;
    EXPECT_NE(doc.error().ToString().find("--xds-address: \""), std::string::npos)
        << doc.error().ToString();
  }
  for (const char* good : {"picket-control:15012", "10.0.0.1:1", "[fd00::1]:65535"}) {
    p.xds_address = good;
    EXPECT_TRUE(BuildBootstrap(p).has_value()) << good;
  }
}

// The generator and the proxy must never disagree: over many variations of the parameters
// (valid and not), everything BuildBootstrap accepts is accepted by the proxy's own validator
// (config::ParseBootstrap, what picket-proxy runs at start-up) and reads back the same values,
// and every xDS case the proxy would refuse for missing TLS the generator refuses itself.
TEST(Bootstrap, EveryGeneratedBootstrapPassesTheProxyValidator) {
  BootstrapParams base;
  base.ns = "shop";
  base.pod = "web-0";
  base.ips = {"10.0.0.7"};
  std::vector<std::function<void(BootstrapParams&)>> variations = {
      [](BootstrapParams&) {},
      [](BootstrapParams& p) { p.ips = {"fd00::7"}; },
      [](BootstrapParams& p) {
        p.ips = {"10.0.0.7,fd00::7", "10.0.0.8"};
      },
      [](BootstrapParams& p) { p.ns = "a.b"; },
      [](BootstrapParams& p) { p.ns = std::string(64, 'a'); },
      [](BootstrapParams& p) { p.pod = "web.0"; },
      [](BootstrapParams& p) { p.pod = "-web"; },
      [](BootstrapParams& p) { p.pod = std::string(253, 'p'); },
      [](BootstrapParams& p) { p.outbound_port = 1; },
      [](BootstrapParams& p) { p.inbound_port = 65535; },
      [](BootstrapParams& p) { p.admin_port = 0; },
      [](BootstrapParams& p) { p.outbound_port = 0; },
      [](BootstrapParams& p) { p.inbound_port = p.outbound_port; },
      [](BootstrapParams& p) { p.flow_log = "/var/log/picket/flows.jsonl"; },
      [](BootstrapParams& p) { p.flow_log = "stdout"; },
  };
  // Scalars YAML could misread (null, booleans, numbers, flow and comment syntax) in every
  // free-text field.
  for (const char* text :
       {"~",   "null", "yes", "false", "0123",  "1e3",  "a: b",          "#x", "- x", "[x]",
        "{x}", " x",   "x ",  "'x'",   "\"x\"", "x\ny", "\u00e9t\u00e9", "*a", "&a",  "!x",
        "%x",  "@x",   "`x",  "|",     ">"}) {
    const std::string s = text;
    variations.push_back([s](BootstrapParams& p) { p.flow_log = s; });
    variations.push_back([s](BootstrapParams& p) { p.policy_file = s; });
    variations.push_back([s](BootstrapParams& p) {
      p.policy_file.clear();
      p.xds_address = "picket-control:15012";
      p.xds_cert = s;
      p.xds_key = s;
      p.xds_ca = s;
    });
  }
  const char* addresses[] = {"", "picket-control:15012", "[fd00::1]:15012", "bad"};
  int accepted = 0;
  for (const auto& vary : variations) {
    for (const char* policy_file : {"", "/etc/picket/policy.json"}) {
      for (const char* address : addresses) {
        for (int tls = 0; tls < 8; ++tls) {
          BootstrapParams p = base;
          p.policy_file = policy_file;
          p.xds_address = address;
          if (tls & 1) p.xds_cert = "/etc/picket/certs/tls.crt";
          if (tls & 2) p.xds_key = "/etc/picket/certs/tls.key";
          if (tls & 4) p.xds_ca = "/etc/picket/certs/ca.crt";
          vary(p);
          auto doc = BuildBootstrap(p);
          if (!p.xds_address.empty() &&
              (p.xds_cert.empty() || p.xds_key.empty() || p.xds_ca.empty())) {
            EXPECT_FALSE(doc.has_value()) << "xds without full TLS was generated";
          }
          if (!doc) continue;
          ++accepted;
          const std::string yaml = config::EmitYaml(*doc);
          auto parsed = config::ParseBootstrap(yaml, "generated.yaml");
          ASSERT_TRUE(parsed.has_value())
              << "generated but refused by the proxy: " << parsed.error()[0].ToString() << "\n"
              << yaml;
          EXPECT_EQ(parsed->node.ns, p.ns);
          EXPECT_EQ(parsed->node.name, p.pod);
          EXPECT_EQ(parsed->policy_file, p.policy_file) << yaml;
          EXPECT_EQ(parsed->flow_log.path, p.flow_log.empty() ? "stdout" : p.flow_log) << yaml;
          EXPECT_EQ(parsed->listeners.outbound_port, p.outbound_port);
          EXPECT_EQ(parsed->listeners.inbound_port, p.inbound_port);
          EXPECT_EQ(parsed->admin.port, p.admin_port);
          ASSERT_EQ(parsed->xds.has_value(), !p.xds_address.empty());
          if (parsed->xds) {
            EXPECT_EQ(parsed->xds->address, p.xds_address);
            EXPECT_EQ(parsed->xds->tls.cert, p.xds_cert) << yaml;
            EXPECT_EQ(parsed->xds->tls.key, p.xds_key);
            EXPECT_EQ(parsed->xds->tls.ca, p.xds_ca);
          }
        }
      }
    }
  }
  EXPECT_GT(accepted, 100);  // the grid exercises the accepting path, not only refusals
}

}  // namespace
}  // namespace picket::inject
