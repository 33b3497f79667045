// control/serve_metrics.cc — ControlServer::PrometheusText (serve.h): /stats/prometheus.
//
// Families (text format 0.0.4, base/prometheus_text.h), picket_build_info first; the real promtool
// reports nothing on them (//test/control:serve_test, README "Sidecar metrics"). Watch lag, per
// kind, is the time since the API last showed this replica it is alive for that kind — a list
// completed, or a watch event or BOOKMARK arrived. A watch with bookmarks hears from kube-apiserver
// about once a minute even when nothing changes, so a lag of minutes means a stuck or failing
// watch; the family has no sample for a kind the API has never answered yet.
#include <uv.h>

#include "base/prometheus_text.h"
#include "control/serve.h"

namespace picket::control {

std::string ControlServer::PrometheusText() const {
  const size_t unprotected =
      unprotected_.List(xds_->ConnectedPods(), xds_->last_disconnect_ms(), uv_now(loop_)).size();
  const XdsServerStats& st = xds_->stats();
  base::PrometheusText p;
  p.BuildInfo();

  // --- sidecars and pushes ---
  p.Single("picket_control_sidecars_connected", "gauge",
           "Pods with at least one active sidecar stream.", xds_->ConnectedPods().size());
  p.Single("picket_control_streams_active", "gauge", "Sidecar streams open.", st.streams_active);
  p.Single("picket_control_streams_accepted_total", "counter", "Sidecar connections accepted.",
           st.streams_accepted);
  p.Single("picket_control_streams_refused_total", "counter",
           "Sidecar streams closed with a non-OK status.", st.streams_refused);
  p.Family("picket_control_responses_sent_total", "counter",
           "Responses pushed to sidecars, per resource type.");
  for (const auto& [type, c] : st.by_type) p.Sample(c.responses_sent, {{"type_url", type}});
  p.Family("picket_control_acks_total", "counter", "ACKs received, per resource type.");
  for (const auto& [type, c] : st.by_type) p.Sample(c.acks, {{"type_url", type}});
  p.Family("picket_control_nacks_total", "counter", "NACKs received, per resource type.");
  for (const auto& [type, c] : st.by_type) p.Sample(c.nacks, {{"type_url", type}});

  // --- enforcement gaps ---
  p.Single("picket_control_unprotected_pods", "gauge",
           "Pods a NetworkPolicy selects with no sidecar connected (past the grace).", unprotected);
  p.Single("picket_control_selected_pods", "gauge", "Pods some NetworkPolicy selects.",
           unprotected_.selected_count());
  p.Single("picket_control_udp_sctp_unenforced_pods", "gauge",
           "Pods whose policies name UDP or SCTP ports while their sidecar does not enforce them.",
           udp_sctp_.pods().size());
  p.Single("picket_control_udp_sctp_unenforced_warnings_total", "counter",
           "Warnings logged for pods entering (or changing in) that list.", udp_sctp_.warnings());

  // --- certificate issuance (--csr-listen) ---
  if (csr_) {
    const CsrCounters& c = csr_->counters();
    p.Single("picket_control_certificates_issued_total", "counter", "Sidecar certificates signed.",
             c.issued);
    p.Family("picket_control_certificates_refused_total", "counter",
             "Certificate requests refused, per reason (control/PROTOCOL.md).");
    for (const auto& [reason, n] : c.refused) p.Sample(n, {{"reason", reason}});
    p.Single("picket_control_token_reviews_total", "counter", "TokenReviews sent to the API.",
             c.reviews);
    p.Single("picket_control_token_reviews_in_flight", "gauge", "TokenReviews awaiting an answer.",
             c.reviews_in_flight);
  }

  // --- the source: manifests or the Kubernetes API ---
  p.Single("picket_control_ready", "gauge", "1 once the first state from the source is applied.",
           loaded_once_ ? 1 : 0);
  p.Single("picket_control_reloads_total", "counter", "States delivered by the source.", reloads_);
  p.Single("picket_control_source_units", "gauge",
           "Files (directory source) or objects (Kubernetes source) the current state comes from.",
           source_->unit_count());
  p.Single("picket_control_manifest_errors", "gauge",
           "Objects or files that do not validate now (their last good version is served).",
           source_errors_.size());
  p.Single("picket_control_cluster_errors", "gauge",
           "Cluster-level errors of the last compile (the last good state is served).",
           compile_errors_.size());
  const auto kinds = source_->KindMetrics();
  if (!kinds.empty()) {
    auto per_kind = [&p, &kinds](const char* name, const char* type, const char* help, auto value) {
      p.Family(name, type, help);
      for (const auto& k : kinds) p.Sample(static_cast<uint64_t>(value(k)), {{"kind", k.kind}});
    };
    per_kind("picket_control_kube_listed", "gauge", "1 once the kind's first list completed.",
             [](const source::SourceKindMetrics& k) { return k.listed ? 1 : 0; });
    per_kind("picket_control_kube_objects", "gauge", "Objects held for the kind.",
             [](const source::SourceKindMetrics& k) { return k.objects; });
    per_kind("picket_control_kube_lists_total", "counter", "Complete LISTs of the kind.",
             [](const source::SourceKindMetrics& k) { return k.lists; });
    per_kind("picket_control_kube_watches_total", "counter", "WATCH requests of the kind.",
             [](const source::SourceKindMetrics& k) { return k.watches; });
    per_kind("picket_control_kube_watch_events_total", "counter",
             "ADDED, MODIFIED and DELETED watch events of the kind.",
             [](const source::SourceKindMetrics& k) { return k.events; });
    per_kind("picket_control_kube_watch_bookmarks_total", "counter",
             "BOOKMARK watch events of the kind.",
             [](const source::SourceKindMetrics& k) { return k.bookmarks; });
    per_kind("picket_control_kube_relists_total", "counter",
             "Relists forced by 410 Gone (history compacted or continue token expired).",
             [](const source::SourceKindMetrics& k) { return k.relists_410; });
    p.Family("picket_control_kube_api_errors_total", "counter",
             "Failed API requests per kind and HTTP status (code 0: no response: connection, TLS "
             "or decode failure).");
    for (const auto& k : kinds) {
      for (const auto& [code, n] : k.errors_by_code) {
        p.Sample(n, {{"kind", k.kind}, {"code", std::to_string(code)}});
      }
    }
    p.Family("picket_control_kube_watch_lag_seconds", "gauge",
             "Seconds since the kind's last list, watch event or bookmark (no sample: none yet).");
    for (const auto& k : kinds) {
      if (k.since_last_seen_ms) {
        p.Sample(static_cast<double>(*k.since_last_seen_ms) / 1000.0, {{"kind", k.kind}});
      }
    }
  }
  return p.Take();
}

}  // namespace picket::control
