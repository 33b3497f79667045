// control/offline_commands.cc — see offline_commands.h.
#include "control/offline_commands.h"

#include <charconv>
#include <fstream>
#include <memory>
#include <sstream>

#include "config/manifest_loader.h"
#include "control/flags.h"
#include "control/matrix.h"
#include "policy/cluster_policy.h"
#include "policy/endpoint_policy.h"

namespace picket::control {
namespace {

constexpr int kOk = 0;
constexpr int kInvalid = 1;
constexpr int kUsage = 2;

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::optional<uint16_t> ParsePort(const std::string& s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(v);
}

std::optional<config::Protocol> ParseProtocol(const std::string& s) {
  if (s == "TCP") return config::Protocol::kTCP;
  if (s == "UDP") return config::Protocol::kUDP;
  if (s == "SCTP") return config::Protocol::kSCTP;
  return std::nullopt;
}

void PrintErrors(const config::Errors& errors, std::ostream& err) {
  for (const config::Error& e : errors) err << e.ToString() << '\n';
}

// Loads and compiles the manifests of `flags.files`; prints errors and returns null on failure.
std::unique_ptr<policy::ClusterPolicy> Load(const Flags& flags, std::ostream& err,
                                            config::LoadResult* loaded = nullptr) {
  auto result = config::LoadManifestPaths(flags.files);
  if (!result) {
    PrintErrors(result.error(), err);
    return nullptr;
  }
  for (const std::string& notice : result->notices) err << notice << '\n';
  auto compiled = policy::ClusterPolicy::Compile(result->cluster);
  if (!compiled) {
    PrintErrors(compiled.error(), err);
    return nullptr;
  }
  if (loaded != nullptr) *loaded = std::move(*result);
  return std::move(*compiled);
}

std::expected<Flags, int> Parse(const std::vector<std::string>& args,
                                const std::set<std::string>& known, const char* usage,
                                std::ostream& err) {
  auto flags = ParseFlags(args, known);
  if (!flags) {
    err << flags.error() << "\nusage: " << usage << '\n';
    return std::unexpected(kUsage);
  }
  if (flags->files.empty()) {
    err << "missing -f PATH\nusage: " << usage << '\n';
    return std::unexpected(kUsage);
  }
  return std::move(*flags);
}

// NS/POD or an IP address.
std::optional<policy::ClusterPolicy::Endpoint> ResolveEndpoint(const policy::ClusterPolicy& cluster,
                                                               const std::string& text,
                                                               std::ostream& err) {
  if (auto ip = policy::IpAddress::Parse(text)) return cluster.FindAddress(*ip);
  const size_t slash = text.find('/');
  if (slash != std::string::npos) {
    if (auto e = cluster.FindPod(text.substr(0, slash), text.substr(slash + 1))) return e;
    err << "no such pod: " << text << '\n';
    return std::nullopt;
  }
  err << "not NS/POD or an IP address: " << text << '\n';
  return std::nullopt;
}

}  // namespace

int RunValidate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto flags = Parse(args, {}, "picket-control validate -f PATH...", err);
  if (!flags) return flags.error();
  config::LoadResult loaded;
  std::unique_ptr<policy::ClusterPolicy> cluster = Load(*flags, err, &loaded);
  if (cluster == nullptr) return kInvalid;
  out << "valid: " << loaded.cluster.namespaces.size() << " namespaces, "
      << loaded.cluster.pods.size() << " pods, " << loaded.cluster.policies.size()
      << " network policies\n";
  return kOk;
}

int RunMatrix(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  static constexpr char kUsageText[] =
      "picket-control matrix -f PATH... [--ports 80,81] [--protocols TCP,UDP,SCTP] "
      "[--output json|table]";
  auto flags = Parse(args, {"--ports", "--protocols", "--output"}, kUsageText, err);
  if (!flags) return flags.error();
  std::vector<uint16_t> ports;
  for (const std::string& p : Split(flags->Get("--ports").value_or("80"))) {
    auto port = ParsePort(p);
    if (!port) {
      err << "--ports: not a port: " << p << '\n';
      return kUsage;
    }
    ports.push_back(*port);
  }
  std::vector<config::Protocol> protocols;
  for (const std::string& p : Split(flags->Get("--protocols").value_or("TCP"))) {
    auto protocol = ParseProtocol(p);
    if (!protocol) {
      err << "--protocols: not TCP, UDP or SCTP: " << p << '\n';
      return kUsage;
    }
    protocols.push_back(*protocol);
  }
  const std::string output = flags->Get("--output").value_or("table");
  if (output != "json" && output != "table") {
    err << "--output: must be json or table\n";
    return kUsage;
  }
  if (ports.empty() || protocols.empty()) {
    err << "--ports and --protocols need at least one value\n";
    return kUsage;
  }
  std::unique_ptr<policy::ClusterPolicy> cluster = Load(*flags, err);
  if (cluster == nullptr) return kInvalid;
  if (output == "json") {
    out << MatrixJson(ComputeMatrix(*cluster, ports, protocols));
  } else {
    out << MatrixTable(*cluster, ports, protocols);
  }
  return kOk;
}

int RunExplain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  static constexpr char kUsageText[] =
      "picket-control explain -f PATH... --from NS/POD|IP --to NS/POD|IP --port N "
      "[--protocol TCP|UDP|SCTP]";
  auto flags = Parse(args, {"--from", "--to", "--port", "--protocol"}, kUsageText, err);
  if (!flags) return flags.error();
  auto from = flags->Get("--from");
  auto to = flags->Get("--to");
  auto port_text = flags->Get("--port");
  if (!from || !to || !port_text) {
    err << "--from, --to and --port are required\nusage: " << kUsageText << '\n';
    return kUsage;
  }
  auto port = ParsePort(*port_text);
  auto protocol = ParseProtocol(flags->Get("--protocol").value_or("TCP"));
  if (!port || !protocol) {
    err << "bad --port or --protocol\nusage: " << kUsageText << '\n';
    return kUsage;
  }
  std::unique_ptr<policy::ClusterPolicy> cluster = Load(*flags, err);
  if (cluster == nullptr) return kInvalid;
  auto src = ResolveEndpoint(*cluster, *from, err);
  auto dst = ResolveEndpoint(*cluster, *to, err);
  if (!src || !dst) return kUsage;
  out << Explain(*cluster, *src, *dst, *port, *protocol);
  return kOk;
}

int RunCompile(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  static constexpr char kUsageText[] = "picket-control compile -f PATH... --pod NS/NAME [-o FILE]";
  auto flags = Parse(args, {"--pod", "-o", "--output"}, kUsageText, err);
  if (!flags) return flags.error();
  auto pod = flags->Get("--pod");
  const size_t slash = pod ? pod->find('/') : std::string::npos;
  if (slash == std::string::npos) {
    err << "--pod NS/NAME is required\nusage: " << kUsageText << '\n';
    return kUsage;
  }
  std::unique_ptr<policy::ClusterPolicy> cluster = Load(*flags, err);
  if (cluster == nullptr) return kInvalid;
  const policy::PodEntry* entry =
      cluster->FindPodEntry(pod->substr(0, slash), pod->substr(slash + 1));
  if (entry == nullptr) {
    err << "no such pod: " << *pod << '\n';
    return kInvalid;
  }
  auto snapshot = policy::BuildEndpointPolicy(cluster->AddressMap(), cluster->PodPolicyOf(*entry));
  if (!snapshot) {
    PrintErrors(snapshot.error(), err);
    return kInvalid;
  }
  const std::string text = (*snapshot)->Encode();
  auto path = flags->Get("-o");
  if (!path) path = flags->Get("--output");
  if (!path || *path == "-") {
    out << text;
    return kOk;
  }
  std::ofstream file(*path, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    err << "cannot write " << *path << '\n';
    return kInvalid;
  }
  return kOk;
}

}  // namespace picket::control
