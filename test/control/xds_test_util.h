// test/control/xds_test_util.h — shared fixtures for control-protocol tests: certificates made
// in memory, a loop runner with a deadline, and a raw protocol client (frames in, messages out)
// for driving the server through every path, including malformed ones.
//
// Loop-thread only (tests are single-threaded).
#pragma once

#include <gtest/gtest.h>
#include <uv.h>

#include <functional>
#include <string>
#include <vector>

#include "control/certs.h"
#include "net/frame.h"
#include "net/tls.h"
#include "net/tls_stream.h"
#include "net/xds_message.h"

namespace picket::testing {

struct TestPki {
  control::PemPair ca;
  control::PemPair server;

  static TestPki Make() {
    TestPki pki;
    auto ca = control::MakeCa("test CA", 1);
    EXPECT_TRUE(ca.has_value()) << ca.error().ToString();
    pki.ca = *ca;
    auto server = control::MakeLeaf(pki.ca, {"server", {"localhost"}, {"127.0.0.1"}, {}, 1});
    EXPECT_TRUE(server.has_value()) << server.error().ToString();
    pki.server = *server;
    return pki;
  }

  control::PemPair Pod(const std::string& ns, const std::string& name) const {
    auto leaf = control::MakeLeaf(
        ca, {name + "." + ns, {}, {}, {control::SpiffePodUri("cluster.local", ns, name)}, 1});
    EXPECT_TRUE(leaf.has_value()) << leaf.error().ToString();
    return *leaf;
  }

  std::shared_ptr<net::TlsContext> Context(net::TlsRole role, const control::PemPair& leaf,
                                           const std::string& ca_pem = "") const {
    auto ctx = net::TlsContext::Create(
        role, {leaf.cert_pem, leaf.key_pem, ca_pem.empty() ? ca.cert_pem : ca_pem});
    EXPECT_TRUE(ctx.has_value()) << ctx.error().ToString();
    return ctx.value_or(nullptr);
  }
};

// Runs `loop` until `done()` or `timeout_ms` of loop time; returns done().
inline bool RunUntil(uv_loop_t* loop, const std::function<bool()>& done,
                     uint64_t timeout_ms = 5000) {
  uv_update_time(loop);
  const uint64_t deadline = uv_now(loop) + timeout_ms;
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  // A periodic wake-up so the predicate is re-checked even when nothing else happens.
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 5, 5);
  while (!done() && uv_now(loop) < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return done();
}

// Closes every handle still open and asserts the loop closes cleanly.
inline void DrainAndCloseLoop(uv_loop_t* loop) {
  for (int i = 0; i < 100 && uv_loop_alive(loop); ++i) uv_run(loop, UV_RUN_NOWAIT);
  EXPECT_EQ(uv_loop_close(loop), 0);
}

// A protocol client that speaks raw frames: every decoded message is recorded.
class RawClient : public net::TlsStream::Handler {
 public:
  RawClient(uv_loop_t* loop, uint16_t port, std::shared_ptr<net::TlsContext> ctx) {
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", port, &addr);
    auto stream =
        net::TlsStream::Connect(loop, reinterpret_cast<sockaddr*>(&addr), ctx, "127.0.0.1", this);
    EXPECT_TRUE(stream.has_value()) << stream.error().ToString();
    stream_ = stream.value_or(nullptr);
  }
  ~RawClient() override {
    if (stream_ != nullptr) stream_->Close();
  }

  void Send(const net::Message& m) { SendRaw(net::EncodeFrame(net::EncodeMessage(m))); }
  void SendRaw(const std::string& bytes) {
    ASSERT_NE(stream_, nullptr);
    ASSERT_TRUE(stream_->Write(bytes).has_value());
  }
  void Close() {
    if (stream_ != nullptr) stream_->Close();
    stream_ = nullptr;
  }

  void OnTlsReady(net::TlsStream&) override { ready = true; }
  void OnTlsData(net::TlsStream&, std::string_view data) override {
    decoder_.Feed(data);
    while (true) {
      auto frame = decoder_.Next();
      ASSERT_TRUE(frame.has_value()) << frame.error().ToString();
      if (!frame->has_value()) return;
      auto m = net::DecodeMessage(**frame);
      ASSERT_TRUE(m.has_value()) << m.error().ToString();
      messages.push_back(std::move(*m));
    }
  }
  void OnTlsClosed(net::TlsStream&, const std::string& reason) override {
    stream_ = nullptr;
    closed = true;
    close_reason = reason;
  }

  template <typename T>
  std::vector<T> Received() const {
    std::vector<T> out;
    for (const auto& m : messages) {
      if (auto* t = std::get_if<T>(&m)) out.push_back(*t);
    }
    return out;
  }

  bool ready = false;
  bool closed = false;
  std::string close_reason;
  std::vector<net::Message> messages;

 private:
  net::TlsStream* stream_ = nullptr;
  net::FrameDecoder decoder_;
};

}  // namespace picket::testing
