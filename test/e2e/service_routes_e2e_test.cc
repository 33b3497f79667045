// proxy/service_routes.h on the real kernel, as root, in a network namespace of its own, v4 and
// v6: the two rules are added once (a second Open keeps them single); Sync makes the table hold
// exactly the addresses named, as `local` routes; an app's TCP connect to a routed Service
// address is accepted by a transparent listener on that address, which sees the app's own
// address; the proxy uid and UDP are not steered; a new Open empties the table; past max_routes
// Sync refuses and changes nothing. Fails loudly without root.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "base/ip.h"
#include "proxy/service_routes.h"
#include "proxy/socket_util.h"
#include "test/e2e/netns.h"

namespace picket::e2e {
namespace {

using proxy::ServiceRoutes;

struct Addresses {
  const char* pod;
  const char* peer;
  const char* services[3];
};
constexpr Addresses kV4{"10.79.0.1", "10.79.0.2", {"10.96.0.10", "10.96.0.11", "10.96.0.12"}};
constexpr Addresses kV6{"fd00:79::1", "fd00:79::2", {"fd00:96::a", "fd00:96::b", "fd00:96::c"}};

base::IpAddress Ip(const std::string& text) {
  auto ip = base::IpAddress::Parse(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(base::IpAddress{});
}

class ServiceRoutesE2eTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the Service route tests create network namespaces, policy rules "
                                "and routes: run them as root (they do not skip)";
    pod_ = std::make_unique<Netns>(UniqueName("srp"));
    peer_ = std::make_unique<Netns>(UniqueName("srq"));
    ASSERT_TRUE(pod_->ok() && peer_->ok());
    std::string error;
    ASSERT_TRUE(LinkNamespaces(*pod_, kV4.pod, kV6.pod, *peer_, kV4.peer, kV6.peer, &error))
        << error;
    // A default route out of the pod, as a pod has: what is not steered leaves by it.
    CommandResult r = pod_->Exec({"ip", Family(), "route", "add", "default", "via", a().peer});
    ASSERT_EQ(r.status, 0) << r.output;
  }

  static const Addresses& a() { return GetParam() ? kV6 : kV4; }
  static const char* Family() { return GetParam() ? "-6" : "-4"; }

  ServiceRoutes::Options Options() const {
    ServiceRoutes::Options o;
    (GetParam() ? o.source_v6 : o.source_v4) = Ip(a().pod);
    return o;
  }

  std::expected<ServiceRoutes, proxy::SysError> OpenIn(const ServiceRoutes::Options& options) {
    std::expected<ServiceRoutes, proxy::SysError> out =
        std::unexpected(proxy::SysError{0, "not run"});
    pod_->InNetns([&] {
      out = ServiceRoutes::Open(options);
      return 0;
    });
    return out;
  }

  std::expected<void, proxy::SysError> SyncIn(ServiceRoutes& routes,
                                              const std::vector<std::string>& addresses) {
    std::vector<base::IpAddress> ips;
    for (const std::string& s : addresses) ips.push_back(Ip(s));
    std::expected<void, proxy::SysError> out = std::unexpected(proxy::SysError{0, "not run"});
    pod_->InNetns([&] {
      out = routes.Sync(ips);
      return 0;
    });
    return out;
  }

  std::string Table() {
    CommandResult r = pod_->Exec({"ip", Family(), "route", "show", "table", "15001"});
    EXPECT_EQ(r.status, 0) << r.output;
    return r.output;
  }

  std::string RouteGet(const std::vector<std::string>& extra) {
    std::vector<std::string> argv{"ip", Family(), "route", "get", a().services[0]};
    argv.insert(argv.end(), extra.begin(), extra.end());
    CommandResult r = pod_->Exec(argv);
    EXPECT_EQ(r.status, 0) << r.output;
    return r.output;
  }

  // A transparent listener in the pod on a Service address (any port); -1 on failure.
  int TransparentListener(const std::string& address, uint16_t* port) {
    return pod_->InNetns([&] {
      filters::Endpoint e;
      e.address = Ip(address);
      sockaddr_storage ss{};
      socklen_t len = proxy::EndpointToSockaddr(e, &ss);
      int fd = socket(ss.ss_family, SOCK_STREAM, 0);
      int one = 1;
      if (fd < 0 ||
          (GetParam() ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                      : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one)) != 0 ||
          bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 8) != 0 ||
          getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        if (fd >= 0) close(fd);
        return -1;
      }
      *port = proxy::EndpointFromSockaddr(ss).port;
      return fd;
    });
  }

  std::unique_ptr<Netns> pod_;
  std::unique_ptr<Netns> peer_;
};

TEST_P(ServiceRoutesE2eTest, RulesAreAddedOnceAndTheTableHoldsExactlyWhatSyncNames) {
  auto routes = OpenIn(Options());
  ASSERT_TRUE(routes) << routes.error().ToString();
  auto again = OpenIn(Options());  // a restarted sidecar
  ASSERT_TRUE(again) << again.error().ToString();
  CommandResult rules = pod_->Exec({"ip", Family(), "rule", "list"});
  ASSERT_EQ(rules.status, 0);
  EXPECT_NE(rules.output.find("15000:\tfrom all uidrange 1337-1337 lookup main"), std::string::npos)
      << rules.output;
  EXPECT_NE(rules.output.find("15001:\tfrom all ipproto tcp lookup 15001"), std::string::npos)
      << rules.output;
  EXPECT_EQ(rules.output.find("15000:"), rules.output.rfind("15000:")) << rules.output;
  EXPECT_EQ(rules.output.find("15001:"), rules.output.rfind("15001:")) << rules.output;

  ASSERT_TRUE(SyncIn(*routes, {a().services[0], a().services[1], a().services[0]}));
  std::string table = Table();
  EXPECT_NE(table.find(std::string("local ") + a().services[0] + " dev lo"), std::string::npos)
      << table;
  EXPECT_NE(table.find(std::string("local ") + a().services[1] + " dev lo"), std::string::npos)
      << table;
  EXPECT_EQ(routes->routed().size(), 2u);

  ASSERT_TRUE(SyncIn(*routes, {a().services[1], a().services[2]}));
  table = Table();
  EXPECT_EQ(table.find(a().services[0]), std::string::npos) << table;
  EXPECT_NE(table.find(a().services[1]), std::string::npos) << table;
  EXPECT_NE(table.find(a().services[2]), std::string::npos) << table;

  // A new Open (the sidecar restarted) starts from an empty table.
  auto fresh = OpenIn(Options());
  ASSERT_TRUE(fresh) << fresh.error().ToString();
  EXPECT_EQ(Table(), "");
}

TEST_P(ServiceRoutesE2eTest, AnAppsTcpToARoutedServiceReachesATransparentListenerOnly) {
  auto routes = OpenIn(Options());
  ASSERT_TRUE(routes) << routes.error().ToString();
  ASSERT_TRUE(SyncIn(*routes, {a().services[0]}));

  // TCP from an app is local; the proxy uid's and UDP leave by the default route.
  EXPECT_NE(RouteGet({"ipproto", "tcp"}).find("local"), std::string::npos);
  EXPECT_EQ(RouteGet({"ipproto", "tcp", "uid", "1337"}).find("local"), std::string::npos);
  EXPECT_EQ(RouteGet({"ipproto", "udp"}).find("local"), std::string::npos);

  uint16_t port = 0;
  int listener = TransparentListener(a().services[0], &port);
  ASSERT_GE(listener, 0) << strerror(errno);
  int app = ConnectFrom(*pod_, a().services[0], port, std::chrono::seconds(5));
  ASSERT_GE(app, 0) << strerror(errno);
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  int accepted = accept(listener, reinterpret_cast<sockaddr*>(&peer), &len);
  ASSERT_GE(accepted, 0) << strerror(errno);
  // The relay sees the app's own address, and its socket's local address is the Service's.
  EXPECT_EQ(proxy::EndpointFromSockaddr(peer).address, Ip(a().pod));
  sockaddr_storage local{};
  len = sizeof local;
  ASSERT_EQ(getsockname(accepted, reinterpret_cast<sockaddr*>(&local), &len), 0);
  EXPECT_EQ(proxy::EndpointFromSockaddr(local).address, Ip(a().services[0]));
  EXPECT_EQ(proxy::EndpointFromSockaddr(local).port, port);
  ASSERT_EQ(write(app, "x", 1), 1);
  char byte = 0;
  EXPECT_EQ(read(accepted, &byte, 1), 1);
  EXPECT_EQ(byte, 'x');
  close(accepted);
  close(app);
  close(listener);

  // Nothing listening any more (the sidecar gone): the route stays, so the connect reaches
  // nothing and fails, bounded by its timeout (fail closed; no reset can come from an address
  // the pod does not own).
  errno = 0;
  const int none = ConnectFrom(*pod_, a().services[0], port, std::chrono::milliseconds(500));
  EXPECT_LT(none, 0);
  EXPECT_TRUE(errno == EINPROGRESS || errno == ETIMEDOUT || errno == ECONNREFUSED)
      << strerror(errno);
  if (none >= 0) close(none);
}

TEST_P(ServiceRoutesE2eTest, PastItsBoundSyncRefusesAndChangesNothing) {
  ServiceRoutes::Options options = Options();
  options.max_routes = 2;
  auto routes = OpenIn(options);
  ASSERT_TRUE(routes) << routes.error().ToString();
  ASSERT_TRUE(SyncIn(*routes, {a().services[0]}));
  auto refused = SyncIn(*routes, {a().services[0], a().services[1], a().services[2]});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, E2BIG);
  EXPECT_NE(refused.error().what.find("3 Service addresses (limit 2)"), std::string::npos)
      << refused.error().what;
  std::string table = Table();
  EXPECT_NE(table.find(a().services[0]), std::string::npos) << table;
  EXPECT_EQ(table.find(a().services[1]), std::string::npos) << table;
  EXPECT_EQ(routes->routed().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Families, ServiceRoutesE2eTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "v6" : "v4"; });

}  // namespace
}  // namespace picket::e2e
