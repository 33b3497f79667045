// Tests control/udp_sctp_unenforced.h: which rules name UDP or SCTP (numbers, ranges, named
// ports, either direction; not "all ports", not TCP), which policies are listed, and that the
// list warns once per pod per change, not per recomputation. udp_sctp_serve_test shows it on a
// real server with real sidecar streams.
#include "control/udp_sctp_unenforced.h"

#include <gtest/gtest.h>

namespace picket::control {
namespace {

using config::Protocol;
using policy::PortMatch;

policy::RuleEntry Entry(PortMatch::Kind kind, Protocol protocol, uint32_t policy_index) {
  policy::RuleEntry e;
  e.port.kind = kind;
  e.port.protocol = protocol;
  e.port.first = e.port.last = 53;
  if (kind == PortMatch::Kind::kNamed) e.port.name = "dns";
  e.policy = policy_index;
  return e;
}

policy::PodPolicy Rules(std::vector<policy::RuleEntry> ingress,
                        std::vector<policy::RuleEntry> egress) {
  policy::PodPolicy p;
  p.ingress.isolated = !ingress.empty();
  p.ingress.policies = {"prod/in-a", "prod/in-b"};
  p.ingress.entries = std::move(ingress);
  p.egress.isolated = !egress.empty();
  p.egress.policies = {"prod/out-a", "prod/out-b"};
  p.egress.entries = std::move(egress);
  return p;
}

TEST(NamedUdpSctpTest, TcpOnlyAndAllPortsNameNeither) {
  EXPECT_EQ(NamedUdpSctp("prod/x", Rules({}, {})), std::nullopt);
  EXPECT_EQ(NamedUdpSctp("prod/x", Rules({Entry(PortMatch::Kind::kRange, Protocol::kTCP, 0)},
                                         {Entry(PortMatch::Kind::kNamed, Protocol::kTCP, 1)})),
            std::nullopt);
  // A rule without ports: "all ports of all protocols", no protocol named (its `protocol` field
  // is only the default).
  EXPECT_EQ(NamedUdpSctp("prod/x", Rules({Entry(PortMatch::Kind::kAll, Protocol::kUDP, 0)}, {})),
            std::nullopt);
}

TEST(NamedUdpSctpTest, UdpAndSctpInEitherDirectionWithThePoliciesNamingThem) {
  auto egress_udp =
      NamedUdpSctp("prod/x", Rules({Entry(PortMatch::Kind::kRange, Protocol::kTCP, 0)},
                                   {Entry(PortMatch::Kind::kRange, Protocol::kUDP, 1)}));
  ASSERT_TRUE(egress_udp.has_value());
  EXPECT_EQ(egress_udp->pod, "prod/x");
  EXPECT_EQ(egress_udp->policies, std::vector<std::string>{"prod/out-b"});
  EXPECT_EQ(egress_udp->protocols, std::vector<Protocol>{Protocol::kUDP});

  auto both = NamedUdpSctp("prod/x", Rules({Entry(PortMatch::Kind::kNamed, Protocol::kSCTP, 1),
                                            Entry(PortMatch::Kind::kRange, Protocol::kUDP, 0)},
                                           {Entry(PortMatch::Kind::kRange, Protocol::kUDP, 0)}));
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->policies, (std::vector<std::string>{"prod/in-a", "prod/in-b", "prod/out-a"}));
  EXPECT_EQ(both->protocols, (std::vector<Protocol>{Protocol::kUDP, Protocol::kSCTP}));
}

TEST(UdpSctpUnenforcedTest, ListsOnlyUnenforcedPodsNamingUdpOrSctpAndWarnsOncePerChange) {
  std::map<std::string, policy::PodPolicy> rules = {
      {"prod/dns", Rules({}, {Entry(PortMatch::Kind::kRange, Protocol::kUDP, 0)})},
      {"prod/web", Rules({Entry(PortMatch::Kind::kRange, Protocol::kTCP, 0)}, {})},
  };
  auto rules_of = [&](const std::string& pod) -> const policy::PodPolicy* {
    auto it = rules.find(pod);
    return it == rules.end() ? nullptr : &it->second;
  };
  UdpSctpUnenforced list;
  // Enforcing sidecars (not in the set) are never listed.
  list.Update({}, rules_of);
  EXPECT_TRUE(list.pods().empty());
  // Unenforced: the UDP pod is listed; the TCP-only pod and a pod without rules are not.
  list.Update({"prod/dns", "prod/web", "prod/unknown"}, rules_of);
  ASSERT_EQ(list.pods().size(), 1u);
  EXPECT_EQ(list.pods()[0].pod, "prod/dns");
  EXPECT_EQ(list.warnings(), 1u);
  // The same state again (another request, another stream event): no new warning.
  list.Update({"prod/dns", "prod/web", "prod/unknown"}, rules_of);
  list.Update({"prod/dns", "prod/web"}, rules_of);
  EXPECT_EQ(list.warnings(), 1u);
  // web's policy now names SCTP: one warning for web, none again for dns.
  rules["prod/web"] = Rules({Entry(PortMatch::Kind::kRange, Protocol::kSCTP, 1)}, {});
  list.Update({"prod/dns", "prod/web"}, rules_of);
  ASSERT_EQ(list.pods().size(), 2u);
  EXPECT_EQ(list.pods()[1].pod, "prod/web");
  EXPECT_EQ(list.pods()[1].protocols, std::vector<Protocol>{Protocol::kSCTP});
  EXPECT_EQ(list.warnings(), 2u);
  // dns's protocols change while listed: a change, so a warning.
  rules["prod/dns"].egress.entries.push_back(Entry(PortMatch::Kind::kRange, Protocol::kSCTP, 0));
  list.Update({"prod/dns", "prod/web"}, rules_of);
  EXPECT_EQ(list.warnings(), 3u);
  // dns's sidecar gone (or enforcing now): listed no more; no warning for leaving.
  list.Update({"prod/web"}, rules_of);
  ASSERT_EQ(list.pods().size(), 1u);
  EXPECT_EQ(list.pods()[0].pod, "prod/web");
  EXPECT_EQ(list.warnings(), 3u);
  list.Update({}, rules_of);
  EXPECT_TRUE(list.pods().empty());
}

}  // namespace
}  // namespace picket::control
