// Tests control/unprotected.h: which pods NetworkPolicies select (namespace, selector,
// hostNetwork), the grace after selection and after a sidecar's last stream closed, and that a
// pod keeps its `since` across cluster updates. serve_test shows it on a real server.
#include "control/unprotected.h"

#include <gtest/gtest.h>

namespace picket::control {
namespace {

config::Pod Pod(std::string ns, std::string name, std::string app, bool host_network = false) {
  config::Pod p;
  p.ns = std::move(ns);
  p.name = std::move(name);
  p.labels = {{"app", std::move(app)}};
  p.ips = {"10.0.0.1"};
  p.host_network = host_network;
  return p;
}

config::NetworkPolicy Policy(std::string ns, std::string name, std::string app) {
  config::NetworkPolicy p;
  p.ns = std::move(ns);
  p.name = std::move(name);
  if (!app.empty()) p.pod_selector.requirements = {{"app", config::SelectorOperator::kIn, {app}}};
  p.policy_types_ingress = true;
  return p;
}

config::Cluster TheCluster() {
  config::Cluster c;
  c.pods = {Pod("prod", "web", "web"), Pod("prod", "db", "db"), Pod("dev", "web", "web"),
            Pod("prod", "node-agent", "web", /*host_network=*/true)};
  c.policies = {Policy("prod", "web-in", "web"), Policy("prod", "all", ""),
                Policy("other", "web-in", "web")};
  return c;
}

using Disconnects = std::map<std::string, uint64_t, std::less<>>;

TEST(UnprotectedPods, SelectedPodsWithoutASidecarAfterTheGrace) {
  UnprotectedPods u(/*grace_ms=*/1000);
  u.SetCluster(TheCluster(), 100);
  // prod/web (two policies) and prod/db (the empty selector); dev/web has no policy in its
  // namespace; the hostNetwork pod is never selected.
  EXPECT_EQ(u.selected_count(), 2u);
  EXPECT_TRUE(u.List({}, {}, 1099).empty());  // within the grace after being selected
  auto list = u.List({"prod/db"}, {}, 1100);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].pod, "prod/web");
  EXPECT_EQ(list[0].policies, (std::vector<std::string>{"prod/all", "prod/web-in"}));
  EXPECT_EQ(list[0].since_ms, 100u);
  EXPECT_EQ(u.List({"prod/db", "prod/web"}, {}, 5000).size(), 0u);
}

TEST(UnprotectedPods, AReconnectWithinTheGraceIsNoGap) {
  UnprotectedPods u(1000);
  u.SetCluster(TheCluster(), 0);
  const Disconnects gone{{"prod/web", 5000}, {"prod/db", 5000}};
  EXPECT_TRUE(u.List({}, gone, 5999).empty());
  auto list = u.List({}, gone, 6000);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].pod, "prod/db");
  EXPECT_EQ(list[1].since_ms, 5000u);  // the gap began when the last stream closed
}

TEST(UnprotectedPods, SinceSurvivesUpdatesAndResetsWhenNoLongerSelected) {
  UnprotectedPods u(0);
  config::Cluster c = TheCluster();
  u.SetCluster(c, 10);
  u.SetCluster(c, 20);  // another update: still selected since 10
  EXPECT_EQ(u.List({}, {}, 30)[0].since_ms, 10u);
  c.policies.clear();
  u.SetCluster(c, 40);
  EXPECT_EQ(u.selected_count(), 0u);
  EXPECT_TRUE(u.List({}, {}, 50).empty());
  c = TheCluster();
  u.SetCluster(c, 60);
  EXPECT_EQ(u.List({}, {}, 70)[0].since_ms, 60u);
}

}  // namespace
}  // namespace picket::control
