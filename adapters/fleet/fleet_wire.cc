#include "adapters/fleet/fleet_wire.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "adapters/common/http/http_status.h"
#include "adapters/common/json/json.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/fleet/fleet_tokens.pb.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::adapters::fleet {
namespace {

namespace rj = rapidjson;

// ---------------------------------------------------------------------------
// Go-compatible quoting, so that locally produced name errors read exactly
// like fleet's (it formats them with %q).

// Decodes one UTF-8 sequence at s[i]; an invalid byte decodes as U+FFFD with
// width 1, as Go's `range` over a string does.
std::pair<uint32_t, int> DecodeRune(absl::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  int len = 0;
  uint32_t rune = 0;
  uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, rune = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, rune = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, rune = b0 & 0x07, min = 0x10000;
  } else {
    return {0xFFFD, -1};
  }
  if (i + len > s.size()) return {0xFFFD, -1};
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {0xFFFD, -1};
    rune = (rune << 6) | (b & 0x3F);
  }
  if (rune < min || rune > 0x10FFFF || (rune >= 0xD800 && rune <= 0xDFFF)) {
    return {0xFFFD, -1};
  }
  return {rune, len};
}

// An approximation of Go's unicode.IsPrint for non-ASCII runes: the common
// invisible ones (C1 controls, odd spaces, format characters) are not.
bool IsPrintNonAscii(uint32_t r) {
  if (r < 0xA1 || r == 0xAD) return false;
  if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) ||
      (r >= 0x205F && r <= 0x206F) || r == 0x3000 || r == 0xFEFF ||
      (r >= 0xFFF9 && r <= 0xFFFB)) {
    return false;
  }
  return true;
}

void AppendQuotedRune(std::string& out, uint32_t r, absl::string_view raw, char quote) {
  if (r == static_cast<uint32_t>(quote) || r == '\\') {
    out.push_back('\\');
    out.push_back(static_cast<char>(r));
  } else if (r >= 0x20 && r < 0x7F) {
    out.push_back(static_cast<char>(r));
  } else if (r >= 0x80 && IsPrintNonAscii(r)) {
    out.append(raw.data(), raw.size());
  } else {
    switch (r) {
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      default:
        if (r < 0x20 || r == 0x7F) {
          absl::StrAppendFormat(&out, "\\x%02x", r);
        } else if (r < 0x10000) {
          absl::StrAppendFormat(&out, "\\u%04x", r);
        } else {
          absl::StrAppendFormat(&out, "\\U%08x", r);
        }
    }
  }
}

// fmt.Sprintf("%q", s).
std::string GoQuote(absl::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto [rune, width] = DecodeRune(s, i);
    if (width < 0) {  // strconv.Quote shows an invalid byte as \xNN
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(s[i]));
      i += 1;
      continue;
    }
    AppendQuotedRune(out, rune, s.substr(i, width), '"');
    i += width;
  }
  out += "\"";
  return out;
}

// fmt.Sprintf("%q", r) for a rune (U+FFFD for an invalid byte, as `range`).
std::string GoQuoteRune(uint32_t rune, absl::string_view raw) {
  std::string out = "'";
  AppendQuotedRune(out, rune, rune == 0xFFFD ? "\xEF\xBF\xBD" : raw, '\'');
  out += "'";
  return out;
}

bool IsOneOf(absl::string_view s, std::initializer_list<absl::string_view> set) {
  for (absl::string_view item : set) {
    if (s == item) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Percent-encoding for request paths and query strings.

bool IsUnreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

std::string Escape(absl::string_view s, bool path_segment) {
  std::string out;
  for (char c : s) {
    // ':' and '@' are legal in a path segment (RFC 3986 pchar) and common in
    // unit names (`hello:world.service`, `foo@1.service`); everything else,
    // including the backslash fleet allows in names, is encoded. fleet
    // URL-decodes segments before matching (§2).
    if (IsUnreserved(c) || (path_segment && (c == ':' || c == '@'))) {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", static_cast<unsigned char>(c));
    }
  }
  return out;
}

void AppendQuery(std::string& path, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  path += absl::StrContains(path, '?') ? "&" : "?";
  absl::StrAppend(&path, key, "=", Escape(value, /*path_segment=*/false));
}

// ---------------------------------------------------------------------------
// JSON reading.

// JSON that parses but has the wrong shape (json::Malformed covers what does
// not parse).
absl::Status Unexpected(absl::string_view detail) {
  return WithErrorInfo(
      absl::InternalError(absl::StrCat("fleet sent unexpected JSON: ", detail)),
      reasons::kProviderMalformedResponse);
}

// fleet omits empty fields (Go's omitempty); a null is treated the same way.
using json::Member;

absl::Status GetString(const rj::Value& obj, const char* key, absl::string_view what,
                       std::string* out) {
  out->clear();
  const rj::Value* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsString()) return Unexpected(absl::StrCat(what, ".", key, " is not a string"));
  out->assign(v->GetString(), v->GetStringLength());
  return absl::OkStatus();
}

absl::Status RequireObject(const rj::Value& v, absl::string_view what) {
  if (!v.IsObject()) return Unexpected(absl::StrCat(what, " is not an object"));
  return absl::OkStatus();
}

// The array member `key` of `obj`; nullptr when absent (an empty list).
absl::StatusOr<const rj::Value*> GetArray(const rj::Value& obj, const char* key,
                                          absl::string_view what) {
  const rj::Value* v = Member(obj, key);
  if (v == nullptr) return nullptr;
  if (!v->IsArray()) return Unexpected(absl::StrCat(what, ".", key, " is not an array"));
  return v;
}

absl::Status UnitFromValue(const rj::Value& v, absl::string_view account, v1::Unit* unit) {
  if (absl::Status s = RequireObject(v, "unit"); !s.ok()) return s;
  std::string s;
  if (absl::Status st = GetString(v, "name", "unit", &s); !st.ok()) return st;
  if (s.empty()) return Unexpected("unit has no name");
  unit->set_name(UnitResourceName(account, s));
  absl::StatusOr<const rj::Value*> options = GetArray(v, "options", "unit");
  if (!options.ok()) return options.status();
  if (*options != nullptr) {
    for (const rj::Value& o : (*options)->GetArray()) {
      if (absl::Status st = RequireObject(o, "unit.options[]"); !st.ok()) return st;
      v1::UnitOption* option = unit->add_options();
      // Go's omitempty leaves out an empty value (`ExecStart=`), so absent
      // keys are empty strings.
      for (auto [key, field] : {std::pair{"section", option->mutable_section()},
                                std::pair{"name", option->mutable_name()},
                                std::pair{"value", option->mutable_value()}}) {
        if (absl::Status st = GetString(o, key, "unit.options[]", field); !st.ok()) return st;
      }
    }
  }
  if (absl::Status st = GetString(v, "desiredState", "unit", &s); !st.ok()) return st;
  unit->set_desired_state(StateFromWire(s));
  if (absl::Status st = GetString(v, "currentState", "unit", &s); !st.ok()) return st;
  unit->set_current_state(StateFromWire(s));
  if (absl::Status st = GetString(v, "machineID", "unit", &s); !st.ok()) return st;
  if (!s.empty()) unit->set_machine(MachineResourceName(account, s));
  return absl::OkStatus();
}

absl::Status UnitStateFromValue(const rj::Value& v, absl::string_view account,
                                v1::UnitState* state) {
  if (absl::Status s = RequireObject(v, "unit state"); !s.ok()) return s;
  std::string s;
  if (absl::Status st = GetString(v, "name", "unit state", &s); !st.ok()) return st;
  if (s.empty()) return Unexpected("unit state has no name");
  state->set_unit(UnitResourceName(account, s));
  if (absl::Status st = GetString(v, "machineID", "unit state", &s); !st.ok()) return st;
  if (!s.empty()) state->set_machine(MachineResourceName(account, s));
  for (auto [key, field] :
       {std::pair{"hash", state->mutable_hash()},
        std::pair{"systemdLoadState", state->mutable_systemd_load_state()},
        std::pair{"systemdActiveState", state->mutable_systemd_active_state()},
        std::pair{"systemdSubState", state->mutable_systemd_sub_state()}}) {
    if (absl::Status st = GetString(v, key, "unit state", field); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status MachineFromValue(const rj::Value& v, absl::string_view account,
                              v1::Machine* machine) {
  if (absl::Status s = RequireObject(v, "machine"); !s.ok()) return s;
  std::string s;
  if (absl::Status st = GetString(v, "id", "machine", &s); !st.ok()) return st;
  if (s.empty()) return Unexpected("machine has no id");
  machine->set_name(MachineResourceName(account, s));
  if (absl::Status st = GetString(v, "primaryIP", "machine", machine->mutable_primary_ip());
      !st.ok()) {
    return st;
  }
  // Omitted when empty (python-fleet fills in {} for it).
  const rj::Value* metadata = Member(v, "metadata");
  if (metadata != nullptr) {
    if (!metadata->IsObject()) return Unexpected("machine.metadata is not an object");
    for (const auto& m : metadata->GetObject()) {
      if (!m.value.IsString()) return Unexpected("machine.metadata value is not a string");
      (*machine->mutable_metadata())[std::string(m.name.GetString(),
                                                 m.name.GetStringLength())] =
          std::string(m.value.GetString(), m.value.GetStringLength());
    }
  }
  return absl::OkStatus();
}

// Parses a page `{"<list_key>":[…],"nextPageToken":"…"}`; both keys are
// omitted when empty, so `{}` is an empty last page.
template <typename Item, typename FromValue>
absl::Status ParsePage(absl::string_view json, const char* list_key, absl::string_view what,
                       FromValue from_value, std::vector<Item>* items,
                       std::string* next_page_token) {
  rj::Document doc;
  if (absl::Status s = json::Parse(json, "fleet", doc); !s.ok()) return s;
  if (absl::Status s = RequireObject(doc, what); !s.ok()) return s;
  absl::StatusOr<const rj::Value*> list = GetArray(doc, list_key, what);
  if (!list.ok()) return list.status();
  if (*list != nullptr) {
    items->reserve((*list)->Size());
    for (const rj::Value& v : (*list)->GetArray()) {
      Item item;
      if (absl::Status s = from_value(v, &item); !s.ok()) return s;
      items->push_back(std::move(item));
    }
  }
  return GetString(doc, "nextPageToken", what, next_page_token);
}

// Resource-name parsing shared by units and machines: returns the last
// segment of `accounts/<account>/<collection>/<id>`.
absl::StatusOr<std::string> IdFromResource(absl::string_view field, absl::string_view account,
                                           absl::string_view resource,
                                           absl::string_view collection) {
  const std::string shape = absl::StrCat("must look like accounts/{account}/", collection,
                                         "/{", collection == "units" ? "unit" : "machine",
                                         "}");
  absl::string_view rest = resource;
  if (!absl::ConsumePrefix(&rest, "accounts/")) return InvalidField(field, shape);
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos || slash == 0) return InvalidField(field, shape);
  absl::string_view resource_account = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  if (!absl::ConsumePrefix(&rest, collection) || !absl::ConsumePrefix(&rest, "/") ||
      rest.empty() || absl::StrContains(rest, '/')) {
    return InvalidField(field, shape);
  }
  if (!account.empty() && resource_account != account) {
    return InvalidField(field, absl::StrCat("belongs to account \"", resource_account,
                                            "\", not to \"", account, "\""));
  }
  return std::string(rest);
}

}  // namespace

// ---------------------------------------------------------------------------
// Names, states and local validation.

std::optional<std::string> UnitNameError(absl::string_view name) {
  // api.ValidateName, checks in fleet's order (the first failure wins).
  if (name.empty()) return "unit name cannot be empty";
  if (name.size() > 256) return "unit name exceeds maximum length (256)";
  const size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos) return "unit name must contain \".\"";
  if (dot == name.size() - 1) return "unit name cannot end in \".\"";
  const absl::string_view suffix = name.substr(dot + 1);
  if (!IsOneOf(suffix, {"automount", "busname", "device", "mount", "path", "scope", "service",
                        "slice", "snapshot", "socket", "swap", "target", "timer"})) {
    return absl::StrCat("invalid unit type: ", GoQuote(suffix));
  }
  if (absl::StrContains(name, '@') &&
      !IsOneOf(suffix, {"path", "service", "socket", "target", "timer"})) {
    return absl::StrCat("invalid unit type for template: ", GoQuote(suffix));
  }
  const absl::string_view base = name.substr(0, dot);
  for (size_t i = 0; i < base.size();) {
    auto [rune, width] = DecodeRune(base, i);
    const int step = width < 0 ? 1 : width;
    const bool ok = rune < 0x80 && (absl::ascii_isalnum(static_cast<unsigned char>(rune)) ||
                                    IsOneOf(absl::string_view(&base[i], 1),
                                            {":", "-", "_", ".", "\\", "@"}));
    if (!ok) {
      return absl::StrCat("invalid character ", GoQuoteRune(rune, base.substr(i, step)),
                          " in unit name");
    }
    i += step;
  }
  if (name.front() == '@') return "unit name cannot start in \"@\"";
  return std::nullopt;
}

absl::Status ValidateUnitName(absl::string_view field, absl::string_view name) {
  std::optional<std::string> error = UnitNameError(name);
  if (!error.has_value()) return absl::OkStatus();
  return InvalidField(field, *error);
}

bool IsTemplateUnitName(absl::string_view name) {
  // unit.NewUnitNameInfo: a template has `@` and nothing between it and the
  // suffix.
  const size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos) return false;
  const size_t at = name.substr(0, dot).find('@');
  return at != absl::string_view::npos && at + 1 == dot;
}

absl::Status ValidateOptions(absl::string_view field, const Options& options) {
  absl::Status status;
  if (options.empty()) {
    AddFieldViolation(status, field,
                      "at least one option is required (fleet builds the unit file from them)");
    return status;
  }
  auto has_line_break = [](absl::string_view s) {
    return absl::StrContains(s, '\n') || absl::StrContains(s, '\r');
  };
  for (int i = 0; i < options.size(); ++i) {
    const v1::UnitOption& o = options[i];
    const std::string prefix = absl::StrCat(field, "[", i, "]");
    if (o.section().empty()) {
      AddFieldViolation(status, absl::StrCat(prefix, ".section"), "must not be empty");
    } else if (has_line_break(o.section()) || absl::StrContains(o.section(), '[') ||
               absl::StrContains(o.section(), ']')) {
      AddFieldViolation(status, absl::StrCat(prefix, ".section"),
                        "must not contain a line break, [ or ]");
    }
    if (o.name().empty()) {
      AddFieldViolation(status, absl::StrCat(prefix, ".name"), "must not be empty");
    } else if (has_line_break(o.name()) || absl::StrContains(o.name(), '=')) {
      AddFieldViolation(status, absl::StrCat(prefix, ".name"),
                        "must not contain a line break or =");
    }
    if (has_line_break(o.value())) {
      AddFieldViolation(status, absl::StrCat(prefix, ".value"),
                        "must not contain a line break");
    }
  }
  return status;
}

bool IsGlobalUnit(const Options& options) {
  const v1::UnitOption* last = nullptr;
  for (const v1::UnitOption& o : options) {
    if (o.section() == "X-Fleet" && o.name() == "Global") last = &o;
  }
  if (last == nullptr) return false;
  const std::string value =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(last->value()));
  return IsOneOf(value, {"true", "yes", "1", "on", "t"});
}

namespace {
// Go's unicode.IsSpace, as UTF-8 sequences (fleet_emulator.py _GO_SPACE).
constexpr absl::string_view kGoSpaces[] = {
    " ", "\t", "\n", "\v", "\f", "\r", "\u0085", "\u00a0", "\u1680", "\u2000", "\u2001",
    "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a",
    "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};

size_t SpaceAt(absl::string_view s, bool at_end) {
  for (absl::string_view sp : kGoSpaces) {
    if (at_end ? absl::EndsWith(s, sp) : absl::StartsWith(s, sp)) return sp.size();
  }
  return 0;
}

// fleet's error message from its envelope, "" when there is none.
std::string FleetMessage(absl::string_view body) {
  rj::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return "";
  auto e = doc.FindMember("error");
  if (e == doc.MemberEnd() || !e->value.IsObject()) return "";
  auto m = e->value.FindMember("message");
  if (m == e->value.MemberEnd() || !m->value.IsString()) return "";
  return std::string(m->value.GetString(), m->value.GetStringLength());
}

}  // namespace

bool IsFleetErrorEnvelope(int http_status, absl::string_view body) {
  rj::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return false;
  auto e = doc.FindMember("error");
  if (e == doc.MemberEnd() || !e->value.IsObject()) return false;
  auto code = e->value.FindMember("code");
  auto message = e->value.FindMember("message");
  return code != e->value.MemberEnd() && code->value.IsInt() &&
         code->value.GetInt() == http_status &&
         (message == e->value.MemberEnd() || message->value.IsString());
}

namespace {
std::string BrokenUnitText(absl::string_view unit_name, int http_status, absl::string_view body) {
  const std::string message = FleetMessage(body);
  return absl::StrCat("fleet answers HTTP ", http_status, " for unit ", unit_name,
                      message.empty() ? "" : absl::StrCat(" (\"", message, "\")"),
                      " while the rest of its API works: its registry entry cannot be read "
                      "(e.g. a desired state that is not inactive, loaded or launched was "
                      "set in fleet directly); destroy the unit to clear it");
}
}  // namespace

std::string TrimFleetSpace(absl::string_view value) {
  while (size_t n = SpaceAt(value, false)) value.remove_prefix(n);
  while (size_t n = SpaceAt(value, true)) value.remove_suffix(n);
  return std::string(value);
}

Options TrimOptionValues(const Options& options) {
  Options out = options;
  for (v1::UnitOption& o : out) o.set_value(TrimFleetSpace(o.value()));
  return out;
}

SystemdVerdict VerdictOf(const v1::UnitState& state) {
  if (state.systemd_active_state() == "active") return SystemdVerdict::kRunning;
  if (state.systemd_active_state() == "failed") return SystemdVerdict::kFailed;
  return SystemdVerdict::kStarting;
}

v1::Unit BrokenUnit(absl::string_view account, absl::string_view unit_name, int http_status,
                    absl::string_view body) {
  v1::Unit unit;
  unit.set_name(UnitResourceName(account, unit_name));
  unit.set_current_state(v1::Unit::ERROR);
  unit.set_provider_error(BrokenUnitText(unit_name, http_status, body));
  return unit;
}

absl::Status BrokenUnitError(absl::string_view unit_name, int http_status,
                             absl::string_view body) {
  return WithErrorInfo(absl::FailedPreconditionError(BrokenUnitText(unit_name, http_status, body)),
                       reasons::kProviderError,
                       {{"unit", std::string(unit_name)},
                        {"httpStatus", absl::StrCat(http_status)},
                        {"providerMessage", FleetMessage(body)}});
}

std::optional<absl::string_view> StateToWire(v1::Unit::State state) {
  switch (state) {
    case v1::Unit::INACTIVE: return "inactive";
    case v1::Unit::LOADED: return "loaded";
    case v1::Unit::LAUNCHED: return "launched";
    default: return std::nullopt;
  }
}

v1::Unit::State StateFromWire(absl::string_view state) {
  if (state == "inactive") return v1::Unit::INACTIVE;
  if (state == "loaded") return v1::Unit::LOADED;
  if (state == "launched") return v1::Unit::LAUNCHED;
  return v1::Unit::STATE_UNSPECIFIED;
}

std::string UnitResourceName(absl::string_view account, absl::string_view unit_name) {
  return absl::StrCat("accounts/", account, "/units/", unit_name);
}

std::string MachineResourceName(absl::string_view account, absl::string_view machine_id) {
  return absl::StrCat("accounts/", account, "/machines/", machine_id);
}

absl::StatusOr<std::string> UnitNameFromResource(absl::string_view field,
                                                 absl::string_view account,
                                                 absl::string_view resource) {
  absl::StatusOr<std::string> name = IdFromResource(field, account, resource, "units");
  if (!name.ok()) return name.status();
  if (absl::Status s = ValidateUnitName(field, *name); !s.ok()) return s;
  return name;
}

absl::StatusOr<std::string> MachineIdFromResource(absl::string_view field,
                                                  absl::string_view account,
                                                  absl::string_view resource) {
  absl::StatusOr<std::string> id = IdFromResource(field, account, resource, "machines");
  if (!id.ok()) return id.status();
  for (char c : *id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.') {
      return InvalidField(field, "the machine id may hold only letters, digits, -, _ and .");
    }
  }
  return id;
}

// ---------------------------------------------------------------------------
// Request paths and bodies.

std::string UnitPath(absl::string_view unit_name) {
  return absl::StrCat(kApiPrefix, "/units/", Escape(unit_name, /*path_segment=*/true));
}

std::string ListUnitsPath(absl::string_view fleet_page_token) {
  std::string path = absl::StrCat(kApiPrefix, "/units");
  AppendQuery(path, "nextPageToken", fleet_page_token);
  return path;
}

std::string ListUnitStatesPath(absl::string_view machine_id, absl::string_view unit_name,
                               absl::string_view fleet_page_token) {
  std::string path = absl::StrCat(kApiPrefix, "/state");
  AppendQuery(path, "machineID", machine_id);
  AppendQuery(path, "unitName", unit_name);
  // The filters repeat on every page: fleet applies them before paging (§6).
  AppendQuery(path, "nextPageToken", fleet_page_token);
  return path;
}

std::string ListMachinesPath(absl::string_view fleet_page_token) {
  std::string path = absl::StrCat(kApiPrefix, "/machines");
  AppendQuery(path, "nextPageToken", fleet_page_token);
  return path;
}

std::string UnitPutBody(const Options& options, absl::string_view desired_state) {
  rj::StringBuffer buffer;
  rj::Writer<rj::StringBuffer> w(buffer);
  auto string = [&w](absl::string_view s) {
    w.String(s.data(), static_cast<rj::SizeType>(s.size()));
  };
  w.StartObject();
  if (!desired_state.empty()) {
    w.Key("desiredState");
    string(desired_state);
  }
  if (!options.empty()) {
    w.Key("options");
    w.StartArray();
    for (const v1::UnitOption& o : options) {
      w.StartObject();
      w.Key("section");
      string(o.section());
      w.Key("name");
      string(o.name());
      w.Key("value");
      string(o.value());
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// ---------------------------------------------------------------------------
// Responses.

absl::StatusOr<v1::Unit> ParseUnit(absl::string_view json, absl::string_view account) {
  rj::Document doc;
  if (absl::Status s = json::Parse(json, "fleet", doc); !s.ok()) return s;
  v1::Unit unit;
  if (absl::Status s = UnitFromValue(doc, account, &unit); !s.ok()) return s;
  return unit;
}

absl::StatusOr<UnitPage> ParseUnitPage(absl::string_view json, absl::string_view account) {
  UnitPage page;
  absl::Status s = ParsePage(
      json, "units", "unit page",
      [account](const rj::Value& v, v1::Unit* u) { return UnitFromValue(v, account, u); },
      &page.units, &page.next_page_token);
  if (!s.ok()) return s;
  return page;
}

absl::StatusOr<v1::UnitState> ParseUnitState(absl::string_view json,
                                             absl::string_view account) {
  rj::Document doc;
  if (absl::Status s = json::Parse(json, "fleet", doc); !s.ok()) return s;
  v1::UnitState state;
  if (absl::Status s = UnitStateFromValue(doc, account, &state); !s.ok()) return s;
  return state;
}

absl::StatusOr<UnitStatePage> ParseUnitStatePage(absl::string_view json,
                                                 absl::string_view account) {
  UnitStatePage page;
  absl::Status s = ParsePage(json, "states", "unit state page",
                             [account](const rj::Value& v, v1::UnitState* st) {
                               return UnitStateFromValue(v, account, st);
                             },
                             &page.states, &page.next_page_token);
  if (!s.ok()) return s;
  return page;
}

absl::StatusOr<MachinePage> ParseMachinePage(absl::string_view json,
                                             absl::string_view account) {
  MachinePage page;
  absl::Status s = ParsePage(
      json, "machines", "machine page",
      [account](const rj::Value& v, v1::Machine* m) { return MachineFromValue(v, account, m); },
      &page.machines, &page.next_page_token);
  if (!s.ok()) return s;
  return page;
}

absl::Status StatusFromResponse(int http_status, absl::string_view body,
                                absl::string_view context) {
  if (http_status >= 200 && http_status <= 299) return absl::OkStatus();

  // fleet's error statuses (reference §2, §5, §8; api/*.go) → our codes.
  struct Row {
    int http_status;
    absl::StatusCode code;
    absl::string_view reason;
  };
  static constexpr Row kTable[] = {
      // Bad name, options, body or page token. Names and states are checked
      // locally first, so this is mostly option validation (§5.2).
      {400, absl::StatusCode::kInvalidArgument, reasons::kProviderError},
      // "unit does not exist", "unit state does not exist", or "" for a
      // path fleet does not route.
      {404, absl::StatusCode::kNotFound, reasons::kResourceNotFound},
      // "only GET supported against this resource" and the like: the
      // endpoint is not a fleet v1 server, or this adapter has a bug.
      {405, absl::StatusCode::kUnimplemented, reasons::kProviderError},
      // The unit is in the wrong state for the request: "unit does not exist
      // and options field empty" (set a state on a missing unit) and "must
      // provide DesiredState to update existing unit".
      {409, absl::StatusCode::kFailedPrecondition, reasons::kProviderError},
      // Content-Type missing or not application/json.
      {415, absl::StatusCode::kInvalidArgument, reasons::kProviderError},
      // fleet logs internal errors and answers 500 with an empty message.
      // Its one deterministic 500 (an unknown desiredState on create, §5
      // step 4) cannot happen because states are validated locally; what
      // remains are registry (etcd) failures, which are transient. Every
      // request this adapter sends is idempotent (PUT of the full wanted
      // state, DELETE, GET), so UNAVAILABLE, i.e. retryable, rather than
      // INTERNAL. The other lasting 500, a unit fleet cannot read back (a
      // desired state set to an invalid value in fleet directly), is told
      // apart by the adapter with a probe (fleet_adapter.h, "A broken unit").
      {500, absl::StatusCode::kUnavailable, reasons::kProviderUnavailable},
      // "fleet server unable to communicate with etcd": fleetd is up but its
      // store is not; it recovers on its own.
      {503, absl::StatusCode::kUnavailable, reasons::kProviderUnavailable},
  };
  absl::StatusCode code = http::HttpStatusToCode(http_status);  // any other status
  absl::string_view reason = reasons::kProviderError;
  for (const Row& row : kTable) {
    if (row.http_status == http_status) {
      code = row.code;
      reason = row.reason;
      break;
    }
  }
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;  // not an error status

  // The envelope {"error":{"code":N,"message":"…"}}; anything else (a proxy's
  // HTML page, say) is reported by status alone and never echoed.
  std::string message;
  rj::Document doc;
  if (json::Parse(body, "fleet", doc).ok()) {
    const rj::Value* error = Member(doc, "error");
    if (error != nullptr && error->IsObject()) {
      const rj::Value* m = Member(*error, "message");
      if (m != nullptr && m->IsString()) message.assign(m->GetString(), m->GetStringLength());
    }
  }
  std::string text = absl::StrCat(context, context.empty() ? "" : ": ",
                                  "fleet answered HTTP ", http_status);
  if (message.empty()) {
    absl::StrAppend(&text, " with no message");
  } else {
    absl::StrAppend(&text, ": ", message);
  }
  return WithErrorInfo(absl::Status(code, text), reason,
                       {{"httpStatus", absl::StrCat(http_status)},
                        {"providerMessage", message}});
}

// ---------------------------------------------------------------------------
// Poll tokens.

std::string MakePollToken(absl::string_view unit_name, absl::string_view desired_state) {
  UnitToken token;
  token.set_version(kUnitTokenVersion);
  token.set_unit_name(std::string(unit_name));
  token.set_desired_state(std::string(desired_state));
  return kit::PackToken(token);
}

absl::StatusOr<PollTarget> ParsePollToken(absl::string_view token) {
  absl::StatusOr<UnitToken> unit = kit::UnpackToken<UnitToken>(token, kUnitTokenVersion);
  if (!unit.ok()) return unit.status();
  // MakePollToken only packs valid names and states; anything else was not
  // made by this adapter.
  if (UnitNameError(unit->unit_name()).has_value() ||
      StateFromWire(unit->desired_state()) == v1::Unit::STATE_UNSPECIFIED) {
    return kit::UnreadableToken("not a fleet unit token");
  }
  return PollTarget{unit->unit_name(), unit->desired_state()};
}

}  // namespace cloudplane::adapters::fleet
