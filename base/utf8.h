// UTF-8 checks for text that comes from providers. Protobuf `string` fields
// must hold valid UTF-8 (a gRPC client cannot parse a message otherwise), so
// provider text is checked before it reaches one:
//  - data (names, option values, anything that may be sent back to the
//    provider) is refused when it is not valid: adapters/common/json walks
//    every parsed document, libxml2 refuses invalid documents itself;
//  - messages only people read (error messages, ErrorInfo metadata) are
//    repaired (RepairUtf8) and cut at a character boundary (CutUtf8), so a
//    broken message never hides the error it reports.
// Valid means RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), at
// most U+10FFFF, no truncated sequence.
#ifndef CLOUDPLANE_BASE_UTF8_H_
#define CLOUDPLANE_BASE_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace cloudplane {

bool IsValidUtf8(absl::string_view text);

// `text` with each invalid sequence (as much of it as makes one invalid
// prefix) replaced by U+FFFD; valid text comes back unchanged.
std::string RepairUtf8(absl::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not
// end inside a character (a valid text stays valid).
absl::string_view CutUtf8(absl::string_view text, size_t max_bytes);

// Provider text for people (an error body, a message): ASCII whitespace
// stripped, invalid UTF-8 repaired, then at most `max_bytes` bytes cut
// between characters with "..." added when something was cut. Repairing
// comes first because each invalid byte grows into a three-byte U+FFFD.
std::string ShortText(absl::string_view text, size_t max_bytes);

}  // namespace cloudplane

#endif  // CLOUDPLANE_BASE_UTF8_H_
