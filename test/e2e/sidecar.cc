#include "test/e2e/sidecar.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "test/e2e/pod_network.h"

namespace picket::e2e {

namespace fs = std::filesystem;

void RequireRoot(const std::string& test) {
  ASSERT_EQ(geteuid(), 0u) << test << " creates network namespaces and iptables rules: run it as "
                           << "root (it does not skip)";
}

void MakeSharedDir(const std::string& prefix, fs::path* dir) {
  std::string dir_template = "/tmp/" + prefix + "-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template.data()), nullptr) << dir_template;
  *dir = dir_template;
  chmod(dir->c_str(), 0755);
  fs::create_directories(*dir / "manifests");
}

void MakeCerts(const fs::path& out, const std::vector<CertFor>& pods) {
  std::vector<std::string> argv = {Runfile("control/picket-control"), "certs", "--out",
                                   out.string()};
  for (const CertFor& pod : pods)
    argv.insert(argv.end(), {"--server-ip", pod.server_ip, "--pod", pod.pod});
  CommandResult made = RunCommand(argv);
  ASSERT_EQ(made.status, 0) << made.output;
}

void StartControl(Child& server, const Netns& node, const fs::path& dir,
                  const std::vector<std::string>& extra) {
  const fs::path c = dir / "certs";
  std::vector<std::string> argv = {Runfile("control/picket-control"),
                                   "serve",
                                   "--manifests",
                                   (dir / "manifests").string(),
                                   "--listen",
                                   "0.0.0.0:" + std::to_string(kXdsPort),
                                   "--tls-cert",
                                   (c / "server.pem").string(),
                                   "--tls-key",
                                   (c / "server-key.pem").string(),
                                   "--tls-ca",
                                   (c / "ca.pem").string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ASSERT_TRUE(server.Start(node, argv, std::nullopt, (dir / "control.log").string()));
}

std::string CopyProxy(const fs::path& dir) {
  const std::string bin = (dir / "picket-proxy").string();
  fs::copy_file(Runfile("proxy/picket-proxy"), bin);
  chmod(bin.c_str(), 0755);
  return bin;
}

void StartSidecar(Child& child, const Netns& pod, const fs::path& certs,
                  const std::string& proxy_bin, const Sidecar& sidecar) {
  const std::string& d = sidecar.dir;
  fs::create_directories(d);
  const std::string base = sidecar.ns + "." + sidecar.name;
  fs::copy_file(certs / "pods" / (base + ".pem"), d + "/tls.crt");
  fs::copy_file(certs / "pods" / (base + "-key.pem"), d + "/tls.key");
  fs::copy_file(certs / "ca.pem", d + "/ca.crt");
  std::vector<std::string> argv{Runfile("inject/picket-inject"),
                                "bootstrap",
                                "--namespace",
                                sidecar.ns,
                                "--pod",
                                sidecar.name,
                                "--ip",
                                sidecar.ip,
                                "--xds-address",
                                sidecar.xds_address,
                                "--xds-cert",
                                d + "/tls.crt",
                                "--xds-key",
                                d + "/tls.key",
                                "--xds-ca",
                                d + "/ca.crt",
                                "--output",
                                d + "/bootstrap.yaml"};
  if (sidecar.verdict) argv.push_back("--capture=verdict");
  CommandResult gen = RunCommand(argv);
  ASSERT_EQ(gen.status, 0) << gen.output;
  for (const auto& entry : fs::directory_iterator(d)) {
    ASSERT_EQ(chown(entry.path().c_str(), kProxyUid, kProxyUid), 0) << entry.path();
  }
  ASSERT_EQ(chown(d.c_str(), kProxyUid, kProxyUid), 0) << d;
  if (sidecar.verdict) {
    // Ambient, so the non-root process keeps it across exec.
    ASSERT_TRUE(child.Start(
        pod,
        {"setpriv", "--reuid=" + std::to_string(kProxyUid), "--regid=" + std::to_string(kProxyUid),
         "--clear-groups", "--inh-caps=+net_admin,+net_bind_service",
         "--ambient-caps=+net_admin,+net_bind_service", proxy_bin, "--config",
         d + "/bootstrap.yaml"},
        std::nullopt, sidecar.log()));
    return;
  }
  ASSERT_TRUE(
      child.Start(pod, {proxy_bin, "--config", d + "/bootstrap.yaml"}, kProxyUid, sidecar.log()));
}

void WaitReady(const Netns& pod, const Sidecar& sidecar) {
  ASSERT_TRUE(WaitFor([&] { return AdminGet(pod, "/ready").rfind("200", 0) == 0; }))
      << "sidecar " << sidecar.ns << "/" << sidecar.name << " never became ready:\n"
      << ReadFile(sidecar.log());
}

}  // namespace picket::e2e
