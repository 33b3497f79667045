// control/offline_commands.cc — see offline_commands.h.
#include "control/offline_commands.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <memory>
#include <optional>

#include "config/manifest_loader.h"
#include "config/workload_template.h"
#include "control/matrix.h"
#include "control/source/kubeconfig.h"
#include "control/source/kubernetes_snapshot.h"
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

// Where the objects come from: manifest files, or the cluster itself (one list per kind).
struct Input {
  std::vector<std::string> files;
  std::string kubeconfig;
  std::string kube_context;
};

void AddInputFlags(CLI::App& sub, Input* in) {
  CLI::Option* files =
      sub.add_option("-f,--file,--filename", in->files, "Manifest files or directories")
          ->type_name("PATH");
  CLI::Option* kubeconfig =
      sub.add_option("--kubeconfig", in->kubeconfig,
                     "Instead of -f: the cluster's current objects, from the Kubernetes API")
          ->type_name("PATH")
          ->excludes(files);
  files->excludes(kubeconfig);
  sub.add_option("--kube-context", in->kube_context, "The kubeconfig context to use")
      ->type_name("NAME")
      ->needs(kubeconfig);
}

// -f or --kubeconfig is required (CLI11 cannot say "one of" and still name unknown flags first).
bool HasInput(const Input& in, std::ostream& err) {
  if (!in.files.empty() || !in.kubeconfig.empty()) return true;
  err << "picket-control: -f PATH or --kubeconfig PATH is required\n"
         "Run with --help for more information.\n";
  return false;
}

// The objects of `in`: every error of the files, or of the cluster's objects, is printed.
std::expected<config::LoadResult, config::Errors> Read(const Input& in) {
  if (in.kubeconfig.empty()) {
    // Files: workloads stand for their pods (one each, from the template; see
    // config/workload_template.h). Never in serve, which enforces on real pods only.
    auto loaded = config::LoadManifestPaths(in.files, {.workload_templates = true});
    if (loaded) config::AssignTemplateAddresses(&loaded->cluster);
    return loaded;
  }
  auto config =
      source::LoadKubeconfig(in.kubeconfig, {.context = in.kube_context, .allow_insecure = false});
  if (!config) return std::unexpected(config::Errors{config.error()});
  source::KubernetesSourceOptions options;
  options.config = std::move(*config);
  auto snapshot = source::ReadKubernetesCluster(std::move(options));
  if (!snapshot) return std::unexpected(config::Errors{snapshot.error()});
  if (!snapshot->errors.empty()) return std::unexpected(std::move(snapshot->errors));
  return config::LoadResult{std::move(snapshot->cluster), {}};
}

// Loads and compiles the objects of `in`; prints errors and returns null on failure.
std::unique_ptr<policy::ClusterPolicy> Load(const Input& in, std::ostream& err,
                                            config::LoadResult* loaded = nullptr) {
  auto result = Read(in);
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
  auto input = std::make_shared<Input>();
  AddInputFlags(sub, input.get());
  return [input](std::ostream& out, std::ostream& err) {
    if (!HasInput(*input, err)) return kUsage;
    config::LoadResult loaded;
    std::unique_ptr<policy::ClusterPolicy> cluster = Load(*input, err, &loaded);
    if (cluster == nullptr) return kInvalid;
    out << "valid: " << loaded.cluster.namespaces.size() << " namespaces, "
        << loaded.cluster.pods.size() << " pods, " << loaded.cluster.policies.size()
        << " network policies";
    if (const size_t t = TemplatePodsOf(loaded.cluster).size(); t > 0) {
      out << " (" << t << " pods from workload templates)";
    }
    out << '\n';
    return kOk;
  };
}

CommandRun AddMatrix(CLI::App& sub) {
  struct Options {
    Input input;
    std::vector<uint16_t> ports = {80};
    std::vector<std::string> protocols = {"TCP"};
    std::string output = "table";
  };
  auto o = std::make_shared<Options>();
  AddInputFlags(sub, &o->input);
  sub.add_option("--ports", o->ports, "Destination ports, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  sub.add_option("--protocols", o->protocols, "TCP, UDP and/or SCTP, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember({"TCP", "UDP", "SCTP"}))
      ->capture_default_str();
  sub.add_option("-o,--output", o->output, "table, json or yaml")
      ->check(CLI::IsMember({"json", "table", "yaml"}))
      ->capture_default_str();
  return [o](std::ostream& out, std::ostream& err) {
    if (!HasInput(o->input, err)) return kUsage;
    std::vector<config::Protocol> protocols;
    for (const std::string& p : o->protocols) protocols.push_back(kProtocols.at(p));
    config::LoadResult loaded;
    std::unique_ptr<policy::ClusterPolicy> cluster = Load(o->input, err, &loaded);
    if (cluster == nullptr) return kInvalid;
    const TemplatePods templates = TemplatePodsOf(loaded.cluster);
    if (o->output == "json" || o->output == "yaml") {
      const std::string json = MatrixJson(ComputeMatrix(*cluster, o->ports, protocols), templates);
      out << (o->output == "json" ? json : JsonAsYaml(json));
    } else {
      out << MatrixTable(*cluster, o->ports, protocols, templates);
    }
    return kOk;
  };
}

CommandRun AddExplain(CLI::App& sub) {
  struct Options {
    Input input;
    std::string from, to;
    uint16_t port = 0;
    std::string protocol = "TCP";
  };
  auto o = std::make_shared<Options>();
  AddInputFlags(sub, &o->input);
  sub.add_option("--from", o->from, "Source")->type_name("NS/POD|IP")->required();
  sub.add_option("--to", o->to, "Destination")->type_name("NS/POD|IP")->required();
  sub.add_option("--port", o->port, "Destination port")->check(CLI::Range(1, 65535))->required();
  AddProtocolOption(sub, "--protocol", &o->protocol);
  return [o](std::ostream& out, std::ostream& err) {
    if (!HasInput(o->input, err)) return kUsage;
    config::LoadResult loaded;
    std::unique_ptr<policy::ClusterPolicy> cluster = Load(o->input, err, &loaded);
    if (cluster == nullptr) return kInvalid;
    auto src = ResolveEndpoint(*cluster, o->from, err);
    auto dst = ResolveEndpoint(*cluster, o->to, err);
    if (!src || !dst) return kUsage;
    out << Explain(*cluster, *src, *dst, o->port, kProtocols.at(o->protocol),
                   TemplatePodsOf(loaded.cluster));
    return kOk;
  };
}

CommandRun AddCompile(CLI::App& sub) {
  struct Options {
    Input input;
    std::string pod;
    std::string output = "-";
  };
  auto o = std::make_shared<Options>();
  AddInputFlags(sub, &o->input);
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
    if (!HasInput(o->input, err)) return kUsage;
    const size_t slash = o->pod.find('/');
    config::LoadResult loaded;
    std::unique_ptr<policy::ClusterPolicy> cluster = Load(o->input, err, &loaded);
    if (cluster == nullptr) return kInvalid;
    const policy::PodEntry* entry =
        cluster->FindPodEntry(o->pod.substr(0, slash), o->pod.substr(slash + 1));
    if (entry == nullptr) {
      err << "no such pod: " << o->pod << '\n';
      return kInvalid;
    }
    // The policy itself is the same; say on stderr that the pod (and its address) is made up.
    if (const TemplatePods templates = TemplatePodsOf(loaded.cluster); templates.contains(o->pod)) {
      err << o->pod << ": synthetic pod from " << templates.at(o->pod)
          << "'s template (its address is from a documentation range)\n";
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
