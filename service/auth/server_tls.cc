#include "service/auth/server_tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "service/auth/config_file.h"

namespace cloudplane::auth {
namespace {

namespace fs = std::filesystem;
using config::v1::TlsConfig;

constexpr char kCurrent[] = "current";
constexpr char kGenerationPrefix[] = "gen-";

// The validated contents of a TlsConfig's files.
struct TlsFiles {
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;  // empty: no client CA
};

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

BioPtr MemBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free);
}

// Every certificate of a PEM bundle; empty when there is none or one is
// damaged.
std::vector<X509Ptr> ParseCertificates(const std::string& pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio = MemBio(pem);
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  // The loop ends at "no more PEM" (fine) or at a broken block (not fine).
  unsigned long err = ERR_peek_last_error();
  bool clean_end =
      ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  if (!clean_end) certs.clear();
  return certs;
}

absl::Status RequireShape(const TlsConfig& tls) {
  bool cert = !tls.cert_file().empty();
  bool key = !tls.key_file().empty();
  if (tls.require_client_certificate() && tls.client_ca_file().empty()) {
    return InvalidField("tls.require_client_certificate", "needs tls.client_ca_file");
  }
  if (cert && !key) return InvalidField("tls.key_file", "is required with tls.cert_file");
  if (key && !cert) return InvalidField("tls.cert_file", "is required with tls.key_file");
  if (!cert && !tls.client_ca_file().empty()) {
    return InvalidField("tls.client_ca_file", "needs tls.cert_file and tls.key_file");
  }
  return absl::OkStatus();
}

// Reads and checks the files `tls` names (cert/key set).
absl::StatusOr<TlsFiles> ReadAndValidate(const TlsConfig& tls) {
  TlsFiles files;
  absl::StatusOr<std::string> cert = ReadConfiguredFile("tls.cert_file", tls.cert_file());
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadConfiguredFile("tls.key_file", tls.key_file());
  if (!key.ok()) return key.status();
  files.cert_pem = *std::move(cert);
  files.key_pem = *std::move(key);

  std::vector<X509Ptr> chain = ParseCertificates(files.cert_pem);
  if (chain.empty()) {
    return InvalidField("tls.cert_file",
                        absl::StrCat(tls.cert_file(), " holds no PEM certificate chain"));
  }
  BioPtr key_bio = MemBio(files.key_pem);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  ERR_clear_error();
  if (pkey == nullptr) {
    return InvalidField("tls.key_file",
                        absl::StrCat(tls.key_file(), " holds no unencrypted PEM private key"));
  }
  bool match = X509_check_private_key(chain.front().get(), pkey.get()) == 1;
  ERR_clear_error();
  if (!match) {
    return InvalidField("tls.key_file",
                        absl::StrCat(tls.key_file(), " does not match the certificate of ",
                                     tls.cert_file()));
  }
  if (!tls.client_ca_file().empty()) {
    absl::StatusOr<std::string> ca = ReadConfiguredFile("tls.client_ca_file", tls.client_ca_file());
    if (!ca.ok()) return ca.status();
    if (ParseCertificates(*ca).empty()) {
      return InvalidField("tls.client_ca_file",
                          absl::StrCat(tls.client_ca_file(), " holds no PEM certificate"));
    }
    files.client_ca_pem = *std::move(ca);
  }
  return files;
}

absl::Status StageError(absl::string_view what, const std::string& path, int err) {
  return absl::FailedPreconditionError(
      absl::StrCat("TLS stage directory: cannot ", what, " ", path, ": ", std::strerror(err)));
}

absl::Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return StageError("create", path, errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return StageError("write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return StageError("write", path, err);
  }
  if (::close(fd) != 0) return StageError("write", path, errno);
  return absl::OkStatus();
}

// The generation numbers of `stage_dir/gen-<n>` directories.
std::vector<int> Generations(const std::string& stage_dir) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(stage_dir, ec)) {
    std::string name = entry.path().filename().string();
    int n;
    if (absl::StartsWith(name, kGenerationPrefix) &&
        absl::SimpleAtoi(absl::string_view(name).substr(sizeof(kGenerationPrefix) - 1), &n)) {
      out.push_back(n);
    }
  }
  return out;
}

std::string GenerationDir(const std::string& stage_dir, int n) {
  return absl::StrCat(stage_dir, "/", kGenerationPrefix, n);
}

// Writes `files` into gen-<generation> and points `current` at it.
absl::Status Stage(const std::string& stage_dir, int generation, const TlsFiles& files) {
  std::string dir = GenerationDir(stage_dir, generation);
  std::error_code ec;
  fs::remove_all(dir, ec);  // a leftover of a crash between mkdir and swap
  if (::mkdir(dir.c_str(), 0700) != 0) return StageError("create", dir, errno);
  if (absl::Status s = WriteNewFile(dir + "/key.pem", files.key_pem, 0600); !s.ok()) return s;
  if (absl::Status s = WriteNewFile(dir + "/cert.pem", files.cert_pem, 0644); !s.ok()) return s;
  if (!files.client_ca_pem.empty()) {
    if (absl::Status s = WriteNewFile(dir + "/client_ca.pem", files.client_ca_pem, 0644);
        !s.ok()) {
      return s;
    }
  }
  // The swap: a new symlink under a temporary name, renamed over `current`.
  std::string link = absl::StrCat(stage_dir, "/", kCurrent);
  std::string tmp = absl::StrCat(link, ".tmp");
  ::unlink(tmp.c_str());
  std::string target = absl::StrCat(kGenerationPrefix, generation);
  if (::symlink(target.c_str(), tmp.c_str()) != 0) return StageError("create", tmp, errno);
  if (::rename(tmp.c_str(), link.c_str()) != 0) return StageError("replace", link, errno);
  return absl::OkStatus();
}

// Removes every generation but `keep_from` and later.
void RemoveGenerationsBefore(const std::string& stage_dir, int keep_from) {
  for (int n : Generations(stage_dir)) {
    if (n < keep_from) {
      std::error_code ec;
      fs::remove_all(GenerationDir(stage_dir, n), ec);
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerTls>> ServerTls::Create(const TlsConfig& tls,
                                                             const std::string& stage_dir) {
  if (absl::Status s = RequireShape(tls); !s.ok()) return s;
  std::unique_ptr<ServerTls> out(new ServerTls());
  if (tls.cert_file().empty()) {
    out->credentials_ = grpc::InsecureServerCredentials();
    return out;
  }
  absl::StatusOr<TlsFiles> files = ReadAndValidate(tls);
  if (!files.ok()) return files.status();

  if (::mkdir(stage_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return StageError("create", stage_dir, errno);
  }
  struct stat st;
  if (::lstat(stage_dir.c_str(), &st) != 0) return StageError("stat", stage_dir, errno);
  if (!S_ISDIR(st.st_mode)) return StageError("use (not a directory)", stage_dir, ENOTDIR);
  if ((st.st_mode & 07777) != 0700 && ::chmod(stage_dir.c_str(), 0700) != 0) {
    return StageError("chmod 0700", stage_dir, errno);
  }
  // Continue numbering after what a previous run left, then drop its dirs.
  int generation = 1;
  for (int n : Generations(stage_dir)) generation = std::max(generation, n + 1);
  if (absl::Status s = Stage(stage_dir, generation, *files); !s.ok()) return s;
  RemoveGenerationsBefore(stage_dir, generation);

  out->enabled_ = true;
  out->client_ca_ = !files->client_ca_pem.empty();
  out->require_client_certificate_ = tls.require_client_certificate();
  out->stage_dir_ = stage_dir;
  out->generation_ = generation;

  std::string current = absl::StrCat(stage_dir, "/", kCurrent, "/");
  // The constructor reads the files once before it returns, so the first
  // handshake already has them.
  out->provider_ = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      current + "key.pem", current + "cert.pem",
      out->client_ca_ ? current + "client_ca.pem" : std::string(), kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(out->provider_);
  options.watch_identity_key_cert_pairs();
  if (out->client_ca_) {
    options.watch_root_certs();
    options.set_cert_request_type(
        out->require_client_certificate_
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  out->credentials_ = grpc::experimental::TlsServerCredentials(options);
  if (out->credentials_ == nullptr) {
    return absl::InternalError("gRPC refused the TLS server credentials");
  }
  return out;
}

absl::Status ServerTls::Reload(const TlsConfig& tls) {
  if (absl::Status s = RequireShape(tls); !s.ok()) return s;
  bool enabled = !tls.cert_file().empty();
  bool client_ca = !tls.client_ca_file().empty();
  if (enabled != enabled_) {
    return absl::FailedPreconditionError(
        "turning TLS on or off (tls.cert_file, tls.key_file) needs a restart");
  }
  if (!enabled) return absl::OkStatus();
  if (client_ca != client_ca_) {
    return absl::FailedPreconditionError(
        "adding or removing tls.client_ca_file needs a restart");
  }
  if (tls.require_client_certificate() != require_client_certificate_) {
    return absl::FailedPreconditionError(
        "changing tls.require_client_certificate needs a restart");
  }
  absl::StatusOr<TlsFiles> files = ReadAndValidate(tls);
  if (!files.ok()) return files.status();

  absl::MutexLock lock(&mu_);
  int generation = generation_ + 1;
  if (absl::Status s = Stage(stage_dir_, generation, *files); !s.ok()) {
    std::error_code ec;
    fs::remove_all(GenerationDir(stage_dir_, generation), ec);
    return s;
  }
  generation_ = generation;
  // Keep the previous generation: a watcher tick may be reading it now.
  RemoveGenerationsBefore(stage_dir_, generation - 1);
  return absl::OkStatus();
}

}  // namespace cloudplane::auth
