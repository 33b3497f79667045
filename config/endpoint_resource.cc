// config/endpoint_resource.cc — base::JsonValue → plain resource structs, every error collected.
#include "config/endpoint_resource.h"

#include <utility>

#include "base/field_path.h"
#include "base/json_fields.h"

namespace picket::config {
namespace {

using base::JsonFields;
using base::JsonValue;
using base::Need;

// Every string of these resources (Kubernetes names, label keys and values, addresses, policy
// names, our own descriptions) is printable ASCII; anything else is corrupt input, and rejecting
// it keeps decode(encode(x)) == x.
bool PrintableAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

constexpr std::string_view kNotAscii = "Invalid value: must be printable ASCII";
// What the [first, last] ranges of one pod policy's identity sets may expand to in all: more
// identities than a cluster of a million pods has (a range is a few bytes that could otherwise
// stand for four billion ids).
constexpr uint64_t kMaxRangeIds = uint64_t{1} << 21;

// One reader over the whole value: every method reads one shape and reports into `errors_`.
class Reader {
 public:
  explicit Reader(Errors* errors) : errors_(errors) {}

  bool String(JsonFields& f, std::string_view key, Need need, std::string* out) {
    std::optional<std::string_view> s = f.String(key, need);
    if (!s) return false;
    if (!PrintableAscii(*s)) {
      f.Report(key, std::string(kNotAscii));
      return false;
    }
    *out = std::string(*s);
    return true;
  }

  bool Item(const JsonValue& v, const std::string& path, std::string* out) {
    std::optional<std::string_view> s = base::JsonString(v, path, errors_);
    if (!s) return false;
    if (!PrintableAscii(*s)) {
      errors_->push_back(Error::At(path, std::string(kNotAscii)));
      return false;
    }
    *out = std::string(*s);
    return true;
  }

  void StringList(JsonFields& f, std::string_view key, std::vector<std::string>* out) {
    f.Array(key, Need::kOptional, [&](const JsonValue& v, const std::string& path) {
      std::string s;
      if (Item(v, path, &s)) out->push_back(std::move(s));
    });
  }

  bool Proto(JsonFields& f, std::string_view key, Need need, Protocol* out) {
    std::string s;
    if (!String(f, key, need, &s)) return false;
    if (s == "TCP") {
      *out = Protocol::kTCP;
    } else if (s == "UDP") {
      *out = Protocol::kUDP;
    } else if (s == "SCTP") {
      *out = Protocol::kSCTP;
    } else {
      f.Report(key,
               "Unsupported value: \"" + s + "\": supported values: \"TCP\", \"UDP\", \"SCTP\"");
      return false;
    }
    return true;
  }

  AddressEntryResource AddressEntry(const JsonValue& v, const std::string& path) {
    AddressEntryResource out;
    JsonFields f(v, path, errors_);
    if (auto id = f.Uint32("identity", Need::kRequired)) out.identity = *id;
    String(f, "namespace", Need::kRequired, &out.ns);
    String(f, "pod", Need::kRequired, &out.pod);
    StringList(f, "ips", &out.ips);
    if (auto labels = f.Object("labels")) {
      // Members are read here, not through getters: no Finish() (duplicates are reported).
      for (const base::JsonMember& m : labels->object().Members()) {
        const std::string field = labels->Path(m.key);
        std::string value;
        if (!PrintableAscii(m.key)) {
          errors_->push_back(Error::At(labels->path(), std::string(kNotAscii)));
        } else if (Item(m.value, field, &value)) {
          out.labels[std::string(m.key)] = std::move(value);
        }
      }
    }
    f.Array("named_ports", Need::kOptional, [&](const JsonValue& item, const std::string& p) {
      if (item.IsString()) {
        // The compact form policy/endpoint_codec.cc writes: "name:port" (TCP) or
        // "name:port/PROTOCOL".
        if (auto np = CompactNamedPort(item, p)) out.named_ports.push_back(std::move(*np));
        return;
      }
      JsonFields port(item, p, errors_);
      NamedPortResource np;
      bool ok = String(port, "name", Need::kRequired, &np.name);
      if (auto n = port.Int<uint16_t>("port", Need::kRequired, 1, 65535)) {
        np.port = *n;
      } else {
        ok = false;
      }
      ok = Proto(port, "protocol", Need::kRequired, &np.protocol) && ok;
      port.Finish();
      if (ok) out.named_ports.push_back(std::move(np));
    });
    f.Finish();
    return out;
  }

  std::optional<NamedPortResource> CompactNamedPort(const JsonValue& v, const std::string& path) {
    std::string text;
    if (!Item(v, path, &text)) return std::nullopt;
    auto bad = [&](std::string_view why) {
      errors_->push_back(Error::At(path, base::InvalidValue(base::ShowJson(v), why)));
      return std::nullopt;
    };
    const size_t colon = text.find(':');
    if (colon == std::string::npos || colon == 0) {
      return bad("expected \"name:port\" or \"name:port/PROTOCOL\"");
    }
    NamedPortResource np;
    np.name = text.substr(0, colon);
    if (np.name.find('/') != std::string::npos) return bad("the name contains '/'");
    std::string_view rest = std::string_view(text).substr(colon + 1);
    const size_t slash = rest.find('/');
    const std::string_view digits = rest.substr(0, slash);
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return bad("the port must be a number between 1 and 65535");
    }
    const int port = std::stoi(std::string(digits));
    if (port < 1 || port > 65535) return bad("the port must be a number between 1 and 65535");
    np.port = static_cast<uint16_t>(port);
    np.protocol = Protocol::kTCP;
    if (slash != std::string_view::npos) {
      const std::string_view proto = rest.substr(slash + 1);
      if (proto == "UDP") {
        np.protocol = Protocol::kUDP;
      } else if (proto == "SCTP") {
        np.protocol = Protocol::kSCTP;
      } else if (proto != "TCP") {
        return bad("the protocol must be TCP, UDP or SCTP");
      }
    }
    return np;
  }

  PeerResource Peer(JsonFields& f) {
    PeerResource out;
    String(f, "description", Need::kOptional, &out.description);
    out.identity_set = f.Uint32("identity_set");
    const bool has_set = f.object().Find("identity_set").has_value();
    const bool has_cidr = f.object().Find("cidr").has_value();
    std::string cidr;
    if (String(f, "cidr", Need::kOptional, &cidr)) out.cidr = std::move(cidr);
    StringList(f, "except", &out.except);
    if (has_set == has_cidr) {
      f.Report("", "Invalid value: must specify exactly one of identity_set, cidr");
    } else if (has_set && f.object().Find("except")) {
      f.Report("except", "Forbidden: may only be specified with cidr");
    }
    f.Finish();
    return out;
  }

  PortResource PortSpec(JsonFields& f) {
    PortResource out;
    Proto(f, "protocol", Need::kRequired, &out.protocol);
    out.port = f.Int<uint16_t>("port", Need::kOptional, 1, 65535);
    out.end_port = f.Int<uint16_t>("end_port", Need::kOptional, 1, 65535);
    std::string name;
    if (String(f, "name", Need::kOptional, &name)) out.name = std::move(name);
    const JsonValue o = f.object();
    if (o.Find("name") && (o.Find("port") || o.Find("end_port"))) {
      f.Report("name", "Forbidden: may not be specified with port or end_port");
    }
    if (o.Find("end_port") && !o.Find("port")) {
      f.Report("end_port", "Forbidden: may not be specified without port");
    }
    if (out.port && out.end_port && *out.end_port < *out.port) {
      f.Report("end_port", "Invalid value: " + std::to_string(*out.end_port) +
                               ": must be greater than or equal to `port`");
    }
    f.Finish();
    return out;
  }

  DirectionResource Direction(JsonFields& f) {
    DirectionResource out;
    if (auto b = f.Bool("isolated")) out.isolated = *b;
    StringList(f, "policies", &out.policies);
    f.Array("rules", Need::kOptional, [&](const JsonValue& item, const std::string& p) {
      JsonFields r(item, p, errors_);
      RuleEntryResource rule;
      if (auto n = r.Uint32("policy", Need::kRequired)) rule.policy = *n;
      if (auto n = r.Uint32("rule")) rule.rule = *n;
      if (auto peer = r.Object("peer")) rule.peer = Peer(*peer);
      if (auto port = r.Object("port")) rule.port = PortSpec(*port);
      r.Finish();
      out.rules.push_back(std::move(rule));
    });
    f.Finish();
    return out;
  }

  PodPolicyResource PodPolicy(const JsonValue& v, const std::string& path) {
    PodPolicyResource out;
    JsonFields f(v, path, errors_);
    String(f, "namespace", Need::kRequired, &out.ns);
    String(f, "pod", Need::kRequired, &out.pod);
    StringList(f, "host_ips", &out.host_ips);
    uint64_t range_ids = 0;
    f.Array("identity_sets", Need::kOptional, [&](const JsonValue& set, const std::string& p) {
      std::vector<uint32_t> ids;
      if (!set.IsArray()) {
        errors_->push_back(
            Error::At(p, base::InvalidValue(base::ShowJson(set), "expected an array")));
      } else {
        size_t i = 0;
        for (const JsonValue& id : set.Elements()) {
          const std::string at = base::Index(p, i++);
          if (!id.IsArray()) {
            if (auto n = base::JsonInt(id, 0, UINT32_MAX, at, errors_)) {
              ids.push_back(static_cast<uint32_t>(*n));
            }
            continue;
          }
          // [first, last]: the ids first..last, inclusive.
          std::vector<JsonValue> ends;
          for (const JsonValue& e : id.Elements()) ends.push_back(e);
          if (ends.size() != 2) {
            errors_->push_back(Error::At(
                at, base::InvalidValue(base::ShowJson(id), "expected an id or [first, last]")));
            continue;
          }
          auto first = base::JsonInt(ends[0], 0, UINT32_MAX, base::Index(at, 0), errors_);
          auto last = base::JsonInt(ends[1], 0, UINT32_MAX, base::Index(at, 1), errors_);
          if (!first || !last) continue;
          const std::string shown =
              "[" + std::to_string(*first) + "," + std::to_string(*last) + "]";
          if (*last < *first) {
            errors_->push_back(
                Error::At(at, base::InvalidValue(shown, "last is smaller than first")));
            continue;
          }
          // A range is a few bytes that can stand for many ids: bound what they expand to.
          const uint64_t count = static_cast<uint64_t>(*last - *first) + 1;
          if (count > kMaxRangeIds - range_ids) {
            errors_->push_back(
                Error::At(at, base::InvalidValue(shown, "ranges expand to more than " +
                                                            std::to_string(kMaxRangeIds) +
                                                            " ids in one policy")));
            continue;
          }
          range_ids += count;
          for (int64_t n = *first; n <= *last; ++n) ids.push_back(static_cast<uint32_t>(n));
        }
      }
      out.identity_sets.push_back(std::move(ids));
    });
    if (auto d = f.Object("ingress")) out.ingress = Direction(*d);
    if (auto d = f.Object("egress")) out.egress = Direction(*d);
    f.Finish();
    return out;
  }

  EndpointPolicyResource Snapshot(const JsonValue& v) {
    EndpointPolicyResource out;
    JsonFields f(v, "", errors_);
    String(f, "version", Need::kOptional, &out.version);
    String(f, "namespace", Need::kRequired, &out.ns);
    String(f, "pod", Need::kRequired, &out.pod);
    f.Array("address_map", Need::kOptional, [&](const JsonValue& item, const std::string& p) {
      out.address_map.push_back(AddressEntry(item, p));
    });
    if (auto p = f.Value("pod_policy", Need::kRequired))
      out.pod_policy = PodPolicy(*p, "pod_policy");
    f.Finish();
    return out;
  }

 private:
  Errors* errors_;
};

template <typename T, typename Fn>
std::expected<T, Errors> Decode(const JsonValue& value, std::string_view file_name, Fn fn) {
  Errors errors;
  Reader reader(&errors);
  T out = fn(reader, value);
  if (errors.empty()) return out;
  for (Error& e : errors) e.file = std::string(file_name);
  return std::unexpected(std::move(errors));
}

template <typename T, typename Fn>
std::expected<T, Errors> DecodeText(std::string_view text, std::string_view file_name, Fn fn) {
  auto doc = base::ParseJson(text);
  if (!doc) {
    Error e = std::move(doc.error());
    e.file = std::string(file_name);
    return std::unexpected(Errors{std::move(e)});
  }
  return Decode<T>(doc->root(), file_name, fn);
}

auto ReadAddressEntry = [](Reader& r, const JsonValue& v) { return r.AddressEntry(v, ""); };
auto ReadPodPolicy = [](Reader& r, const JsonValue& v) { return r.PodPolicy(v, ""); };
auto ReadSnapshot = [](Reader& r, const JsonValue& v) { return r.Snapshot(v); };

}  // namespace

std::expected<AddressEntryResource, Errors> DecodeAddressEntryResource(const base::JsonValue& value,
                                                                       std::string_view file_name) {
  return Decode<AddressEntryResource>(value, file_name, ReadAddressEntry);
}

std::expected<PodPolicyResource, Errors> DecodePodPolicyResource(const base::JsonValue& value,
                                                                 std::string_view file_name) {
  return Decode<PodPolicyResource>(value, file_name, ReadPodPolicy);
}

std::expected<EndpointPolicyResource, Errors> DecodeEndpointPolicyResource(
    const base::JsonValue& value, std::string_view file_name) {
  return Decode<EndpointPolicyResource>(value, file_name, ReadSnapshot);
}

std::expected<AddressEntryResource, Errors> DecodeAddressEntryResource(std::string_view text,
                                                                       std::string_view file_name) {
  return DecodeText<AddressEntryResource>(text, file_name, ReadAddressEntry);
}

std::expected<PodPolicyResource, Errors> DecodePodPolicyResource(std::string_view text,
                                                                 std::string_view file_name) {
  return DecodeText<PodPolicyResource>(text, file_name, ReadPodPolicy);
}

std::expected<EndpointPolicyResource, Errors> DecodeEndpointPolicyResource(
    std::string_view text, std::string_view file_name) {
  return DecodeText<EndpointPolicyResource>(text, file_name, ReadSnapshot);
}

}  // namespace picket::config
