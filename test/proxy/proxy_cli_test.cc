// picket-proxy's command line (base/cli.h), run as a subprocess.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "test/base/cli_contract.h"

namespace picket::proxy {
namespace {

using picket::testing::RunBinary;

class ProxyCliTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  const std::string binary_ = picket::testing::RunfilePath("proxy/picket-proxy");
};

TEST_F(ProxyCliTest, Contract) { picket::testing::ExpectCliContract(binary_, "picket-proxy", {}); }

TEST_F(ProxyCliTest, CheckConfigTakesTheValueEitherWay) {
  const std::string path = Write("minimal.yaml",
                                 "node: {namespace: a, name: b, ips: [10.0.0.1]}\n"
                                 "policy_file: p\n");
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{binary_, "--check-config", path},
        {binary_, "--check-config=" + path}}) {
    auto r = RunBinary(argv);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, path + ": ok\n");
  }
}

TEST_F(ProxyCliTest, ConfigIsRequiredAndValidated) {
  auto r = RunBinary({binary_});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--config"), std::string::npos) << r.err;
  r = RunBinary({binary_, "--config"});
  EXPECT_EQ(r.code, 2);
  r = RunBinary({binary_, "--check-config", Write("bad.yaml", "node: {}\nbogus: 1\n")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bad.yaml:"), std::string::npos) << r.err;
}

// A listening socket on 127.0.0.1 and a port the kernel chose; closed on destruction.
struct HeldPort {
  HeldPort() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd, 1), 0);
    EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = std::to_string(ntohs(addr.sin_port));
  }
  ~HeldPort() { close(fd); }
  int fd = -1;
  std::string port;
};

// A port that is already taken ends the run with exit 1 and says why, even with logging off.
// Every port of the bootstrap is taken, so whichever the proxy binds first fails.
TEST_F(ProxyCliTest, PortConflictIsNeverSilent) {
  HeldPort outbound, inbound, admin;
  const std::string config = Write("conflict.yaml",
                                   "node: {namespace: a, name: b, ips: [10.0.0.1]}\n"
                                   "policy_file: p\n"
                                   "listeners: {outbound_port: " +
                                       outbound.port + ", inbound_port: " + inbound.port +
                                       "}\n"
                                       "admin: {address: \"127.0.0.1:" +
                                       admin.port + "\"}\n");
  for (const char* level : {"info", "off"}) {
    SCOPED_TRACE(level);
    auto r = RunBinary({binary_, "--config", config, "--log-level", level});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(r.err.find(":" + outbound.port) != std::string::npos ||
                r.err.find(":" + inbound.port) != std::string::npos ||
                r.err.find(":" + admin.port) != std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace picket::proxy
