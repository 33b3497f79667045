// inject/inject_main.cc — picket-inject: the kube-inject style CLI, the bootstrap generator the
// injected sidecar runs at start, the admission webhook server, and a tiny readiness probe.
// See inject/README.md.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "config/document.h"
#include "inject/bootstrap_gen.h"
#include "inject/injector.h"
#include "inject/webhook_server.h"

namespace {

using picket::inject::InjectOptions;

constexpr char kUsage[] = R"(usage:
  picket-inject [inject] -f FILE|- [-o OUT] [options]    add the sidecar to workload manifests
  picket-inject bootstrap --namespace NS --pod NAME --ip IP[,IP]... [--policy-file F]
                [--xds-address HOST:PORT] [--xds-cert F --xds-key F --xds-ca F]
                [--outbound-port N] [--inbound-port N] [--admin-port N] [--flow-log PATH]
                [--output F] [--exec PROGRAM]          print/write a pod's sidecar bootstrap
  picket-inject webhook --listen ADDR --tls-cert F --tls-key F [options]
                                                       serve AdmissionReview v1 on /inject
  picket-inject probe [--url http://127.0.0.1:15000/ready]
                                                       exit 0 when the URL answers 200

injection options:
  --image IMAGE                 image holding picket-init, picket-proxy and picket-inject
  --image-pull-policy POLICY    default IfNotPresent
  --xds-address HOST:PORT       control server (default picket-control.picket-system.svc:15012)
  --certs-secret NAME           Secret with tls.crt, tls.key, ca.crt (default picket-sidecar-tls)
  --outbound-port N, --inbound-port N, --admin-port N, --readiness-port N, --proxy-uid N
  --native-sidecar              sidecar as an init container with restartPolicy: Always
)";

// --name value | --name=value | bare switches. Repeated flags accumulate.
struct Args {
  std::multimap<std::string, std::string> values;
  std::vector<std::string> switches;
  std::string error;

  static Args Parse(const std::vector<std::string>& argv,
                    const std::vector<std::string>& bool_flags) {
    Args a;
    for (size_t i = 0; i < argv.size(); ++i) {
      std::string arg = argv[i];
      if (arg == "-f") arg = "--filename";
      if (arg == "-o") arg = "--output";
      if (arg.rfind("--", 0) != 0) {
        a.error = "unexpected argument \"" + arg + "\"";
        return a;
      }
      std::string name = arg.substr(2);
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        a.values.emplace(name.substr(0, eq), name.substr(eq + 1));
        continue;
      }
      bool is_bool = false;
      for (const std::string& b : bool_flags) is_bool = is_bool || b == name;
      if (is_bool) {
        a.switches.push_back(name);
        continue;
      }
      if (i + 1 >= argv.size()) {
        a.error = "--" + name + " needs a value";
        return a;
      }
      a.values.emplace(name, argv[++i]);
    }
    return a;
  }
  bool Has(const std::string& s) const {
    for (const std::string& x : switches) {
      if (x == s) return true;
    }
    return false;
  }
  std::string Get(const std::string& name, std::string fallback = "") const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> out;
    auto [b, e] = values.equal_range(name);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    return out;
  }
};

bool ParsePort(const std::string& flag, const std::string& text, uint16_t* out) {
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 1 || v > 65535) {
    std::fprintf(stderr, "picket-inject: --%s: \"%s\" is not a port\n", flag.c_str(), text.c_str());
    return false;
  }
  *out = static_cast<uint16_t>(v);
  return true;
}

// Reads the injection options shared by `inject` and `webhook`; consumes what it knows.
bool ReadInjectOptions(Args& a, InjectOptions* o) {
  static const std::vector<std::string> kKnown{"image",        "image-pull-policy", "xds-address",
                                               "certs-secret", "outbound-port",     "inbound-port",
                                               "admin-port",   "readiness-port",    "proxy-uid"};
  o->image = a.Get("image", o->image);
  o->image_pull_policy = a.Get("image-pull-policy", o->image_pull_policy);
  o->xds_address = a.Get("xds-address", o->xds_address);
  o->certs_secret = a.Get("certs-secret", o->certs_secret);
  for (auto [flag, field] : {std::pair{"outbound-port", &o->outbound_port},
                             {"inbound-port", &o->inbound_port},
                             {"admin-port", &o->admin_port},
                             {"readiness-port", &o->readiness_port}}) {
    std::string v = a.Get(flag);
    if (!v.empty() && !ParsePort(flag, v, field)) return false;
  }
  if (std::string uid = a.Get("proxy-uid"); !uid.empty()) {
    char* end = nullptr;
    long v = std::strtol(uid.c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 2147483647) {
      std::fprintf(stderr, "picket-inject: --proxy-uid: \"%s\" is not a uid\n", uid.c_str());
      return false;
    }
    o->proxy_uid = static_cast<uint32_t>(v);
  }
  o->native_sidecar = a.Has("native-sidecar");
  for (const std::string& k : kKnown) a.values.erase(k);
  return true;
}

bool RejectUnknown(const Args& a) {
  if (a.values.empty()) return true;
  std::fprintf(stderr, "picket-inject: unknown flag --%s\n%s", a.values.begin()->first.c_str(),
               kUsage);
  return false;
}

bool WriteOutput(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "picket-inject: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

int RunInject(Args a) {
  InjectOptions o;
  if (!ReadInjectOptions(a, &o)) return 2;
  const std::string in = a.Get("filename");
  const std::string out = a.Get("output");
  a.values.erase("filename");
  a.values.erase("output");
  if (!RejectUnknown(a)) return 2;
  if (in.empty()) {
    std::fprintf(stderr, "picket-inject: -f FILE|- is required\n%s", kUsage);
    return 2;
  }
  std::string text;
  if (in == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream f(in, std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "picket-inject: cannot open %s\n", in.c_str());
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  auto result = picket::inject::InjectYamlText(text, in == "-" ? "<stdin>" : in, o);
  if (!result) {
    std::fprintf(stderr, "picket-inject: %s\n", result.error().c_str());
    return 1;
  }
  for (const std::string& note : result->notes) std::fprintf(stderr, "===> %s\n", note.c_str());
  return WriteOutput(out, result->yaml) ? 0 : 1;
}

int RunBootstrap(Args a) {
  picket::inject::BootstrapParams p;
  p.ns = a.Get("namespace");
  p.pod = a.Get("pod");
  p.ips = a.All("ip");
  p.policy_file = a.Get("policy-file");
  p.xds_address = a.Get("xds-address");
  p.xds_cert = a.Get("xds-cert");
  p.xds_key = a.Get("xds-key");
  p.xds_ca = a.Get("xds-ca");
  p.flow_log = a.Get("flow-log");
  for (auto [flag, field] : {std::pair{"outbound-port", &p.outbound_port},
                             {"inbound-port", &p.inbound_port},
                             {"admin-port", &p.admin_port}}) {
    std::string v = a.Get(flag);
    if (!v.empty() && !ParsePort(flag, v, field)) return 2;
  }
  const std::string output = a.Get("output");
  const std::string exec = a.Get("exec");
  for (const char* k :
       {"namespace", "pod", "ip", "policy-file", "xds-address", "xds-cert", "xds-key", "xds-ca",
        "flow-log", "outbound-port", "inbound-port", "admin-port", "output", "exec"}) {
    a.values.erase(k);
  }
  if (!RejectUnknown(a)) return 2;
  auto doc = picket::inject::BuildBootstrap(p);
  if (!doc) {
    std::fprintf(stderr, "picket-inject bootstrap: %s\n", doc.error().c_str());
    return 2;
  }
  if (!WriteOutput(output, picket::config::EmitYaml(*doc))) return 1;
  if (!exec.empty()) {
    if (output.empty() || output == "-") {
      std::fprintf(stderr, "picket-inject bootstrap: --exec needs --output FILE\n");
      return 2;
    }
    std::string config_flag = "--config=" + output;
    char* argv[] = {const_cast<char*>(exec.c_str()), const_cast<char*>(config_flag.c_str()),
                    nullptr};
    execvp(argv[0], argv);
    std::perror(("picket-inject bootstrap: exec " + exec).c_str());
    return 127;
  }
  return 0;
}

int RunWebhook(Args a) {
  picket::inject::WebhookConfig cfg;
  if (!ReadInjectOptions(a, &cfg.inject)) return 2;
  cfg.listen = a.Get("listen", cfg.listen);
  cfg.tls_cert_file = a.Get("tls-cert");
  cfg.tls_key_file = a.Get("tls-key");
  for (const char* k : {"listen", "tls-cert", "tls-key"}) a.values.erase(k);
  if (!RejectUnknown(a)) return 2;
  if (cfg.tls_cert_file.empty() || cfg.tls_key_file.empty()) {
    std::fprintf(stderr, "picket-inject webhook: --tls-cert and --tls-key are required\n");
    return 2;
  }
  cfg.log = [](std::string_view line) {
    std::fprintf(stderr, "picket-inject webhook: %.*s\n", static_cast<int>(line.size()),
                 line.data());
  };
  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto server = picket::inject::WebhookServer::Start(cfg);
  if (!server) {
    std::fprintf(stderr, "picket-inject webhook: %s\n", server.error().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "picket-inject webhook: serving https on %s (port %u)\n", cfg.listen.c_str(),
               (*server)->port());
  int sig = 0;
  sigwait(&stop, &sig);
  std::fprintf(stderr, "picket-inject webhook: signal %d, stopping\n", sig);
  (*server)->Stop();
  return 0;
}

// GET http://127.0.0.1:PORT/PATH (loopback only; the admin endpoint is not exposed).
int RunProbe(Args a) {
  std::string url = a.Get("url", "http://127.0.0.1:15000/ready");
  a.values.erase("url");
  if (!RejectUnknown(a)) return 2;
  const std::string prefix = "http://127.0.0.1:";
  if (url.rfind(prefix, 0) != 0) {
    std::fprintf(stderr, "picket-inject probe: only http://127.0.0.1:PORT/... URLs\n");
    return 2;
  }
  std::string rest = url.substr(prefix.size());
  size_t slash = rest.find('/');
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  uint16_t port = 0;
  if (!ParsePort("url", rest.substr(0, slash), &port)) return 2;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("picket-inject probe: connect");
    close(fd);
    return 1;
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return 1;
  }
  char buf[64] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  std::string head(buf, n > 0 ? static_cast<size_t>(n) : 0);
  bool ok = head.rfind("HTTP/1.1 200", 0) == 0 || head.rfind("HTTP/1.0 200", 0) == 0;
  if (!ok)
    std::fprintf(stderr, "picket-inject probe: %s\n", head.substr(0, head.find('\r')).c_str());
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  std::string sub = "inject";
  if (!args.empty() && args[0].rfind("-", 0) != 0) {
    sub = args[0];
    args.erase(args.begin());
  }
  Args parsed = Args::Parse(args, {"native-sidecar"});
  if (!parsed.error.empty()) {
    std::fprintf(stderr, "picket-inject: %s\n%s", parsed.error.c_str(), kUsage);
    return 2;
  }
  if (sub == "inject") return RunInject(parsed);
  if (sub == "bootstrap") return RunBootstrap(parsed);
  if (sub == "webhook") return RunWebhook(parsed);
  if (sub == "probe") return RunProbe(parsed);
  std::fprintf(stderr, "picket-inject: unknown command \"%s\"\n%s", sub.c_str(), kUsage);
  return 2;
}
