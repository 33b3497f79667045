// proxy/listener.h: MakeListeners from the bootstrap's listener section, the TCP accept listener
// handing each connection (and its peer) to the handler, Pause/Start, and a clean close.
#include "proxy/listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

namespace picket::proxy {
namespace {

struct Accepted {
  Listener* listener;
  int fd;
  filters::Endpoint peer;
};

class RecordingHandler final : public ListenerHandler {
 public:
  void OnAccepted(Listener& listener, int fd, const sockaddr_storage& peer) override {
    accepted.push_back({&listener, fd, EndpointFromSockaddr(peer)});
  }
  void OnAcceptExhausted(Listener&, int error) override { errors.push_back(error); }
  void OnAcceptError(Listener&, int error) override { errors.push_back(error); }

  std::vector<Accepted> accepted;
  std::vector<int> errors;
};

// A blocking client connected to 127.0.0.1:`port` (the kernel completes the handshake from the
// listen queue, whether or not the loop runs); returns the fd and its local port.
int Connect(uint16_t port, uint16_t* local_port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  *local_port = LocalPort(fd);
  return fd;
}

// Runs the loop until `n` connections were handed over (bounded: each round blocks in epoll
// only until the next event, and a connected client makes the listener readable at once).
void RunUntilAccepted(uv_loop_t* loop, RecordingHandler& handler, size_t n) {
  for (int i = 0; i < 100 && handler.accepted.size() < n; ++i) uv_run(loop, UV_RUN_NOWAIT);
}

config::Bootstrap::Listeners Ipv4Only() {
  config::Bootstrap::Listeners config;
  config.ipv6 = false;
  return config;
}

TEST(ListenerTest, MakesOneTcpAcceptListenerPerDirectionAndFamily) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    auto listeners = MakeListeners(&loop, Ipv4Only(), 0, 0);
    ASSERT_TRUE(listeners.has_value()) << listeners.error().ToString();
    ASSERT_EQ(listeners->size(), 2u);
    EXPECT_EQ((*listeners)[0]->kind(), Listener::Kind::kTcpAccept);
    EXPECT_EQ((*listeners)[0]->direction(), filters::Direction::kOutbound);
    EXPECT_EQ((*listeners)[1]->direction(), filters::Direction::kInbound);
    EXPECT_NE((*listeners)[0]->local_address().port, 0);
    EXPECT_NE((*listeners)[1]->local_address().port, 0);
    EXPECT_NE((*listeners)[0]->local_address().port, (*listeners)[1]->local_address().port);
    EXPECT_FALSE((*listeners)[0]->local_address().address.v6);
    // Never started: destroying them only closes their sockets.
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(ListenerTest, HandsEachConnectionToTheHandlerAndPauses) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto listeners = MakeListeners(&loop, Ipv4Only(), 0, 0);
  ASSERT_TRUE(listeners.has_value()) << listeners.error().ToString();
  Listener& outbound = *(*listeners)[0];
  RecordingHandler handler;
  for (auto& l : *listeners) l->Start(&handler);

  uint16_t client_port = 0;
  const int client = Connect(outbound.local_address().port, &client_port);
  RunUntilAccepted(&loop, handler, 1);
  ASSERT_EQ(handler.accepted.size(), 1u);
  EXPECT_EQ(handler.accepted[0].listener, &outbound);
  EXPECT_EQ(handler.accepted[0].peer.port, client_port);
  EXPECT_EQ(handler.accepted[0].peer.address.ToString(), "127.0.0.1");

  // Paused: the connection waits in the kernel's queue until Start() again.
  outbound.Pause();
  uint16_t second_port = 0;
  const int second = Connect(outbound.local_address().port, &second_port);
  for (int i = 0; i < 10; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  EXPECT_EQ(handler.accepted.size(), 1u);
  outbound.Start(&handler);
  RunUntilAccepted(&loop, handler, 2);
  ASSERT_EQ(handler.accepted.size(), 2u);
  EXPECT_EQ(handler.accepted[1].peer.port, second_port);
  EXPECT_TRUE(handler.errors.empty());

  for (const Accepted& a : handler.accepted) close(a.fd);
  close(client);
  close(second);
  for (auto& l : *listeners) {
    l->Close();
    l->Close();  // idempotent
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  listeners->clear();
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(ListenerTest, BindErrorNamesTheAddress) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto first = MakeListeners(&loop, Ipv4Only(), 0, 0);
  ASSERT_TRUE(first.has_value());
  // Without SO_REUSEPORT on the other socket's side a second bind fails: a plain socket holds
  // the port.
  const int blocker = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "0.0.0.0", &addr.sin_addr);
  ASSERT_EQ(bind(blocker, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(blocker, 1), 0);
  const uint16_t taken = LocalPort(blocker);
  auto second = MakeListeners(&loop, Ipv4Only(), taken, 0);
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().ToString().find(":" + std::to_string(taken)), std::string::npos)
      << second.error().ToString();
  close(blocker);
  first->clear();
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace picket::proxy
