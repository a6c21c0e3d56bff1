#include "clients/cloudplanectl/output.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"

namespace cloudplane::ctl {

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--output must be table or json, not \"", text, "\""));
}

Table::Table(std::vector<std::string> headers) { rows_.push_back(std::move(headers)); }

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(rows_[0].size());
  for (std::string& cell : cells) {
    if (cell.empty()) cell = "-";
  }
  rows_.push_back(std::move(cells));
}

std::string Table::RenderRow(const std::vector<std::string>& cells,
                             const std::vector<size_t>& widths) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    absl::StrAppend(&line, cells[i]);
    // The last column is not padded, so lines carry no trailing spaces.
    if (i + 1 < cells.size()) {
      size_t width = i < widths.size() ? widths[i] : 0;
      line.append(width > cells[i].size() ? width - cells[i].size() : 0, ' ');
      line.append("  ");
    }
  }
  line.push_back('\n');
  return line;
}

std::string Table::Render() const {
  std::vector<size_t> widths(rows_[0].size(), 0);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) out += RenderRow(row, widths);
  return out;
}

std::string ToJson(const google::protobuf::Message& message, bool compact) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = !compact;
  // The .proto names, as grpcurl and docs/grpcurl.md show them.
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    // Only an Any whose type is not linked in can fail; say so rather than
    // print half a message.
    return absl::StrCat("{\"error\": \"cannot print ", message.GetTypeName(),
                        " as JSON: ", status.ToString(), "\"}\n");
  }
  // add_whitespace output already ends in a newline; compact output does not.
  if (json.empty() || json.back() != '\n') json.push_back('\n');
  return json;
}

std::string FormatTime(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "-";
  google::protobuf::Timestamp seconds;
  seconds.set_seconds(time.seconds());  // people do not need the nanoseconds
  return google::protobuf::util::TimeUtil::ToString(seconds);
}

std::string CodeName(int code) {
  static constexpr const char* kNames[] = {
      "OK",
      "CANCELLED",
      "UNKNOWN",
      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED",
      "NOT_FOUND",
      "ALREADY_EXISTS",
      "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION",
      "ABORTED",
      "OUT_OF_RANGE",
      "UNIMPLEMENTED",
      "INTERNAL",
      "UNAVAILABLE",
      "DATA_LOSS",
      "UNAUTHENTICATED",
  };
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return absl::StrCat("CODE_", code);
}

google::rpc::Status RichStatus(const grpc::Status& status) {
  google::rpc::Status rich;
  if (status.error_details().empty() || !rich.ParseFromString(status.error_details())) {
    rich.Clear();
    rich.set_code(status.error_code());
    rich.set_message(status.error_message());
  }
  return rich;
}

std::string FormatError(const google::rpc::Status& status) {
  std::string out = absl::StrCat("error: ", CodeName(status.code()), ": ", status.message(), "\n");
  for (const google::protobuf::Any& detail : status.details()) {
    google::rpc::ErrorInfo info;
    google::rpc::BadRequest bad_request;
    google::rpc::RetryInfo retry;
    if (detail.UnpackTo(&info)) {
      std::vector<std::pair<std::string, std::string>> metadata(info.metadata().begin(),
                                                                info.metadata().end());
      std::sort(metadata.begin(), metadata.end());  // map order is not stable
      absl::StrAppend(&out, "  reason: ", info.reason(), " (", info.domain(), ")");
      for (const auto& [key, value] : metadata) absl::StrAppend(&out, " ", key, "=", value);
      out += "\n";
    } else if (detail.UnpackTo(&bad_request)) {
      for (const auto& v : bad_request.field_violations()) {
        absl::StrAppend(&out, "  field ", v.field(), ": ", v.description(), "\n");
      }
    } else if (detail.UnpackTo(&retry)) {
      // The server's suggested wait; gRPC's own retries of UNAVAILABLE are over by now.
      absl::Duration delay = absl::Seconds(retry.retry_delay().seconds()) +
                             absl::Nanoseconds(retry.retry_delay().nanos());
      absl::StrAppend(&out, "  retry after ", absl::FormatDuration(delay), "\n");
    } else {
      absl::StrAppend(&out, "  detail: ", detail.type_url(), "\n");
    }
  }
  return out;
}

}  // namespace cloudplane::ctl
