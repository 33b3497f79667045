#include "test/e2e/pod_network.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace picket::e2e {

std::string NodeIpOn(const std::string& subnet, int i) {
  return subnet + "." + std::to_string(i + 1) + ".1";
}
std::string PodIpOn(const std::string& subnet, int i) {
  return subnet + "." + std::to_string(i + 1) + ".2";
}

PodNetwork::PodNetwork(std::string prefix, std::string subnet)
    : prefix_(std::move(prefix)), subnet_(std::move(subnet)) {}

PodNetwork::~PodNetwork() {
  for (const auto& l : links_) {
    RunCommand({"ip", "-n", node_ ? node_->name() : "", "link", "del", l});
  }
  pods_.clear();
  node_.reset();
}

std::string PodNetwork::Create(int pods) {
  node_ = std::make_unique<Netns>(UniqueName(prefix_ + "n"));
  if (!node_->ok()) return "cannot create the node namespace " + node_->name();
  CommandResult forward = node_->Exec({"sysctl", "-qw", "net.ipv4.ip_forward=1"});
  if (forward.status != 0) return "ip_forward in " + node_->name() + ": " + forward.output;
  for (int i = 0; i < pods; ++i) {
    pods_.push_back(std::make_unique<Netns>(UniqueName(prefix_ + "p")));
    const Netns& pod = *pods_.back();
    if (!pod.ok()) return "cannot create the pod namespace " + pod.name();
    const std::string vn = UniqueName(prefix_ + "v"), vp = UniqueName(prefix_ + "w");
    links_.push_back(vn);
    const std::string node_ip = NodeIpOn(subnet_, i);
    for (const auto& step : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", vn, "type", "veth", "peer", "name", vp},
             {"ip", "link", "set", vn, "netns", node_->name()},
             {"ip", "link", "set", vp, "netns", pod.name()},
             {"ip", "-n", node_->name(), "addr", "add", node_ip + "/24", "dev", vn},
             {"ip", "-n", pod.name(), "addr", "add", PodIpOn(subnet_, i) + "/24", "dev", vp},
             {"ip", "-n", node_->name(), "link", "set", vn, "up"},
             {"ip", "-n", pod.name(), "link", "set", vp, "up"},
             {"ip", "-n", pod.name(), "route", "add", "default", "via", node_ip},
         }) {
      CommandResult r = RunCommand(step);
      if (r.status != 0) return step[0] + " " + step[1] + " " + step[2] + ": " + r.output;
    }
  }
  return "";
}

AnswerServer::AnswerServer(const Netns& ns, const std::string& addr, uint16_t port,
                           std::function<void(int fd)> answer)
    : answer_(std::move(answer)) {
  fd_ = ListenIn(ns, addr, port);
  if (fd_ >= 0) thread_ = std::thread([this] { Serve(); });
}

AnswerServer::~AnswerServer() {
  stop_ = true;
  if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
}

void AnswerServer::Serve() {
  while (!stop_) {
    const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    answer_(c);
    close(c);
  }
}

std::string Runfile(const std::string& path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  return std::string(dir ? dir : ".") + "/picket/" + path;
}

void AtomicWrite(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
  ASSERT_TRUE(WriteFile(tmp.string(), text)) << tmp;
  std::filesystem::rename(tmp, path);
}

std::string JsonField(const std::string& json, const std::string& after, const std::string& key) {
  size_t at = json.find(after);
  if (at == std::string::npos) return "";
  at = json.find("\"" + key + "\":\"", at);
  if (at == std::string::npos) return "";
  at += key.size() + 4;
  const size_t end = json.find('"', at);
  return end == std::string::npos ? "" : json.substr(at, end - at);
}

std::string AdminGet(const Netns& ns, const std::string& target, uint16_t port) {
  const int fd = ConnectFrom(ns, "127.0.0.1", port, std::chrono::seconds(5));
  if (fd < 0) return "";
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.size() < 12 || body == std::string::npos) return "";
  return response.substr(9, 3) + "\n" + response.substr(body + 4);
}

}  // namespace picket::e2e
