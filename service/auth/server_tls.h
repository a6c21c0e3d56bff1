// The listener's credentials: TLS (and mutual TLS) from ServerConfig.tls,
// with the certificate, key and client CA re-read on SIGHUP.
//
// How a reload reaches new connections: gRPC's FileWatcherCertificateProvider
// re-reads its files every second and hands changed ones to the TLS stack
// for NEW handshakes; connections already open keep the certificate they
// negotiated. It does not watch the configured files themselves but STAGED
// copies in `stage_dir` (the server passes `<state_dir>/tls`), for two
// reasons: an operator who edits the cert and then the key would otherwise
// be served a half-updated pair, and a file that does not parse must never
// reach the watcher (the configured files are validated first, the staged
// copies change only when they are good).
//
// Staging layout and why it is atomic: each Create/Reload writes a fresh
// directory `stage_dir/gen-<n>/` (cert.pem, key.pem 0600, client_ca.pem)
// and then points the symlink `stage_dir/current` at it with one rename(2).
// The watcher reads `current/key.pem` and `current/cert.pem`, so key and
// certificate change together; there is no "key first or cert first" order
// in which a watcher tick could pair a new key with an old certificate (the
// layout gRPC's tls_certificate_provider.h recommends). The previous
// generation stays on disk until the next reload, so a watcher tick that
// resolved the old link just before the swap still reads a complete pair.
//
// Modes: stage_dir is 0700 (made so if it exists), key files 0600.
//
// Errors (Create and Reload): INVALID_ARGUMENT with a BadRequest naming the
// field (`tls.cert_file`, `tls.key_file`, `tls.client_ca_file`,
// `tls.require_client_certificate`) and the file's path: a file that holds no
// PEM certificate / private key, a key that does not match the certificate,
// cert_file without key_file (or the reverse), require_client_certificate or
// client_ca_file without TLS, require without client_ca_file.
// FAILED_PRECONDITION: a configured file cannot be read (its path, never its
// content), the stage directory cannot be written, or a Reload would change
// what only a restart can (TLS on/off, client CA on/off, require on/off). A
// failed Reload leaves the staged copies, and so the served certificate,
// untouched.
//
// Thread-safety: Credentials() and Reload() may be called from any thread;
// reloads are serialized.
#ifndef CLOUDPLANE_SERVICE_AUTH_SERVER_TLS_H_
#define CLOUDPLANE_SERVICE_AUTH_SERVER_TLS_H_

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cloudplane/config/v1/config.pb.h"

namespace cloudplane::auth {

class ServerTls {
 public:
  // How often gRPC's watcher looks at the staged files.
  static constexpr unsigned int kRefreshSeconds = 1;

  // Validates `tls`; with cert_file and key_file set, stages the files in
  // `stage_dir` (created 0700) and builds TLS credentials watching them.
  // With neither set, Credentials() is insecure and nothing is staged.
  static absl::StatusOr<std::unique_ptr<ServerTls>> Create(const config::v1::TlsConfig& tls,
                                                           const std::string& stage_dir);

  // For ServerBuilder::AddListeningPort; the same object every time.
  std::shared_ptr<grpc::ServerCredentials> Credentials() const { return credentials_; }

  // Whether the listener uses TLS.
  bool enabled() const { return enabled_; }

  // SIGHUP: validates the files `tls` names and, when good, stages them; new
  // connections see them within about kRefreshSeconds. See the errors above.
  absl::Status Reload(const config::v1::TlsConfig& tls);

 private:
  ServerTls() = default;

  bool enabled_ = false;
  bool client_ca_ = false;
  bool require_client_certificate_ = false;
  std::string stage_dir_;
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;

  absl::Mutex mu_;
  int generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cloudplane::auth

#endif  // CLOUDPLANE_SERVICE_AUTH_SERVER_TLS_H_
