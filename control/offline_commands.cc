// control/offline_commands.cc — see offline_commands.h.
#include "control/offline_commands.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <memory>
#include <optional>

#include "config/manifest_loader.h"
#include "control/matrix.h"
#include "policy/cluster_policy.h"
#include "policy/endpoint_policy.h"

namespace picket::control {
namespace {

constexpr int kOk = 0;
constexpr int kInvalid = 1;
constexpr int kUsage = 2;

const std::map<std::string, config::Protocol> kProtocols = {
    {"TCP", config::Protocol::kTCP},
    {"UDP", config::Protocol::kUDP},
    {"SCTP", config::Protocol::kSCTP},
};

CLI::Option* AddProtocolOption(CLI::App& sub, const std::string& name, std::string* value) {
  return sub.add_option(name, *value, "TCP, UDP or SCTP")
      ->check(CLI::IsMember({"TCP", "UDP", "SCTP"}))
      ->capture_default_str();
}

void PrintErrors(const config::Errors& errors, std::ostream& err) {
  for (const config::Error& e : errors) err << e.ToString() << '\n';
}

// Loads and compiles the manifests of `files`; prints errors and returns null on failure.
std::unique_ptr<policy::ClusterPolicy> Load(const std::vector<std::string>& files,
                                            std::ostream& err,
                                            config::LoadResult* loaded = nullptr) {
  auto result = config::LoadManifestPaths(files);
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

CommandRun AddValidate(CLI::App& sub) {
  auto files = std::make_shared<std::vector<std::string>>();
  AddFilesFlag(sub, files.get());
  return [files](std::ostream& out, std::ostream& err) {
    config::LoadResult loaded;
    std::unique_ptr<policy::ClusterPolicy> cluster = Load(*files, err, &loaded);
    if (cluster == nullptr) return kInvalid;
    out << "valid: " << loaded.cluster.namespaces.size() << " namespaces, "
        << loaded.cluster.pods.size() << " pods, " << loaded.cluster.policies.size()
        << " network policies\n";
    return kOk;
  };
}

CommandRun AddMatrix(CLI::App& sub) {
  struct Options {
    std::vector<std::string> files;
    std::vector<uint16_t> ports = {80};
    std::vector<std::string> protocols = {"TCP"};
    std::string output = "table";
  };
  auto o = std::make_shared<Options>();
  AddFilesFlag(sub, &o->files);
  sub.add_option("--ports", o->ports, "Destination ports, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  sub.add_option("--protocols", o->protocols, "TCP, UDP and/or SCTP, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember({"TCP", "UDP", "SCTP"}))
      ->capture_default_str();
  sub.add_option("--output", o->output, "json or table")
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();
  return [o](std::ostream& out, std::ostream& err) {
    std::vector<config::Protocol> protocols;
    for (const std::string& p : o->protocols) protocols.push_back(kProtocols.at(p));
    std::unique_ptr<policy::ClusterPolicy> cluster = Load(o->files, err);
    if (cluster == nullptr) return kInvalid;
    if (o->output == "json") {
      out << MatrixJson(ComputeMatrix(*cluster, o->ports, protocols));
    } else {
      out << MatrixTable(*cluster, o->ports, protocols);
    }
    return kOk;
  };
}

CommandRun AddExplain(CLI::App& sub) {
  struct Options {
    std::vector<std::string> files;
    std::string from, to;
    uint16_t port = 0;
    std::string protocol = "TCP";
  };
  auto o = std::make_shared<Options>();
  AddFilesFlag(sub, &o->files);
  sub.add_option("--from", o->from, "Source")->type_name("NS/POD|IP")->required();
  sub.add_option("--to", o->to, "Destination")->type_name("NS/POD|IP")->required();
  sub.add_option("--port", o->port, "Destination port")->check(CLI::Range(1, 65535))->required();
  AddProtocolOption(sub, "--protocol", &o->protocol);
  return [o](std::ostream& out, std::ostream& err) {
    std::unique_ptr<policy::ClusterPolicy> cluster = Load(o->files, err);
    if (cluster == nullptr) return kInvalid;
    auto src = ResolveEndpoint(*cluster, o->from, err);
    auto dst = ResolveEndpoint(*cluster, o->to, err);
    if (!src || !dst) return kUsage;
    out << Explain(*cluster, *src, *dst, o->port, kProtocols.at(o->protocol));
    return kOk;
  };
}

CommandRun AddCompile(CLI::App& sub) {
  struct Options {
    std::vector<std::string> files;
    std::string pod;
    std::string output = "-";
  };
  auto o = std::make_shared<Options>();
  AddFilesFlag(sub, &o->files);
  sub.add_option("--pod", o->pod, "The pod whose sidecar policy to print")
      ->type_name("NS/NAME")
      ->required()
      ->check(
          [](const std::string& pod) -> std::string {
            const size_t slash = pod.find('/');
            if (slash == std::string::npos || slash == 0 || slash + 1 == pod.size())
              return "expected NS/NAME, got \"" + pod + "\"";
            return "";
          },
          "NS/NAME");
  sub.add_option("-o,--output", o->output, "Output file, - for stdout")
      ->type_name("FILE")
      ->capture_default_str();
  return [o](std::ostream& out, std::ostream& err) {
    const size_t slash = o->pod.find('/');
    std::unique_ptr<policy::ClusterPolicy> cluster = Load(o->files, err);
    if (cluster == nullptr) return kInvalid;
    const policy::PodEntry* entry =
        cluster->FindPodEntry(o->pod.substr(0, slash), o->pod.substr(slash + 1));
    if (entry == nullptr) {
      err << "no such pod: " << o->pod << '\n';
      return kInvalid;
    }
    auto snapshot =
        policy::BuildEndpointPolicy(cluster->AddressMap(), cluster->PodPolicyOf(*entry));
    if (!snapshot) {
      PrintErrors(snapshot.error(), err);
      return kInvalid;
    }
    const std::string text = (*snapshot)->Encode();
    if (o->output == "-") {
      out << text;
      return kOk;
    }
    std::ofstream file(o->output, std::ios::binary | std::ios::trunc);
    file << text;
    file.close();
    if (!file) {
      err << "cannot write " << o->output << '\n';
      return kInvalid;
    }
    return kOk;
  };
}

}  // namespace picket::control
