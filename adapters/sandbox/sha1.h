// SHA-1 (FIPS 180-4), for fleet-compatible unit hashes.
//
// fleet identifies a unit file by the hex SHA-1 of its serialized text; the
// sandbox reports the same value so that clients can compare hashes across
// providers. SHA-1 is used here as a content fingerprint only, never for
// security. Written in-tree so the sandbox needs no crypto library.
#ifndef CLOUDPLANE_ADAPTERS_SANDBOX_SHA1_H_
#define CLOUDPLANE_ADAPTERS_SANDBOX_SHA1_H_

#include <string>

#include "absl/strings/string_view.h"

namespace cloudplane::adapters::sandbox {

// The 40 lowercase hex digits of SHA-1(`data`).
std::string Sha1Hex(absl::string_view data);

}  // namespace cloudplane::adapters::sandbox

#endif  // CLOUDPLANE_ADAPTERS_SANDBOX_SHA1_H_
