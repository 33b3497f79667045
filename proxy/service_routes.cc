// proxy/service_routes.cc — see service_routes.h.
#include "proxy/service_routes.h"

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <string>
#include <tuple>
#include <utility>

namespace picket::proxy {
namespace {

SysError Fail(std::string what, int code = errno) { return SysError{code, std::move(what)}; }

int FamilyOf(bool v6) { return v6 ? AF_INET6 : AF_INET; }

// The address's bytes as the kernel takes them: 4 for IPv4, 16 for IPv6.
size_t AddressLength(const base::IpAddress& a) { return a.v6 ? 16 : 4; }

bool Less(const base::IpAddress& a, const base::IpAddress& b) {
  return std::tie(a.v6, a.bytes) < std::tie(b.v6, b.bytes);
}

}  // namespace

ServiceRoutes::ServiceRoutes(const Options& options, mnl_socket* socket)
    : options_(options), socket_(socket), loopback_index_(static_cast<int>(if_nametoindex("lo"))) {}

void ServiceRoutes::CloseSocket::operator()(mnl_socket* socket) const { mnl_socket_close(socket); }

std::expected<ServiceRoutes, SysError> ServiceRoutes::Open(const Options& options) {
  mnl_socket* socket = mnl_socket_open(NETLINK_ROUTE);
  if (socket == nullptr) return std::unexpected(Fail("rtnetlink socket"));
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    SysError e = Fail("rtnetlink bind");
    mnl_socket_close(socket);
    return std::unexpected(e);
  }
  ServiceRoutes routes(options, socket);
  if (routes.loopback_index_ == 0) return std::unexpected(Fail("if_nametoindex(lo)"));
  for (bool v6 : {false, true}) {
    if (!(v6 ? options.source_v6 : options.source_v4)) continue;
    if (auto ok = routes.AddRules(v6); !ok) return std::unexpected(ok.error());
  }
  if (auto ok = routes.Flush(); !ok) return std::unexpected(ok.error());
  return routes;
}

std::expected<void, SysError> ServiceRoutes::Request(void* message, const char* what) {
  auto* nlh = static_cast<nlmsghdr*>(message);
  nlh->nlmsg_seq = seq_++;
  if (mnl_socket_sendto(socket_.get(), nlh, nlh->nlmsg_len) < 0) return std::unexpected(Fail(what));
  char buffer[MNL_SOCKET_BUFFER_SIZE];
  const ssize_t n = mnl_socket_recvfrom(socket_.get(), buffer, sizeof buffer);
  if (n < 0) return std::unexpected(Fail(what));
  if (mnl_cb_run(buffer, static_cast<size_t>(n), nlh->nlmsg_seq,
                 mnl_socket_get_portid(socket_.get()), nullptr, nullptr) < 0) {
    return std::unexpected(Fail(what));
  }
  return {};
}

std::expected<void, SysError> ServiceRoutes::AddRules(bool v6) {
  // First the proxy uid → main, then TCP → our table; each added unless an equal one exists.
  for (int i = 0; i < 2; ++i) {
    char buffer[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = mnl_nlmsg_put_header(buffer);
    nlh->nlmsg_type = RTM_NEWRULE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    auto* rule = static_cast<fib_rule_hdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(fib_rule_hdr)));
    rule->family = static_cast<uint8_t>(FamilyOf(v6));
    rule->action = FR_ACT_TO_TBL;
    mnl_attr_put_u32(nlh, FRA_PRIORITY, options_.rule_priority + static_cast<uint32_t>(i));
    if (i == 0) {
      const fib_rule_uid_range uids{options_.proxy_uid, options_.proxy_uid};
      mnl_attr_put(nlh, FRA_UID_RANGE, sizeof uids, &uids);
      mnl_attr_put_u32(nlh, FRA_TABLE, RT_TABLE_MAIN);
    } else {
      mnl_attr_put_u8(nlh, FRA_IP_PROTO, IPPROTO_TCP);
      mnl_attr_put_u32(nlh, FRA_TABLE, options_.table);
    }
    auto ok = Request(nlh, "RTM_NEWRULE");
    if (!ok && ok.error().code != EEXIST) return ok;
  }
  return {};
}

std::expected<void, SysError> ServiceRoutes::Flush() {
  // Dump every route and collect our table's destinations; delete them after the dump.
  std::vector<base::IpAddress> stale;
  char buffer[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer);
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq_++;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_UNSPEC;
  if (mnl_socket_sendto(socket_.get(), nlh, nlh->nlmsg_len) < 0) {
    return std::unexpected(Fail("RTM_GETROUTE"));
  }
  struct Collect {
    uint32_t table;
    std::vector<base::IpAddress>* out;
  } collect{options_.table, &stale};
  const uint32_t seq = nlh->nlmsg_seq;
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(socket_.get(), buffer, sizeof buffer);
    if (n < 0) return std::unexpected(Fail("RTM_GETROUTE dump"));
    const int rc = mnl_cb_run(
        buffer, static_cast<size_t>(n), seq, mnl_socket_get_portid(socket_.get()),
        [](const nlmsghdr* h, void* data) -> int {
          auto* c = static_cast<Collect*>(data);
          const auto* r = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(h));
          struct Attributes {
            uint32_t table;
            const void* dst = nullptr;
          } found{r->rtm_table};
          mnl_attr_parse(
              h, sizeof(rtmsg),
              [](const nlattr* attr, void* out) -> int {
                auto* f = static_cast<Attributes*>(out);
                if (mnl_attr_get_type(attr) == RTA_TABLE) f->table = mnl_attr_get_u32(attr);
                if (mnl_attr_get_type(attr) == RTA_DST) f->dst = mnl_attr_get_payload(attr);
                return MNL_CB_OK;
              },
              &found);
          const void* dst = found.dst;
          if (found.table != c->table || dst == nullptr) return MNL_CB_OK;
          base::IpAddress a;
          a.v6 = r->rtm_family == AF_INET6;
          std::copy_n(static_cast<const uint8_t*>(dst), AddressLength(a), a.bytes.begin());
          c->out->push_back(a);
          return MNL_CB_OK;
        },
        &collect);
    if (rc < 0) return std::unexpected(Fail("RTM_GETROUTE dump"));
    if (rc == MNL_CB_STOP) break;
  }
  for (const base::IpAddress& a : stale) {
    if (auto ok = Route(false, a); !ok) return ok;
  }
  routed_.clear();
  return {};
}

std::expected<void, SysError> ServiceRoutes::Route(bool add, const base::IpAddress& address) {
  // A deletion needs no source: a predecessor's route of a family this sidecar lacks goes too.
  const std::optional<base::IpAddress>& source =
      address.v6 ? options_.source_v6 : options_.source_v4;
  if (add && !source) {
    return std::unexpected(Fail("route: no source address of this family", EAFNOSUPPORT));
  }
  char buffer[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer);
  nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(FamilyOf(address.v6));
  rtm->rtm_dst_len = address.v6 ? 128 : 32;
  rtm->rtm_table = RT_TABLE_UNSPEC;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = RT_SCOPE_HOST;
  rtm->rtm_type = RTN_LOCAL;
  mnl_attr_put_u32(nlh, RTA_TABLE, options_.table);
  mnl_attr_put(nlh, RTA_DST, AddressLength(address), address.bytes.data());
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(loopback_index_));
  if (add) mnl_attr_put(nlh, RTA_PREFSRC, AddressLength(*source), source->bytes.data());
  auto ok = Request(nlh, add ? "RTM_NEWROUTE" : "RTM_DELROUTE");
  if (!ok && !add && ok.error().code == ESRCH) return {};  // already gone
  return ok;
}

std::expected<void, SysError> ServiceRoutes::Sync(const std::vector<base::IpAddress>& addresses) {
  std::vector<base::IpAddress> want = addresses;
  std::sort(want.begin(), want.end(), Less);
  want.erase(std::unique(want.begin(), want.end()), want.end());
  if (want.size() > options_.max_routes) {
    return std::unexpected(Fail("route: " + std::to_string(want.size()) +
                                    " Service addresses (limit " +
                                    std::to_string(options_.max_routes) + ")",
                                E2BIG));
  }
  std::vector<base::IpAddress> added;
  std::set_difference(want.begin(), want.end(), routed_.begin(), routed_.end(),
                      std::back_inserter(added), Less);
  std::vector<base::IpAddress> gone;
  std::set_difference(routed_.begin(), routed_.end(), want.begin(), want.end(),
                      std::back_inserter(gone), Less);
  for (const base::IpAddress& a : added) {
    if (auto ok = Route(true, a); !ok) return ok;
    routed_.insert(std::lower_bound(routed_.begin(), routed_.end(), a, Less), a);
  }
  for (const base::IpAddress& a : gone) {
    if (auto ok = Route(false, a); !ok) return ok;
    routed_.erase(std::lower_bound(routed_.begin(), routed_.end(), a, Less));
  }
  return {};
}

}  // namespace picket::proxy
