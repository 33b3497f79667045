// test/control/xds_push_fixture.h — the whole push path in one process, for tests of what a
// sidecar receives: a loop, in-memory certificates, an XdsServer on loopback (own-pod-only pod
// policies, as `picket-control serve` runs it) with an XdsSnapshot over it, and one sidecar
// XdsClient feeding the test's PolicySource. Also manifest text → Cluster and address parsing.
//
// Owns the loop and everything on it; TearDown closes client and server and drains the loop.
// Loop-thread only (tests are single-threaded). Needs no root.
#pragma once

#include <gtest/gtest.h>
#include <uv.h>

#include <memory>
#include <string>

#include "config/manifest_loader.h"
#include "control/xds_server.h"
#include "control/xds_snapshot.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_client.h"
#include "test/control/xds_test_util.h"

namespace picket::testing {

// The cluster in manifest `text` (a test failure, and an empty cluster, when it does not load).
inline config::Cluster LoadCluster(const std::string& text) {
  auto r = config::LoadManifestText(text, "test.yaml");
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error()[0].ToString());
  return r ? r->cluster : config::Cluster{};
}

inline policy::IpAddress Ip(const char* s) { return *policy::IpAddress::Parse(s); }

class XdsPushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    pki_ = TestPki::Make();
    control::XdsServerOptions options;
    options.own_pod_only_types.insert(std::string(net::kPodPolicyType));
    options.scoped_types.insert(std::string(net::kAddressEntryType));  // as control/serve.cc
    auto server = control::XdsServer::Create(
        &loop_, pki_.Context(net::TlsRole::kServer, pki_.server), std::move(options));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    snapshot_ = std::make_unique<control::XdsSnapshot>(*server_);
  }

  void TearDown() override {
    if (client_) {
      bool closed = false;
      client_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      client_.reset();
    }
    bool closed = false;
    server_->Close([&] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    server_.reset();
    DrainAndCloseLoop(&loop_);
  }

  // Connects a sidecar client as pod ns/pod (its certificate) feeding source_, set by the test.
  void StartClient(const std::string& ns, const std::string& pod) {
    proxy::xds::XdsClientOptions options;
    options.server = "127.0.0.1:" + std::to_string(server_->port());
    options.tls = pki_.Context(net::TlsRole::kClient, pki_.Pod(ns, pod));
    options.node = {"test", ns, pod, "test"};
    options.subscriptions = source_->Subscriptions();
    auto client = proxy::xds::XdsClient::Create(&loop_, std::move(options), source_.get());
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    client_ = std::move(*client);
    client_->Start();
  }

  uv_loop_t loop_;
  TestPki pki_;
  std::unique_ptr<control::XdsServer> server_;
  std::unique_ptr<control::XdsSnapshot> snapshot_;
  std::unique_ptr<proxy::xds::PolicySource> source_;
  std::unique_ptr<proxy::xds::XdsClient> client_;
};

}  // namespace picket::testing
