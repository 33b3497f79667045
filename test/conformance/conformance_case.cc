// test/conformance/conformance_case.cc — see conformance_case.h.
//
// The wrapper is read with config::Node (the generic document tree); the `manifests` list is
// handed to config::LoadManifestText as a `kind: List` whose text keeps every line where it was
// in the case file, so manifest errors name the case file's lines.
#include "test/conformance/conformance_case.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

#include "config/document.h"

namespace picket::test {
namespace {

using config::Error;
using config::Errors;
using config::Node;

std::optional<config::Protocol> ParseProtocol(std::string_view name) {
  if (name == "TCP") return config::Protocol::kTCP;
  if (name == "UDP") return config::Protocol::kUDP;
  if (name == "SCTP") return config::Protocol::kSCTP;
  return std::nullopt;
}

// Collects the wrapper's errors, each naming the case file and the node's line.
class Reader {
 public:
  Reader(const std::string& path, Errors* errors) : path_(path), errors_(errors) {}

  void Report(const Node& at, std::string field, std::string reason) {
    Error e = Error::At(std::move(field), std::move(reason));
    e.file = path_;
    e.line = at.line();
    errors_->push_back(std::move(e));
  }

  std::optional<std::string> String(const Node& node, const std::string& field) {
    if (node.IsString()) return node.AsString();
    Report(node, field, "must be a string");
    return std::nullopt;
  }

  std::vector<std::string> StringList(const Node* node, const std::string& field) {
    std::vector<std::string> out;
    if (node == nullptr || node->IsNull()) return out;
    if (!node->IsSequence()) {
      Report(*node, field, "must be a list");
      return out;
    }
    for (size_t i = 0; i < node->items().size(); ++i) {
      if (auto s = String(node->items()[i], field + "[" + std::to_string(i) + "]")) {
        out.push_back(*s);
      }
    }
    return out;
  }

 private:
  const std::string& path_;
  Errors* errors_;
};

void DecodeProbes(const Node* probes, Reader& r, ConformanceCase* out) {
  if (probes == nullptr || probes->IsNull()) return;
  if (!probes->IsSequence()) return r.Report(*probes, "probes", "must be a list");
  for (size_t i = 0; i < probes->items().size(); ++i) {
    const Node& probe = probes->items()[i];
    const std::string p = "probes[" + std::to_string(i) + "]";
    if (!probe.IsMapping()) {
      r.Report(probe, p, "must be a map");
      continue;
    }
    ConformanceProbe parsed;
    const Node* port = probe.Find("port");
    if (port == nullptr || !port->IsInt() || port->AsInt() < 1 || port->AsInt() > 65535) {
      r.Report(port != nullptr ? *port : probe, p + ".port",
               "must be between 1 and 65535, inclusive");
    } else {
      parsed.port = static_cast<uint16_t>(port->AsInt());
    }
    if (const Node* proto = probe.Find("protocol"); proto != nullptr && !proto->IsNull()) {
      std::optional<config::Protocol> protocol =
          proto->IsString() ? ParseProtocol(proto->AsString()) : std::nullopt;
      if (protocol) {
        parsed.protocol = *protocol;
      } else {
        r.Report(*proto, p + ".protocol", "must be TCP, UDP or SCTP");
      }
    }
    out->probes.push_back(parsed);
  }
}

void DecodeExpected(const Node* expected, Reader& r, ConformanceCase* out) {
  if (expected == nullptr || expected->IsNull()) return;
  if (!expected->IsMapping()) return r.Report(*expected, "expected", "must be a map");
  for (const config::Member& table : expected->members()) {
    const std::string field = "expected." + table.key;
    if (!table.value.IsMapping()) {
      r.Report(table.value, field, "must be a map");
      continue;
    }
    for (const config::Member& row : table.value.members()) {
      if (auto s = r.String(row.value, field + "." + row.key))
        out->expected[table.key][row.key] = *s;
    }
  }
}

// The case file's text with the `manifests:` key turned into a `kind: List`, every other line
// blanked, so that line numbers stay those of the case file. Requires `manifests` to be the last
// top-level key (as in every case file); reports an error otherwise.
std::optional<std::string> ManifestListText(std::string_view text, const Node& manifests,
                                            Reader& r) {
  std::string out;
  bool in_manifests = false;
  bool found = false;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    const bool top_level_key =
        !line.empty() && line[0] != ' ' && line[0] != '-' && line[0] != '#' && line[0] != '\r';
    if (line.starts_with("manifests:") && line.find_first_not_of(" \r", 10) == line.npos) {
      in_manifests = found = true;
      out += "items:\n";
      continue;
    }
    if (in_manifests && top_level_key) {
      r.Report(manifests, "manifests", "must be the last top-level key of the case file");
      return std::nullopt;
    }
    if (in_manifests) out += line;
    out += '\n';
  }
  if (!found) {
    r.Report(manifests, "manifests", "must be written as a block list under `manifests:`");
    return std::nullopt;
  }
  out += "kind: List\n";
  return out;
}

void DecodeCase(const Node& root, std::string_view text, const std::string& path,
                const config::LoadOptions& options, ConformanceCase* out, Errors* errors) {
  Reader r(path, errors);
  if (!root.IsMapping()) return r.Report(root, "", "must be a map");
  const Node* name = root.Find("name");
  if (name == nullptr || name->IsNull()) {
    r.Report(root, "name", "Required value");
  } else {
    out->name = r.String(*name, "name").value_or("");
  }
  out->pods = r.StringList(root.Find("pods"), "pods");
  DecodeProbes(root.Find("probes"), r, out);
  DecodeExpected(root.Find("expected"), r, out);
  const Node* manifests = root.Find("manifests");
  if (manifests == nullptr || manifests->IsNull())
    return r.Report(root, "manifests", "Required value");
  if (!manifests->IsSequence()) return r.Report(*manifests, "manifests", "must be a list");
  if (manifests->items().empty()) return r.Report(*manifests, "manifests", "must not be empty");
  std::optional<std::string> list = ManifestListText(text, *manifests, r);
  if (!list) return;
  auto loaded = config::LoadManifestText(*list, path, options);
  if (!loaded) {
    errors->insert(errors->end(), loaded.error().begin(), loaded.error().end());
    return;
  }
  out->cluster = std::move(loaded->cluster);
}

}  // namespace

std::expected<ConformanceCase, Errors> LoadConformanceCase(const std::string& path,
                                                           const config::LoadOptions& options) {
  Errors errors;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(Error{path, 0, "", "", "cannot read"});
    return std::unexpected(std::move(errors));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  auto docs = config::ParseYamlDocuments(text, path);
  if (!docs) {
    errors.push_back(docs.error());
    return std::unexpected(std::move(errors));
  }
  std::vector<const Node*> roots;
  for (const Node& doc : *docs) {
    if (!doc.IsNull()) roots.push_back(&doc);
  }
  if (roots.size() != 1) {
    errors.push_back(Error{path, 0, "", "", "expected exactly one YAML document"});
    return std::unexpected(std::move(errors));
  }
  ConformanceCase out;
  DecodeCase(*roots.front(), text, path, options, &out, &errors);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return out;
}

std::expected<std::vector<std::string>, Error> ConformanceCaseFiles() {
  namespace fs = std::filesystem;
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) {
    return std::unexpected(Error::Of("TEST_SRCDIR/TEST_WORKSPACE unset: run under bazel test"));
  }
  const fs::path dir = fs::path(srcdir) / workspace / "test" / "conformance" / "cases";
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".yaml") files.push_back(it->path().string());
  }
  if (ec) return std::unexpected(Error{dir.string(), 0, "", "", "cannot list: " + ec.message()});
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace picket::test
