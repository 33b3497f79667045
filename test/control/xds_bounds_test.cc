// The control server's resource bounds under attack, over real TLS on loopback (port 0): one
// pod's certificate opening many streams, a header announcing an oversized frame, a partial
// frame held open, and partial frames of several pods exceeding the total buffer budget. Each
// attack must end with the offending stream closed by a terminal status and counted.
#include <gtest/gtest.h>

#include <string>

#include "base/json.h"
#include "control/xds_server.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

using net::StreamStatus;
using testing::RawClient;
using testing::RunUntil;

// A frame header announcing `length` body bytes.
std::string Header(uint32_t length) {
  std::string h(4, '\0');
  h[0] = static_cast<char>(length >> 24);
  h[1] = static_cast<char>(length >> 16);
  h[2] = static_cast<char>(length >> 8);
  h[3] = static_cast<char>(length);
  return h;
}

// The header of a `length` frame and `sent` bytes of its body: a frame that never completes.
std::string PartialFrame(uint32_t length, size_t sent) {
  return Header(length) + std::string(sent, 'x');
}

uint64_t StatusStat(const XdsServer& server, const char* name) {
  auto doc = base::ParseJson(server.StatusJson());
  EXPECT_TRUE(doc.has_value());
  auto v = doc->root().Find("stats")->Find(name);
  EXPECT_TRUE(v.has_value()) << name;
  return v ? v->AsUint64().value_or(0) : 0;
}

class XdsBoundsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    pki_ = testing::TestPki::Make();
  }
  void Start(XdsServerOptions options) {
    options.sweep_interval_ms = 20;
    auto server = XdsServer::Create(&loop_, pki_.Context(net::TlsRole::kServer, pki_.server),
                                    std::move(options));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
  }
  void TearDown() override {
    clients_.clear();
    bool closed = false;
    server_->Close([&closed] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    server_.reset();
    testing::DrainAndCloseLoop(&loop_);
  }
  RawClient& Connect(const std::string& pod) {
    clients_.push_back(std::make_unique<RawClient>(
        &loop_, server_->port(), pki_.Context(net::TlsRole::kClient, pki_.Pod("default", pod))));
    RawClient& c = *clients_.back();
    EXPECT_TRUE(RunUntil(&loop_, [&] { return c.ready || c.closed; }));
    return c;
  }
  static bool RefusedWith(const RawClient& c, net::StatusCode code) {
    auto statuses = c.Received<StreamStatus>();
    return c.closed && !statuses.empty() && statuses.back().status.code == static_cast<int>(code);
  }

  uv_loop_t loop_;
  testing::TestPki pki_;
  std::unique_ptr<XdsServer> server_;
  std::vector<std::unique_ptr<RawClient>> clients_;
};

// The reported attack, scaled down: 16 streams with one pod's certificate, each sending most of
// a maximal frame and holding. Only the cap stays open; the newest win (a reconnect works).
TEST_F(XdsBoundsTest, SixteenStreamsOfOneIdentityKeepOnlyTheCap) {
  XdsServerOptions options;
  options.max_frame_size = 4096;
  Start(options);
  for (int i = 0; i < 16; ++i) {
    RawClient& c = Connect("a");
    ASSERT_TRUE(c.ready);
    c.SendRaw(PartialFrame(4096, 3000));
    // Let the server see this stream's certificate before the next one arrives.
    ASSERT_TRUE(RunUntil(&loop_, [&] {
      return server_->stats().streams_accepted == size_t(i + 1) &&
             server_->buffered_bytes() >= 3004;
    }));
  }
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    return server_->stats().streams_evicted_per_identity == 14 &&
           server_->stats().streams_active == 2;
  }));
  EXPECT_EQ(StatusStat(*server_, "streams_evicted_per_identity"), 14u);
  EXPECT_LE(server_->buffered_bytes(), 2u * 3004);
  // The oldest were closed with a terminal status; the two newest are still connected.
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    for (int i = 0; i < 14; ++i) {
      if (!RefusedWith(*clients_[i], net::StatusCode::kResourceExhausted)) return false;
    }
    return true;
  }));
  EXPECT_FALSE(clients_[14]->closed);
  EXPECT_FALSE(clients_[15]->closed);
}

TEST_F(XdsBoundsTest, OversizedFrameHeaderClosesAtOnce) {
  XdsServerOptions options;
  options.max_frame_size = 4096;
  Start(options);
  RawClient& c = Connect("a");
  c.SendRaw(Header(4097));  // no body: the header alone is refused
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  EXPECT_TRUE(RefusedWith(c, net::StatusCode::kResourceExhausted));
  EXPECT_EQ(server_->stats().frames_too_large, 1u);
  EXPECT_EQ(StatusStat(*server_, "frames_too_large"), 1u);
  EXPECT_EQ(server_->buffered_bytes(), 0u);
}

TEST_F(XdsBoundsTest, PartialFrameTimesOut) {
  XdsServerOptions options;
  options.max_frame_size = 4096;
  options.frame_timeout_ms = 150;
  Start(options);
  RawClient& c = Connect("a");
  c.SendRaw(PartialFrame(1000, 10));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  EXPECT_TRUE(RefusedWith(c, net::StatusCode::kUnavailable));
  EXPECT_EQ(server_->stats().frame_timeouts, 1u);
  EXPECT_EQ(StatusStat(*server_, "frame_timeouts"), 1u);
  EXPECT_EQ(server_->buffered_bytes(), 0u);
}

TEST_F(XdsBoundsTest, TotalBufferBudgetRefusesBeyondIt) {
  XdsServerOptions options;
  options.max_frame_size = 4096;
  options.max_buffered_bytes = 7000;
  Start(options);
  RawClient& a = Connect("a");
  a.SendRaw(PartialFrame(4000, 3000));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->buffered_bytes() == 3004; }));
  RawClient& b = Connect("b");
  b.SendRaw(PartialFrame(4000, 3000));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->buffered_bytes() == 6008; }));
  RawClient& c = Connect("c");
  c.SendRaw(PartialFrame(4000, 3000));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  EXPECT_TRUE(RefusedWith(c, net::StatusCode::kResourceExhausted));
  EXPECT_EQ(server_->stats().buffer_budget_refusals, 1u);
  EXPECT_EQ(StatusStat(*server_, "buffer_budget_refusals"), 1u);
  EXPECT_EQ(server_->buffered_bytes(), 6008u);  // the refused stream's bytes were given back
  EXPECT_FALSE(a.closed);
  EXPECT_FALSE(b.closed);
}

}  // namespace
}  // namespace picket::control
