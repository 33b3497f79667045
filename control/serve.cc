// control/serve.cc — see serve.h.
#include "control/serve.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <iostream>

#include "base/json.h"
#include "control/source/from_flags.h"
#include "control/source/kubeconfig.h"
#include "net/host_port.h"
#include "net/tls.h"
#include "net/xds_message.h"

namespace picket::control {
namespace {

// The callees' errors, whichever type they return (strings until they move to base::Error).
[[maybe_unused]] base::Error AsError(std::string reason) {
  return base::Error::Of(std::move(reason));
}
[[maybe_unused]] base::Error AsError(base::Error error) { return error; }

void WriteErrors(base::JsonWriter& w, std::string_view key, const config::Errors& errors) {
  w.Key(key).BeginArray();
  for (const auto& e : errors) w.String(e.ToString());
  w.EndArray();
}

}  // namespace

base::Result<std::unique_ptr<ControlServer>> ControlServer::Create(
    uv_loop_t* loop, const ServeOptions& options, std::unique_ptr<source::ManifestSource> source) {
  auto listen = net::SplitHostPort(options.listen, /*allow_zero_port=*/true);
  if (!listen) return std::unexpected(AsError(listen.error()).Context("--listen"));
  auto credentials = net::LoadTlsCredentials(options.tls_cert, options.tls_key, options.tls_ca);
  if (!credentials) return std::unexpected(AsError(credentials.error()));
  auto tls = net::TlsContext::Create(net::TlsRole::kServer, *credentials);
  if (!tls) return std::unexpected(AsError(tls.error()));

  std::unique_ptr<ControlServer> s(new ControlServer(loop, options, std::move(source)));
  XdsServerOptions xds;
  xds.listen_host = listen->first;
  xds.listen_port = listen->second;
  xds.trust_domain = options.trust_domain;
  xds.max_frame_size = options.max_frame_bytes;
  xds.max_buffered_bytes = options.max_buffered_bytes;
  xds.frame_timeout_ms = options.frame_timeout_ms;
  xds.max_streams_per_identity = options.max_streams_per_identity;
  xds.own_pod_only_types.insert(std::string(net::kPodPolicyType));
  xds.scoped_types.insert(std::string(net::kAddressEntryType));
  auto server = XdsServer::Create(loop, std::move(*tls), std::move(xds));
  if (!server) return std::unexpected(AsError(server.error()));
  s->xds_ = std::move(*server);
  s->snapshot_ = std::make_unique<XdsSnapshot>(*s->xds_);
  ControlServer* self = s.get();
  s->xds_->SetUdpSctpObserver([self] { self->RefreshUdpSctp(); });

  // Parts already started hold loop handles: close them (and let their close callbacks run)
  // before `s` is destroyed.
  auto fail = [&s, loop](base::Error error) -> base::Result<std::unique_ptr<ControlServer>> {
    bool closed = false;
    s->Close([&closed] { closed = true; });
    while (!closed) uv_run(loop, UV_RUN_ONCE);
    return std::unexpected(std::move(error));
  };
  if (auto started =
          s->source_->Start(loop, [self](source::SourceUpdate u) { self->Apply(std::move(u)); });
      !started) {
    return fail(std::move(started.error()));
  }
  if (!options.csr_listen.empty()) {
    if (options.kubeconfig.empty() && !options.in_cluster) {
      return fail(base::Error::At("--csr-listen",
                                  "certificate issuance needs the Kubernetes API (TokenReview): "
                                  "use --kubeconfig or --in-cluster"));
    }
    auto csr_hp = net::SplitHostPort(options.csr_listen, /*allow_zero_port=*/true);
    if (!csr_hp) return fail(AsError(csr_hp.error()).Context("--csr-listen"));
    if (options.ca_key.empty()) {
      return fail(base::Error::At("--ca-key", "--csr-listen needs the CA's key to sign with"));
    }
    if (options.cert_validity_s == 0 || options.cert_validity_s > 24 * 3600) {
      return fail(base::Error::At("--cert-validity-s", "must be between 1 and 86400"));
    }
    auto ca = CertificateAuthority::Load(options.ca_cert.empty() ? options.tls_ca : options.ca_cert,
                                         options.ca_key);
    if (!ca) return fail(AsError(ca.error()).Context("--ca-cert/--ca-key"));
    auto api = options.in_cluster ? source::LoadInCluster()
                                  : source::LoadKubeconfig(
                                        options.kubeconfig,
                                        {.context = options.kube_context,
                                         .allow_insecure = options.kube_insecure_skip_tls_verify});
    if (!api) return fail(AsError(api.error()));
    auto https = net::TlsContext::CreateServerOnly(credentials->cert_chain_pem,
                                                   credentials->private_key_pem);
    if (!https) return fail(AsError(https.error()).Context("--csr-listen"));
    CsrServerOptions csr;
    csr.listen_host = csr_hp->first;
    csr.listen_port = csr_hp->second;
    csr.trust_domain = options.trust_domain;
    csr.validity = std::chrono::seconds(options.cert_validity_s);
    csr.rate_per_s = options.csr_rate;
    csr.burst = options.csr_burst;
    csr.max_concurrent_reviews = options.csr_max_reviews;
    auto server = CsrServer::Create(
        loop, std::move(csr), std::move(*https), std::move(*ca), std::move(*api),
        [self](const std::string& ns, const std::string& name) -> std::optional<std::string> {
          auto it = self->pod_uids_.find(ns + "/" + name);
          if (it == self->pod_uids_.end()) return std::nullopt;
          return it->second;
        });
    if (!server) return fail(AsError(server.error()));
    s->csr_ = std::move(*server);
  }
  if (!options.admin.empty()) {
    auto admin_hp = net::SplitHostPort(options.admin, /*allow_zero_port=*/true);
    if (!admin_hp) return fail(AsError(admin_hp.error()).Context("--admin"));
    auto admin = AdminServer::Create(
        loop, admin_hp->first, admin_hp->second, [self] { return self->StatusJson(); },
        [self] { return self->loaded_once_; }, [self] { return self->PrometheusText(); });
    if (!admin) return fail(AsError(admin.error()));
    s->admin_ = std::move(*admin);
  }
  return s;
}

ControlServer::~ControlServer() = default;

void ControlServer::Apply(source::SourceUpdate update) {
  const auto start = std::chrono::steady_clock::now();
  ++reloads_;
  source_errors_ = std::move(update.errors);
  if (update.cluster) {  // whether or not it compiles: these pods exist now
    pod_uids_.clear();
    for (const config::Pod& pod : update.cluster->pods) {
      if (!pod.uid.empty()) pod_uids_[pod.ns + "/" + pod.name] = pod.uid;
    }
  }
  if (!update.cluster) {
    if (update.parsed > 0) {
      spdlog::warn(
          "manifests: {} unit(s) changed but did not validate; serving the last good "
          "state",
          update.parsed);
    }
    return;
  }
  // Incremental only on top of a state that was applied: after a failed compile, the last
  // applied state is older than the source's previous one.
  const bool incremental = update.pods_only && loaded_once_ && compile_errors_.empty();
  auto applied = snapshot_->SetCluster(*update.cluster, incremental);
  if (!applied) {
    compile_errors_ = std::move(applied.error());
    for (const auto& e : compile_errors_) spdlog::error("manifests: {}", e.ToString());
    return;
  }
  compile_errors_.clear();
  unprotected_.SetCluster(*update.cluster, uv_now(loop_));
  RefreshUdpSctp();
  loaded_once_ = true;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  spdlog::info(
      "manifests: reloaded ({} unit(s) parsed, {}) in {:.1f} ms; address map {}, "
      "pod policies {}",
      update.parsed, incremental ? "pods only" : "full compile", ms,
      xds_->TypeVersion(net::kAddressEntryType), xds_->TypeVersion(net::kPodPolicyType));
}

void ControlServer::WriteUnprotected(base::JsonWriter& w) const {
  constexpr size_t kListed = 1000;  // the count is always whole; the list is capped
  const uint64_t now = uv_now(loop_);
  const auto pods = unprotected_.List(xds_->ConnectedPods(), xds_->last_disconnect_ms(), now);
  const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  w.Key("unprotected")
      .BeginObject()
      .Member("count", pods.size())
      .Member("selected", unprotected_.selected_count())
      .Member("grace_ms", options_.unprotected_grace_ms)
      .Key("pods")
      .BeginArray();
  for (size_t i = 0; i < pods.size() && i < kListed; ++i) {
    const UnprotectedPod& p = pods[i];
    w.BeginObject().Member("pod", p.pod).Key("policies").BeginArray();
    for (const auto& name : p.policies) w.String(name);
    w.EndArray()
        .Member("since_unix_ms", wall_ms - static_cast<int64_t>(now - p.since_ms))
        .Member("for_ms", now - p.since_ms)
        .EndObject();
  }
  w.EndArray().Member("truncated", pods.size() > kListed).EndObject();
}

void ControlServer::RefreshUdpSctp() {
  udp_sctp_.Update(xds_->UdpSctpUnenforcedPods(),
                   [this](const std::string& pod) { return snapshot_->PublishedRules(pod); });
}

void ControlServer::WriteUdpSctpUnenforced(base::JsonWriter& w) const {
  constexpr size_t kListed = 1000;  // the count is always whole; the list is capped
  const auto& pods = udp_sctp_.pods();
  w.Key("udp_sctp_unenforced")
      .BeginObject()
      .Member("count", pods.size())
      .Member("warnings", udp_sctp_.warnings())
      .Key("pods")
      .BeginArray();
  for (size_t i = 0; i < pods.size() && i < kListed; ++i) {
    w.BeginObject().Member("pod", pods[i].pod).Key("policies").BeginArray();
    for (const auto& name : pods[i].policies) w.String(name);
    w.EndArray().Key("protocols").BeginArray();
    for (config::Protocol p : pods[i].protocols) w.String(config::ProtocolName(p));
    w.EndArray().EndObject();
  }
  w.EndArray().Member("truncated", pods.size() > kListed).EndObject();
}

std::string ControlServer::StatusJson() const {
  base::JsonWriter w;
  w.BeginObject();
  xds_->WriteStatusMembers(w);
  w.Key("manifests")
      .BeginObject()
      .Member("source", source_->Describe())
      .Member("files", source_->unit_count());
  source_->WriteStatusMembers(w);
  WriteErrors(w, "errors", source_errors_);
  WriteErrors(w, "cluster_errors", compile_errors_);
  w.Member("reloads", reloads_).Member("loaded", loaded_once_).EndObject();
  WriteUnprotected(w);
  WriteUdpSctpUnenforced(w);
  const SnapshotStats& st = snapshot_->stats();
  w.Key("snapshot")
      .BeginObject()
      .Member("full_compiles", st.full_compiles)
      .Member("incremental_updates", st.incremental_updates)
      .Key("last_compute_ms")
      .Double(st.last_compute_ms)
      .EndObject();
  w.EndObject();
  return w.Take();
}

void ControlServer::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  closing_parts_ = 1;  // released at the end of this function
  if (source_) {
    ++closing_parts_;
    source_->Close([this] { OneClosed(); });
  }
  if (admin_) {
    ++closing_parts_;
    admin_->Close([this] { OneClosed(); });
  }
  if (csr_) {
    ++closing_parts_;
    csr_->Close([this] { OneClosed(); });
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

int RunServe(const ServeOptions& options, std::ostream& out, std::ostream& err) {
  auto source = source::MakeManifestSource(
      {options.manifests_dir, options.debounce_ms, options.max_manifest_bytes, options.kubeconfig,
       options.in_cluster, options.kube_context, options.kube_insecure_skip_tls_verify});
  if (!source) {
    err << "picket-control serve: " << source.error().ToString() << "\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto server = ControlServer::Create(&loop, options, std::move(*source));
  if (!server) {
    err << "picket-control serve: " << server.error().ToString() << "\n";
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  out << "xds listening on port " << (*server)->xds_port() << "\n";
  if ((*server)->admin_port() != 0)
    out << "admin listening on port " << (*server)->admin_port() << "\n";
  if ((*server)->csr_port() != 0) out << "csr listening on port " << (*server)->csr_port() << "\n";
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
