// test/e2e/pod_network.h — a "node" network namespace routing N pod namespaces, and the small
// helpers the xDS end-to-end tests share around it. Needs root (network namespaces, veth links).
//
// Owns: PodNetwork (the node namespace with net.ipv4.ip_forward=1, N pod namespaces, one veth pair
// per pod: node end <subnet>.<i+1>.1/24, pod end <subnet>.<i+1>.2/24, the pod's default route via
// the node end; links and namespaces removed by the destructor, also when a test fails), a small
// TCP server answering every connection inside a namespace (AnswerServer), the path
// of a Bazel runfile, an atomic file write (what a manifest watcher must see), a poll loop for
// endpoints, a JSON string field lookup and an HTTP GET to a sidecar's admin endpoint.
//
// Blocking helpers for a test's main thread, built on test/e2e/netns.h.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test/e2e/netns.h"

namespace picket::e2e {

// The node end (<subnet>.<i+1>.1) and the pod end (<subnet>.<i+1>.2) of pod i's link;
// `subnet` is the first two octets, e.g. "10.94".
std::string NodeIpOn(const std::string& subnet, int i);
std::string PodIpOn(const std::string& subnet, int i);

class PodNetwork {
 public:
  // Names are UniqueName(`prefix` + "n" / "p" / "v" / "w") for node, pods, node and pod link ends.
  PodNetwork(std::string prefix, std::string subnet);
  ~PodNetwork();
  PodNetwork(const PodNetwork&) = delete;
  PodNetwork& operator=(const PodNetwork&) = delete;

  // Creates the node and `pods` pod namespaces and links them; "" on success, else what failed.
  [[nodiscard]] std::string Create(int pods);

  Netns& node() { return *node_; }
  Netns& pod(int i) { return *pods_[static_cast<size_t>(i)]; }

 private:
  std::string prefix_;
  std::string subnet_;
  std::unique_ptr<Netns> node_;
  std::vector<std::unique_ptr<Netns>> pods_;
  std::vector<std::string> links_;  // node ends, deleted from the node namespace
};

// A TCP server listening inside `ns` on addr:port, on a thread of its own: `answer` runs for each
// accepted connection, which is then closed. The destructor stops and joins the thread.
class AnswerServer {
 public:
  AnswerServer(const Netns& ns, const std::string& addr, uint16_t port,
               std::function<void(int fd)> answer);
  ~AnswerServer();
  AnswerServer(const AnswerServer&) = delete;
  AnswerServer& operator=(const AnswerServer&) = delete;

  bool ok() const { return fd_ >= 0; }

 private:
  void Serve();

  const std::function<void(int fd)> answer_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// `path` under the test's runfiles (TEST_SRCDIR/picket/path).
std::string Runfile(const std::string& path);

// Writes `text` to a temporary file beside `path`, then renames it over `path`; a gtest failure
// when the write fails.
void AtomicWrite(const std::filesystem::path& path, const std::string& text);

// The string value of the first `"key":"…"` after `after` in `json` ("" if absent).
std::string JsonField(const std::string& json, const std::string& after, const std::string& key);

// "STATUS\nBODY" of `GET target` to the admin endpoint at 127.0.0.1:`port` inside `ns`, "" when
// it is down.
std::string AdminGet(const Netns& ns, const std::string& target, uint16_t port = 15000);

// Polls `done` every 2 ms (an endpoint or a file, not synchronisation) until it is true or
// `timeout` passed; whether it became true.
template <typename F>
bool WaitFor(F done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace picket::e2e
