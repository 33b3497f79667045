// config/conformance_case.cc — see conformance_case.h.
#include "config/conformance_case.h"

#include <fstream>
#include <sstream>

#include "config/label_validation.h"
#include "config/manifest_decode.h"

namespace picket::config {
namespace {

void DecodeCase(const YamlDocument& doc, const std::string& path, const LoadOptions& options,
                ConformanceCase* out, Errors* errors, NodeBudget* budget) {
  const YAML::Node& root = doc.root;
  FieldReader r(path, "", errors, budget, doc.line_offset);
  if (!r.ExpectMap(root, "")) return;
  YAML::Node name = Get(root, "name");
  if (IsNullish(name)) {
    r.Report(root, "name", "Required value");
  } else {
    out->name = r.String(name, "name").value_or("");
  }
  out->pods = r.StringList(Get(root, "pods"), "pods");
  YAML::Node probes = Get(root, "probes");
  if (!IsNullish(probes) && r.ExpectList(probes, "probes")) {
    size_t i = 0;
    for (const YAML::Node& probe : probes) {
      std::string p = Index("probes", i++);
      if (!r.ExpectMap(probe, p)) continue;
      ConformanceProbe parsed_probe;
      std::optional<int64_t> port = r.Int(Get(probe, "port"), Child(p, "port"));
      if (port && (*port < 1 || *port > 65535)) {
        r.Report(Get(probe, "port"), Child(p, "port"), "must be between 1 and 65535, inclusive");
      } else if (port) {
        parsed_probe.port = static_cast<uint16_t>(*port);
      }
      YAML::Node proto = Get(probe, "protocol");
      std::optional<std::string> name = IsNullish(proto) ? std::optional<std::string>("TCP")
                                                         : r.String(proto, Child(p, "protocol"));
      if (std::optional<Protocol> parsed = name ? ParseProtocol(*name) : std::nullopt) {
        parsed_probe.protocol = *parsed;
      } else if (name) {
        r.Report(proto, Child(p, "protocol"), "must be TCP, UDP or SCTP");
      }
      out->probes.push_back(parsed_probe);
    }
  }
  YAML::Node expected = Get(root, "expected");
  if (!IsNullish(expected) && r.ExpectMap(expected, "expected")) {
    r.Fields(expected, "expected", false,
             [&](const std::string& key, const YAML::Node& table, int) {
               out->expected[key] = r.StringMap(table, Child("expected", key));
               return true;
             });
  }
  YAML::Node manifests = Get(root, "manifests");
  if (IsNullish(manifests)) {
    r.Report(root, "manifests", "Required value");
    return;
  }
  if (!r.ExpectList(manifests, "manifests")) return;
  std::vector<std::string> notices;
  DecodeContext ctx{path, options, errors, &notices, budget, doc.line_offset};
  for (const YAML::Node& doc : manifests) DecodeDocument(doc, ctx, &out->cluster);
  CheckDuplicates(out->cluster, errors);
}

}  // namespace

std::expected<ConformanceCase, Errors> LoadConformanceCase(const std::string& path,
                                                           const LoadOptions& options) {
  Errors errors;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(Error{path, 0, "", "", "cannot read"});
    return std::unexpected(std::move(errors));
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<YamlDocument> docs;
  for (YamlDocument& doc : ParseYamlDocuments(text.str(), path)) {
    if (doc.parse_error) {
      errors.push_back(*doc.parse_error);
    } else if (!IsNullish(doc.root)) {
      docs.push_back(std::move(doc));
    }
  }
  ConformanceCase out;
  NodeBudget budget = NodeBudget::ForText(text.str().size());
  if (errors.empty()) {
    if (docs.size() != 1) {
      errors.push_back(Error{path, 0, "", "", "expected exactly one YAML document"});
    } else {
      try {
        DecodeCase(docs.front(), path, options, &out, &errors, &budget);
      } catch (const std::exception& e) {
        errors.push_back(Error{path, 0, "", "", std::string("internal YAML error: ") + e.what()});
      }
    }
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return out;
}

}  // namespace picket::config
