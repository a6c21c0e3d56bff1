#include "adapters/opennebula/opennebula_wire.h"

#include <openssl/sha.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/http/http_status.h"
#include "adapters/opennebula/opennebula_wire_internal.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"

namespace cloudplane::adapters::opennebula {

namespace wire_internal {

absl::Status Malformed(absl::string_view method, absl::string_view detail) {
  return WithErrorInfo(
      absl::InternalError(absl::StrCat("OpenNebula sent a malformed response to ", method, ": ",
                                       detail)),
      reasons::kProviderMalformedResponse, {{"method", std::string(method)}});
}

absl::StatusOr<int64_t> IntChild(const xml::Node& node, absl::string_view child,
                                 absl::string_view what) {
  const xml::Node* c = node.Child(child);
  int64_t v = 0;
  if (c == nullptr) {
    return Malformed(what, absl::StrCat("<", node.Name(), "> has no <", child, ">"));
  }
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(c->Text()), &v)) {
    return Malformed(what, absl::StrCat("<", node.Name(), "><", child, "> is not an integer"));
  }
  return v;
}

int64_t IntOr(const xml::Node* node, absl::string_view child, int64_t fallback) {
  if (node == nullptr) return fallback;
  const xml::Node* c = node->Child(child);
  int64_t v = 0;
  if (c == nullptr || !absl::SimpleAtoi(absl::StripAsciiWhitespace(c->Text()), &v)) {
    return fallback;
  }
  return v;
}

void SetString(google::protobuf::Struct* s, absl::string_view key, absl::string_view value) {
  (*s->mutable_fields())[std::string(key)].set_string_value(std::string(value));
}
void SetNumber(google::protobuf::Struct* s, absl::string_view key, double value) {
  (*s->mutable_fields())[std::string(key)].set_number_value(value);
}

std::string Num(int64_t n) { return absl::StrCat(n); }

std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

}  // namespace wire_internal

namespace {

using wire_internal::Malformed;
using wire_internal::Num;

// STATE names ([states]), indexed by number.
constexpr const char* kVmStates[] = {"INIT",    "PENDING",  "HOLD",       "ACTIVE",
                                     "STOPPED", "SUSPENDED", "DONE",      "FAILED",
                                     "POWEROFF", "UNDEPLOYED", "CLONING", "CLONING_FAILURE"};

// LCM_STATE names ([states]), indexed by number.
constexpr const char* kLcmStates[] = {
    "LCM_INIT", "PROLOG", "BOOT", "RUNNING", "MIGRATE", "SAVE_STOP", "SAVE_SUSPEND",
    "SAVE_MIGRATE", "PROLOG_MIGRATE", "PROLOG_RESUME", "EPILOG_STOP", "EPILOG", "SHUTDOWN",
    "CANCEL", "FAILURE", "CLEANUP_RESUBMIT", "UNKNOWN", "HOTPLUG", "SHUTDOWN_POWEROFF",
    "BOOT_UNKNOWN", "BOOT_POWEROFF", "BOOT_SUSPENDED", "BOOT_STOPPED", "CLEANUP_DELETE",
    "HOTPLUG_SNAPSHOT", "HOTPLUG_NIC", "HOTPLUG_SAVEAS", "HOTPLUG_SAVEAS_POWEROFF",
    "HOTPLUG_SAVEAS_SUSPENDED", "SHUTDOWN_UNDEPLOY", "EPILOG_UNDEPLOY", "PROLOG_UNDEPLOY",
    "BOOT_UNDEPLOY", "HOTPLUG_PROLOG_POWEROFF", "HOTPLUG_EPILOG_POWEROFF", "BOOT_MIGRATE",
    "BOOT_FAILURE", "BOOT_MIGRATE_FAILURE", "PROLOG_MIGRATE_FAILURE", "PROLOG_FAILURE",
    "EPILOG_FAILURE", "EPILOG_STOP_FAILURE", "EPILOG_UNDEPLOY_FAILURE",
    "PROLOG_MIGRATE_POWEROFF", "PROLOG_MIGRATE_POWEROFF_FAILURE", "PROLOG_MIGRATE_SUSPEND",
    "PROLOG_MIGRATE_SUSPEND_FAILURE", "BOOT_UNDEPLOY_FAILURE", "BOOT_STOPPED_FAILURE",
    "PROLOG_RESUME_FAILURE", "PROLOG_UNDEPLOY_FAILURE", "DISK_SNAPSHOT_POWEROFF",
    "DISK_SNAPSHOT_REVERT_POWEROFF", "DISK_SNAPSHOT_DELETE_POWEROFF", "DISK_SNAPSHOT_SUSPENDED",
    "DISK_SNAPSHOT_REVERT_SUSPENDED", "DISK_SNAPSHOT_DELETE_SUSPENDED", "DISK_SNAPSHOT",
    "DISK_SNAPSHOT_REVERT", "DISK_SNAPSHOT_DELETE", "PROLOG_MIGRATE_UNKNOWN",
    "PROLOG_MIGRATE_UNKNOWN_FAILURE", "DISK_RESIZE", "DISK_RESIZE_POWEROFF",
    "DISK_RESIZE_UNDEPLOYED", "HOTPLUG_NIC_POWEROFF", "HOTPLUG_RESIZE",
    "HOTPLUG_SAVEAS_UNDEPLOYED", "HOTPLUG_SAVEAS_STOPPED", "BACKUP", "BACKUP_POWEROFF",
    "RESTORE"};
static_assert(sizeof(kLcmStates) / sizeof(kLcmStates[0]) ==
              StateNumber(LcmState::kRestore) + 1);

}  // namespace

// ---------------------------------------------------------------------------
// Responses.

absl::Status StatusFromOneError(int64_t code, absl::string_view message,
                                absl::string_view method) {
  // [api] error codes. The message already names the method ("[one.vm.info] ...").
  struct Row {
    int64_t code;
    absl::StatusCode status;
    absl::string_view reason;
  };
  static constexpr Row kTable[] = {
      {0x100, absl::StatusCode::kUnauthenticated, reasons::kProviderUnauthenticated},
      {0x200, absl::StatusCode::kPermissionDenied, reasons::kProviderPermissionDenied},
      {0x400, absl::StatusCode::kNotFound, reasons::kResourceNotFound},  // NO_EXISTS
      {0x800, absl::StatusCode::kFailedPrecondition, reasons::kWrongState},
      {0x1000, absl::StatusCode::kInvalidArgument, reasons::kProviderError},
      {0x2000, absl::StatusCode::kInternal, reasons::kProviderError},
      {0x4000, absl::StatusCode::kInternal, reasons::kProviderError},
      // Defined but never emitted by 5.6-6.10 ([oned] Request.cc); a lock is
      // a conflict.
      {0x8000, absl::StatusCode::kAborted, reasons::kConcurrentModification},
      // A Raft replication failure: the cluster may recover; retry.
      {0x10000, absl::StatusCode::kUnavailable, reasons::kProviderUnavailable},
  };
  absl::StatusCode status_code = absl::StatusCode::kUnknown;
  absl::string_view reason = reasons::kProviderError;
  for (const Row& row : kTable) {
    if (row.code == code) {
      status_code = row.status;
      reason = row.reason;
    }
  }
  return WithErrorInfo(absl::Status(status_code, absl::StrCat("OpenNebula: ", message)), reason,
                       {{"providerCode", absl::StrCat(code)},
                        {"providerMessage", std::string(message)},
                        {"method", std::string(method)}});
}

absl::StatusOr<xmlrpc::Value> ResultFromResponse(int http_status, absl::string_view body,
                                                 absl::string_view method) {
  if (http_status != 200) {
    absl::Status s = http::HttpStatusToStatus(
        http_status, absl::StrCat("OpenNebula answered ", method, " with HTTP ", http_status));
    return WithErrorInfo(s, DefaultReason(s.code()), {{"httpStatus", absl::StrCat(http_status)},
                                                      {"method", std::string(method)}});
  }
  absl::StatusOr<xmlrpc::Response> r = xmlrpc::ParseResponse(body);
  if (!r.ok()) return Malformed(method, r.status().message());
  if (r->fault) {
    return WithErrorInfo(
        absl::InternalError(absl::StrCat("OpenNebula refused the call ", method,
                                         " (XML-RPC fault ", r->fault_code, "): ",
                                         r->fault_string)),
        reasons::kProviderError,
        {{"faultCode", absl::StrCat(r->fault_code)}, {"method", std::string(method)}});
  }
  const xmlrpc::Value& v = r->value;
  if (v.type() != xmlrpc::Value::Type::kArray || v.AsArray().size() < 2 ||
      v.AsArray()[0].type() != xmlrpc::Value::Type::kBool) {
    return Malformed(method, "the result is not an array [boolean, result, ...]");
  }
  const auto& items = v.AsArray();
  if (items[0].AsBool()) return items[1];
  // 3 items (5.0-5.2), 4 (5.4-5.8) or 5 (5.10+): only the first 3 matter.
  if (items.size() < 3 || items[1].type() != xmlrpc::Value::Type::kString ||
      items[2].type() != xmlrpc::Value::Type::kInt) {
    return Malformed(method, "a failure must be [false, string message, int code, ...]");
  }
  return StatusFromOneError(items[2].AsInt(), items[1].AsString(), method);
}

absl::StatusOr<int64_t> IntResult(const xmlrpc::Value& v, absl::string_view method) {
  if (v.type() != xmlrpc::Value::Type::kInt) {
    return Malformed(method, absl::StrCat("expected an int result, got ",
                                          xmlrpc::Value::TypeName(v.type())));
  }
  return v.AsInt();
}

absl::StatusOr<std::string> StringResult(const xmlrpc::Value& v, absl::string_view method) {
  if (v.type() != xmlrpc::Value::Type::kString) {
    return Malformed(method, absl::StrCat("expected a string result, got ",
                                          xmlrpc::Value::TypeName(v.type())));
  }
  return v.AsString();
}

absl::StatusOr<xml::Document> ParseObjectDocument(const xmlrpc::Value& v, absl::string_view root,
                                                  absl::string_view method) {
  ASSIGN_OR_RETURN(std::string text, StringResult(v, method));
  // The document travelled entity-escaped inside the XML-RPC string ([api])
  // and is parsed a second time, with the same hardening.
  absl::StatusOr<xml::Document> doc = xml::Parse(text);
  if (!doc.ok()) return Malformed(method, doc.status().message());
  if (doc->Root().Name() != root) {
    return Malformed(method, absl::StrCat("expected <", root, ">, got <", doc->Root().Name(),
                                          ">"));
  }
  return doc;
}

// ---------------------------------------------------------------------------
// Request options and labels.

absl::StatusOr<std::string> ActionOption(const google::protobuf::Struct& options,
                                         const std::vector<std::string>& allowed) {
  absl::Status status;
  std::string action;
  for (const auto& [key, value] : options.fields()) {
    if (key != "action") {
      AddFieldViolation(status, absl::StrCat("provider_options.", key),
                        "unknown key; the OpenNebula provider reads only \"action\" here");
      continue;
    }
    if (value.kind_case() != google::protobuf::Value::kStringValue ||
        std::find(allowed.begin(), allowed.end(), value.string_value()) == allowed.end()) {
      AddFieldViolation(status, "provider_options.action",
                        absl::StrCat("must be one of ", absl::StrJoin(allowed, ", ")));
      continue;
    }
    action = value.string_value();
  }
  if (!status.ok()) return status;
  return action;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> LabelAttributes(
    const google::protobuf::Map<std::string, std::string>& labels, absl::string_view field) {
  std::vector<std::pair<std::string, std::string>> out;
  absl::Status status;
  for (const auto& [key, value] : labels) {
    const bool key_ok =
        !key.empty() && key.size() <= 63 && absl::ascii_islower(key[0]) &&
        std::all_of(key.begin(), key.end(), [](char c) {
          return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
        });
    if (!key_ok) {
      AddFieldViolation(status, absl::StrCat(field, ".", key),
                        "OpenNebula label keys are [a-z][a-z0-9_]{0,62} (they become "
                        "attribute names, which oned upper-cases)");
      continue;
    }
    if (absl::Status q = QuoteTemplateValue(value).status(); !q.ok()) {
      AddFieldViolation(status, absl::StrCat(field, ".", key), q.message());
      continue;
    }
    out.emplace_back(absl::StrCat(kLabelPrefix, absl::AsciiStrToUpper(key)), value);
  }
  if (!status.ok()) return status;
  std::sort(out.begin(), out.end());
  return out;
}

std::map<std::string, std::string> LabelsFromUserTemplate(const xml::Node* user_template) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : SingleAttributes(user_template)) {
    if (absl::StartsWith(k, kLabelPrefix) && k.size() > sizeof(kLabelPrefix) - 1) {
      out[absl::AsciiStrToLower(k.substr(sizeof(kLabelPrefix) - 1))] = v;
    }
  }
  return out;
}

absl::Status CheckVmName(absl::string_view name, absl::string_view field) {
  if (name.empty()) return InvalidField(field, "cannot be empty");
  if (name.size() > 128) return InvalidField(field, "OpenNebula names are at most 128 characters");
  for (char c : name) {
    if (absl::string_view("&|:\\\";/'#{}$<>\t\n\v\f\r").find(c) != absl::string_view::npos) {
      return InvalidField(field, absl::StrCat("OpenNebula names cannot contain '",
                                              absl::CEscape(std::string(1, c)), "'"));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Names.

bool IsNameId(absl::string_view id) {
  if (id.empty() || id.size() > 63 || !absl::ascii_islower(id[0])) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
  });
}

std::string ResourceId(int64_t oid, absl::string_view name) {
  return IsNameId(name) ? std::string(name) : absl::StrCat(oid);
}

absl::StatusOr<IdOrName> ParseResourceName(absl::string_view field, absl::string_view account,
                                           absl::string_view collection,
                                           absl::string_view resource) {
  std::vector<absl::string_view> parts = absl::StrSplit(resource, '/');
  if (parts.size() != 4 || parts[0] != "accounts" || parts[1] != account ||
      parts[2] != collection) {
    return InvalidField(field, absl::StrCat("must be accounts/", account, "/", collection,
                                            "/{id}"));
  }
  IdOrName out;
  int64_t oid = 0;
  if (!parts[3].empty() && std::all_of(parts[3].begin(), parts[3].end(), absl::ascii_isdigit)) {
    if (!absl::SimpleAtoi(parts[3], &oid) || oid > INT32_MAX) {
      return InvalidField(field, "the object id is out of range");
    }
    out.oid = oid;
    return out;
  }
  if (!IsNameId(parts[3])) {
    return InvalidField(field, "the id is an OpenNebula object id or a name of [a-z0-9-]");
  }
  out.name = std::string(parts[3]);
  return out;
}

// ---------------------------------------------------------------------------
// VM states.

v1::Instance::State InstanceState(VmState state, LcmState lcm) {
  using S = v1::Instance;
  using L = LcmState;
  switch (state) {
    case VmState::kInit: case VmState::kPending: case VmState::kCloning:
      return S::PROVISIONING;
    case VmState::kHold: case VmState::kStopped: case VmState::kPoweroff:
    case VmState::kUndeployed:
      return S::STOPPED;
    case VmState::kSuspended: return S::SUSPENDED;
    case VmState::kDone: return S::TERMINATED;
    case VmState::kFailed: case VmState::kCloningFailure: return S::ERROR;
    case VmState::kActive: break;
    default: return S::STATE_UNSPECIFIED;
  }
  switch (lcm) {
    case L::kRunning: case L::kMigrate: case L::kHotplug: case L::kHotplugSnapshot:
    case L::kHotplugNic: case L::kHotplugSaveas: case L::kDiskSnapshot:
    case L::kDiskSnapshotRevert: case L::kDiskSnapshotDelete: case L::kDiskResize:
    case L::kHotplugResize: case L::kBackup: case L::kRestore:
      return S::RUNNING;  // running, migrating, hotplugging, snapshots, backups
    case L::kLcmInit: case L::kProlog: case L::kBoot: case L::kPrologMigrate:
    case L::kPrologResume: case L::kBootUnknown: case L::kBootPoweroff: case L::kBootSuspended:
    case L::kBootStopped: case L::kPrologUndeploy: case L::kBootUndeploy: case L::kBootMigrate:
    case L::kPrologMigratePoweroff: case L::kPrologMigrateSuspend: case L::kPrologMigrateUnknown:
      return S::PROVISIONING;  // prolog and boot paths
    case L::kSaveStop: case L::kSaveSuspend: case L::kSaveMigrate: case L::kEpilogStop:
    case L::kShutdownPoweroff: case L::kShutdownUndeploy: case L::kEpilogUndeploy:
      return S::STOPPING;  // save, shutdown-poweroff/undeploy, epilog-stop/undeploy
    case L::kEpilog: case L::kShutdown: case L::kCancel: case L::kCleanupDelete:
      return S::TERMINATING;  // epilog, shutdown, cleanup-delete
    case L::kFailure: case L::kUnknown: case L::kBootFailure: case L::kBootMigrateFailure:
    case L::kPrologMigrateFailure: case L::kPrologFailure: case L::kEpilogFailure:
    case L::kEpilogStopFailure: case L::kEpilogUndeployFailure:
    case L::kPrologMigratePoweroffFailure: case L::kPrologMigrateSuspendFailure:
    case L::kBootUndeployFailure: case L::kBootStoppedFailure: case L::kPrologResumeFailure:
    case L::kPrologUndeployFailure: case L::kPrologMigrateUnknownFailure:
      return S::ERROR;  // failures and UNKNOWN (the hypervisor lost it)
    default:
      return S::RUNNING;  // the remaining ACTIVE states keep the guest up
  }
}

std::string LcmStateName(LcmState lcm) {
  const int l = StateNumber(lcm);
  const int n = static_cast<int>(sizeof(kLcmStates) / sizeof(kLcmStates[0]));
  return l >= 0 && l < n ? kLcmStates[l] : Num(l);
}

std::string ProviderState(VmState state, LcmState lcm) {
  const int s = StateNumber(state), l = StateNumber(lcm);
  const int states = static_cast<int>(sizeof(kVmStates) / sizeof(kVmStates[0]));
  std::string out = s >= 0 && s < states ? kVmStates[s] : Num(s);
  if (state != VmState::kActive) return out;
  const int n = static_cast<int>(sizeof(kLcmStates) / sizeof(kLcmStates[0]));
  return absl::StrCat(out, "/", l >= 0 && l < n ? kLcmStates[l] : Num(l));
}

}  // namespace cloudplane::adapters::opennebula
