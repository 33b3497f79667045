// Tests inject/bootstrap_gen.h: the bootstrap a sidecar builds from the downward API.
#include "inject/bootstrap_gen.h"

#include <gtest/gtest.h>

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
