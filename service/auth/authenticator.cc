#include "service/auth/authenticator.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "service/auth/certificate_identity.h"
#include "service/auth/config_file.h"

namespace cloudplane::auth {
namespace {

using config::v1::RoleBinding;
using config::v1::ServerConfig;

absl::Status Invalid(absl::string_view why) {
  return WithErrorInfo(absl::UnauthenticatedError(absl::StrCat("credential refused: ", why)),
                       reasons::kCredentialsInvalid);
}

// 64 lowercase hex digits → 32 bytes.
bool ParseHexDigest(absl::string_view hex, std::array<unsigned char, 32>& out) {
  if (hex.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    int byte = 0;
    for (char c : hex.substr(2 * i, 2)) {
      int v;
      if (c >= '0' && c <= '9') {
        v = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v = c - 'a' + 10;
      } else {
        return false;
      }
      byte = byte * 16 + v;
    }
    out[i] = static_cast<unsigned char>(byte);
  }
  return true;
}

absl::Status ValidateBinding(const RoleBinding& binding, const std::string& path) {
  if (binding.role() == RoleBinding::ROLE_UNSPECIFIED) {
    return InvalidField(absl::StrCat(path, ".role"), "must be VIEWER, OPERATOR or ADMIN");
  }
  if (binding.principals().empty() && binding.groups().empty()) {
    return InvalidField(absl::StrCat(path, ".principals"),
                        "a binding needs at least one principal or group");
  }
  for (int j = 0; j < binding.principals_size(); ++j) {
    if (binding.principals(j).empty()) {
      return InvalidField(absl::StrCat(path, ".principals[", j, "]"), "must not be empty");
    }
  }
  for (int j = 0; j < binding.groups_size(); ++j) {
    if (binding.groups(j).empty()) {
      return InvalidField(absl::StrCat(path, ".groups[", j, "]"), "must not be empty");
    }
  }
  if (binding.accounts().empty()) {
    return InvalidField(absl::StrCat(path, ".accounts"),
                        "a binding needs at least one account id or `*`");
  }
  for (int j = 0; j < binding.accounts_size(); ++j) {
    if (binding.accounts(j).empty()) {
      return InvalidField(absl::StrCat(path, ".accounts[", j, "]"), "must not be empty");
    }
  }
  return absl::OkStatus();
}

}  // namespace

size_t Authenticator::DigestHash::operator()(const Digest& d) const {
  // The digest is uniformly distributed already.
  size_t h;
  std::memcpy(&h, d.data(), sizeof(h));
  return h;
}

absl::StatusOr<std::shared_ptr<const Authenticator>> Authenticator::Create(
    const ServerConfig& config) {
  std::shared_ptr<Authenticator> a(new Authenticator());
  const auto& auth = config.auth();

  if (auth.has_jwt()) {
    const auto& jwt = auth.jwt();
    if (jwt.jwks_file().empty()) return InvalidField("auth.jwt.jwks_file", "is required");
    if (jwt.issuer().empty()) return InvalidField("auth.jwt.issuer", "is required");
    if (jwt.audiences().empty()) {
      return InvalidField("auth.jwt.audiences", "needs at least one audience");
    }
    for (int i = 0; i < jwt.audiences_size(); ++i) {
      if (jwt.audiences(i).empty()) {
        return InvalidField(absl::StrCat("auth.jwt.audiences[", i, "]"), "must not be empty");
      }
    }
    if (jwt.has_clock_skew_seconds() && jwt.clock_skew_seconds() < 0) {
      return InvalidField("auth.jwt.clock_skew_seconds", "must not be negative");
    }
    JwtPolicy policy;
    policy.issuer = jwt.issuer();
    policy.audiences.assign(jwt.audiences().begin(), jwt.audiences().end());
    if (jwt.has_clock_skew_seconds()) policy.clock_skew = absl::Seconds(jwt.clock_skew_seconds());
    if (!jwt.principal_claim().empty()) policy.principal_claim = jwt.principal_claim();
    policy.groups_claim = jwt.groups_claim();
    if (absl::Status s = ValidateJwtPolicy(policy); !s.ok()) {
      return InvalidField("auth.jwt", s.message());
    }
    absl::StatusOr<std::string> text = ReadConfiguredFile("auth.jwt.jwks_file", jwt.jwks_file());
    if (!text.ok()) return text.status();
    absl::StatusOr<JwksKeySet> keys = JwksKeySet::Parse(*text);
    if (!keys.ok()) {
      // JwksKeySet::Parse names what is wrong, never a key's bytes.
      return InvalidField("auth.jwt.jwks_file",
                          absl::StrCat(jwt.jwks_file(), ": ", keys.status().message()));
    }
    a->jwt_enabled_ = true;
    a->jwt_policy_ = std::move(policy);
    a->jwks_ = std::make_unique<JwksKeySet>(*std::move(keys));
  }

  absl::flat_hash_map<std::string, int> seen;  // hash → first index
  for (int i = 0; i < auth.api_keys_size(); ++i) {
    const auto& key = auth.api_keys(i);
    std::string path = absl::StrCat("auth.api_keys[", i, "]");
    if (key.principal().empty()) {
      return InvalidField(absl::StrCat(path, ".principal"), "is required");
    }
    ApiKeyEntry entry;
    if (!ParseHexDigest(key.sha256(), entry.sha256)) {
      return InvalidField(absl::StrCat(path, ".sha256"),
                          "must be the key's SHA-256 as 64 lowercase hex digits");
    }
    if (auto [it, inserted] = seen.emplace(key.sha256(), i); !inserted) {
      return InvalidField(absl::StrCat(path, ".sha256"),
                          absl::StrCat("the same key as auth.api_keys[", it->second, "]"));
    }
    entry.principal = key.principal();
    entry.groups.assign(key.groups().begin(), key.groups().end());
    a->api_keys_.push_back(std::move(entry));
  }

  for (int i = 0; i < auth.bindings_size(); ++i) {
    if (absl::Status s = ValidateBinding(auth.bindings(i), absl::StrCat("auth.bindings[", i, "]"));
        !s.ok()) {
      return s;
    }
  }

  a->client_certificates_ = !config.tls().client_ca_file().empty();
  a->enabled_ = a->jwt_enabled_ || !a->api_keys_.empty() || a->client_certificates_;
  return std::shared_ptr<const Authenticator>(std::move(a));
}

absl::StatusOr<Caller> Authenticator::Authenticate(absl::string_view authorization,
                                                   int authorization_count,
                                                   absl::string_view peer_certificate_pem,
                                                   absl::Time now) const {
  if (!enabled_) {
    Caller caller;
    caller.credential = "none";
    caller.unrestricted = true;
    return caller;
  }
  if (authorization_count > 1) return Invalid("more than one authorization entry");
  if (authorization_count == 1 || !authorization.empty()) {
    // "Bearer" (any case), exactly one space, then the token.
    constexpr absl::string_view kScheme = "bearer ";
    if (authorization.size() <= kScheme.size() ||
        !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
      return Invalid("the authorization entry is not `Bearer <token>`");
    }
    absl::string_view token = authorization.substr(kScheme.size());
    for (char c : token) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
          absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
        return Invalid("the bearer token contains whitespace or a control character");
      }
    }
    return Bearer(token, now);
  }
  if (client_certificates_ && !peer_certificate_pem.empty()) {
    absl::StatusOr<std::string> principal = CertificatePrincipal(peer_certificate_pem);
    if (!principal.ok()) return principal.status();
    Caller caller;
    caller.principal = *std::move(principal);
    caller.credential = "certificate";
    return caller;
  }
  return WithErrorInfo(
      absl::UnauthenticatedError("the call carries no credential (authorization: Bearer <token>"
                                 " or a client certificate)"),
      reasons::kCredentialsMissing);
}

absl::StatusOr<std::string> Authenticator::CertificatePrincipal(absl::string_view pem) const {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(pem.data()), pem.size(), digest.data());
  {
    absl::MutexLock lock(&certificate_mu_);
    auto it = certificate_cache_.find(digest);
    if (it != certificate_cache_.end()) return it->second;
  }
  certificate_parses_.fetch_add(1);
  absl::StatusOr<std::string> principal = PrincipalFromCertificate(pem);
  if (!principal.ok()) return principal;
  absl::MutexLock lock(&certificate_mu_);
  // Clients with certificates are few and long-lived; emptying a full cache
  // bounds it without bookkeeping per entry.
  if (certificate_cache_.size() >= kCertificateCacheSize) certificate_cache_.clear();
  certificate_cache_.insert_or_assign(digest, *principal);
  return principal;
}

absl::StatusOr<Caller> Authenticator::Bearer(absl::string_view token, absl::Time now) const {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  // Every key is compared, whatever matched before: the time taken depends
  // on the number of keys only.
  const ApiKeyEntry* match = nullptr;
  for (const ApiKeyEntry& key : api_keys_) {
    bool equal = CRYPTO_memcmp(key.sha256.data(), digest.data(), digest.size()) == 0;
    if (equal) match = &key;
  }
  if (match != nullptr) {
    Caller caller;
    caller.principal = match->principal;
    caller.groups = match->groups;
    caller.credential = "api_key";
    return caller;
  }
  if (!jwt_enabled_) return Invalid("no API key matches the bearer token");
  absl::StatusOr<Identity> identity = VerifyCached(token, digest, now);
  if (!identity.ok()) return identity.status();
  Caller caller;
  caller.principal = std::move(identity->principal);
  caller.groups = std::move(identity->groups);
  caller.credential = "jwt";
  return caller;
}

absl::StatusOr<Identity> Authenticator::VerifyCached(absl::string_view token,
                                                     const Digest& digest,
                                                     absl::Time now) const {
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = jwt_cache_.find(digest);
    if (it != jwt_cache_.end()) {
      if (now >= it->second.verified_at && now <= it->second.valid_until) {
        return it->second.identity;
      }
      if (now > it->second.valid_until) jwt_cache_.erase(it);
    }
  }
  jwt_verifications_.fetch_add(1);
  absl::StatusOr<Identity> identity = VerifyJwt(token, *jwks_, jwt_policy_, now);
  if (!identity.ok()) return identity;
  // VerifyJwt accepted exp + skew >= now; the entry lives exactly as long.
  CachedJwt entry{*identity, now, identity->expires + jwt_policy_.clock_skew};
  absl::MutexLock lock(&cache_mu_);
  if (jwt_cache_.size() >= kJwtCacheSize && !jwt_cache_.contains(digest)) {
    absl::erase_if(jwt_cache_, [now](const auto& kv) { return kv.second.valid_until < now; });
    if (jwt_cache_.size() >= kJwtCacheSize) {
      // Still full of live tokens: drop the one that expires first (a scan,
      // only when full).
      auto oldest = jwt_cache_.begin();
      for (auto it = jwt_cache_.begin(); it != jwt_cache_.end(); ++it) {
        if (it->second.valid_until < oldest->second.valid_until) oldest = it;
      }
      jwt_cache_.erase(oldest);
    }
  }
  jwt_cache_.insert_or_assign(digest, std::move(entry));
  return identity;
}

}  // namespace cloudplane::auth
