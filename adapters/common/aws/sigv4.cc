#include "adapters/common/aws/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"

namespace cloudplane::aws {
namespace {

bool IsUnreserved(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A scope part ends up between '/' in the credential and on its own in the
// key derivation; anything that would change how the scope splits is refused.
absl::Status CheckScopePart(absl::string_view field, absl::string_view value) {
  if (value.empty()) return InvalidField(field, "must not be empty");
  for (unsigned char c : value) {
    if (c == '/' || c <= ' ' || c == 0x7f || c == ',' || c == '=') {
      return InvalidField(field, "must not contain '/', ',', '=', spaces or control characters");
    }
  }
  return absl::OkStatus();
}

// Trims and collapses every run of whitespace (line breaks of folded
// headers included) into one space, as SigV4's canonical headers want.
std::string CanonicalHeaderValue(absl::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string NormalizePath(absl::string_view path) {
  std::vector<absl::string_view> out;
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(seg);
  }
  std::string result = absl::StrCat("/", absl::StrJoin(out, "/"));
  // A trailing slash (also one left by a final "." or "..") is kept.
  const bool trailing = !path.empty() && (path.back() == '/' || absl::EndsWith(path, "/.") ||
                                          absl::EndsWith(path, "/.."));
  if (trailing && !out.empty()) result.push_back('/');
  return result;
}

}  // namespace

std::string UriEncode(absl::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string UriDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::string CanonicalQueryString(absl::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> params;
  for (absl::string_view part : absl::StrSplit(raw_query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    params.emplace_back(UriEncode(UriDecode(kv.first)), UriEncode(UriDecode(kv.second)));
  }
  std::sort(params.begin(), params.end());
  std::vector<std::string> joined;
  joined.reserve(params.size());
  for (const auto& [k, v] : params) joined.push_back(absl::StrCat(k, "=", v));
  return absl::StrJoin(joined, "&");
}

std::string CanonicalUri(absl::string_view path, bool normalize) {
  if (path.empty()) return "/";
  return UriEncode(normalize ? NormalizePath(path) : std::string(path), /*keep_slash=*/true);
}

std::string HexSha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string AmzDate(absl::Time time) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", time, absl::UTCTimeZone());
}

absl::StatusOr<SignedRequest> Sign(const SigningRequest& request,
                                   const Credentials& credentials,
                                   const SigningOptions& options) {
  if (absl::Status s = CheckScopePart("access_key_id", credentials.access_key_id); !s.ok()) {
    return s;
  }
  if (credentials.secret_access_key.empty()) {
    return InvalidField("secret_access_key", "must not be empty");
  }
  if (absl::Status s = CheckScopePart("region", options.region); !s.ok()) return s;
  if (absl::Status s = CheckScopePart("service", options.service); !s.ok()) return s;

  SignedRequest out;
  const std::string amz_date = AmzDate(options.time);
  const std::string date = amz_date.substr(0, 8);
  const std::string payload_hash = HexSha256(request.payload);

  // Canonical headers: lower-cased names, sorted; repeated names joined
  // with ',' in the order given.
  std::map<std::string, std::vector<std::string>> headers;
  for (const auto& [name, value] : request.headers) {
    const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
    if (lower.empty()) return InvalidField("headers", "a header name is empty");
    headers[lower].push_back(CanonicalHeaderValue(value));
  }
  headers["x-amz-date"] = {amz_date};
  out.headers_to_add.emplace_back("X-Amz-Date", amz_date);
  if (!credentials.session_token.empty()) {
    out.headers_to_add.emplace_back("X-Amz-Security-Token", credentials.session_token);
    if (!options.omit_session_token_from_signature) {
      headers["x-amz-security-token"] = {credentials.session_token};
    }
  }
  if (options.sign_body_header) {
    headers["x-amz-content-sha256"] = {payload_hash};
    out.headers_to_add.emplace_back("X-Amz-Content-Sha256", payload_hash);
  }
  std::string canonical_headers;
  std::vector<absl::string_view> names;
  for (const auto& [name, values] : headers) {
    absl::StrAppend(&canonical_headers, name, ":", absl::StrJoin(values, ","), "\n");
    names.push_back(name);
  }
  const std::string signed_headers = absl::StrJoin(names, ";");

  out.canonical_request = absl::StrCat(
      request.method, "\n", CanonicalUri(request.path, options.normalize_path), "\n",
      CanonicalQueryString(request.query), "\n", canonical_headers, "\n", signed_headers, "\n",
      payload_hash);
  const std::string scope =
      absl::StrCat(date, "/", options.region, "/", options.service, "/aws4_request");
  out.string_to_sign = absl::StrCat("AWS4-HMAC-SHA256\n", amz_date, "\n", scope, "\n",
                                    HexSha256(out.canonical_request));
  std::string key = HmacSha256(absl::StrCat("AWS4", credentials.secret_access_key), date);
  key = HmacSha256(key, options.region);
  key = HmacSha256(key, options.service);
  key = HmacSha256(key, "aws4_request");
  out.signature = absl::BytesToHexString(HmacSha256(key, out.string_to_sign));
  const std::string& sep = options.authorization_separator;
  out.authorization = absl::StrCat("AWS4-HMAC-SHA256 Credential=", credentials.access_key_id, "/",
                                   scope, sep, "SignedHeaders=", signed_headers, sep,
                                   "Signature=", out.signature);
  out.headers_to_add.emplace_back("Authorization", out.authorization);
  return out;
}

}  // namespace cloudplane::aws
