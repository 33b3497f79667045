// What the injected capability drop does to the attack of issue 11: an app with CAP_NET_RAW
// opens an AF_PACKET socket and writes hand-made TCP that netfilter (and so the capture rules)
// never sees. The container runtime applies `securityContext.capabilities`; this test plays the
// runtime: for each app container of testdata/capabilities.out.yaml it forks a root child, drops
// exactly the capabilities that container's `drop` list names (bounding, permitted, effective,
// inheritable), and tries to open the raw sockets. Root only (no-sandbox, exclusive); fails
// without it. Nothing is sent.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "config/document.h"

namespace picket::inject {
namespace {

const std::map<std::string, int> kCapabilities = {
    {"NET_ADMIN", CAP_NET_ADMIN}, {"NET_RAW", CAP_NET_RAW}, {"CHOWN", CAP_CHOWN}};

// The app containers of the injected Deployment, by name, with their capabilities.drop.
std::map<std::string, std::vector<int>> DropLists() {
  std::ifstream in("test/inject/testdata/capabilities.out.yaml");
  std::ostringstream text;
  text << in.rdbuf();
  auto docs = config::ParseYamlDocuments(text.str(), "capabilities.out.yaml");
  EXPECT_TRUE(docs.has_value());
  std::map<std::string, std::vector<int>> out;
  if (!docs) return out;
  const config::Node& spec = *(*docs)[0].Find("spec")->Find("template")->Find("spec");
  for (const config::Node& c : spec.Find("containers")->items()) {
    std::vector<int>& caps = out[c.StringAt("name")];
    const config::Node* sc = c.Find("securityContext");
    const config::Node* drop = sc != nullptr && sc->Find("capabilities") != nullptr
                                   ? sc->Find("capabilities")->Find("drop")
                                   : nullptr;
    if (drop == nullptr) continue;
    for (const config::Node& name : drop->items()) {
      std::string upper;
      for (char ch : name.AsString()) upper += static_cast<char>(std::toupper(ch));
      if (upper == "ALL") {
        for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) caps.push_back(cap);
      } else if (auto it = kCapabilities.find(upper); it != kCapabilities.end()) {
        caps.push_back(it->second);
      }
    }
  }
  return out;
}

// How many of the two raw sockets (AF_PACKET, AF_INET SOCK_RAW TCP) a child without `dropped`
// can open; -1 when the child could not drop them.
int RawSocketsOpened(const std::vector<int>& dropped) {
  pid_t pid = fork();
  if (pid == 0) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) _exit(100);
    for (int cap : dropped) {
      prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
      const uint32_t bit = 1u << (cap % 32);
      data[cap / 32].effective &= ~bit;
      data[cap / 32].permitted &= ~bit;
      data[cap / 32].inheritable &= ~bit;
    }
    if (syscall(SYS_capset, &header, data) != 0) _exit(101);
    int opened = 0;
    for (int fd :
         {socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), socket(AF_INET, SOCK_RAW, IPPROTO_TCP)}) {
      if (fd >= 0) {
        ++opened;
        close(fd);
      }
    }
    _exit(opened);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status) >= 100 ? -1 : WEXITSTATUS(status);
}

TEST(RawSockets, TheInjectedDropTakesThemAwayAndAKeptCapabilityDoesNot) {
  ASSERT_EQ(geteuid(), 0u) << "this test needs root (CAP_NET_RAW to begin with)";
  // Before: what a container runtime grants by default includes NET_RAW.
  ASSERT_EQ(RawSocketsOpened({}), 2);

  std::map<std::string, std::vector<int>> drops = DropLists();
  ASSERT_EQ(drops.count("plain"), 1u);
  // After: the containers the injector dropped NET_RAW from open none.
  for (const char* name : {"web", "plain", "minimal"}) {
    EXPECT_EQ(RawSocketsOpened(drops[name]), 0) << name;
  }
  // `pinger` adds CAP_NET_RAW itself: kept (with a warning), and still a way around.
  EXPECT_EQ(RawSocketsOpened(drops["pinger"]), 2);
  // picket-proxy drops ALL.
  EXPECT_EQ(RawSocketsOpened(drops["picket-proxy"]), 0);
}

}  // namespace
}  // namespace picket::inject
