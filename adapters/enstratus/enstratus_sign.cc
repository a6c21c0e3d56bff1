// Request signing (§2): the API key pair and the x-esauth-* headers.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/enstratus/enstratus_wire.h"
#include "base/errors.h"

namespace cloudplane::adapters::enstratus {

absl::StatusOr<ApiKeys> ParseApiKeys(absl::string_view secret) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(secret, absl::MaxSplits(':', 1));
  if (parts.first.empty() || parts.second.empty()) {
    return InvalidField("credentials",
                        "must be \"ACCESS_KEY:SECRET_KEY\" (the enStratus API key pair)");
  }
  return ApiKeys{std::string(parts.first), std::string(parts.second)};
}

std::string StringToSign(absl::string_view access_key, absl::string_view method,
                         absl::string_view sign_path, int64_t timestamp_ms,
                         absl::string_view user_agent) {
  return absl::StrCat(access_key, ":", method, ":", sign_path, ":", timestamp_ms, ":",
                      user_agent);
}

std::string Signature(absl::string_view secret_key, absl::string_view string_to_sign) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  // The secret key is used as its bytes, not base64-decoded (§2 step 6).
  if (HMAC(EVP_sha256(), secret_key.data(), static_cast<int>(secret_key.size()),
           reinterpret_cast<const unsigned char*>(string_to_sign.data()), string_to_sign.size(),
           mac, &mac_len) == nullptr) {
    return "";  // libcrypto out of memory: an empty signature fails auth safely
  }
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

std::vector<std::pair<std::string, std::string>> SignedHeaders(
    const ApiKeys& keys, absl::string_view method, absl::string_view sign_path,
    int64_t timestamp_ms, absl::string_view user_agent) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(5);  // one allocation: 10,000 reads in flight hold 10,000 of these
  headers.emplace_back("x-esauth-access", keys.access_key);
  headers.emplace_back("x-esauth-timestamp", absl::StrCat(timestamp_ms));
  headers.emplace_back(
      "x-esauth-signature",
      Signature(keys.secret_key,
                StringToSign(keys.access_key, method, sign_path, timestamp_ms, user_agent)));
  headers.emplace_back("x-es-details", "basic");
  headers.emplace_back("Accept", "application/json");
  return headers;
}

}  // namespace cloudplane::adapters::enstratus
