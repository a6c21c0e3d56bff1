#include "service/auth/jwt_verifier.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"
#include "rapidjson/document.h"

namespace cloudplane::auth {

struct JwksKeySet::Key {
  KeyType type;
  std::string kid;
  std::string alg;  // the JWK's own `alg`, or empty
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{nullptr, &EVP_PKEY_free};
};

namespace {

namespace rj = rapidjson;

using Key = JwksKeySet::Key;
using KeyType = JwksKeySet::KeyType;

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using BldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

// ---- Shared decoding --------------------------------------------------------

// Base64url without padding (RFC 7515 §2): only the url-safe alphabet, and a
// length no base64 text can have (4k+1) is refused. absl's decoder alone would
// also accept '=' padding, which JWS forbids.
bool DecodeBase64Url(absl::string_view in, std::string& out) {
  if (in.size() % 4 == 1) return false;
  for (char c : in) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return absl::WebSafeBase64Unescape(in, &out);
}

// Deeper JSON is refused before parsing: RapidJSON's DOM is freed
// recursively, and a 16 KiB token could nest thousands of arrays.
constexpr int kMaxJsonDepth = 16;

bool NestsTooDeep(absl::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// True when the object `v` names a member twice. RFC 7515 §5.2 lets a parser
// reject such JSON; we do, because RapidJSON would read the first and another
// component might read the last. Only the top level holds claims and header
// parameters, so only it is checked.
bool HasDuplicateMember(const rj::Value& v) {
  std::set<absl::string_view> names;
  for (const auto& m : v.GetObject()) {
    if (!names.emplace(m.name.GetString(), m.name.GetStringLength()).second) return true;
  }
  return false;
}

// Parses `text` as a JSON object in valid UTF-8, at most kMaxJsonDepth deep,
// without a top-level member named twice.
bool ParseObject(absl::string_view text, rj::Document& doc) {
  if (NestsTooDeep(text)) return false;
  doc.Parse<rj::kParseValidateEncodingFlag>(text.data(), text.size());
  return !doc.HasParseError() && doc.IsObject() && !HasDuplicateMember(doc);
}

const rj::Value* Member(const rj::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

absl::string_view StringOf(const rj::Value& v) {
  return absl::string_view(v.GetString(), v.GetStringLength());
}

// ---- JWKS -------------------------------------------------------------------

absl::Status BadJwks(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("JWKS: ", what));
}

// A base64url member of a JWK, decoded; `what` names the key in errors.
absl::StatusOr<std::string> KeyBytes(const rj::Value& jwk, const char* name,
                                     absl::string_view what) {
  const rj::Value* v = Member(jwk, name);
  std::string out;
  if (v == nullptr || !v->IsString() || !DecodeBase64Url(StringOf(*v), out) || out.empty()) {
    return BadJwks(absl::StrCat(what, ": \"", name, "\" is missing or not base64url"));
  }
  return out;
}

BnPtr ToBn(const std::string& bytes) {
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                         static_cast<int>(bytes.size()), nullptr));
}

// Builds an EVP_PKEY of `type` ("RSA", "EC") from OSSL_PARAMs (the OpenSSL 3
// way; RSA_set0_key and EC_KEY are deprecated there).
absl::Status FromData(const char* type, OSSL_PARAM_BLD* bld, Key& key, absl::string_view what) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return BadJwks(absl::StrCat(what, ": OpenSSL does not take it as a public key"));
  }
  key.pkey.reset(pkey);
  return absl::OkStatus();
}

absl::Status RsaKey(const rj::Value& jwk, Key& key, absl::string_view what) {
  ASSIGN_OR_RETURN(std::string n, KeyBytes(jwk, "n", what));
  ASSIGN_OR_RETURN(std::string e, KeyBytes(jwk, "e", what));
  BnPtr bn_n = ToBn(n), bn_e = ToBn(e);
  BldPtr bld(OSSL_PARAM_BLD_new());
  if (bn_n == nullptr || bn_e == nullptr || bld == nullptr ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return BadJwks(absl::StrCat(what, ": cannot build the RSA key"));
  }
  RETURN_IF_ERROR(FromData("RSA", bld.get(), key, what));
  if (EVP_PKEY_get_bits(key.pkey.get()) < kMinRsaBits) {
    return BadJwks(absl::StrCat(what, ": RSA key shorter than ", kMinRsaBits, " bits"));
  }
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get())) {
    return BadJwks(absl::StrCat(what, ": RSA exponent is not an odd number above 1"));
  }
  key.type = KeyType::kRsa;
  return absl::OkStatus();
}

absl::Status EcP256Key(const rj::Value& jwk, Key& key, absl::string_view what) {
  ASSIGN_OR_RETURN(std::string x, KeyBytes(jwk, "x", what));
  ASSIGN_OR_RETURN(std::string y, KeyBytes(jwk, "y", what));
  // RFC 7518 §6.2.1.2: the full coordinate length, 32 bytes for P-256.
  if (x.size() != 32 || y.size() != 32) {
    return BadJwks(absl::StrCat(what, ": P-256 coordinates must be 32 bytes each"));
  }
  std::string point = absl::StrCat("\x04", x, y);  // SEC 1 uncompressed form
  BldPtr bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return BadJwks(absl::StrCat(what, ": cannot build the EC key"));
  }
  RETURN_IF_ERROR(FromData("EC", bld.get(), key, what));
  // Decoding already refuses a point off the curve; say so explicitly, since
  // an invalid-curve point is how ECDH/ECDSA keys are attacked.
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.pkey.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    return BadJwks(absl::StrCat(what, ": the EC point is not a valid P-256 public key"));
  }
  key.type = KeyType::kEcP256;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JwksKeySet> JwksKeySet::Parse(absl::string_view jwks_json) {
  rj::Document doc;
  if (!ParseObject(jwks_json, doc)) return BadJwks("not a JSON object in UTF-8");
  const rj::Value* list = Member(doc, "keys");
  if (list == nullptr || !list->IsArray()) return BadJwks("no \"keys\" array");
  JwksKeySet set;
  std::set<std::string> kids;
  for (rj::SizeType i = 0; i < list->Size(); ++i) {
    const rj::Value& jwk = (*list)[i];
    std::string what = absl::StrCat("key ", i);
    if (!jwk.IsObject()) return BadJwks(absl::StrCat(what, ": not an object"));
    const rj::Value* kty = Member(jwk, "kty");
    if (kty == nullptr || !kty->IsString()) return BadJwks(absl::StrCat(what, ": no \"kty\""));
    const rj::Value* use = Member(jwk, "use");
    if (use != nullptr && (!use->IsString() || StringOf(*use) != "sig")) continue;
    auto key = std::make_shared<Key>();
    if (const rj::Value* alg = Member(jwk, "alg"); alg != nullptr) {
      if (!alg->IsString()) return BadJwks(absl::StrCat(what, ": \"alg\" is not a string"));
      key->alg = std::string(StringOf(*alg));
    }
    if (const rj::Value* kid = Member(jwk, "kid"); kid != nullptr) {
      if (!kid->IsString()) return BadJwks(absl::StrCat(what, ": \"kid\" is not a string"));
      key->kid = std::string(StringOf(*kid));
    }
    absl::string_view type = StringOf(*kty);
    if (type == "RSA") {
      if (!key->alg.empty() && key->alg != "RS256") continue;
      RETURN_IF_ERROR(RsaKey(jwk, *key, what));
    } else if (type == "EC") {
      const rj::Value* crv = Member(jwk, "crv");
      if (crv == nullptr || !crv->IsString()) return BadJwks(absl::StrCat(what, ": no \"crv\""));
      if (StringOf(*crv) != "P-256") continue;
      if (!key->alg.empty() && key->alg != "ES256") continue;
      RETURN_IF_ERROR(EcP256Key(jwk, *key, what));
    } else {
      continue;  // "oct" (shared secrets), "OKP" and anything newer
    }
    if (!key->kid.empty() && !kids.insert(key->kid).second) {
      return BadJwks(absl::StrCat(what, ": its kid is used by another key"));
    }
    set.keys_.push_back(std::move(key));
  }
  if (set.keys_.empty()) return BadJwks("no RS256 or ES256 signing key");
  return set;
}

const JwksKeySet::Key* JwksKeySet::Find(absl::string_view kid) const {
  if (kid.empty()) return keys_.size() == 1 ? keys_.front().get() : nullptr;
  for (const auto& key : keys_) {
    if (key->kid == kid) return key.get();
  }
  return nullptr;
}

absl::Status ValidateJwtPolicy(const JwtPolicy& policy) {
  if (policy.issuer.empty()) return absl::InvalidArgumentError("JWT policy: no issuer");
  if (policy.audiences.empty() ||
      std::any_of(policy.audiences.begin(), policy.audiences.end(),
                  [](const std::string& a) { return a.empty(); })) {
    return absl::InvalidArgumentError("JWT policy: no audience, or an empty one");
  }
  if (policy.clock_skew < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("JWT policy: negative clock skew");
  }
  if (policy.principal_claim.empty()) {
    return absl::InvalidArgumentError("JWT policy: no principal claim");
  }
  return absl::OkStatus();
}

namespace {

// ---- Verification -----------------------------------------------------------

// The one error for a refused token. `why` is a fixed phrase: nothing from
// the token goes into it.
absl::Status Refused(absl::string_view why) {
  return WithErrorInfo(absl::UnauthenticatedError(absl::StrCat("bearer token refused: ", why)),
                       reasons::kCredentialsInvalid);
}

bool VerifyWithKey(const Key& key, absl::string_view signing_input,
                   const std::string& signature) {
  std::string der;
  const std::string* sig = &signature;
  if (key.type == KeyType::kEcP256) {
    // JOSE sends r||s, 32 bytes each (RFC 7518 §3.4); EVP wants DER.
    if (signature.size() != 64) return false;
    const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
    EcdsaSigPtr ecdsa(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(raw, 32, nullptr);
    BIGNUM* s = BN_bin2bn(raw + 32, 32, nullptr);
    if (ecdsa == nullptr || r == nullptr || s == nullptr ||
        ECDSA_SIG_set0(ecdsa.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return false;
    }
    unsigned char* out = nullptr;
    int len = i2d_ECDSA_SIG(ecdsa.get(), &out);
    if (len <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), len);
    OPENSSL_free(out);
    sig = &der;
  } else if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(key.pkey.get()))) {
    return false;  // RS256 signatures are exactly the modulus length
  }
  MdCtxPtr md(EVP_MD_CTX_new());
  // RSA keys default to PKCS#1 v1.5 padding, which is what RS256 means.
  return md != nullptr &&
         EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key.pkey.get()) == 1 &&
         EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                          sig->size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional).
bool TimeClaim(const rj::Value& payload, const char* name, absl::Time& out, bool& present) {
  const rj::Value* v = Member(payload, name);
  present = v != nullptr;
  if (!present) return true;
  if (!v->IsNumber()) return false;
  out = absl::UnixEpoch() + absl::Seconds(v->GetDouble());
  return true;
}

}  // namespace

absl::StatusOr<Identity> VerifyJwt(absl::string_view token, const JwksKeySet& keys,
                                   const JwtPolicy& policy, absl::Time now) {
  if (token.empty()) {
    return WithErrorInfo(absl::UnauthenticatedError("no bearer token"),
                         reasons::kCredentialsMissing);
  }
  if (absl::Status s = ValidateJwtPolicy(policy); !s.ok()) {
    return absl::FailedPreconditionError(s.message());
  }
  if (token.size() > kMaxJwtBytes) return Refused("longer than 16 KiB");

  // 1. Shape.
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return Refused("not three dot-separated segments");
  std::string header_json, payload_json, signature;
  if (!DecodeBase64Url(parts[0], header_json) || !DecodeBase64Url(parts[1], payload_json) ||
      !DecodeBase64Url(parts[2], signature)) {
    return Refused("a segment is not base64url without padding");
  }
  rj::Document header;
  if (!ParseObject(header_json, header)) return Refused("the header is not a JSON object");

  // 2. Algorithm and key. The alg decides nothing on its own: it must be one
  // of ours AND fit the key the kid names.
  const rj::Value* alg_value = Member(header, "alg");
  if (alg_value == nullptr || !alg_value->IsString()) return Refused("the header has no alg");
  absl::string_view alg = StringOf(*alg_value);
  if (absl::EqualsIgnoreCase(alg, "none")) return Refused("alg none (unsigned) is not accepted");
  if (absl::StartsWithIgnoreCase(alg, "HS")) {
    return Refused("HMAC algs are not accepted (no shared secrets are configured)");
  }
  if (alg != "RS256" && alg != "ES256") return Refused("alg is neither RS256 nor ES256");
  if (Member(header, "crit") != nullptr) return Refused("the header has crit extensions");
  absl::string_view kid;
  if (const rj::Value* kid_value = Member(header, "kid"); kid_value != nullptr) {
    if (!kid_value->IsString() || kid_value->GetStringLength() == 0) {
      return Refused("the header's kid is not a non-empty string");
    }
    kid = StringOf(*kid_value);
  }
  const JwksKeySet::Key* key = keys.Find(kid);
  if (key == nullptr) {
    return Refused(kid.empty() ? "no kid, and the key set has several keys"
                               : "no key with that kid");
  }
  const KeyType wanted = alg == "RS256" ? KeyType::kRsa : KeyType::kEcP256;
  if (key->type != wanted || (!key->alg.empty() && key->alg != alg)) {
    return Refused("alg does not fit the key's type");
  }

  // 3. Signature, before any claim is looked at.
  absl::string_view signing_input(token.data(), parts[0].size() + 1 + parts[1].size());
  if (!VerifyWithKey(*key, signing_input, signature)) return Refused("bad signature");

  // 4. Claims.
  rj::Document payload;
  if (!ParseObject(payload_json, payload)) return Refused("the payload is not a JSON object");
  absl::Time exp, nbf;
  bool has_exp = false, has_nbf = false;
  if (!TimeClaim(payload, "exp", exp, has_exp) || !TimeClaim(payload, "nbf", nbf, has_nbf)) {
    return Refused("exp or nbf is not a number");
  }
  if (!has_exp) return Refused("no exp");
  if (exp + policy.clock_skew < now) return Refused("expired");
  if (has_nbf && nbf - policy.clock_skew > now) return Refused("not valid yet (nbf)");

  const rj::Value* iss = Member(payload, "iss");
  if (iss == nullptr || !iss->IsString() || StringOf(*iss) != policy.issuer) {
    return Refused("wrong or missing issuer");
  }

  const rj::Value* aud = Member(payload, "aud");
  auto wanted_aud = [&](const rj::Value& v) {
    return v.IsString() && std::find(policy.audiences.begin(), policy.audiences.end(),
                                     StringOf(v)) != policy.audiences.end();
  };
  bool aud_ok = false;
  if (aud != nullptr && aud->IsString()) {
    aud_ok = wanted_aud(*aud);
  } else if (aud != nullptr && aud->IsArray()) {
    for (const auto& a : aud->GetArray()) {
      if (!a.IsString()) return Refused("aud holds something other than strings");
      aud_ok = aud_ok || wanted_aud(a);
    }
  }
  if (!aud_ok) return Refused("no accepted audience in aud");

  Identity identity;
  identity.expires = exp;
  const rj::Value* principal = Member(payload, policy.principal_claim.c_str());
  if (principal == nullptr || !principal->IsString() || principal->GetStringLength() == 0) {
    return Refused("the principal claim is missing or not a non-empty string");
  }
  identity.principal = std::string(StringOf(*principal));

  if (!policy.groups_claim.empty()) {
    if (const rj::Value* groups = Member(payload, policy.groups_claim.c_str()); groups != nullptr) {
      if (groups->IsString()) {
        identity.groups.emplace_back(StringOf(*groups));
      } else if (groups->IsArray()) {
        for (const auto& g : groups->GetArray()) {
          if (!g.IsString()) return Refused("the groups claim holds something other than strings");
          identity.groups.emplace_back(StringOf(g));
        }
      } else {
        return Refused("the groups claim is not an array of strings");
      }
    }
  }
  return identity;
}

}  // namespace cloudplane::auth
