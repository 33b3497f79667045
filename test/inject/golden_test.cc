// Golden tests: picket-inject over every workload kind, List, multi-document, already-injected,
// opted-out, hostNetwork, native-sidecar, capability, UDP/SCTP and metrics opt-out inputs, TCP
// verdict mode (picket.dev/capture), and an app with its own prometheus.io annotations
// (testdata/<name>.in.yaml → <name>.out.yaml), and picket-init --dry-run (testdata/init_*.golden).
//
// To regenerate after an intended change, then review the diff:
//   bazel test --spawn_strategy=standalone //test/inject:golden_test
//     --test_env=PICKET_UPDATE_GOLDENS=$PWD/test/inject/testdata   (one command line)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "config/document.h"
#include "inject/injector.h"
#include "inject/redirect_installer.h"
#include "inject/redirect_rules.h"

namespace picket::inject {
namespace {

constexpr char kTestdata[] = "test/inject/testdata/";

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void CheckGolden(const std::string& name, const std::string& actual) {
  if (const char* dir = std::getenv("PICKET_UPDATE_GOLDENS")) {
    std::ofstream(std::string(dir) + "/" + name, std::ios::binary) << actual;
    return;
  }
  EXPECT_EQ(actual, Read(kTestdata + name)) << "golden " << name << " differs";
}

std::vector<config::Node> Docs(const std::string& text) {
  auto d = config::ParseYamlDocuments(text, "x");
  EXPECT_TRUE(d.has_value());
  return d ? *d : std::vector<config::Node>{};
}

struct Case {
  const char* name;
  bool native = false;
  std::vector<std::string> notes;  // substrings expected, in order
};

class InjectGolden : public testing::TestWithParam<Case> {};

TEST_P(InjectGolden, MatchesGoldenAndIsIdempotent) {
  const Case& c = GetParam();
  InjectOptions options;
  options.native_sidecar = c.native;
  const std::string in_name = std::string(c.name) + ".in.yaml";
  auto result = InjectYamlText(Read(kTestdata + in_name), in_name, options);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  CheckGolden(std::string(c.name) + ".out.yaml", result->yaml);
  ASSERT_EQ(result->notes.size(), c.notes.size());
  for (size_t i = 0; i < c.notes.size(); ++i) {
    EXPECT_NE(result->notes[i].find(c.notes[i]), std::string::npos) << result->notes[i];
  }
  // Injecting the output again changes nothing (the status annotation is recognised).
  auto again = InjectYamlText(result->yaml, "again.yaml", options);
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_EQ(again->yaml, result->yaml);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, InjectGolden,
    testing::Values(
        Case{"pod", false, {}}, Case{"deployment", false, {}}, Case{"statefulset", false, {}},
        Case{"daemonset", false, {}}, Case{"replicaset", false, {}}, Case{"job", false, {}},
        Case{"cronjob", false, {}}, Case{"list", false, {}}, Case{"multidoc", false, {}},
        Case{"native_sidecar", true, {}}, Case{"job_native", true, {}},
        Case{"already_injected", false, {"already injected"}}, Case{"udp_sctp_off", false, {}},
        Case{"metrics_off", false, {}}, Case{"capture_verdict", false, {}},
        Case{"prometheus_own",
             false,
             {"Deployment \"shop/api\": has prometheus.io annotations of its own: kept, none "
              "added"}},
        Case{"opted_out",
             false,
             {"Pod \"legacy\" has sidecar injection disabled",
              "Deployment \"batch\" has sidecar injection disabled"}},
        Case{"hostnetwork",
             false,
             {"DaemonSet \"monitoring/node-exporter\" has host networking enabled"}},
        Case{"capabilities",
             false,
             {"container \"pinger\" adds NET_RAW "
              "(spec.containers[1].securityContext.capabilities.add): kept",
              "Pod \"shop/capture-debug\": picket.dev/keep-capabilities keeps NET_RAW"}}),
    [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(InjectGoldenContent, NonWorkloadsPassThroughUnchanged) {
  for (const char* name : {"list", "multidoc", "opted_out", "hostnetwork", "already_injected"}) {
    const std::string in = Read(std::string(kTestdata) + name + ".in.yaml");
    const std::string out = Read(std::string(kTestdata) + name + ".out.yaml");
    std::vector<config::Node> a = Docs(in), b = Docs(out);
    // Empty documents are dropped; everything else keeps its position.
    std::erase_if(a, [](const config::Node& n) { return n.IsNull(); });
    ASSERT_EQ(a.size(), b.size()) << name;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string kind = a[i].StringAt("kind");
      const bool mixed = std::string(name) == "list" || std::string(name) == "multidoc";
      if (kind == "Namespace" || kind == "ConfigMap" || kind == "Service" || !mixed) {
        EXPECT_EQ(a[i], b[i]) << name << " document " << i;
      }
    }
  }
  // Inside the List: the Service and the Deployment of another API group are untouched.
  auto list_in = Docs(Read(std::string(kTestdata) + "list.in.yaml"));
  auto list_out = Docs(Read(std::string(kTestdata) + "list.out.yaml"));
  const auto& items_in = list_in[0].Find("items")->items();
  const auto& items_out = list_out[0].Find("items")->items();
  EXPECT_EQ(items_in[0], items_out[0]);
  EXPECT_EQ(items_in[2], items_out[2]);
  EXPECT_NE(items_in[1], items_out[1]);
}

TEST(InjectErrors, MissingTemplateAndNameClashes) {
  InjectOptions o;
  auto r = InjectYamlText("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n",
                          "d.yaml", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().ToString().find("spec.template is required value"), std::string::npos)
      << r.error().ToString();
  r = InjectYamlText(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"
      "  - {name: picket-proxy, image: x}\n",
      "p.yaml", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().ToString().find("already named \"picket-proxy\""), std::string::npos)
      << r.error().ToString();
  r = InjectYamlText("a: [\n", "bad.yaml", o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().ToString().find("bad.yaml:"), std::string::npos) << r.error().ToString();
}

TEST(InjectJson, AcceptsAJsonDocument) {
  auto r = InjectYamlText(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"a","image":"b"}]}})",
      "p.json", InjectOptions{});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_NE(r->yaml.find("name: picket-proxy"), std::string::npos);
}

// AdmissionReview carries no server version: --kubernetes-version decides the default.
TEST(NativeSidecars, FromKubernetes129UnknownIsClassic) {
  for (const char* yes : {"v1.29.0", "1.29", "v1.30.2", "v1.29.1-gke.1589000", "1.31+",
                          "v1.33.0-eks-4096722", "2.0"}) {
    auto r = NativeSidecarsByDefault(yes);
    ASSERT_TRUE(r.has_value()) << yes << ": " << r.error().ToString();
    EXPECT_TRUE(*r) << yes;
  }
  // 1.28: SidecarContainers is alpha, off unless the gate is on (then --native-sidecar).
  for (const char* no : {"", "v1.28.9", "1.27", "v1.20.15", "v1.28.0-gke.1"}) {
    auto r = NativeSidecarsByDefault(no);
    ASSERT_TRUE(r.has_value()) << no << ": " << r.error().ToString();
    EXPECT_FALSE(*r) << no;
  }
  for (const char* bad : {"latest", "v1", "1.", "1.x", "1.29x", "v", "11111.1"}) {
    auto r = NativeSidecarsByDefault(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().field, "--kubernetes-version") << bad;
  }
}

// The native form's order: picket-init, the sidecar, then the app's init containers.
TEST(NativeSidecars, InitOrder) {
  auto docs = Docs(Read(std::string(kTestdata) + "job_native.out.yaml"));
  ASSERT_EQ(docs.size(), 1u);
  const config::Node* spec = docs[0].Find("spec")->Find("template")->Find("spec");
  const auto& inits = spec->Find("initContainers")->items();
  ASSERT_EQ(inits.size(), 3u);
  EXPECT_EQ(inits[0].StringAt("name"), "picket-init");
  EXPECT_EQ(inits[1].StringAt("name"), "picket-proxy");
  EXPECT_EQ(inits[1].StringAt("restartPolicy"), "Always");
  EXPECT_NE(inits[1].Find("startupProbe"), nullptr);
  EXPECT_EQ(inits[2].StringAt("name"), "fetch");
  const auto& containers = spec->Find("containers")->items();
  ASSERT_EQ(containers.size(), 1u);  // the Job completes when `pi` exits
  EXPECT_EQ(containers[0].StringAt("name"), "pi");
}

// The containers of the first pod template in `yaml`, by name.
std::map<std::string, config::Node> Containers(const std::string& yaml, size_t doc) {
  std::vector<config::Node> docs = Docs(yaml);
  std::map<std::string, config::Node> out;
  if (docs.size() <= doc) return out;
  const config::Node* spec = docs[doc].Find("spec");
  if (spec != nullptr && spec->Find("template") != nullptr) {
    spec = spec->Find("template")->Find("spec");
  }
  for (const char* list : {"initContainers", "containers"}) {
    const config::Node* cs = spec->Find(list);
    if (cs == nullptr) continue;
    for (const config::Node& c : cs->items()) out[c.StringAt("name")] = c;
  }
  return out;
}

std::vector<std::string> Strings(const config::Node* list) {
  std::vector<std::string> out;
  if (list == nullptr) return out;
  for (const config::Node& n : list->items()) out.push_back(n.AsString());
  return out;
}

std::vector<std::string> Added(const config::Node& container) {
  const config::Node* sc = container.Find("securityContext");
  const config::Node* caps = sc != nullptr ? sc->Find("capabilities") : nullptr;
  return Strings(caps != nullptr ? caps->Find("add") : nullptr);
}

bool HasArg(const config::Node& container, const std::string& arg) {
  std::vector<std::string> args = Strings(container.Find("args"));
  return std::find(args.begin(), args.end(), arg) != args.end();
}

// picket.dev/capture: verdict → picket-init --capture=verdict, the sidecar's bootstrap --capture=
// verdict, NET_ADMIN for the sidecar (switching to the proxy uid keeping it) even without
// UDP/SCTP; the app never gets it.
TEST(CaptureAnnotation, VerdictReachesInitAndSidecar) {
  const std::string out = Read(std::string(kTestdata) + "capture_verdict.out.yaml");
  for (size_t doc : {0u, 1u}) {
    SCOPED_TRACE(doc == 0 ? "verdict" : "verdict with udp-sctp false");
    auto cs = Containers(out, doc);
    ASSERT_EQ(cs.size(), 3u);
    const config::Node& init = cs["picket-init"];
    const config::Node& proxy = cs["picket-proxy"];
    EXPECT_TRUE(HasArg(init, "--capture=verdict"));
    EXPECT_EQ(HasArg(init, "--udp-sctp=false"), doc == 1);
    EXPECT_TRUE(HasArg(proxy, "--capture=verdict"));
    EXPECT_EQ(HasArg(proxy, "--udp-sctp=false"), doc == 1);
    EXPECT_TRUE(HasArg(proxy, "--user=1337"));
    EXPECT_TRUE(HasArg(proxy, "--group=1337"));
    EXPECT_EQ(Added(proxy),
              (std::vector<std::string>{"NET_ADMIN", "NET_BIND_SERVICE", "SETGID", "SETUID"}));
    EXPECT_EQ(proxy.Find("securityContext")->Find("runAsUser")->AsInt(), 0);
    for (const auto& [name, c] : cs) {
      if (name == "picket-init" || name == "picket-proxy") continue;
      EXPECT_TRUE(Added(c).empty()) << name;
      const std::vector<std::string> drop =
          Strings(c.Find("securityContext")->Find("capabilities")->Find("drop"));
      EXPECT_EQ(drop, (std::vector<std::string>{"NET_ADMIN", "NET_RAW"})) << name;
    }
  }
  // relay (explicit) is the default: the same as no annotation.
  const char* pod =
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
      "    picket.dev/capture: relay\nspec:\n  containers:\n  - {name: a, image: b}\n";
  auto relay = InjectYamlText(pod, "p.yaml", InjectOptions{});
  ASSERT_TRUE(relay.has_value()) << relay.error().ToString();
  EXPECT_EQ(relay->yaml.find("--capture"), std::string::npos) << relay->yaml;
}

// --nfqueue-count reaches picket-init and the sidecar's bootstrap together (they must agree).
TEST(CaptureAnnotation, QueueCountReachesInitAndSidecar) {
  InjectOptions o;
  o.nfqueue_count = 2;
  auto r = InjectYamlText(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
      "  - {name: a, image: b}\n",
      "p.yaml", o);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  auto cs = Containers(r->yaml, 0);
  EXPECT_TRUE(HasArg(cs["picket-init"], "--nfqueue-count=2"));
  EXPECT_TRUE(HasArg(cs["picket-proxy"], "--nfqueue-count=2"));
}

// --service-cidrs reaches picket-init of verdict-mode pods only.
TEST(CaptureAnnotation, ServiceCidrsGoToVerdictPodsOnly) {
  InjectOptions o;
  o.service_cidrs = {"10.96.0.0/12", "fd00:96::/112"};
  for (const char* mode : {"verdict", "relay"}) {
    const std::string pod = std::string("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n") +
                            "  annotations:\n    picket.dev/capture: " + mode +
                            "\nspec:\n  containers:\n  - {name: a, image: b}\n";
    auto r = InjectYamlText(pod, "p.yaml", o);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(r->yaml.find("--service-cidrs=10.96.0.0/12,fd00:96::/112") != std::string::npos,
              std::string(mode) == "verdict")
        << r->yaml;
  }
}

TEST(CaptureAnnotation, AnyOtherValueIsAnError) {
  for (const char* value : {"tproxy", "Verdict", "\"\"", "true"}) {
    const std::string pod = std::string("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n") +
                            "  namespace: shop\n  annotations:\n    picket.dev/capture: " + value +
                            "\nspec:\n  containers:\n  - {name: a, image: b}\n";
    auto r = InjectYamlText(pod, "p.yaml", InjectOptions{});
    ASSERT_FALSE(r.has_value()) << value;
    EXPECT_EQ(r.error().field, "metadata.annotations[picket.dev/capture]") << value;
    EXPECT_NE(r.error().ToString().find("Pod \"shop/p\""), std::string::npos)
        << r.error().ToString();
    EXPECT_NE(r.error().ToString().find("supported values: \"relay\", \"verdict\""),
              std::string::npos)
        << r.error().ToString();
  }
}

struct InitCase {
  const char* golden;
  std::vector<std::string> args;
};

class InitGolden : public testing::TestWithParam<InitCase> {};

TEST_P(InitGolden, DryRunMatchesGolden) {
  std::vector<std::string> args = GetParam().args;
  args.push_back("--dry-run");
  auto cmd = ParseInitArgs(args);
  ASSERT_TRUE(cmd.has_value()) << cmd.error().ToString();
  auto text = DryRunText(*cmd);
  ASSERT_TRUE(text.has_value()) << text.error().ToString();
  CheckGolden(GetParam().golden, *text);
}

INSTANTIATE_TEST_SUITE_P(
    Flags, InitGolden,
    testing::Values(InitCase{"init_default.golden", {}},
                    InitCase{
                        "init_flags.golden",
                        {"--proxy-uid=2000,2001", "--proxy-gid=3000",
                         "--include-outbound-cidrs=10.0.0.0/8,fd00::/8",
                         "--exclude-outbound-cidrs=10.96.0.1/32,fd00::1",
                         "--include-outbound-ports=5432", "--exclude-outbound-ports=25,587",
                         "--include-inbound-ports=8080,9090", "--exclude-interfaces=eth1",
                         "--outbound-port=16001", "--inbound-port=16006", "--metrics-port=9090"}},
                    InitCase{"init_verdict_default.golden", {"--capture=verdict"}},
                    InitCase{"init_verdict.golden",
                             {"--capture=verdict", "--metrics-port=15090",
                              "--exclude-outbound-cidrs=10.96.0.1/32,fd00::1",
                              "--include-inbound-ports=8080,9090", "--exclude-interfaces=eth1",
                              "--nfqueue=15100", "--service-cidrs=10.96.0.0/12,fd00:96::/112"}},
                    InitCase{"init_ipv4_only.golden",
                             {"--ipv6=false", "--exclude-inbound-ports=9100",
                              "--metrics-port=15090", "--include-outbound-cidrs=127.0.0.0/8"}}),
    [](const testing::TestParamInfo<InitCase>& info) {
      std::string n = info.param.golden;
      return n.substr(0, n.find('.'));
    });

}  // namespace
}  // namespace picket::inject
