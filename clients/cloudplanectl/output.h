// How cloudplanectl shows results: aligned tables for people, JSON for
// scripts, and errors with their code, reason and field violations. Pure
// formatting into strings; the caller writes them out.
#ifndef CLOUDPLANE_CLIENTS_CLOUDPLANECTL_OUTPUT_H_
#define CLOUDPLANE_CLIENTS_CLOUDPLANECTL_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/support/status.h"

namespace cloudplane::ctl {

enum class OutputFormat { kTable, kJson };

// "table" or "json"; INVALID_ARGUMENT otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text);

// Rows under upper-case headers, columns padded to their widest cell and
// separated by two spaces; no trailing spaces. An empty cell shows as "-".
class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  // `cells` must have one entry per header.
  void AddRow(std::vector<std::string> cells);

  // The header line and the rows, each ending in "\n". With no rows, only
  // the header.
  std::string Render() const;

  // One row rendered with the column widths the headers alone give (used for
  // streams, where later rows are not known yet); ends in "\n".
  static std::string RenderRow(const std::vector<std::string>& cells,
                               const std::vector<size_t>& widths);

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

// The message in proto3 JSON with the .proto field names, indented, ending in
// "\n"; `compact` puts it on one line (for streams: one message per line).
// Any fields are expanded with the types linked into the binary.
std::string ToJson(const google::protobuf::Message& message, bool compact = false);

// "2026-11-23T09:19:13Z"; "-" when unset.
std::string FormatTime(const google::protobuf::Timestamp& time);

// "INVALID_ARGUMENT" for grpc::StatusCode 3; "CODE_17" for unknown values.
std::string CodeName(int code);

// The google.rpc.Status a failed call carries in its details; when it has
// none, one made of the code and message alone.
google::rpc::Status RichStatus(const grpc::Status& status);

// An error for people, ending in "\n":
//   error: INVALID_ARGUMENT: instance_id: must match …
//     reason: INVALID_ARGUMENT (cloudplane.dev) field=instance_id
//     field instance_id: must match …
// ErrorInfo metadata is printed as key=value pairs, BadRequest as one line per
// field violation, other details by their type name.
std::string FormatError(const google::rpc::Status& status);

}  // namespace cloudplane::ctl

#endif  // CLOUDPLANE_CLIENTS_CLOUDPLANECTL_OUTPUT_H_
