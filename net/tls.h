// net/tls.h — BoringSSL contexts and a socket-free TLS engine over memory BIOs.
//
// Owns: `TlsContext` (an SSL_CTX set up for mutual TLS 1.3: our certificate chain and key, the
// CA that peers must chain to, peer certificates required; or server-only TLS 1.2+ for HTTPS),
// `TlsEngine` (one TLS session driven entirely through buffers: ciphertext in from the network,
// plaintext out to the application and the reverse), and `SpiffeUriSans` (identity read from a
// verified peer certificate).
//
// The engine never touches a socket, so it is testable without a loop; net/tls_stream.h couples
// it to a libuv TCP stream. Thread-compatible: one engine per connection, used on one thread.
// A context may be shared by many engines (BoringSSL's SSL_CTX is thread-safe once set up).
#pragma once

#include <openssl/ssl.h>

#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace picket::net {

struct TlsCredentials {
  std::string cert_chain_pem;  // leaf first, then intermediates
  std::string private_key_pem;
  std::string ca_pem;  // trust anchors peers must chain to
};

// One PEM file's text (errors name the file).
[[nodiscard]] base::Result<std::string> ReadPemFile(const std::string& path);

// Reads the three PEM files.
[[nodiscard]] base::Result<TlsCredentials> LoadTlsCredentials(const std::string& cert_file,
                                                              const std::string& key_file,
                                                              const std::string& ca_file);

enum class TlsRole { kClient, kServer };

class TlsContext {
 public:
  [[nodiscard]] static base::Result<std::shared_ptr<TlsContext>> Create(
      TlsRole role, const TlsCredentials& credentials);
  // A server that authenticates only itself (TLS 1.2 or 1.3; no client certificate is asked for):
  // an HTTPS endpoint such as the admission webhook, whose clients hold no certificate of ours.
  [[nodiscard]] static base::Result<std::shared_ptr<TlsContext>> CreateServerOnly(
      std::string_view cert_chain_pem, std::string_view private_key_pem);
  // A client of a server outside our PKI (the Kubernetes API): TLS 1.2 or 1.3, the server's chain
  // verified against `ca_pem`, and our certificate presented only when `cert_chain_pem` is not
  // empty. `insecure_skip_verify` (the server is not verified at all) must be asked for
  // explicitly; `ca_pem` may then be empty.
  [[nodiscard]] static base::Result<std::shared_ptr<TlsContext>> CreateClient(
      std::string_view ca_pem, std::string_view cert_chain_pem = {},
      std::string_view private_key_pem = {}, bool insecure_skip_verify = false);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  TlsRole role() const { return role_; }

 private:
  TlsContext(SSL_CTX* ctx, TlsRole role) : ctx_(ctx), role_(role) {}
  SSL_CTX* ctx_;
  TlsRole role_;
};

// The most recent BoringSSL error queue entries as one line (clears the queue).
std::string TlsErrorString(std::string_view what);

class TlsEngine {
 public:
  // `verify_name` (client only): the server certificate must carry this DNS name or IP address
  // as a subjectAltName; empty disables the name check (the chain is still verified).
  [[nodiscard]] static base::Result<std::unique_ptr<TlsEngine>> Create(
      std::shared_ptr<TlsContext> context, std::string_view verify_name = {});
  ~TlsEngine();
  TlsEngine(const TlsEngine&) = delete;
  TlsEngine& operator=(const TlsEngine&) = delete;

  // Bytes read from the network.
  void FeedCiphertext(std::string_view bytes);
  // Advances the handshake and decrypts whatever is available, appending it to `plaintext`.
  // An error (bad certificate, protocol violation) means the session is dead; close the
  // connection (after sending TakeCiphertext(), which may hold an alert). `peer_closed` is set
  // when the peer sent close_notify.
  [[nodiscard]] base::Result<void> Process(std::string& plaintext, bool& peer_closed);
  // Queues application data; it is encrypted once the handshake is done.
  [[nodiscard]] base::Result<void> Write(std::string_view plaintext);
  // Sends close_notify.
  void Shutdown();
  // Bytes to send to the network (handshake records, application data, alerts).
  std::string TakeCiphertext();

  bool handshake_done() const { return handshake_done_; }
  // URI subjectAltNames of the verified peer leaf certificate (after the handshake).
  std::vector<std::string> PeerUriSans() const;

 private:
  TlsEngine(std::shared_ptr<TlsContext> context, SSL* ssl);
  [[nodiscard]] base::Result<void> FlushPending();

  std::shared_ptr<TlsContext> context_;
  SSL* ssl_;
  BIO* rbio_;  // owned by ssl_
  BIO* wbio_;  // owned by ssl_
  bool handshake_done_ = false;
  std::string pending_plaintext_;  // written before the handshake finished
  // Ciphertext already taken out of wbio_. Large writes are encrypted a record at a time and
  // moved here after each, so the memory BIO (which never gives capacity back) stays one record
  // big instead of keeping the largest response's size for the connection's life.
  std::string ciphertext_;
  void DrainWbio();
  base::Result<void> EncryptAll(std::string_view plaintext);
};

}  // namespace picket::net
