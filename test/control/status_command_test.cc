// `picket-control status` (the real binary, run with uv_spawn so the loop keeps serving) against a
// real control server in this process (ControlServer: manifest directory, xDS over mutual TLS,
// admin on 0.0.0.0 port 0, read through 127.0.0.1) and two real sidecar clients
// (proxy/xds XdsClient + PolicySource): prod/web applies and ACKs both types; prod/db's proxy
// refuses every policy, so its PodPolicy is NACKed while its address map is ACKed. The rows say
// SYNCED / STALE with the versions the server holds, the NACK's message and age, the node ids and
// when each connected (RFC 3339 UTC, wall clock); a manifest edit moves the address map to a new
// version both ACK. --output json says the same; usage errors, an unreachable admin and a port
// that is not the admin are named errors; ParseProxyStatus names the field a /status lacks.
// Every wait is on a condition (loop events, process exit), never a sleep.
#include "control/status_command.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
// GCC 12 at -O1 (the asan config) reports -Wmaybe-uninitialized inside libstdc++'s <regex>
// (std::function in _StateT; GCC bug 105562, a false positive). Only this test uses std::regex.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "config/document.h"
#include "control/serve.h"
#include "control/source/from_flags.h"
#include "net/xds_message.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_client.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

namespace fs = std::filesystem;
using testing::RunUntil;

constexpr const char* kManifests = R"(
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: 5432}]
)";

constexpr const char* kAnotherPod = R"(
apiVersion: v1
kind: Pod
metadata: {name: cache, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.3}
)";

constexpr const char* kRefused = "policy refused by the test proxy";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
  std::ofstream(tmp) << text;
  fs::rename(tmp, path);
}

struct RunResult {
  int64_t code = -1;
  std::string out;
  std::string err;
};

// One sidecar: a PolicySource whose proxy accepts (or refuses) every snapshot, and its client.
struct Sidecar {
  std::unique_ptr<proxy::xds::PolicySource> source;
  std::unique_ptr<proxy::xds::XdsClient> client;
  policy::EndpointPolicyPtr applied;
  uint64_t refused = 0;

  const proxy::xds::XdsTypeStatus* Type(std::string_view type_url) const {
    auto it = client->status().types.find(std::string(type_url));
    return it == client->status().types.end() ? nullptr : &it->second;
  }
};

class StatusCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const char* workspace = std::getenv("TEST_WORKSPACE");
    ASSERT_TRUE(srcdir != nullptr && workspace != nullptr) << "run under bazel test";
    binary_ = fs::path(srcdir) / workspace / "control" / "picket-control";
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / ("status_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "manifests");
    fs::create_directories(dir_ / "certs");
    WriteFile(dir_ / "manifests" / "all.yaml", kManifests);
    pki_ = testing::TestPki::Make();
    auto write = [&](const std::string& name, const std::string& text) {
      std::ofstream(dir_ / "certs" / name) << text;
      return (dir_ / "certs" / name).string();
    };
    uv_loop_init(&loop_);
    ServeOptions options;
    options.manifests_dir = (dir_ / "manifests").string();
    options.listen = "127.0.0.1:0";
    options.admin = "0.0.0.0:0";  // read-only; read below through 127.0.0.1
    options.debounce_ms = 0;
    options.tls_cert = write("server.pem", pki_.server.cert_pem);
    options.tls_key = write("server-key.pem", pki_.server.key_pem);
    options.tls_ca = write("ca.pem", pki_.ca.cert_pem);
    auto source = source::MakeManifestSource({options.manifests_dir, options.debounce_ms});
    ASSERT_TRUE(source.has_value()) << source.error().ToString();
    auto server = ControlServer::Create(&loop_, options, std::move(*source));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
    admin_ = "127.0.0.1:" + std::to_string(server_->admin_port());
  }

  void TearDown() override {
    for (Sidecar* s : {&web_, &db_}) {
      if (!s->client) continue;
      bool closed = false;
      s->client->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      s->client.reset();
    }
    if (server_) {
      bool closed = false;
      server_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      server_.reset();
    }
    testing::DrainAndCloseLoop(&loop_);
    if (!HasFailure()) fs::remove_all(dir_);
  }

  void Start(Sidecar& s, const std::string& pod, bool refuse) {
    s.source = std::make_unique<proxy::xds::PolicySource>(
        "prod", pod, [&s, refuse](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
          if (refuse) {
            ++s.refused;
            return std::unexpected(std::string(kRefused));
          }
          s.applied = std::move(p);
          return {};
        });
    proxy::xds::XdsClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(server_->xds_port());
    o.tls = pki_.Context(net::TlsRole::kClient, pki_.Pod("prod", pod));
    o.node = {"sidecar~prod/" + pod, "prod", pod, "status-test"};
    o.subscriptions = s.source->Subscriptions();
    auto client = proxy::xds::XdsClient::Create(&loop_, std::move(o), s.source.get());
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    s.client = std::move(*client);
    s.client->Start();
  }

  // Runs the binary to completion while the loop serves the admin endpoint.
  RunResult Status(std::vector<std::string> extra) {
    std::vector<std::string> args = {binary_.string(), "status"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const fs::path out = dir_ / "status.out", err = dir_ / "status.err";
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = out_fd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = err_fd;
    struct Exit {
      bool done = false;
      int64_t code = -1;
    } exit;
    uv_process_options_t po{};
    po.file = argv[0];
    po.args = argv.data();
    po.stdio_count = 3;
    po.stdio = stdio;
    po.exit_cb = [](uv_process_t* p, int64_t status, int signal) {
      auto* e = static_cast<Exit*>(p->data);
      e->done = true;
      e->code = signal == 0 ? status : -signal;
      uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
    };
    uv_process_t process;
    process.data = &exit;
    RunResult r;
    const int rc = uv_spawn(&loop_, &process, &po);
    ::close(out_fd);
    ::close(err_fd);
    if (rc != 0) {
      ADD_FAILURE() << "uv_spawn " << args[0] << ": " << uv_strerror(rc);
      uv_close(reinterpret_cast<uv_handle_t*>(&process), nullptr);
      uv_run(&loop_, UV_RUN_NOWAIT);
      return r;
    }
    EXPECT_TRUE(RunUntil(
        &loop_, [&] { return exit.done; }, 20000))
        << "status did not exit";
    if (!exit.done) {
      uv_process_kill(&process, SIGKILL);
      RunUntil(&loop_, [&] { return exit.done; });
    }
    uv_run(&loop_, UV_RUN_NOWAIT);  // the close callback of the process handle
    r.code = exit.code;
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }

  // The server's own view, parsed by the function under test (to wait on, not to assert).
  std::optional<ProxyStatus> ServerView() {
    auto st = ParseProxyStatus(server_->StatusJson());
    EXPECT_TRUE(st.has_value()) << st.error().ToString();
    if (!st) return std::nullopt;
    return *st;
  }

  fs::path binary_;
  fs::path dir_;
  testing::TestPki pki_;
  uv_loop_t loop_{};
  std::unique_ptr<ControlServer> server_;
  std::string admin_;
  Sidecar web_, db_;
};

const SidecarRow* Row(const ProxyStatus& st, std::string_view pod) {
  for (const SidecarRow& r : st.sidecars) {
    if (r.pod == pod) return &r;
  }
  return nullptr;
}

std::string Esc(const std::string& s) {
  return std::regex_replace(s, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
}

uint64_t WallMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

TEST_F(StatusCommandTest, RowsSayWhatEachSidecarAckedAndItsLastNack) {
  // Before any sidecar: the header and the column names alone.
  RunResult empty = Status({"--admin", admin_});
  ASSERT_EQ(empty.code, 0) << empty.err;
  EXPECT_TRUE(std::regex_search(
      empty.out, std::regex("^replica " + Esc(admin_) +
                            ": source directory [^\n]*, ready, 1 files, 0 sidecars\nPOD +NODE "
                            "+ADDRESSES +POLICY +LAST NACK +CONNECTED SINCE\n$")))
      << empty.out;

  const uint64_t before_connect = WallMs();
  Start(web_, "web", /*refuse=*/false);
  Start(db_, "db", /*refuse=*/true);
  // The sidecars' side: web applied a snapshot (so ACKed both); db ACKed its address map and
  // NACKed its policy.
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    auto* db_policy = db_.Type(net::kPodPolicyType);
    auto* db_addresses = db_.Type(net::kAddressEntryType);
    return web_.applied != nullptr && db_policy != nullptr && db_policy->nacks > 0 &&
           db_addresses != nullptr && db_addresses->acks > 0;
  }));
  const uint64_t after_connect = WallMs();
  // The server's side: it has read those ACKs and the NACK.
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    auto st = ServerView();
    if (!st || st->sidecars.size() != 2) return false;
    const SidecarRow* web = Row(*st, "prod/web");
    const SidecarRow* db = Row(*st, "prod/db");
    return web && db && web->addresses.sync == "SYNCED" && web->policy.sync == "SYNCED" &&
           db->addresses.sync == "SYNCED" && db->last_nack.has_value();
  })) << server_->StatusJson();
  const ProxyStatus view = *ServerView();
  const SidecarRow& web = *Row(view, "prod/web");
  const SidecarRow& db = *Row(view, "prod/db");
  // The versions the rows show are the ones the sidecars hold.
  EXPECT_EQ(web.addresses.acked_version, web_.Type(net::kAddressEntryType)->last_acked_version);
  EXPECT_EQ(web.policy.acked_version, web_.Type(net::kPodPolicyType)->last_acked_version);

  RunResult text = Status({"--admin", admin_});
  ASSERT_EQ(text.code, 0) << text.err;
  std::printf("--- picket-control status --admin %s\n%s", admin_.c_str(), text.out.c_str());
  EXPECT_NE(text.out.find(", ready, 1 files, 2 sidecars\n"), std::string::npos) << text.out;
  const std::string when = "([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)\n";
  auto short12 = [](const std::string& v) { return Esc(v.substr(0, 12)); };
  std::smatch m;
  // Sorted by pod: db before web.
  ASSERT_TRUE(std::regex_search(
      text.out, m,
      std::regex("\nprod/db +sidecar~prod/db +SYNCED \\(" + short12(db.addresses.acked_version) +
                 "\\) +STALE +policy: [^\n]*" + Esc(kRefused) + " \\([0-9]+s ago\\) +" + when +
                 "prod/web +sidecar~prod/web +SYNCED \\(" + short12(web.addresses.acked_version) +
                 "\\) +SYNCED \\(" + short12(web.policy.acked_version) + "\\) +- +" + when)))
      << text.out;
  // Connected since: the wall clock when each stream was accepted (to the second).
  for (int i : {1, 2}) {
    EXPECT_GE(m[i].str(), Rfc3339Utc(before_connect / 1000 * 1000)) << text.out;
    EXPECT_LE(m[i].str(), Rfc3339Utc(after_connect)) << text.out;
  }

  // A new db pod: web's address map (its scope holds db's identity) moves to a new version and
  // web ACKs it; db's scope is empty (no policy isolates it), so db is sent nothing and stays
  // SYNCED at the version it holds.
  const std::string old_addresses = web.addresses.acked_version;
  const std::string db_addresses = db.addresses.acked_version;
  WriteFile(dir_ / "manifests" / "cache.yaml", kAnotherPod);
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    auto st = ServerView();
    if (!st || st->sidecars.size() != 2) return false;
    for (const SidecarRow& r : st->sidecars) {
      if (r.addresses.sync != "SYNCED") return false;
      if (r.pod == "prod/web" && r.addresses.acked_version == old_addresses) return false;
      if (r.pod == "prod/db" && r.addresses.acked_version != db_addresses) return false;
    }
    return true;
  })) << server_->StatusJson();

  RunResult json = Status({"--admin", admin_, "--output", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  std::printf("--- picket-control status --admin %s --output json\n%s", admin_.c_str(),
              json.out.c_str());
  auto doc = base::ParseJson(json.out);
  ASSERT_TRUE(doc.has_value()) << json.out;
  // -o yaml: the same document (age_s may have ticked between the two runs: compared apart).
  RunResult yaml = Status({"--admin", admin_, "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  {
    auto from_yaml = config::ParseYamlDocuments(yaml.out, "status.yaml");
    ASSERT_TRUE(from_yaml.has_value() && from_yaml->size() == 1u) << yaml.out;
    auto from_json = config::ParseJson(json.out, "status.json");
    ASSERT_TRUE(from_json.has_value());
    auto without_age = [](config::Node n) {
      for (config::Node& s : n.MappingAt("sidecars").items()) {
        if (config::Node* nack = s.Find("last_nack"); nack != nullptr && nack->IsMapping()) {
          nack->Set("age_s", config::Node::Int(0));
        }
      }
      return n;
    };
    EXPECT_EQ(without_age((*from_yaml)[0]), without_age(*from_json)) << yaml.out;
    EXPECT_EQ(yaml.out.rfind("replica:\n  admin: ", 0), 0u) << yaml.out;
  }
  const base::JsonValue root = doc->root();
  EXPECT_EQ(root.Find("replica")->Find("admin")->AsString(), admin_);
  EXPECT_EQ(root.Find("replica")->Find("ready")->AsBool(), true);
  EXPECT_EQ(root.Find("replica")->Find("objects")->AsUint64(), 2u);  // files
  ASSERT_EQ(root.Find("sidecars")->size(), 2u) << json.out;
  const base::JsonValue jdb = *root.Find("sidecars")->At(0);
  const base::JsonValue jweb = *root.Find("sidecars")->At(1);
  EXPECT_EQ(jdb.Find("pod")->AsString(), "prod/db");
  EXPECT_EQ(jdb.Find("node")->AsString(), "sidecar~prod/db");
  EXPECT_EQ(jdb.Find("policy")->Find("sync")->AsString(), "STALE");
  EXPECT_EQ(jdb.Find("policy")->Find("acked_version")->AsString(), "");
  EXPECT_NE(jdb.Find("policy")->Find("latest_version")->AsString(), "");
  EXPECT_EQ(jdb.Find("addresses")->Find("sync")->AsString(), "SYNCED");
  EXPECT_EQ(jdb.Find("last_nack")->Find("type")->AsString(), "policy");
  EXPECT_NE(jdb.Find("last_nack")->Find("message")->AsString()->find(kRefused), std::string::npos);
  EXPECT_EQ(jdb.Find("last_nack")->Find("version")->AsString(),
            jdb.Find("policy")->Find("latest_version")->AsString());
  EXPECT_LE(jdb.Find("last_nack")->Find("age_s")->AsUint64().value_or(999), 60u);
  EXPECT_EQ(jweb.Find("pod")->AsString(), "prod/web");
  EXPECT_TRUE(jweb.Find("last_nack")->IsNull());
  EXPECT_EQ(jweb.Find("policy")->Find("sync")->AsString(), "SYNCED");
  EXPECT_EQ(jweb.Find("addresses")->Find("sync")->AsString(), "SYNCED");
  EXPECT_NE(jweb.Find("addresses")->Find("acked_version")->AsString(), old_addresses);
  EXPECT_EQ(jweb.Find("addresses")->Find("acked_version")->AsString(),
            web_.Type(net::kAddressEntryType)->last_acked_version);
  EXPECT_TRUE(
      std::regex_match(std::string(*jweb.Find("connected_since")->AsString()),
                       std::regex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")));
}

TEST_F(StatusCommandTest, UsageAndUnreachableAdmin) {
  RunResult bad = Status({"--admin", admin_, "--output", "xml"});
  EXPECT_EQ(bad.code, 2) << bad.out << bad.err;
  RunResult no_port = Status({"--admin", "127.0.0.1"});
  EXPECT_EQ(no_port.code, 2) << no_port.out << no_port.err;
  EXPECT_NE(no_port.err.find("picket-control status: --admin: "), std::string::npos) << no_port.err;
  // Port 1: nothing listens there (binding it needs privileges).
  RunResult down = Status({"--admin", "127.0.0.1:1", "--timeout-ms", "2000"});
  EXPECT_EQ(down.code, 1);
  EXPECT_NE(down.err.find("picket-control status: GET http://127.0.0.1:1/status: connect: "),
            std::string::npos)
      << down.err;
  // The xDS port speaks TLS: the plain-HTTP request gets no HTTP response.
  const std::string xds = "127.0.0.1:" + std::to_string(server_->xds_port());
  RunResult tls = Status({"--admin", xds, "--timeout-ms", "2000"});
  EXPECT_EQ(tls.code, 1) << tls.out;
  EXPECT_NE(tls.err.find("picket-control status: GET http://" + xds + "/status: "),
            std::string::npos)
      << tls.err;
}

TEST(ParseProxyStatus, NamesTheFieldAStatusLacks) {
  auto err = [](std::string_view json) {
    auto st = ParseProxyStatus(json);
    return st ? std::string("(parsed)") : st.error().ToString();
  };
  const std::string manifests =
      R"("manifests": {"source": "directory /m", "files": 1, "loaded": true})";
  EXPECT_EQ(err("[]"), "/status: (root): not an object");
  EXPECT_EQ(err(R"({"sidecars": []})"), "/status: manifests: missing");
  EXPECT_EQ(err(R"({"manifests": {"source": "x", "files": 1}, "sidecars": []})"),
            "/status: manifests.loaded: missing");
  EXPECT_EQ(err("{" + manifests + "}"), "/status: sidecars: missing");
  EXPECT_EQ(err("{" + manifests + R"(, "sidecars": [{"state": "active", "pod": "a/b"}]})"),
            "/status: sidecars[0].connected_unix_ms: missing");
  EXPECT_EQ(err("{" + manifests +
                R"(, "sidecars": [{"state": "handshake"}, {"state": "active", "pod": "a/b",
                   "connected_unix_ms": 1, "subscriptions": {
                   "type.picket.dev/picket.v1.PodPolicy": {"last_acked_version": "v1",
                   "pending_nonce": "", "last_nack": null}}}]})"),
            "/status: sidecars[1].subscriptions[\"type.picket.dev/picket.v1.PodPolicy\"]"
            ".latest_version: missing (a replica older than this picket-control?)");
  auto ok = ParseProxyStatus("{" + manifests + R"(, "sidecars": [{"state": "active",
      "pod": "a/b", "connected_unix_ms": 1765091403000, "subscriptions": {}}]})");
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  ASSERT_EQ(ok->sidecars.size(), 1u);
  EXPECT_EQ(ok->sidecars[0].policy.sync, "NOT SENT");
  EXPECT_EQ(ok->sidecars[0].addresses.sync, "NOT SENT");
  EXPECT_EQ(Rfc3339Utc(ok->sidecars[0].connected_unix_ms), "2025-12-07T07:10:03Z");
}

}  // namespace
}  // namespace picket::control
