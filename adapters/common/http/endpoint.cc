#include "adapters/common/http/endpoint.h"

#include <sys/un.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace cloudplane::http {
namespace {

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("endpoint: ", what));
}

bool HostChar(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_';
}

bool PathChar(char c) {
  // Printable ASCII minus space; non-ASCII paths must be percent-encoded.
  return c > 0x20 && c < 0x7f;
}

absl::StatusOr<Endpoint> ParseUnix(absl::string_view text,
                                   absl::string_view scheme,
                                   absl::string_view rest) {
  // `rest` follows "unix:". The only form is "//" + absolute path, i.e.
  // three slashes: "unix://sock" would put "sock" in the authority, which is
  // how a relative path is usually (mis)written.
  if (!absl::StartsWith(rest, "///")) {
    return Invalid(absl::StrCat("unix socket endpoint \"", text,
                                "\" must name an absolute path, written as ",
                                scheme, ":///path/to/socket"));
  }
  absl::string_view path = rest.substr(2);
  if (path.size() < 2 || path.back() == '/') {
    return Invalid(absl::StrCat("unix socket endpoint \"", text,
                                "\" must name a socket file, not a directory"));
  }
  if (path.find('\0') != absl::string_view::npos) {
    return Invalid("unix socket path contains a NUL byte");
  }
  // sun_path includes the terminating NUL.
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Invalid(absl::StrCat("unix socket path is ", path.size(),
                                " bytes; the limit is ",
                                sizeof(sockaddr_un::sun_path) - 1));
  }
  Endpoint endpoint;
  endpoint.base_url = "http://localhost";
  endpoint.unix_socket_path = std::string(path);
  return endpoint;
}

absl::StatusOr<Endpoint> ParseHttp(absl::string_view text,
                                   absl::string_view scheme,
                                   absl::string_view rest) {
  // `rest` follows "<scheme>://". Credentials and query strings would end up
  // in logs and error messages, and nothing here needs them.
  const size_t path_start = rest.find('/');
  absl::string_view authority = rest.substr(0, path_start);
  absl::string_view base = path_start == absl::string_view::npos
                               ? absl::string_view()
                               : rest.substr(path_start);
  if (authority.find('@') != absl::string_view::npos) {
    return Invalid(
        "credentials (user:password@) are not accepted in endpoint URLs");
  }
  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return Invalid(absl::StrCat(scheme,
                                " endpoint must not contain a query string "
                                "or fragment"));
  }
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return Invalid(absl::StrCat("unterminated IPv6 address in \"", text,
                                  "\""));
    }
    host = authority.substr(1, close - 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return Invalid(absl::StrCat("unexpected text after IPv6 address in \"",
                                    text, "\""));
      }
      port = after.substr(1);
      if (port.empty()) return Invalid(absl::StrCat("empty port in \"", text, "\""));
    }
    for (char c : host) {
      if (!absl::ascii_isxdigit(c) && c != ':' && c != '.') {
        return Invalid(absl::StrCat("bad IPv6 address in \"", text, "\""));
      }
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != absl::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return Invalid(absl::StrCat("empty port in \"", text, "\""));
    }
    for (char c : host) {
      if (!HostChar(c)) {
        return Invalid(absl::StrCat("bad character in host of \"", text, "\""));
      }
    }
  }
  if (host.empty()) {
    return Invalid(absl::StrCat("missing host in \"", text, "\""));
  }
  if (!port.empty()) {
    int value = 0;
    bool digits = true;
    for (char c : port) digits = digits && absl::ascii_isdigit(c);
    if (!digits || !absl::SimpleAtoi(port, &value) || value < 1 ||
        value > 65535) {
      return Invalid(absl::StrCat("bad port \"", port, "\" in \"", text,
                                  "\" (want 1-65535)"));
    }
  }
  for (char c : base) {
    if (!PathChar(c)) {
      return Invalid(absl::StrCat(
          "base path of \"", text,
          "\" contains a space, control or non-ASCII character"));
    }
  }
  while (absl::EndsWith(base, "/")) base.remove_suffix(1);
  Endpoint endpoint;
  endpoint.base_url = absl::StrCat(scheme, "://", authority, base);
  return endpoint;
}

}  // namespace

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text) {
  if (text.empty()) return Invalid("empty endpoint");
  const size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return Invalid("no scheme; expected http://, https:// or unix:///path");
  }
  const std::string scheme = absl::AsciiStrToLower(text.substr(0, colon));
  absl::string_view rest = text.substr(colon + 1);
  if (scheme == "unix" || scheme == "file") {
    return ParseUnix(text, scheme, rest);
  }
  if (scheme == "http" || scheme == "https") {
    if (!absl::StartsWith(rest, "//")) {
      return Invalid(absl::StrCat("\"", text, "\" must start with ", scheme,
                                  "://"));
    }
    return ParseHttp(text, scheme, rest.substr(2));
  }
  // Not echoing `text`: an unknown scheme may well be a mistyped secret.
  return Invalid(absl::StrCat("unsupported scheme \"", scheme,
                              "\"; expected http://, https:// or unix:///path"));
}

}  // namespace cloudplane::http
