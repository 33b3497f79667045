// control/status_command.cc — see status_command.h.
#include "control/status_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <ostream>

#include "base/json.h"
#include "control/admin_client.h"
#include "net/host_port.h"

namespace picket::control {
namespace {

constexpr std::string_view kAddressType = "type.picket.dev/picket.v1.AddressEntry";
constexpr std::string_view kPolicyType = "type.picket.dev/picket.v1.PodPolicy";

base::Error Bad(std::string_view field, std::string_view reason) {
  return base::Error::Of("/status: " + std::string(field) + ": " + std::string(reason));
}

// The string member `key` of `v` (object `at`), or an error naming it.
base::Result<std::string> String(const base::JsonValue& v, std::string_view at,
                                 std::string_view key) {
  auto f = v.Find(key);
  if (!f || !f->IsString()) {
    return std::unexpected(
        Bad(std::string(at) + "." + std::string(key), f ? "not a string" : "missing"));
  }
  return std::string(*f->AsString());
}

base::Result<uint64_t> Uint(const base::JsonValue& v, std::string_view at, std::string_view key) {
  auto f = v.Find(key);
  auto n = f ? f->AsUint64() : std::nullopt;
  if (!n) {
    return std::unexpected(
        Bad(std::string(at) + "." + std::string(key), f ? "not an unsigned integer" : "missing"));
  }
  return *n;
}

// One type's subscription of a sidecar: what it ACKed against what the replica would send now.
// SYNCED: the latest is ACKed; NOT SENT: nothing was pushed yet (nothing ACKed, NACKed or
// awaiting an ACK); STALE: anything else (a newer version exists, or a push awaits its ACK).
base::Result<TypeSync> ReadType(const base::JsonValue& subscriptions, std::string_view at,
                                std::string_view type, std::string_view short_name,
                                std::optional<SidecarRow::Nack>* nack) {
  TypeSync t;
  auto sub = subscriptions.Find(type);
  if (!sub) {
    t.sync = "NOT SENT";  // not subscribed (yet)
    return t;
  }
  const std::string here = std::string(at) + "[\"" + std::string(type) + "\"]";
  if (!sub->IsObject()) return std::unexpected(Bad(here, "not an object"));
  auto acked = String(*sub, here, "last_acked_version");
  if (!acked) return std::unexpected(acked.error());
  auto latest = String(*sub, here, "latest_version");
  if (!latest) {
    return std::unexpected(
        Bad(here + ".latest_version", "missing (a replica older than this picket-control?)"));
  }
  auto pending = String(*sub, here, "pending_nonce");
  if (!pending) return std::unexpected(pending.error());
  auto n = sub->Find("last_nack");
  if (!n || !(n->IsNull() || n->IsObject())) {
    return std::unexpected(Bad(here + ".last_nack", n ? "not an object or null" : "missing"));
  }
  t.acked_version = std::move(*acked);
  t.latest_version = std::move(*latest);
  if (!t.acked_version.empty() && t.acked_version == t.latest_version) {
    t.sync = "SYNCED";
  } else if (t.acked_version.empty() && pending->empty() && n->IsNull()) {
    t.sync = "NOT SENT";
  } else {
    t.sync = "STALE";
  }
  if (n->IsObject()) {
    const std::string nat = here + ".last_nack";
    auto message = String(*n, nat, "message");
    if (!message) return std::unexpected(message.error());
    auto version = String(*n, nat, "version_info");
    if (!version) return std::unexpected(version.error());
    auto when = Uint(*n, nat, "at_unix_ms");
    if (!when) return std::unexpected(when.error());
    SidecarRow::Nack got{std::string(short_name), std::move(*message), std::move(*version), *when};
    if (!*nack || got.at_unix_ms >= (*nack)->at_unix_ms) *nack = std::move(got);
  }
  return t;
}

std::string Short(const std::string& version) {
  return version.size() > 12 ? version.substr(0, 12) : version;
}

std::string Age(uint64_t at_ms, uint64_t now_ms) {
  const uint64_t s = now_ms > at_ms ? (now_ms - at_ms) / 1000 : 0;
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string Cell(const TypeSync& t) {
  return t.acked_version.empty() ? t.sync : t.sync + " (" + Short(t.acked_version) + ")";
}

void WriteType(base::JsonWriter& w, std::string_view key, const TypeSync& t) {
  w.Key(key)
      .BeginObject()
      .Member("acked_version", t.acked_version)
      .Member("latest_version", t.latest_version)
      .Member("sync", t.sync)
      .EndObject();
}

uint64_t NowUnixMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

base::Result<ProxyStatus> ParseProxyStatus(std::string_view status_json) {
  auto doc = base::ParseJson(status_json);
  if (!doc) return std::unexpected(std::move(doc.error()).Context("/status"));
  const base::JsonValue root = doc->root();
  if (!root.IsObject()) return std::unexpected(Bad("(root)", "not an object"));
  ProxyStatus st;
  auto manifests = root.Find("manifests");
  if (!manifests || !manifests->IsObject()) {
    return std::unexpected(Bad("manifests", manifests ? "not an object" : "missing"));
  }
  auto source = String(*manifests, "manifests", "source");
  if (!source) return std::unexpected(source.error());
  st.source = std::move(*source);
  auto loaded = manifests->Find("loaded");
  if (!loaded || !loaded->IsBool()) {
    return std::unexpected(Bad("manifests.loaded", loaded ? "not a boolean" : "missing"));
  }
  st.ready = *loaded->AsBool();
  auto files = Uint(*manifests, "manifests", "files");
  if (!files) return std::unexpected(files.error());
  st.objects = *files;
  auto sidecars = root.Find("sidecars");
  if (!sidecars || !sidecars->IsArray()) {
    return std::unexpected(Bad("sidecars", sidecars ? "not an array" : "missing"));
  }
  size_t i = 0;
  for (const base::JsonValue& s : sidecars->Elements()) {
    const std::string at = "sidecars[" + std::to_string(i++) + "]";
    if (!s.IsObject()) return std::unexpected(Bad(at, "not an object"));
    auto state = String(s, at, "state");
    if (!state) return std::unexpected(state.error());
    if (*state != "active") continue;  // still in the TLS handshake or before its first request
    SidecarRow row;
    auto pod = String(s, at, "pod");
    if (!pod) return std::unexpected(pod.error());
    row.pod = std::move(*pod);
    if (auto node = s.Find("node"); node && node->IsObject()) {
      auto id = String(*node, at + ".node", "id");
      if (!id) return std::unexpected(id.error());
      row.node = std::move(*id);
    }
    auto since = Uint(s, at, "connected_unix_ms");
    if (!since) return std::unexpected(since.error());
    row.connected_unix_ms = *since;
    auto subs = s.Find("subscriptions");
    if (!subs || !subs->IsObject()) {
      return std::unexpected(Bad(at + ".subscriptions", subs ? "not an object" : "missing"));
    }
    const std::string subs_at = at + ".subscriptions";
    auto addresses = ReadType(*subs, subs_at, kAddressType, "addresses", &row.last_nack);
    if (!addresses) return std::unexpected(addresses.error());
    row.addresses = std::move(*addresses);
    auto policy = ReadType(*subs, subs_at, kPolicyType, "policy", &row.last_nack);
    if (!policy) return std::unexpected(policy.error());
    row.policy = std::move(*policy);
    st.sidecars.push_back(std::move(row));
  }
  std::stable_sort(st.sidecars.begin(), st.sidecars.end(),
                   [](const SidecarRow& a, const SidecarRow& b) { return a.pod < b.pod; });
  return st;
}

std::string Rfc3339Utc(uint64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatProxyStatusText(const ProxyStatus& status, const std::string& admin,
                                  uint64_t now_unix_ms) {
  std::string out = "replica " + admin + ": source " + status.source + ", " +
                    (status.ready ? "ready" : "NOT READY") + ", " + std::to_string(status.objects) +
                    (status.source.starts_with("directory ") ? " files, " : " objects, ") +
                    std::to_string(status.sidecars.size()) + " sidecars\n";
  std::vector<std::vector<std::string>> rows = {
      {"POD", "NODE", "ADDRESSES", "POLICY", "LAST NACK", "CONNECTED SINCE"}};
  for (const SidecarRow& s : status.sidecars) {
    std::string nack = "-";
    if (s.last_nack) {
      nack = s.last_nack->type + ": " + s.last_nack->message + " (" +
             Age(s.last_nack->at_unix_ms, now_unix_ms) + " ago)";
    }
    rows.push_back({s.pod, s.node.empty() ? "-" : s.node, Cell(s.addresses), Cell(s.policy), nack,
                    Rfc3339Utc(s.connected_unix_ms)});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string FormatProxyStatusJson(const ProxyStatus& status, const std::string& admin,
                                  uint64_t now_unix_ms) {
  base::JsonWriter w;
  w.BeginObject()
      .Key("replica")
      .BeginObject()
      .Member("admin", admin)
      .Member("source", status.source)
      .Member("ready", status.ready)
      .Member("objects", status.objects)
      .EndObject()
      .Key("sidecars")
      .BeginArray();
  for (const SidecarRow& s : status.sidecars) {
    w.BeginObject().Member("pod", s.pod).Member("node", s.node);
    WriteType(w, "addresses", s.addresses);
    WriteType(w, "policy", s.policy);
    w.Key("last_nack");
    if (s.last_nack) {
      w.BeginObject()
          .Member("type", s.last_nack->type)
          .Member("message", s.last_nack->message)
          .Member("version", s.last_nack->version)
          .Member("at", Rfc3339Utc(s.last_nack->at_unix_ms))
          .Member(
              "age_s",
              (now_unix_ms > s.last_nack->at_unix_ms ? now_unix_ms - s.last_nack->at_unix_ms : 0) /
                  1000)
          .EndObject();
    } else {
      w.Null();
    }
    w.Member("connected_since", Rfc3339Utc(s.connected_unix_ms)).EndObject();
  }
  w.EndArray().EndObject();
  return w.Take() + "\n";
}

CommandRun AddStatus(CLI::App& sub) {
  struct Options {
    std::string admin = "127.0.0.1:15013";
    std::string output = "text";
    uint64_t timeout_ms = 5000;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("--admin", o->admin, "A replica's admin endpoint (HOST:PORT)")
      ->capture_default_str();
  sub.add_option("-o,--output", o->output, "text, json or yaml")
      ->check(CLI::IsMember({"text", "json", "yaml"}))
      ->capture_default_str();
  sub.add_option("--timeout-ms", o->timeout_ms, "Give up on the admin endpoint after this long")
      ->capture_default_str();
  return [o](std::ostream& out, std::ostream& err) {
    auto hp = net::SplitHostPort(o->admin);
    if (!hp) {
      err << "picket-control status: --admin: " << hp.error() << "\n";
      return 2;
    }
    auto got = AdminGet(hp->first, hp->second, "/status", o->timeout_ms);
    if (!got) {
      err << "picket-control status: " << got.error().ToString() << "\n";
      return 1;
    }
    if (got->status != 200) {
      err << "picket-control status: GET /status on " << o->admin << ": HTTP " << got->status
          << "\n";
      return 1;
    }
    auto status = ParseProxyStatus(got->body);
    if (!status) {
      err << "picket-control status: " << o->admin << ": " << status.error().ToString() << "\n";
      return 1;
    }
    const uint64_t now = NowUnixMs();
    if (o->output == "text") {
      out << FormatProxyStatusText(*status, o->admin, now);
    } else {
      const std::string json = FormatProxyStatusJson(*status, o->admin, now);
      out << (o->output == "json" ? json : JsonAsYaml(json));
    }
    return 0;
  };
}

}  // namespace picket::control
