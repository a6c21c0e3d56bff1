// fleet-compatible unit file text and hash.
#ifndef CLOUDPLANE_ADAPTERS_SANDBOX_UNIT_FILE_H_
#define CLOUDPLANE_ADAPTERS_SANDBOX_UNIT_FILE_H_

#include <string>

#include "cloudplane/v1/units.pb.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace cloudplane::adapters::sandbox {

// The unit file as fleet serializes it (go-systemd unit.Serialize): sections
// in order of first appearance, each as `[Section]\n` followed by its
// `Name=Value\n` lines in the given order, a blank line between sections.
std::string SerializeUnitFile(const google::protobuf::RepeatedPtrField<v1::UnitOption>& options);

// fleet's unit hash: the hex SHA-1 of SerializeUnitFile(options).
std::string UnitFileHash(const google::protobuf::RepeatedPtrField<v1::UnitOption>& options);

}  // namespace cloudplane::adapters::sandbox

#endif  // CLOUDPLANE_ADAPTERS_SANDBOX_UNIT_FILE_H_
