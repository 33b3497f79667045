// Two `serve` replicas over the same manifests, one sidecar client: when the replica it is on
// goes away, the client reconnects to the other (its second server), says what it holds, and
// is resent nothing (control/PROTOCOL.md §4.5): the replica's counters show zero resources sent
// and every subscription resumed, the sidecar's versions and decisions are unchanged. A replica
// that sees one more pod sends exactly that one resource.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "control/serve.h"
#include "control/source/from_flags.h"
#include "net/xds_message.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_client.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

namespace fs = std::filesystem;
using testing::RunUntil;

constexpr const char* kCluster = R"(
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: x, ports: [{name: pg, containerPort: 5432}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  selector: {app: db}
  clusterIP: 10.96.0.2
  ports: [{port: 5432, targetPort: pg}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: 5432}]
)";

// One more pod with db's labels (and no port of that name): one more AddressEntry; the web
// pod's policy (identity sets by label combination) and the Service (no named port) unchanged.
constexpr const char* kExtraPod = R"(
apiVersion: v1
kind: Pod
metadata: {name: db-2, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.3}
)";

policy::IpAddress Ip(const char* s) { return *policy::IpAddress::Parse(s); }

class ReplicaResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    pki_ = testing::TestPki::Make();
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / ("replica_resume_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "a");
    fs::create_directories(dir_ / "b");
    fs::create_directories(dir_ / "certs");
    auto write = [&](const std::string& name, const std::string& text) {
      std::ofstream(dir_ / "certs" / name) << text;
      return (dir_ / "certs" / name).string();
    };
    options_.listen = "127.0.0.1:0";
    options_.admin = "";
    options_.tls_cert = write("server.pem", pki_.server.cert_pem);
    options_.tls_key = write("server-key.pem", pki_.server.key_pem);
    options_.tls_ca = write("ca.pem", pki_.ca.cert_pem);
    std::ofstream(dir_ / "a" / "cluster.yaml") << kCluster;
    std::ofstream(dir_ / "b" / "cluster.yaml") << kCluster;
  }

  void TearDown() override {
    if (client_) {
      bool closed = false;
      client_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      client_.reset();
    }
    for (auto* s : {&a_, &b_}) {
      if (!*s) continue;
      bool closed = false;
      (*s)->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      s->reset();
    }
    testing::DrainAndCloseLoop(&loop_);
    fs::remove_all(dir_);
  }

  std::unique_ptr<ControlServer> StartReplica(const std::string& sub) {
    ServeOptions o = options_;
    o.manifests_dir = (dir_ / sub).string();
    auto source = source::MakeManifestSource({o.manifests_dir, o.debounce_ms});
    EXPECT_TRUE(source.has_value()) << source.error().ToString();
    if (!source) return nullptr;
    auto server = ControlServer::Create(&loop_, o, std::move(*source));
    EXPECT_TRUE(server.has_value()) << server.error().ToString();
    if (!server) return nullptr;
    auto s = std::move(*server);
    EXPECT_TRUE(RunUntil(&loop_, [&] { return s->ready(); }));
    return s;
  }

  // The sidecar of prod/web: replica A first, B as its second server.
  void StartSidecar() {
    source_ = std::make_unique<proxy::xds::PolicySource>(
        "prod", "web",
        [this](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
          applied_ = std::move(p);
          ++applies_;
          return {};
        },
        [this](proxy::xds::ServiceMapPtr m) {
          service_map_ = std::move(m);
          ++service_maps_;
        });
    proxy::xds::XdsClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(a_->xds_port());
    o.fallback_servers = {"127.0.0.1:" + std::to_string(b_->xds_port())};
    o.tls = pki_.Context(net::TlsRole::kClient, pki_.Pod("prod", "web"));
    o.node = {"test", "prod", "web", "test"};
    o.subscriptions = source_->Subscriptions();
    auto client = proxy::xds::XdsClient::Create(&loop_, std::move(o), source_.get());
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    client_ = std::move(*client);
    client_->Start();
    // Connected to A with all three types ACKed.
    ASSERT_TRUE(RunUntil(&loop_, [&] { return a_->xds().stats().acks >= 3; }));
    ASSERT_NE(applied_, nullptr);
  }

  // A goes away (closes its listener and streams); returns the ms until the client is on B.
  double KillAAndWaitForB() {
    const std::string b_address = "127.0.0.1:" + std::to_string(b_->xds_port());
    const auto start = std::chrono::steady_clock::now();
    bool closed = false;
    a_->Close([&] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    a_.reset();
    EXPECT_TRUE(RunUntil(&loop_, [&] {
      return client_->status().connected() && client_->status().server_address == b_address &&
             b_->xds().stats().streams_active == 1 &&
             b_->xds().stats().subscriptions_resumed + b_->xds().stats().responses_sent >= 3;
    }));
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  }

  std::map<std::string, std::string> AckedVersions() const {
    std::map<std::string, std::string> out;
    for (const auto& [type, s] : client_->status().types) out[type] = s.last_acked_version;
    return out;
  }

  bool Allowed(const char* ip, int port) {
    return applied_->CheckEgress(Ip(ip), port, config::Protocol::kTCP).allowed;
  }

  uv_loop_t loop_;
  testing::TestPki pki_;
  fs::path dir_;
  ServeOptions options_;
  std::unique_ptr<ControlServer> a_;
  std::unique_ptr<ControlServer> b_;
  std::unique_ptr<proxy::xds::PolicySource> source_;
  std::unique_ptr<proxy::xds::XdsClient> client_;
  policy::EndpointPolicyPtr applied_;
  int applies_ = 0;
  proxy::xds::ServiceMapPtr service_map_;
  int service_maps_ = 0;
};

TEST_F(ReplicaResumeTest, ReplicasPublishIdenticalVersions) {
  a_ = StartReplica("a");
  b_ = StartReplica("b");
  ASSERT_TRUE(a_ && b_);
  for (auto type : {net::kAddressEntryType, net::kPodPolicyType, net::kServiceType}) {
    EXPECT_GT(a_->xds().resource_count(type), 0u) << type;
    EXPECT_EQ(a_->xds().TypeVersion(type), b_->xds().TypeVersion(type)) << type;
  }
}

TEST_F(ReplicaResumeTest, ReconnectToAnotherReplicaResendsNothing) {
  a_ = StartReplica("a");
  b_ = StartReplica("b");
  ASSERT_TRUE(a_ && b_);
  StartSidecar();
  const auto versions = AckedVersions();
  const int applies = applies_;
  const int service_maps = service_maps_;
  ASSERT_NE(service_map_, nullptr);
  const policy::EndpointPolicy* before = applied_.get();
  EXPECT_TRUE(Allowed("10.0.0.2", 5432));
  EXPECT_FALSE(Allowed("10.0.0.2", 6379));
  EXPECT_FALSE(Allowed("10.9.9.9", 5432));

  const double ms = KillAAndWaitForB();
  const XdsServerStats& b = b_->xds().stats();
  EXPECT_EQ(b.responses_sent, 0u);
  EXPECT_EQ(b.resources_sent, 0u);
  EXPECT_EQ(b.subscriptions_resumed, 3u);  // AddressEntry, PodPolicy, Service
  // Every resource the sidecar holds: 2 AddressEntries, its PodPolicy, 1 Service.
  EXPECT_EQ(b.resources_skipped_on_resume, 4u);
  // The sidecar applied nothing new and enforces what it did.
  EXPECT_EQ(applies_, applies);
  EXPECT_EQ(applied_.get(), before);
  EXPECT_EQ(service_maps_, service_maps);
  EXPECT_EQ(AckedVersions(), versions);
  EXPECT_TRUE(Allowed("10.0.0.2", 5432));
  EXPECT_FALSE(Allowed("10.0.0.2", 6379));
  EXPECT_FALSE(Allowed("10.9.9.9", 5432));
  // B's /status shows the sidecar on the versions it holds (as if sent and ACKed).
  const std::string status = b_->xds().StatusJson();
  for (const auto& [type, version] : versions) {
    EXPECT_NE(status.find("\"last_acked_version\":\"" + version + "\""), std::string::npos)
        << type << " " << version << "\n"
        << status;
  }
  EXPECT_NE(status.find("\"resources_skipped_on_resume\":4"), std::string::npos) << status;
  std::cout << "replica A closed -> sidecar resumed on B: " << ms << " ms\n";
  EXPECT_LT(ms, 1000.0);
}

TEST_F(ReplicaResumeTest, AnotherReplicaSendsOnlyWhatDiffers) {
  std::ofstream(dir_ / "b" / "extra.yaml") << kExtraPod;
  a_ = StartReplica("a");
  b_ = StartReplica("b");
  ASSERT_TRUE(a_ && b_);
  StartSidecar();
  const auto versions = AckedVersions();
  KillAAndWaitForB();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return b_->xds().stats().acks >= 1; }));
  const XdsServerStats& b = b_->xds().stats();
  EXPECT_EQ(b.resources_sent, 1u);  // AddressEntry prod/db-2
  EXPECT_EQ(b.responses_sent, 1u);
  EXPECT_EQ(b.subscriptions_resumed, 2u);  // PodPolicy and Service: nothing to send
  EXPECT_EQ(b.resources_skipped_on_resume, 4u);
  auto now = AckedVersions();
  EXPECT_EQ(now[std::string(net::kPodPolicyType)], versions.at(std::string(net::kPodPolicyType)));
  EXPECT_NE(now[std::string(net::kAddressEntryType)],
            versions.at(std::string(net::kAddressEntryType)));
  // The new pod is a db pod: web may reach it on 5432.
  EXPECT_TRUE(Allowed("10.0.0.3", 5432));
  EXPECT_TRUE(Allowed("10.0.0.2", 5432));
}

}  // namespace
}  // namespace picket::control
