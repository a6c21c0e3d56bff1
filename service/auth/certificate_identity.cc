#include "service/auth/certificate_identity.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::auth {
namespace {

absl::Status Refused(absl::string_view why) {
  return WithErrorInfo(
      absl::UnauthenticatedError(absl::StrCat("client certificate refused: ", why)),
      reasons::kCredentialsInvalid);
}

// The bytes of an IA5String/UTF8String as a name, or nullopt when empty or
// when it holds a control character (a NUL inside would let "a\0.evil" pass
// for "a" in C string comparisons elsewhere).
std::optional<std::string> Name(const ASN1_STRING* value) {
  if (value == nullptr) return std::nullopt;
  const unsigned char* data = ASN1_STRING_get0_data(value);
  int len = ASN1_STRING_length(value);
  if (data == nullptr || len <= 0) return std::nullopt;
  for (int i = 0; i < len; ++i) {
    if (data[i] < 0x20 || data[i] == 0x7f) return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(data), len);
}

}  // namespace

absl::StatusOr<std::string> PrincipalFromCertificate(absl::string_view pem) {
  if (pem.empty()) return Refused("no certificate");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (bio == nullptr) return Refused("cannot read the certificate");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) return Refused("not a PEM certificate");

  std::optional<std::string> dns;
  std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)> sans(
      static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)),
      &GENERAL_NAMES_free);
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* san = sk_GENERAL_NAME_value(sans.get(), i);
      if (san->type == GEN_URI) {
        std::optional<std::string> uri = Name(san->d.uniformResourceIdentifier);
        if (uri.has_value() && absl::StartsWith(*uri, "spiffe://")) return *std::move(uri);
      } else if (san->type == GEN_DNS && !dns.has_value()) {
        dns = Name(san->d.dNSName);
      }
    }
  }
  if (dns.has_value()) return *std::move(dns);

  const X509_NAME* subject = X509_get_subject_name(cert.get());
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index >= 0) {
    // The CN may be a BMPString or UniversalString; read it as UTF-8.
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(
        &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
    if (len > 0) {
      std::unique_ptr<ASN1_STRING, decltype(&ASN1_STRING_free)> text(ASN1_STRING_new(),
                                                                      &ASN1_STRING_free);
      ASN1_STRING_set0(text.get(), utf8, len);  // takes ownership of utf8
      std::optional<std::string> cn = Name(text.get());
      if (cn.has_value()) return *std::move(cn);
    } else {
      OPENSSL_free(utf8);
    }
  }
  return Refused("names no principal (no SPIFFE URI, DNS name or CN)");
}

}  // namespace cloudplane::auth
