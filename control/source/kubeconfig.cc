// control/source/kubeconfig.cc — see kubeconfig.h.
#include "control/source/kubeconfig.h"

#include <openssl/base64.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/document.h"
#include "net/host_port.h"

namespace picket::control::source {
namespace {

constexpr size_t kMaxFileBytes = 4 << 20;  // a kubeconfig, a certificate, a token

base::Error At(const std::string& file, std::string field, std::string reason) {
  base::Error e = base::Error::At(std::move(field), std::move(reason));
  e.file = file;
  return e;
}

base::Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(At(path, "", "cannot read: " + std::string(strerror(errno))));
  std::string out;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > kMaxFileBytes) {
      return std::unexpected(
          At(path, "", "too large (limit " + std::to_string(kMaxFileBytes) + " bytes)"));
    }
  }
  return out;
}

base::Result<std::string> DecodeBase64(std::string_view text) {
  std::string compact;
  for (char c : text) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') compact += c;
  }
  size_t max_len = 0;
  if (!EVP_DecodedLength(&max_len, compact.size())) {
    return std::unexpected(base::Error::Of("illegal base64 data: length is not a multiple of 4"));
  }
  std::string out(max_len, '\0');
  size_t len = 0;
  if (!EVP_DecodeBase64(reinterpret_cast<uint8_t*>(out.data()), &len, max_len,
                        reinterpret_cast<const uint8_t*>(compact.data()), compact.size())) {
    return std::unexpected(base::Error::Of("illegal base64 data"));
  }
  out.resize(len);
  return out;
}

// The named entry of a kubeconfig list (`clusters`, `users`, `contexts`), and its index.
struct Entry {
  const config::Node* body = nullptr;  // the `cluster` / `user` / `context` map
  std::string path;                    // "clusters[2].cluster"
};

base::Result<Entry> FindNamed(const std::string& file, const config::Node& root,
                              const std::string& list, const std::string& inner,
                              const std::string& name, const std::string& wanted_at) {
  const config::Node* items = root.Find(list);
  if (items != nullptr && !items->IsNull() && !items->IsSequence()) {
    return std::unexpected(At(file, list, "must be a list"));
  }
  if (items != nullptr) {
    for (size_t i = 0; i < items->items().size(); ++i) {
      const config::Node& item = items->items()[i];
      if (item.StringAt("name") != name) continue;
      const std::string path = list + "[" + std::to_string(i) + "]." + inner;
      const config::Node* body = item.Find(inner);
      if (body == nullptr || !body->IsMapping()) {
        return std::unexpected(At(file, path, "Required value: must be a map"));
      }
      return Entry{body, path};
    }
  }
  return std::unexpected(At(file, wanted_at, "no " + list + " entry named \"" + name + "\""));
}

base::Result<std::string> StringField(const std::string& file, const Entry& entry,
                                      const char* key) {
  const config::Node* node = entry.body->Find(key);
  if (node == nullptr || node->IsNull()) return std::string();
  if (!node->IsString()) {
    return std::unexpected(At(file, entry.path + "." + key, "must be a string"));
  }
  return node->AsString();
}

// `key-data` (base64) or `key` (a file, relative to the kubeconfig's folder); "" when neither.
base::Result<std::string> DataOrFile(const std::string& file, const std::filesystem::path& dir,
                                     const Entry& entry, const std::string& key) {
  auto data = StringField(file, entry, (key + "-data").c_str());
  if (!data) return std::unexpected(data.error());
  if (!data->empty()) {
    auto decoded = DecodeBase64(*data);
    if (!decoded) {
      return std::unexpected(At(file, entry.path + "." + key + "-data", decoded.error().reason));
    }
    return decoded;
  }
  auto name = StringField(file, entry, key.c_str());
  if (!name) return std::unexpected(name.error());
  if (name->empty()) return std::string();
  std::filesystem::path p(*name);
  if (p.is_relative()) p = dir / p;
  auto text = ReadSmallFile(p.string());
  if (!text) {
    return std::unexpected(At(file, entry.path + "." + key, text.error().ToString()));
  }
  return text;
}

// "https://host[:port][/prefix]" → host, port, prefix.
base::Result<void> ParseServer(std::string_view url, KubeConfig* out) {
  if (!url.starts_with("https://")) {
    return std::unexpected(base::Error::Of("Invalid value: \"" + std::string(url) +
                                           "\": only https:// servers are supported"));
  }
  url.remove_prefix(8);
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view prefix = url.substr(slash);
    while (prefix.ends_with('/')) prefix.remove_suffix(1);
    out->path_prefix = std::string(prefix);
  }
  const bool has_port = authority.starts_with('[') ? authority.find("]:") != std::string_view::npos
                                                   : authority.find(':') != std::string_view::npos;
  std::string with_port(authority);
  if (!has_port) with_port += ":443";
  auto split = net::SplitHostPort(with_port);
  if (!split || split->first.empty()) {
    return std::unexpected(base::Error::Of("Invalid value: \"https://" + std::string(authority) +
                                           "\": " + (split ? "no host" : split.error())));
  }
  out->host = split->first;
  out->port = split->second;
  return {};
}

}  // namespace

base::Result<KubeConfig> LoadKubeconfig(const std::string& path, const KubeconfigOptions& options) {
  auto text = ReadSmallFile(path);
  if (!text) return std::unexpected(text.error());
  auto docs = config::ParseYamlDocuments(*text, path);
  if (!docs) return std::unexpected(docs.error());
  if (docs->size() != 1 || !(*docs)[0].IsMapping()) {
    return std::unexpected(At(path, "", "a kubeconfig is one YAML map (kind: Config)"));
  }
  const config::Node& root = (*docs)[0];
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();

  std::string context_name = options.context;
  if (context_name.empty()) context_name = root.StringAt("current-context");
  if (context_name.empty()) {
    return std::unexpected(At(path, "current-context", "Required value: no context is selected"));
  }
  auto context = FindNamed(path, root, "contexts", "context", context_name,
                           options.context.empty() ? "current-context" : "contexts");
  if (!context) return std::unexpected(context.error());
  auto cluster_name = StringField(path, *context, "cluster");
  if (!cluster_name) return std::unexpected(cluster_name.error());
  auto user_name = StringField(path, *context, "user");
  if (!user_name) return std::unexpected(user_name.error());
  if (cluster_name->empty()) {
    return std::unexpected(At(path, context->path + ".cluster", "Required value"));
  }
  auto cluster =
      FindNamed(path, root, "clusters", "cluster", *cluster_name, context->path + ".cluster");
  if (!cluster) return std::unexpected(cluster.error());

  KubeConfig out;
  out.describe = "kubeconfig " + path + " (context " + context_name + ")";
  auto server = StringField(path, *cluster, "server");
  if (!server) return std::unexpected(server.error());
  if (server->empty()) {
    return std::unexpected(At(path, cluster->path + ".server", "Required value"));
  }
  if (auto ok = ParseServer(*server, &out); !ok) {
    return std::unexpected(At(path, cluster->path + ".server", ok.error().reason));
  }
  auto server_name = StringField(path, *cluster, "tls-server-name");
  if (!server_name) return std::unexpected(server_name.error());
  out.tls_server_name = *server_name;
  if (const config::Node* insecure = cluster->body->Find("insecure-skip-tls-verify");
      insecure != nullptr && insecure->AsBool()) {
    if (!options.allow_insecure) {
      return std::unexpected(At(path, cluster->path + ".insecure-skip-tls-verify",
                                "Forbidden: the API server would not be authenticated; "
                                "give its CA (certificate-authority-data), or allow this "
                                "explicitly (--kube-insecure-skip-tls-verify)"));
    }
    out.insecure_skip_tls_verify = true;
  }
  auto ca = DataOrFile(path, dir, *cluster, "certificate-authority");
  if (!ca) return std::unexpected(ca.error());
  out.ca_pem = std::move(*ca);
  if (out.ca_pem.empty() && !out.insecure_skip_tls_verify) {
    return std::unexpected(At(path, cluster->path + ".certificate-authority-data",
                              "Required value: the CA that signed the API server's certificate "
                              "(the system trust store is not used)"));
  }

  if (user_name->empty()) return out;  // anonymous
  auto user = FindNamed(path, root, "users", "user", *user_name, context->path + ".user");
  if (!user) return std::unexpected(user.error());
  for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
    const config::Node* node = user->body->Find(unsupported);
    if (node != nullptr && !node->IsNull()) {
      return std::unexpected(At(path, user->path + "." + unsupported,
                                "Unsupported value: use a token, tokenFile or a client "
                                "certificate"));
    }
  }
  auto token = StringField(path, *user, "token");
  if (!token) return std::unexpected(token.error());
  out.token = *token;
  auto token_file = StringField(path, *user, "tokenFile");
  if (!token_file) return std::unexpected(token_file.error());
  if (!token_file->empty()) {
    std::filesystem::path p(*token_file);
    if (p.is_relative()) p = dir / p;
    out.token_file = p.string();
  }
  auto cert = DataOrFile(path, dir, *user, "client-certificate");
  if (!cert) return std::unexpected(cert.error());
  auto key = DataOrFile(path, dir, *user, "client-key");
  if (!key) return std::unexpected(key.error());
  if (cert->empty() != key->empty()) {
    return std::unexpected(
        At(path, user->path + (cert->empty() ? ".client-certificate-data" : ".client-key-data"),
           "Required value: a client certificate needs its key and the key "
           "its certificate"));
  }
  out.client_cert_pem = std::move(*cert);
  out.client_key_pem = std::move(*key);
  return out;
}

base::Result<KubeConfig> LoadInCluster(const InClusterPaths& paths) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  const std::string host = paths.host.empty() ? env("KUBERNETES_SERVICE_HOST") : paths.host;
  const std::string port = paths.port.empty() ? env("KUBERNETES_SERVICE_PORT") : paths.port;
  if (host.empty() || port.empty()) {
    return std::unexpected(base::Error::Of(
        "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"));
  }
  KubeConfig out;
  out.describe = "in-cluster";
  const bool v6 = host.find(':') != std::string::npos;
  auto split = net::SplitHostPort((v6 ? "[" + host + "]" : host) + ":" + port);
  if (!split) {
    return std::unexpected(base::Error::At("KUBERNETES_SERVICE_PORT",
                                           "Invalid value: \"" + port + "\": " + split.error()));
  }
  out.host = split->first;
  out.port = split->second;
  auto ca = ReadSmallFile(paths.dir + "/ca.crt");
  if (!ca) return std::unexpected(ca.error());
  out.ca_pem = std::move(*ca);
  out.token_file = paths.dir + "/token";
  BearerToken probe("", out.token_file);
  if (auto token = probe.Get(); !token) return std::unexpected(token.error());
  return out;
}

base::Result<std::string> BearerToken::Get() {
  if (file_.empty()) return token_;
  struct stat st {};
  if (stat(file_.c_str(), &st) != 0) {
    return std::unexpected(At(file_, "", "cannot read: " + std::string(strerror(errno))));
  }
  const Stamp now{st.st_ino, st.st_size,
                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  if (stamp_ && *stamp_ == now) return token_;
  auto text = ReadSmallFile(file_);
  if (!text) return std::unexpected(text.error());
  std::string token = std::move(*text);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) return std::unexpected(At(file_, "", "the token file is empty"));
  token_ = std::move(token);
  stamp_ = now;
  ++reads_;
  return token_;
}

}  // namespace picket::control::source
