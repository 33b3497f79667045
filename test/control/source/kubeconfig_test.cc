// Unit tests of control/source/kubeconfig.h: kubeconfig contexts, data and file fields (relative
// to the kubeconfig), refusals with file and field path, in-cluster config, token re-reading.
#include "control/source/kubeconfig.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace picket::control::source {
namespace {

namespace fs = std::filesystem;

// "-----BEGIN CERTIFICATE-----\nX\n" in base64.
constexpr const char* kCaData = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClgK";

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/kubeconfig-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/certs");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
    return dir_ + "/" + name;
  }
  std::string Config(const std::string& cluster, const std::string& user) {
    return Write("config",
                 "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                 "contexts:\n- name: other\n  context: {cluster: nope, user: nope}\n"
                 "- name: c\n  context: {cluster: k, user: u}\n"
                 "clusters:\n- name: k\n  cluster:\n" +
                     cluster + "users:\n- name: u\n  user:\n" + user);
  }
  std::string dir_;
};

TEST_F(KubeconfigTest, CurrentContextWithDataFields) {
  auto c = LoadKubeconfig(Config(std::string("    server: https://10.0.0.1:6443/prefix/\n"
                                             "    certificate-authority-data: ") +
                                     kCaData + "\n",
                                 "    token: abc\n"));
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->host, "10.0.0.1");
  EXPECT_EQ(c->port, 6443);
  EXPECT_EQ(c->path_prefix, "/prefix");
  EXPECT_EQ(c->ca_pem, "-----BEGIN CERTIFICATE-----\nX\n");
  EXPECT_EQ(c->token, "abc");
  EXPECT_EQ(c->describe, "kubeconfig " + dir_ + "/config (context c)");
}

TEST_F(KubeconfigTest, FilesAreRelativeToTheKubeconfigAndPortDefaultsTo443) {
  Write("certs/ca.crt", "CA");
  Write("certs/client.crt", "CERT");
  Write("certs/client.key", "KEY");
  auto c =
      LoadKubeconfig(Config("    server: https://[fd00::1]\n"
                            "    certificate-authority: certs/ca.crt\n",
                            "    client-certificate: certs/client.crt\n"
                            "    client-key: " +
                                dir_ +
                                "/certs/client.key\n"
                                "    tokenFile: certs/token\n"));
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->host, "fd00::1");
  EXPECT_EQ(c->port, 443);
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->token_file, dir_ + "/certs/token");
}

TEST_F(KubeconfigTest, RefusalsNameTheFileAndTheField) {
  auto error = [&](const std::string& cluster, const std::string& user) {
    auto c = LoadKubeconfig(Config(cluster, user));
    EXPECT_FALSE(c.has_value());
    return c ? std::string() : c.error().ToString();
  };
  const std::string file = dir_ + "/config: ";
  EXPECT_EQ(error("    server: http://h\n", ""),
            file +
                "clusters[0].cluster.server: Invalid value: \"http://h\": only https:// "
                "servers are supported");
  EXPECT_EQ(error("    server: https://h\n    insecure-skip-tls-verify: true\n", ""),
            file +
                "clusters[0].cluster.insecure-skip-tls-verify: Forbidden: the API server "
                "would not be authenticated; give its CA (certificate-authority-data), or "
                "allow this explicitly (--kube-insecure-skip-tls-verify)");
  EXPECT_EQ(error("    server: https://h\n", ""),
            file +
                "clusters[0].cluster.certificate-authority-data: Required value: the CA that "
                "signed the API server's certificate (the system trust store is not used)");
  EXPECT_EQ(error("    server: https://h\n    certificate-authority-data: '!!'\n", ""),
            file +
                "clusters[0].cluster.certificate-authority-data: illegal base64 data: length "
                "is not a multiple of 4");
  EXPECT_EQ(
      error(std::string("    server: https://h\n    certificate-authority-data: ") + kCaData + "\n",
            "    exec: {command: aws}\n"),
      file +
          "users[0].user.exec: Unsupported value: use a token, tokenFile or a client "
          "certificate");
  EXPECT_EQ(error("    server: https://h\n    certificate-authority: missing.crt\n", ""),
            file + "clusters[0].cluster.certificate-authority: " + dir_ +
                "/missing.crt: cannot read: No such file or directory");
  auto no_context = LoadKubeconfig(Write("empty", "apiVersion: v1\nkind: Config\n"));
  ASSERT_FALSE(no_context.has_value());
  EXPECT_EQ(no_context.error().ToString(),
            dir_ + "/empty: current-context: Required value: no context is selected");
  auto insecure = LoadKubeconfig(
      Config("    server: https://h\n    insecure-skip-tls-verify: true\n", "    token: t\n"),
      {.context = "", .allow_insecure = true});
  ASSERT_TRUE(insecure.has_value()) << insecure.error().ToString();
  EXPECT_TRUE(insecure->insecure_skip_tls_verify);
  auto other = LoadKubeconfig(dir_ + "/config", {.context = "other", .allow_insecure = false});
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().ToString(),
            file + "contexts[0].context.cluster: no clusters entry named \"nope\"");
}

TEST_F(KubeconfigTest, InClusterReadsTheServiceAccount) {
  Write("ca.crt", "CA");
  Write("token", "t1\n");
  auto c = LoadInCluster({.dir = dir_, .host = "10.96.0.1", .port = "443"});
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->host, "10.96.0.1");
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->token_file, dir_ + "/token");
  auto bad_port = LoadInCluster({.dir = dir_, .host = "10.96.0.1", .port = "x"});
  ASSERT_FALSE(bad_port.has_value());
  EXPECT_TRUE(
      bad_port.error().ToString().starts_with("KUBERNETES_SERVICE_PORT: Invalid value: \"x\""))
      << bad_port.error().ToString();
  fs::remove(dir_ + "/token");
  auto no_token = LoadInCluster({.dir = dir_, .host = "10.96.0.1", .port = "443"});
  ASSERT_FALSE(no_token.has_value());
  EXPECT_EQ(no_token.error().ToString(), dir_ + "/token: cannot read: No such file or directory");
}

TEST_F(KubeconfigTest, TokenIsReadAgainWhenTheFileChangesAndAfterInvalidate) {
  const std::string path = Write("token", "one\n");
  BearerToken token("", path);
  EXPECT_EQ(token.Get().value_or("?"), "one");
  EXPECT_EQ(token.Get().value_or("?"), "one");
  EXPECT_EQ(token.reads(), 1u);
  // Rotation by rename (a new inode), as kubelet does.
  Write("token.new", "two\n");
  fs::rename(dir_ + "/token.new", path);
  EXPECT_EQ(token.Get().value_or("?"), "two");
  // Rewritten in place with the same size and mtime: only a 401 (Invalidate) reveals it.
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  {
    std::fstream f(path, std::ios::in | std::ios::out);
    f << "six\n";
  }
  const timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  EXPECT_EQ(token.Get().value_or("?"), "two");
  token.Invalidate();
  EXPECT_EQ(token.Get().value_or("?"), "six");
  Write("token", "\n");
  token.Invalidate();
  ASSERT_FALSE(token.Get().has_value());
  EXPECT_EQ(BearerToken("static", "").Get().value_or("?"), "static");
}

}  // namespace
}  // namespace picket::control::source
