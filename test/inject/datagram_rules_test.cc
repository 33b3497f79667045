// Tests inject/datagram_rules.h: the UDP/SCTP verdict-queue rules per family, their exclusions,
// re-run and cleanup, the opt-out, and the flags that set them.
#include "inject/datagram_rules.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "inject/listener_guard.h"
#include "inject/redirect_rules.h"

namespace picket::inject {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

// What an older picket-init left in mangle (a per-packet conntrack match) and what this one
// keeps in filter, plus rules that are not ours.
constexpr char kMangleInstalled[] = R"(*mangle
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:PICKET_DGRAM_IN - [0:0]
:PICKET_DGRAM_OUT - [0:0]
-A PREROUTING -p udp -m conntrack --ctstate INVALID,NEW -j PICKET_DGRAM_IN
-A POSTROUTING -p udp -m conntrack --ctstate INVALID,NEW -j PICKET_DGRAM_OUT
-A OUTPUT -j MARK --set-mark 1
-A PICKET_DGRAM_IN -j NFQUEUE --queue-num 15000
COMMIT
)";
constexpr char kFilterInstalled[] = R"(*filter
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:PICKET_DGRAM_IN - [0:0]
:PICKET_DGRAM_OLD - [0:0]
:PICKET_DGRAM_OUT - [0:0]
:PICKET_LISTEN_GUARD - [0:0]
-A INPUT -p sctp -m conntrack --ctstate INVALID -j PICKET_DGRAM_IN
-A OUTPUT -p sctp -m conntrack --ctstate INVALID -j PICKET_DGRAM_OUT
-A OUTPUT -p tcp -m multiport --sports 15001,15006 -j PICKET_LISTEN_GUARD
-A OUTPUT -j ACCEPT
-A PICKET_DGRAM_IN -j NFQUEUE --queue-num 15000
COMMIT
*nat
:PICKET_INBOUND - [0:0]
-A PREROUTING -p tcp -j PICKET_INBOUND
COMMIT
)";

TEST(DatagramRules, DefaultQueuesNewFlowsWithoutBypass) {
  for (Family family : {Family::kIPv4, Family::kIPv6}) {
    // nat: every new UDP/SCTP flow (nat rules run for a connection's first packet only).
    auto nat = BuildInstallTransaction(RedirectConfig{}, family);
    ASSERT_TRUE(nat.has_value()) << nat.error().ToString();
    // filter: SCTP packets conntrack cannot place; mangle: nothing in relay mode.
    auto filter = BuildFilterTransaction(RedirectConfig{}, family, {}, {});
    ASSERT_TRUE(filter.has_value()) << filter.error().ToString();
    EXPECT_EQ(filter->rfind("*filter\n:PICKET_LISTEN_GUARD - [0:0]\n:PICKET_DGRAM_IN - [0:0]\n"
                            ":PICKET_DGRAM_OUT - [0:0]\n",
                            0),
              0u)
        << *filter;
    auto mangle = BuildMangleTransaction(RedirectConfig{}, family);
    ASSERT_TRUE(mangle.has_value());
    EXPECT_EQ(*mangle, "");
    EXPECT_TRUE(Has(*nat, ":PICKET_DGRAM_IN - [0:0]\n:PICKET_DGRAM_OUT - [0:0]")) << *nat;
    for (const char* proto : {"udp", "sctp"}) {
      EXPECT_TRUE(Has(*nat, std::string("-A PREROUTING -p ") + proto + " -j PICKET_DGRAM_IN"))
          << *nat;
      EXPECT_TRUE(Has(*nat, std::string("-A POSTROUTING -p ") + proto + " -j PICKET_DGRAM_OUT"))
          << *nat;
    }
    // First, so no earlier ACCEPT lets them slip past.
    EXPECT_TRUE(
        Has(*filter, "-I INPUT 1 -p sctp -m conntrack --ctstate INVALID -j PICKET_DGRAM_IN"))
        << *filter;
    EXPECT_TRUE(
        Has(*filter, "-I OUTPUT 1 -p sctp -m conntrack --ctstate INVALID -j PICKET_DGRAM_OUT"))
        << *filter;
    // No per-packet UDP rule: established UDP meets no rule of ours.
    EXPECT_EQ(filter->find("-p udp -m conntrack"), std::string::npos) << *filter;
    EXPECT_EQ(filter->find("1 -p udp"), std::string::npos) << *filter;
    for (const std::string* s : {&*nat, &*filter}) {
      // The packet the sidecar judged and sent back through the hook (NF_REPEAT) returns first.
      EXPECT_LT(s->find("-A PICKET_DGRAM_IN -m mark --mark 0x30000/0x30000 -j RETURN"),
                s->find("-A PICKET_DGRAM_IN -i lo -j RETURN"))
          << *s;
      EXPECT_LT(s->find("-A PICKET_DGRAM_OUT -m mark --mark 0x30000/0x30000 -j RETURN"),
                s->find("-A PICKET_DGRAM_OUT -m owner --uid-owner 1337 -j RETURN"))
          << *s;
      EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_OUT -m owner --gid-owner 1337 -j RETURN")) << *s;
      EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_OUT -o lo -j RETURN")) << *s;
      EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_OUT -j NFQUEUE --queue-num 15000")) << *s;
      EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_IN -j NFQUEUE --queue-num 15000")) << *s;
      // Fail closed: no sidecar listening must mean dropped, never accepted.
      EXPECT_EQ(s->find("queue-bypass"), std::string::npos);
      // The owner exemption comes before any capture in the chain.
      EXPECT_LT(s->find("--uid-owner 1337"), s->find("-A PICKET_DGRAM_OUT -j NFQUEUE"));
      EXPECT_TRUE(s->ends_with("COMMIT\n"));
    }
  }
  // Opted out: neither table has UDP/SCTP chains.
  RedirectConfig off;
  off.capture_datagrams = false;
  auto nat = BuildInstallTransaction(off, Family::kIPv4);
  ASSERT_TRUE(nat.has_value());
  EXPECT_EQ(nat->find("PICKET_DGRAM"), std::string::npos) << *nat;
}

TEST(DatagramRules, HonoursTheTcpExclusionsPerFamily) {
  auto cmd = ParseInitArgs({"--nfqueue=7", "--proxy-uid=1500", "--proxy-gid=1600",
                            "--exclude-outbound-cidrs=10.9.0.0/16,fd00:9::/64",
                            "--exclude-outbound-ports=53", "--include-outbound-ports=5353",
                            "--exclude-interfaces=eth9", "--exclude-inbound-ports=8125"});
  ASSERT_TRUE(cmd.has_value()) << cmd.error().ToString();
  auto v4 = BuildFilterTransaction(cmd->config, Family::kIPv4, {}, {});
  auto v6 = BuildFilterTransaction(cmd->config, Family::kIPv6, {}, {});
  ASSERT_TRUE(v4.has_value() && v6.has_value());
  EXPECT_TRUE(Has(*v4, "-A PICKET_DGRAM_OUT -m owner --uid-owner 1500 -j RETURN"));
  EXPECT_TRUE(Has(*v4, "-A PICKET_DGRAM_OUT -m owner --gid-owner 1600 -j RETURN"));
  EXPECT_TRUE(Has(*v4, "-A PICKET_DGRAM_OUT -d 10.9.0.0/16 -j RETURN"));
  EXPECT_EQ(v4->find("fd00:9::"), std::string::npos);
  EXPECT_TRUE(Has(*v6, "-A PICKET_DGRAM_OUT -d fd00:9::/64 -j RETURN"));
  EXPECT_EQ(v6->find("10.9.0.0"), std::string::npos);
  for (const std::string* s : {&*v4, &*v6}) {
    EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_OUT -p udp -m udp --dport 53 -j RETURN"));
    EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_OUT -p sctp -m sctp --dport 53 -j RETURN"));
    EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_OUT -p udp -m udp --dport 5353 -j NFQUEUE --queue-num 7"));
    EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_OUT -o eth9 -j RETURN"));
    EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_IN -i eth9 -j RETURN"));
    EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_IN -p udp -m udp --dport 8125 -j RETURN"));
    EXPECT_TRUE(Has(*s, "-A PICKET_DGRAM_IN -j NFQUEUE --queue-num 7"));
    EXPECT_LT(s->find("--dport 53 -j RETURN"), s->find("-A PICKET_DGRAM_OUT -j NFQUEUE"));
  }
}

TEST(DatagramRules, IncludeListsLimitCapture) {
  auto cmd = ParseInitArgs({"--include-outbound-cidrs=10.0.0.0/8", "--include-inbound-ports=53"});
  ASSERT_TRUE(cmd.has_value());
  auto v4 = BuildFilterTransaction(cmd->config, Family::kIPv4, {}, {});
  ASSERT_TRUE(v4.has_value());
  EXPECT_TRUE(Has(*v4, "-A PICKET_DGRAM_OUT -d 10.0.0.0/8 -j NFQUEUE --queue-num 15000"));
  EXPECT_FALSE(Has(*v4, "-A PICKET_DGRAM_OUT -j NFQUEUE --queue-num 15000"));
  EXPECT_TRUE(
      Has(*v4, "-A PICKET_DGRAM_IN -p sctp -m sctp --dport 53 -j NFQUEUE --queue-num 15000"));
  EXPECT_FALSE(Has(*v4, "-A PICKET_DGRAM_IN -j NFQUEUE --queue-num 15000"));
  RedirectConfig bad;
  bad.include_outbound_cidrs = {"10.0.0.0/99"};
  EXPECT_FALSE(BuildFilterTransaction(bad, Family::kIPv4, {}, {}).has_value());
}

TEST(DatagramRules, RerunReplacesJumpsAndCleanupRemovesOnlyOurs) {
  NatState state = ParseDatagramFilterState(kFilterInstalled);
  EXPECT_EQ(state.picket_chains,
            (std::vector<std::string>{"PICKET_DGRAM_IN", "PICKET_DGRAM_OLD", "PICKET_DGRAM_OUT"}));
  ASSERT_EQ(state.jump_rules.size(), 2u);  // not the guard's, not the ACCEPT, not the nat table's
  auto t = BuildFilterTransaction(RedirectConfig{}, Family::kIPv4, {}, {}, state);
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(Has(*t, "-D INPUT -p sctp -m conntrack --ctstate INVALID -j PICKET_DGRAM_IN"));
  EXPECT_TRUE(Has(*t, "-F PICKET_DGRAM_OLD\n-X PICKET_DGRAM_OLD"));
  EXPECT_EQ(t->find("-X PICKET_DGRAM_IN"), std::string::npos);
  EXPECT_EQ(t->find("-j ACCEPT"), std::string::npos);  // not ours
  // Deleted before inserted again.
  EXPECT_LT(t->find("-D OUTPUT -p sctp"), t->find("-I OUTPUT 1 -p sctp"));
  EXPECT_EQ(BuildFilterCleanupTransaction({}, {}, state),
            "*filter\n"
            "-D INPUT -p sctp -m conntrack --ctstate INVALID -j PICKET_DGRAM_IN\n"
            "-D OUTPUT -p sctp -m conntrack --ctstate INVALID -j PICKET_DGRAM_OUT\n"
            "-F PICKET_DGRAM_IN\n-F PICKET_DGRAM_OLD\n-F PICKET_DGRAM_OUT\n"
            "-X PICKET_DGRAM_IN\n-X PICKET_DGRAM_OLD\n-X PICKET_DGRAM_OUT\nCOMMIT\n");
  EXPECT_EQ(BuildFilterCleanupTransaction({}, {}, NatState{}), "");
}

TEST(DatagramRules, AnOlderMangleCaptureIsRemoved) {
  // An older picket-init judged UDP/SCTP in mangle with a per-packet conntrack match: a re-run
  // removes it (relay mode: the whole mangle transaction is that removal), MARK rules stay.
  NatState mangle = ParseMangleState(kMangleInstalled);
  EXPECT_EQ(mangle.picket_chains,
            (std::vector<std::string>{"PICKET_DGRAM_IN", "PICKET_DGRAM_OUT"}));
  auto t = BuildMangleTransaction(RedirectConfig{}, Family::kIPv4, mangle);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, BuildMangleCleanupTransaction(mangle));
  EXPECT_TRUE(
      Has(*t, "-D PREROUTING -p udp -m conntrack --ctstate INVALID,NEW -j PICKET_DGRAM_IN"));
  EXPECT_TRUE(Has(*t, "-X PICKET_DGRAM_OUT"));
  EXPECT_EQ(t->find("MARK"), std::string::npos);
}

TEST(DatagramRules, OptOutRemovesOursAndAddsNothing) {
  auto cmd = ParseInitArgs({"--udp-sctp=false"});
  ASSERT_TRUE(cmd.has_value());
  EXPECT_FALSE(cmd->config.capture_datagrams);
  auto none = BuildFilterTransaction(cmd->config, Family::kIPv4, {}, {});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->find("PICKET_DGRAM"), std::string::npos) << *none;
  const NatState installed = ParseDatagramFilterState(kFilterInstalled);
  auto converge = BuildFilterTransaction(cmd->config, Family::kIPv4, {}, {}, installed);
  ASSERT_TRUE(converge.has_value());
  EXPECT_NE(converge->find(DatagramFilterCleanupLines(installed)), std::string::npos) << *converge;
  EXPECT_EQ(converge->find(":PICKET_DGRAM"), std::string::npos) << *converge;
  for (const char* bad : {"--udp-sctp=maybe", "--nfqueue=65536", "--nfqueue=x"}) {
    EXPECT_FALSE(ParseInitArgs({bad}).has_value()) << bad;
  }
  EXPECT_EQ(ParseInitArgs({"--nfqueue=0"})->config.datagram_queue, 0);
}

}  // namespace
}  // namespace picket::inject
