// Tests inject/bootstrap_gen.h: the bootstrap a sidecar builds from the downward API.
#include "inject/bootstrap_gen.h"

#include <gtest/gtest.h>

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
  ASSERT_TRUE(doc.has_value()) << doc.error();
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
            "xds:\n"
            "  address: picket-control.picket-system.svc:15012\n"
            "  tls:\n"
            "    cert: /etc/picket/certs/tls.crt\n"
            "    key: /etc/picket/certs/tls.key\n"
            "    ca: /etc/picket/certs/ca.crt\n");
}

// What we generate is what picket-proxy accepts (config/bootstrap.h), both policy sources.
TEST(Bootstrap, TheProxyAcceptsIt) {
  BootstrapParams p;
  p.ns = "shop";
  p.pod = "web-0";
  p.ips = {"10.0.0.7,fd00::7"};
  p.policy_file = "/etc/picket/policy.json";
  p.flow_log = "/var/log/picket/flows.jsonl";
  auto doc = BuildBootstrap(p);
  ASSERT_TRUE(doc.has_value()) << doc.error();
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
}

}  // namespace
}  // namespace picket::inject
