// The admin Unix socket against a real `connect` from another uid: the app (uid 1000) cannot
// open it, the proxy's own uid can. Needs root (to setuid a child); fails loudly without it.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "proxy/admin.h"

namespace picket::proxy {
namespace {

class CountingHandler : public AdminHandler {
 public:
  std::string ServerState() const override { return "LIVE"; }
  std::string PrometheusStats() const override { return ""; }
  std::string ConfigDump() const override { return "{}"; }
  std::vector<std::string> Flows(const std::string&) const override { return {}; }
  void Drain() override { ++drains; }
  int drains = 0;
};

// connect() to `path` from a child running as `uid`: 0 when it connected, else the errno.
int ConnectAs(uid_t uid, const std::string& path) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(uid) != 0 || setuid(uid) != 0) _exit(250);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    _exit(rc == 0 ? 0 : (errno & 0xff));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

TEST(AdminSocketE2eTest, OnlyTheProxysUidCanConnect) {
  ASSERT_EQ(geteuid(), 0u) << "this test needs root (it runs a child as uid 1000)";
  char made[] = "/tmp/picket-admin-e2e-XXXXXX";
  ASSERT_NE(mkdtemp(made), nullptr);
  const std::string dir = made;
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);  // as an emptyDir comes
  const std::string path = dir + "/admin.sock";

  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  CountingHandler handler;
  {
    AdminServer server(&loop, handler, AdminScope::kFull);
    // umask 0: the modes below are the server's doing, not a friendly umask's.
    const mode_t old_umask = umask(0);
    auto listening = server.ListenUnix(path);
    umask(old_umask);
    ASSERT_TRUE(listening) << listening.error().ToString();
    // The app's uid: refused by the kernel (the directory is 0700, the socket 0600).
    EXPECT_EQ(ConnectAs(1000, path), EACCES);
    // Even with the directory opened up again, the socket's own mode refuses it.
    ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
    EXPECT_EQ(ConnectAs(1000, path), EACCES);
    // The owner (here root, in a pod uid 1337) connects: the listener's backlog takes it.
    EXPECT_EQ(ConnectAs(0, path), 0);
    server.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
  EXPECT_EQ(handler.drains, 0);
  EXPECT_EQ(rmdir(dir.c_str()), 0);
}

}  // namespace
}  // namespace picket::proxy
