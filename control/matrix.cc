// control/matrix.cc — matrix and explain over policy::ClusterPolicy::Check.
#include "control/matrix.h"

#include <algorithm>
#include <sstream>

#include "base/json.h"

namespace picket::control {
namespace {

using policy::ClusterPolicy;

std::vector<ClusterPolicy::Endpoint> Endpoints(const ClusterPolicy& cluster) {
  std::vector<ClusterPolicy::Endpoint> out;
  for (const policy::PodEntry* pod : cluster.Pods()) {
    out.push_back(*cluster.FindPod(pod->ns, pod->name));
  }
  return out;
}

}  // namespace

TemplatePods TemplatePodsOf(const config::Cluster& cluster) {
  TemplatePods out;
  for (const config::Pod& pod : cluster.pods) {
    if (!pod.template_of.empty()) out.emplace(pod.ns + "/" + pod.name, pod.template_of);
  }
  return out;
}

std::vector<Probe> ComputeMatrix(const ClusterPolicy& cluster, const std::vector<uint16_t>& ports,
                                 const std::vector<config::Protocol>& protocols) {
  const std::vector<ClusterPolicy::Endpoint> endpoints = Endpoints(cluster);
  std::vector<Probe> probes;
  for (uint16_t port : ports) {
    for (config::Protocol protocol : protocols) {
      for (const auto& from : endpoints) {
        for (const auto& to : endpoints) {
          if (from.name == to.name) continue;
          probes.push_back(Probe{from.name, to.name, port, protocol,
                                 cluster.Check(from, to, port, protocol).allowed});
        }
      }
    }
  }
  return probes;
}

std::string MatrixJson(const std::vector<Probe>& probes, const TemplatePods& templates) {
  std::string out = "{";
  if (!templates.empty()) {
    out += "\"pods\":[";
    bool first = true;
    for (const auto& [pod, workload] : templates) {
      out += first ? "{\"pod\":" : ",{\"pod\":";
      first = false;
      base::AppendJsonString(out, pod);
      out += ",\"synthetic\":true,\"template_of\":";
      base::AppendJsonString(out, workload);
      out += '}';
    }
    out += "],";
  }
  out += "\"probes\":[";
  for (size_t i = 0; i < probes.size(); ++i) {
    const Probe& p = probes[i];
    if (i) out += ',';
    out += "{\"from\":";
    base::AppendJsonString(out, p.from);
    out += ",\"to\":";
    base::AppendJsonString(out, p.to);
    out += ",\"port\":" + std::to_string(p.port) + ",\"protocol\":\"";
    out += config::ProtocolName(p.protocol);
    out += "\",\"allowed\":";
    out += p.allowed ? "true" : "false";
    out += '}';
  }
  out += "]}\n";
  return out;
}

std::string MatrixTable(const ClusterPolicy& cluster, const std::vector<uint16_t>& ports,
                        const std::vector<config::Protocol>& protocols,
                        const TemplatePods& templates) {
  const std::vector<ClusterPolicy::Endpoint> endpoints = Endpoints(cluster);
  size_t width = 1;
  for (const auto& e : endpoints) width = std::max(width, e.name.size());
  auto pad = [&](const std::string& s) { return s + std::string(width - s.size() + 1, ' '); };
  std::ostringstream out;
  bool first = true;
  for (uint16_t port : ports) {
    for (config::Protocol protocol : protocols) {
      if (!first) out << '\n';
      first = false;
      out << port << '/' << config::ProtocolName(protocol) << '\n' << pad("");
      for (const auto& to : endpoints) out << pad(to.name);
      out << '\n';
      for (const auto& from : endpoints) {
        out << pad(from.name);
        for (const auto& to : endpoints) {
          const char* cell = from.name == to.name                              ? "-"
                             : cluster.Check(from, to, port, protocol).allowed ? "."
                                                                               : "X";
          out << pad(cell);
        }
        out << '\n';
      }
    }
  }
  if (!templates.empty()) out << '\n';
  for (const auto& [pod, workload] : templates) {
    out << pod << ": synthetic";
    const size_t slash = pod.find('/');
    if (auto e = cluster.FindPod(pod.substr(0, slash), pod.substr(slash + 1)); e && e->address) {
      out << ", " << e->address->ToString();
    }
    out << " (from " << workload << "'s template)\n";
  }
  std::string text = out.str();
  // Trailing pad spaces make diffs noisy.
  std::string trimmed;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    line.erase(line.find_last_not_of(' ') + 1);
    trimmed += line + '\n';
  }
  return trimmed;
}

std::string Explain(const ClusterPolicy& cluster, const ClusterPolicy::Endpoint& from,
                    const ClusterPolicy::Endpoint& to, uint16_t port, config::Protocol protocol,
                    const TemplatePods& templates) {
  const ClusterPolicy::Verdict v = cluster.Check(from, to, port, protocol);
  std::ostringstream out;
  auto describe = [&](const ClusterPolicy::Endpoint& e) {
    std::string s = e.name;
    if (e.pod != nullptr) {
      const auto tmpl = templates.find(e.name);
      s += tmpl == templates.end() ? " (pod" : " (synthetic pod";
      if (e.address) s += ", " + e.address->ToString();
      if (tmpl != templates.end()) s += ", from " + tmpl->second + "'s template";
      s += ")";
    } else if (e.address && e.address->ToString() != e.name) {
      s += " (" + e.address->ToString() + ", not an enforced pod)";
    } else {
      s += " (not a pod: no policy applies to it)";
    }
    return s;
  };
  out << "Connection: " << describe(from) << " -> " << describe(to) << " port " << port << '/'
      << config::ProtocolName(protocol) << '\n';
  if (v.self) {
    out << "The pod itself: always allowed (a pod cannot block access to itself).\n";
  } else {
    auto side = [&](const char* title, const ClusterPolicy::Endpoint& subject,
                    const ClusterPolicy::SideVerdict& s, policy::Direction direction) {
      out << title << " of " << subject.name << ": ";
      if (!s.enforced) {
        out << "not checked (not a pod whose policy we know)\n";
        return;
      }
      if (s.rules->policies.empty()) {
        out << "selected by no policy\n";
      } else {
        out << "selected by ";
        for (size_t i = 0; i < s.rules->policies.size(); ++i) {
          out << (i ? ", " : "") << s.rules->policies[i];
        }
        out << '\n';
      }
      out << "  " << (s.verdict.allowed ? "ALLOWED: " : "DENIED: ")
          << policy::DescribeVerdict(*s.rules, s.verdict, direction) << '\n';
    };
    side("Egress", from, v.egress, policy::Direction::kEgress);
    side("Ingress", to, v.ingress, policy::Direction::kIngress);
  }
  out << "Final verdict: " << (v.allowed ? "ALLOWED" : "DENIED") << '\n';
  return out.str();
}

}  // namespace picket::control
