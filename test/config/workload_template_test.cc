// Workloads as pods for the offline commands (LoadOptions::workload_templates): one pod per
// workload from its pod template, errors with the template's field paths, and the documented
// address ranges assigned deterministically (config/workload_template.h).
#include "config/workload_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/manifest_loader.h"
#include "test/config/manifest_test_util.h"

namespace picket::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr const char* kWorkloads = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {owner: me}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: fe}}
    spec:
      containers:
      - name: c
        image: nginx
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: report}}
        spec: {containers: [{name: c, image: busybox}], restartPolicy: Never}
---
apiVersion: v1
kind: Pod
metadata: {name: real, namespace: shop}
status: {podIP: 192.0.2.1}
)";

LoadOptions Templates() {
  LoadOptions options;
  options.workload_templates = true;
  return options;
}

TEST(WorkloadTemplateTest, WorkloadsBecomeOnePodEachFromTheirTemplate) {
  auto r = LoadManifestText(kWorkloads, "w.yaml", Templates());
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  EXPECT_THAT(r->notices, IsEmpty());
  ASSERT_EQ(r->cluster.pods.size(), 3u);
  const Pod& web = r->cluster.pods[0];
  EXPECT_EQ(web.ns, "shop");
  EXPECT_EQ(web.name, "web-template");
  EXPECT_EQ(web.template_of, "Deployment shop/web");
  EXPECT_EQ(web.labels, (Labels{{"app", "web"}, {"tier", "fe"}}));  // the template's, not the
                                                                    // Deployment's
  ASSERT_EQ(web.ports.size(), 1u);
  EXPECT_EQ(web.ports[0].name, "http");
  EXPECT_EQ(web.ports[0].container_port, 8080);
  EXPECT_THAT(web.ips, IsEmpty());
  EXPECT_EQ(r->cluster.pods[1].name, "report-template");
  EXPECT_EQ(r->cluster.pods[1].template_of, "CronJob shop/report");
  EXPECT_EQ(r->cluster.pods[1].labels, (Labels{{"app", "report"}}));

  // Addresses: sorted by ns/name, skipping those real pods hold.
  AssignTemplateAddresses(&r->cluster);
  EXPECT_THAT(r->cluster.pods[1].ips, ElementsAre("192.0.2.2"));  // report-template first
  EXPECT_THAT(r->cluster.pods[0].ips, ElementsAre("192.0.2.3"));
  EXPECT_THAT(r->cluster.pods[2].ips, ElementsAre("192.0.2.1"));  // the real pod's, untouched
}

TEST(WorkloadTemplateTest, WithoutTheOptionWorkloadsAreSkipped) {
  auto r = LoadManifestText(kWorkloads, "w.yaml");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->cluster.pods.size(), 1u);
  EXPECT_THAT(r->notices,
              ElementsAre("w.yaml:1: skipping Deployment shop/web (not used by the policy engine)",
                          "w.yaml:15: skipping CronJob shop/report (not used by the policy "
                          "engine)"));
}

TEST(WorkloadTemplateTest, TemplateErrorsNameTheirPath) {
  auto errors = [](const std::string& text) {
    std::vector<std::string> out;
    auto r = LoadManifestText(text, "w.yaml", Templates());
    if (!r) {
      for (const Error& e : r.error()) out.push_back(e.ToString());
    }
    return out;
  };
  EXPECT_THAT(errors("kind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n"),
              ElementsAre("w.yaml:3: Deployment default/web: spec.template: Required value"));
  EXPECT_THAT(errors("kind: StatefulSet\nmetadata: {name: db}\nspec:\n  template:\n    metadata: "
                     "{labels: {app: \"-x\"}}\n"),
              ElementsAre(::testing::StartsWith(
                  "w.yaml:5: StatefulSet default/db: spec.template.metadata.labels: Invalid value: "
                  "\"-x\"")));
  EXPECT_THAT(errors("kind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n"
                     "      template:\n        spec:\n          containers: [{name: c, ports: "
                     "[{containerPort: 0}]}]\n"),
              ElementsAre("w.yaml:8: CronJob default/c: "
                          "spec.jobTemplate.spec.template.spec.containers[0].ports[0]."
                          "containerPort: Invalid value: 0: must be between 1 and 65535, "
                          "inclusive"));
}

TEST(WorkloadTemplateTest, AddressesRunIntoIpv6DocumentationRange) {
  Cluster cluster;
  for (int i = 0; i < 256; ++i) {
    Pod pod;
    pod.ns = "n";
    pod.name = "w" + std::to_string(1000 + i) + "-template";
    pod.template_of = "Job n/w" + std::to_string(1000 + i);
    cluster.pods.push_back(pod);
  }
  AssignTemplateAddresses(&cluster);
  EXPECT_THAT(cluster.pods[0].ips, ElementsAre("192.0.2.1"));
  EXPECT_THAT(cluster.pods[253].ips, ElementsAre("192.0.2.254"));
  EXPECT_THAT(cluster.pods[254].ips, ElementsAre("2001:db8::1"));
  EXPECT_THAT(cluster.pods[255].ips, ElementsAre("2001:db8::2"));
}

}  // namespace
}  // namespace picket::config
