#include "adapters/cloudsigma/cloudsigma_conf.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/errors.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

// A text-proto string literal (C escapes for quotes, backslashes, controls).
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, "\\", (c >> 6) & 7, (c >> 3) & 7, c & 7);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string Unquote(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return std::string(v);
}

}  // namespace

absl::StatusOr<ImportedAccount> ImportCloudSigmaConf(absl::string_view conf_text,
                                                     absl::string_view account_id,
                                                     const SecretLocation& secret_location) {
  std::map<std::string, std::string> values;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(conf_text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return InvalidField("conf", absl::StrCat("line ", line_number, " is not `key = value`"));
    }
    std::string key(absl::StripAsciiWhitespace(line.substr(0, eq)));
    std::string value = Unquote(line.substr(eq + 1));
    // ConfigObj allows a trailing comment after an unquoted value.
    if (size_t hash = value.find(" #"); hash != std::string::npos) {
      value = std::string(absl::StripAsciiWhitespace(value.substr(0, hash)));
    }
    values[key] = value;
  }
  for (const char* key : {"api_endpoint", "username", "password"}) {
    if (values[key].empty()) return InvalidField(key, "missing in the CloudSigma config");
  }
  bool id_ok = !account_id.empty() && account_id.size() <= 63 &&
               absl::ascii_islower(static_cast<unsigned char>(account_id[0]));
  for (char c : account_id) {
    id_ok = id_ok && (absl::ascii_islower(static_cast<unsigned char>(c)) ||
                      absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-');
  }
  if (!id_ok) return InvalidField("id", "must be 1-63 characters of [a-z0-9-], a letter first");
  if (secret_location.env.empty() == secret_location.file.empty()) {
    return InvalidField("credentials", "give exactly one of env and file");
  }
  ImportedAccount out;
  out.secret = absl::StrCat(values["username"], ":", values["password"]);
  // The endpoint without the trailing slash pycloudsigma's config has.
  std::string endpoint = values["api_endpoint"];
  while (absl::EndsWith(endpoint, "/")) endpoint.pop_back();
  std::string text = absl::StrCat("accounts {\n  id: ", Quote(account_id),
                                  "\n  provider: \"cloudsigma\"\n  endpoint: ", Quote(endpoint),
                                  "\n  credentials { ");
  if (!secret_location.env.empty()) {
    absl::StrAppend(&text, "env: ", Quote(secret_location.env));
  } else {
    absl::StrAppend(&text, "file: ", Quote(secret_location.file));
  }
  absl::StrAppend(&text, " }\n");
  if (!values["ws_endpoint"].empty()) {
    absl::StrAppend(&text, "  options { key: \"ws_endpoint\" value: ",
                    Quote(values["ws_endpoint"]), " }\n");
  }
  absl::StrAppend(&text, "}\n");
  out.account_textproto = std::move(text);
  return out;
}

}  // namespace cloudplane::adapters::cloudsigma
