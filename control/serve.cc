// control/serve.cc — see serve.h.
#include "control/serve.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <iostream>

#include "net/host_port.h"
#include "net/json.h"
#include "net/tls.h"
#include "net/xds_message.h"

namespace picket::control {
namespace {

constexpr const char* kUsage =
    "usage: picket-control serve --manifests DIR --listen HOST:PORT --tls-cert FILE\n"
    "         --tls-key FILE --tls-ca FILE [--admin 127.0.0.1:PORT] [--trust-domain TD]\n"
    "         [--debounce-ms N]\n";

net::Json ErrorsJson(const config::Errors& errors) {
  net::Json j = net::Json::MakeArray();
  for (const auto& e : errors) j.Push(e.ToString());
  return j;
}

}  // namespace

std::expected<ServeOptions, std::string> ParseServeFlags(const std::vector<std::string>& args) {
  ServeOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (i + 1 >= args.size()) return std::unexpected(flag + ": missing value\n" + kUsage);
    const std::string& v = args[++i];
    if (flag == "--manifests") {
      o.manifests_dir = v;
    } else if (flag == "--listen") {
      o.listen = v;
    } else if (flag == "--admin") {
      o.admin = v;
    } else if (flag == "--tls-cert") {
      o.tls_cert = v;
    } else if (flag == "--tls-key") {
      o.tls_key = v;
    } else if (flag == "--tls-ca") {
      o.tls_ca = v;
    } else if (flag == "--trust-domain") {
      o.trust_domain = v;
    } else if (flag == "--debounce-ms") {
      char* end = nullptr;
      const unsigned long ms = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || ms > 10000) {
        return std::unexpected("--debounce-ms: expected 0..10000, got \"" + v + "\"");
      }
      o.debounce_ms = ms;
    } else {
      return std::unexpected("unknown flag \"" + flag + "\"\n" + kUsage);
    }
  }
  if (o.manifests_dir.empty())
    return std::unexpected(std::string("--manifests is required\n") + kUsage);
  if (o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty()) {
    return std::unexpected(std::string("--tls-cert, --tls-key and --tls-ca are required\n") +
                           kUsage);
  }
  return o;
}

std::expected<std::unique_ptr<ControlServer>, std::string> ControlServer::Create(
    uv_loop_t* loop, const ServeOptions& options) {
  auto listen = net::SplitHostPort(options.listen, /*allow_zero_port=*/true);
  if (!listen) return std::unexpected("--listen " + listen.error());
  auto credentials = net::LoadTlsCredentials(options.tls_cert, options.tls_key, options.tls_ca);
  if (!credentials) return std::unexpected(credentials.error().ToString());
  auto tls = net::TlsContext::Create(net::TlsRole::kServer, *credentials);
  if (!tls) return std::unexpected(tls.error().ToString());

  std::unique_ptr<ControlServer> s(new ControlServer(loop, options));
  XdsServerOptions xds;
  xds.listen_host = listen->first;
  xds.listen_port = listen->second;
  xds.trust_domain = options.trust_domain;
  xds.own_pod_only_types.insert(std::string(net::kPodPolicyType));
  auto server = XdsServer::Create(loop, std::move(*tls), std::move(xds));
  if (!server) return std::unexpected(server.error());
  s->xds_ = std::move(*server);
  s->snapshot_ = std::make_unique<XdsSnapshot>(*s->xds_);
  s->Reload();

  ControlServer* self = s.get();
  auto watcher = DirectoryWatcher::Create(loop, options.manifests_dir, options.debounce_ms,
                                          [self] { self->Reload(); });
  if (!watcher) {
    s->Close(nullptr);
    return std::unexpected(watcher.error());
  }
  s->watcher_ = std::move(*watcher);
  if (!options.admin.empty()) {
    auto admin_hp = net::SplitHostPort(options.admin, /*allow_zero_port=*/true);
    if (!admin_hp) {
      s->Close(nullptr);
      return std::unexpected("--admin " + admin_hp.error());
    }
    auto admin = AdminServer::Create(
        loop, admin_hp->first, admin_hp->second, [self] { return self->StatusJson(); },
        [self] { return self->loaded_once_; });
    if (!admin) {
      s->Close(nullptr);
      return std::unexpected(admin.error().ToString());
    }
    s->admin_ = std::move(*admin);
  }
  return s;
}

ControlServer::~ControlServer() = default;

void ControlServer::Reload() {
  const auto start = std::chrono::steady_clock::now();
  ++reloads_;
  const ManifestSet::Result result = manifests_.Reload();
  if (!result.changed && loaded_once_) {
    if (result.files_loaded > 0) {
      spdlog::warn(
          "manifests: {} file(s) changed but did not validate; serving the last good "
          "state",
          result.files_loaded);
    }
    return;
  }
  const bool incremental = result.pods_only && loaded_once_;
  auto applied = snapshot_->SetCluster(manifests_.Merged(), incremental);
  if (!applied) {
    compile_errors_ = std::move(applied.error());
    for (const auto& e : compile_errors_) spdlog::error("manifests: {}", e.ToString());
    return;
  }
  compile_errors_.clear();
  loaded_once_ = true;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  spdlog::info(
      "manifests: reloaded ({} file(s) parsed, {}) in {:.1f} ms; address map {}, "
      "pod policies {}",
      result.files_loaded, incremental ? "pods only" : "full compile", ms,
      xds_->TypeVersion(net::kAddressEntryType), xds_->TypeVersion(net::kPodPolicyType));
}

std::string ControlServer::StatusJson() const {
  net::Json j = xds_->StatusJson();
  net::Json manifests = net::Json::MakeObject();
  manifests["dir"] = options_.manifests_dir;
  manifests["files"] = static_cast<int64_t>(manifests_.file_count());
  manifests["errors"] = ErrorsJson(manifests_.errors());
  manifests["cluster_errors"] = ErrorsJson(compile_errors_);
  manifests["reloads"] = static_cast<int64_t>(reloads_);
  manifests["loaded"] = loaded_once_;
  j["manifests"] = std::move(manifests);
  const SnapshotStats& st = snapshot_->stats();
  net::Json snap = net::Json::MakeObject();
  snap["full_compiles"] = static_cast<int64_t>(st.full_compiles);
  snap["incremental_updates"] = static_cast<int64_t>(st.incremental_updates);
  snap["last_compute_ms"] = st.last_compute_ms;
  j["snapshot"] = std::move(snap);
  return j.Serialize();
}

void ControlServer::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  closing_parts_ = 1;  // released at the end of this function
  if (watcher_) {
    ++closing_parts_;
    watcher_->Close([this] { OneClosed(); });
  }
  if (admin_) {
    ++closing_parts_;
    admin_->Close([this] { OneClosed(); });
  }
  if (xds_) {
    ++closing_parts_;
    xds_->Close([this] { OneClosed(); });
  }
  OneClosed();
}

void ControlServer::OneClosed() {
  if (--closing_parts_ > 0) return;
  if (on_closed_) {
    auto done = std::move(on_closed_);
    on_closed_ = nullptr;
    done();
  }
}

int RunServe(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto options = ParseServeFlags(args);
  if (!options) {
    err << "picket-control serve: " << options.error() << "\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto server = ControlServer::Create(&loop, *options);
  if (!server) {
    err << "picket-control serve: " << server.error() << "\n";
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  out << "xds listening on port " << (*server)->xds_port() << "\n";
  if ((*server)->admin_port() != 0)
    out << "admin listening on port " << (*server)->admin_port() << "\n";
  out.flush();

  struct Stopper {
    uv_signal_t sigint, sigterm;
    ControlServer* server;
    bool stopping = false;
  } stopper{};
  stopper.server = server->get();
  auto on_signal = [](uv_signal_t* s, int signum) {
    auto* st = static_cast<Stopper*>(s->data);
    if (st->stopping) return;
    st->stopping = true;
    spdlog::info("picket-control: signal {}, shutting down", signum);
    st->server->Close(nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&st->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&st->sigterm), nullptr);
  };
  uv_signal_init(&loop, &stopper.sigint);
  uv_signal_init(&loop, &stopper.sigterm);
  stopper.sigint.data = stopper.sigterm.data = &stopper;
  uv_signal_start(&stopper.sigint, on_signal, SIGINT);
  uv_signal_start(&stopper.sigterm, on_signal, SIGTERM);
  uv_run(&loop, UV_RUN_DEFAULT);
  server->reset();
  const int rc = uv_loop_close(&loop);
  if (rc != 0) err << "picket-control serve: loop not closed cleanly\n";
  return 0;
}

}  // namespace picket::control
