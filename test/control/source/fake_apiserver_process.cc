// test/control/source/fake_apiserver_process.cc — see fake_apiserver_process.h.
#include "test/control/source/fake_apiserver_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace picket::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

}  // namespace

bool FakeApiServer::Start(const std::string& dir, const std::string& seed) {
  dir_ = dir;
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (StartOnce(seed)) return true;
  }
  return false;
}

bool FakeApiServer::StartOnce(const std::string& seed) {
  const std::string script = fs::absolute("test/k8s/apiserver/fake_apiserver.py");
  const std::string seed_path = seed.empty() ? "" : fs::absolute(seed).string();
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    const int log = open((dir_ + "/server.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(log, 1);
    dup2(log, 2);
    if (seed_path.empty()) {
      execl("/usr/bin/python3", "python3", script.c_str(), "--dir", dir_.c_str(), "--port", "0",
            static_cast<char*>(nullptr));
    } else {
      execl("/usr/bin/python3", "python3", script.c_str(), "--dir", dir_.c_str(), "--port", "0",
            "--seed", seed_path.c_str(), static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    if (fs::exists(dir_ + "/ready")) return true;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file, bounded
  }
  Stop();
  return false;
}

void FakeApiServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (waitpid(pid_, nullptr, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling an exit, bounded
  }
  pid_ = -1;
}

std::string FakeApiServer::log() const {
  std::ifstream in(dir_ + "/server.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace picket::testing
