// Helpers shared by the cloudsigma_wire*.cc files (reading objects, meta and
// provider_details, writing meta). Internal to the wire layer; defined in
// cloudsigma_wire.cc.
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_WIRE_INTERNAL_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_WIRE_INTERNAL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "google/protobuf/struct.pb.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::adapters::cloudsigma::wire_internal {

// INTERNAL, PROVIDER_MALFORMED_RESPONSE: "CloudSigma sent malformed JSON: <detail>".
absl::Status Malformed(absl::string_view detail);

// json::Parse with CloudSigma's tolerances (trailing commas).
absl::Status Parse(absl::string_view body, rapidjson::Document& doc);

// Member `key` as text: a string, an integer's digits, else "" (absent, null).
std::string String(const rapidjson::Value& obj, const char* key);

// The string entries of obj.meta.
std::map<std::string, std::string> Meta(const rapidjson::Value& obj);

// The object's chosen id (meta kIdMetaKey), else its uuid.
std::string IdOf(const rapidjson::Value& obj);

// Sets s[key] to `value` unless it is empty.
void SetDetail(google::protobuf::Struct* s, const char* key, const std::string& value);

// A POST body creating one object, `{"objects":[{…}]}` (CloudSigma takes
// lists of objects to create); `members` writes the object's members.
std::string CreateEnvelope(
    absl::FunctionRef<void(rapidjson::Writer<rapidjson::StringBuffer>&)> members);

// Writes `"meta": {…}`.
void WriteMeta(rapidjson::Writer<rapidjson::StringBuffer>& w,
               const std::map<std::string, std::string>& m);

// kIdMetaKey / kOperationMetaKey entries for the non-empty arguments.
std::map<std::string, std::string> ReservedMeta(absl::string_view chosen_id,
                                                absl::string_view operation);

// Member `key` as an integer: a number or a numeric string (drives.rst:
// "size"); 0 when absent or not an integer that fits.
int64_t Int(const rapidjson::Value& obj, const char* key);

// The uuid of a reference: `{"resource_uri","uuid"}` or a plain string.
std::string RefUuid(const rapidjson::Value* v);

// The chosen id `ids` maps `uuid` to, else the uuid itself.
std::string Mapped(const IdMap& ids, const std::string& uuid);

// Sets s[key] to the list of `items`.
void SetList(google::protobuf::Struct* s, const char* key, const std::vector<std::string>& items);

// The subscription `id` and, when `subscriptions` knows it, its end time,
// status and auto_renew, as details in `d`.
void PutSubscription(const std::string& id, const SubscriptionMap& subscriptions,
                     google::protobuf::Struct* d);

// The `nics` item for `nic`: a private NIC names its VLAN, a public one has
// an IPv4 configuration (DHCP, or its static IP); the model, virtio unless
// given. Used by ServerCreateBody and EditServer.
rapidjson::Value NicValue(const NicSpec& nic, rapidjson::Document::AllocatorType& a);

// The labels of an object: its meta keys outside kReservedMetaPrefix.
template <typename MapT>
void PutLabels(const rapidjson::Value& obj, MapT* labels) {
  for (const auto& [k, v] : Meta(obj)) {
    if (!absl::StartsWith(k, kReservedMetaPrefix)) (*labels)[k] = v;
  }
}

}  // namespace cloudplane::adapters::cloudsigma::wire_internal

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_WIRE_INTERNAL_H_
