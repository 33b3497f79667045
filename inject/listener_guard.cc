// inject/listener_guard.cc — see listener_guard.h.
#include "inject/listener_guard.h"

#include <sstream>

#include "inject/datagram_rules.h"

namespace picket::inject {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The lines after the chain's declaration.
std::string GuardInstallLines(const RedirectConfig& c, const GuardState& current) {
  std::ostringstream o;
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  for (uint32_t uid : c.proxy_uids) {
    o << "-A " << kListenGuardChain << " -m owner --uid-owner " << uid << " -j RETURN\n";
  }
  o << "-A " << kListenGuardChain << " -p tcp -j REJECT --reject-with tcp-reset\n";
  o << "-I OUTPUT 1 -p tcp -m multiport --sports " << c.outbound_port << "," << c.inbound_port;
  if (c.metrics_port != 0) o << "," << c.metrics_port;
  o << " -m tcp --tcp-flags SYN,ACK SYN,ACK -j " << kListenGuardChain << "\n";
  return o.str();
}

std::string GuardCleanupLines(const GuardState& current) {
  std::ostringstream o;
  for (const std::string& rule : current.jump_rules) o << "-D" << rule.substr(2) << "\n";
  if (current.chain) o << "-F " << kListenGuardChain << "\n-X " << kListenGuardChain << "\n";
  return o.str();
}

std::string FilterTable(const std::string& lines) {
  return lines.empty() ? "" : "*filter\n" + lines + "COMMIT\n";
}

}  // namespace

GuardState ParseGuardState(std::string_view text) {
  GuardState state;
  bool in_filter = false;
  const std::string declared = std::string(":") + kListenGuardChain + " ";
  const std::string jump = std::string(" -j ") + kListenGuardChain;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (StartsWith(line, "*")) {
      in_filter = line == "*filter";
      continue;
    }
    if (!in_filter) continue;
    if (StartsWith(line, declared)) state.chain = true;
    const bool ends_in_jump = line.size() >= jump.size() &&
                              line.compare(line.size() - jump.size(), jump.size(), jump) == 0;
    if (StartsWith(line, "-A ") && !StartsWith(line, std::string("-A ") + kListenGuardChain) &&
        ends_in_jump) {
      state.jump_rules.push_back(line);
    }
  }
  return state;
}

std::string BuildGuardInstallTransaction(const RedirectConfig& c, const GuardState& current) {
  return FilterTable(std::string(":") + kListenGuardChain + " - [0:0]\n" +
                     GuardInstallLines(c, current));
}

std::string BuildGuardCleanupTransaction(const GuardState& current) {
  return FilterTable(GuardCleanupLines(current));
}

base::Result<std::string> BuildFilterTransaction(const RedirectConfig& c, Family family,
                                                 const GuardState& guard, const RejectState& reject,
                                                 const NatState& datagrams) {
  auto datagram_lines = DatagramFilterLines(c, family, datagrams);
  if (!datagram_lines) return std::unexpected(datagram_lines.error());
  // Every declaration first, then the rules.
  std::string declarations = std::string(":") + kListenGuardChain + " - [0:0]\n";
  for (const std::string& chain : TcpRejectChains(c)) declarations += ":" + chain + " - [0:0]\n";
  for (const std::string& chain : DatagramFilterChains(c)) {
    declarations += ":" + chain + " - [0:0]\n";
  }
  return FilterTable(declarations + GuardInstallLines(c, guard) + TcpRejectFilterLines(c, reject) +
                     *datagram_lines);
}

std::string BuildFilterCleanupTransaction(const GuardState& guard, const RejectState& reject,
                                          const NatState& datagrams) {
  return FilterTable(GuardCleanupLines(guard) + TcpRejectCleanupLines(reject) +
                     DatagramFilterCleanupLines(datagrams));
}

}  // namespace picket::inject
