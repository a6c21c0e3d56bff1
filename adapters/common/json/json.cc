#include "adapters/common/json/json.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/utf8.h"
#include "rapidjson/encodedstream.h"
#include "rapidjson/error/en.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::json {

namespace rj = rapidjson;

absl::Status Malformed(absl::string_view provider, absl::string_view detail) {
  return WithErrorInfo(
      absl::InternalError(absl::StrCat(provider, " sent malformed JSON: ", detail)),
      reasons::kProviderMalformedResponse);
}

namespace {

bool IsValidString(const rj::Value& v) {
  return IsValidUtf8(absl::string_view(v.GetString(), v.GetStringLength()));
}

// The path (`$.units[3].options[0].value`) of the first value in `v` that
// cannot be carried on, appended to `path`, with why; nullptr if none. Such
// values are strings and member names that are not valid UTF-8, and numbers
// beyond a double's range, which RapidJSON reads as infinity (json_fuzz
// found "2e308") and which no JSON text can spell again.
const char* FindUnfit(const rj::Value& v, std::string& path) {
  if (v.IsString()) return IsValidString(v) ? nullptr : "is not valid UTF-8 (a lone surrogate escape?)";
  if (v.IsDouble()) return std::isfinite(v.GetDouble()) ? nullptr : "is a number out of range";
  if (v.IsArray()) {
    for (rj::SizeType i = 0; i < v.Size(); ++i) {
      const size_t at = path.size();
      absl::StrAppend(&path, "[", i, "]");
      if (const char* why = FindUnfit(v[i], path)) return why;
      path.resize(at);
    }
    return nullptr;
  }
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      if (!IsValidString(it->name)) {
        absl::StrAppend(&path, ".<a member name>");
        return "is not valid UTF-8 (a lone surrogate escape?)";
      }
      const size_t at = path.size();
      absl::StrAppend(&path, ".", RepairUtf8(absl::string_view(it->name.GetString(),
                                                               it->name.GetStringLength())));
      if (const char* why = FindUnfit(it->value, path)) return why;
      path.resize(at);
    }
  }
  return nullptr;
}

}  // namespace

absl::Status Parse(absl::string_view body, absl::string_view provider, rj::Document& doc,
                   ParseOptions options) {
  // RapidJSON takes a NUL for the end of the input, so "1\0garbage" would
  // parse as 1 (json_fuzz). JSON text has no raw NUL anywhere.
  if (const size_t nul = body.find('\0'); nul != absl::string_view::npos) {
    return Malformed(provider, absl::StrCat("a NUL byte at offset ", nul));
  }
  // Numbers are read with RapidJSON's normal-precision path: up to 3 units
  // in the last place off a correctly rounded read (measured over 2 million
  // random numbers), so a double serialised and read again may move by as
  // much (json_test pins the bound). Its full-precision path is not usable in
  // 1.1.0: json_fuzz found it reading "0e-83" as 1.8e-102 and
  // "184467440737095516156000" as 16384.
  constexpr unsigned kFlags = rj::kParseValidateEncodingFlag;
  if (options.trailing_commas) {
    doc.Parse<kFlags | rj::kParseTrailingCommasFlag>(body.data(), body.size());
  } else {
    doc.Parse<kFlags>(body.data(), body.size());
  }
  if (doc.HasParseError()) {
    return Malformed(provider, absl::StrCat(rj::GetParseError_En(doc.GetParseError()),
                                            " at offset ", doc.GetErrorOffset()));
  }
  // kParseValidateEncodingFlag checks the raw bytes, but a \u escape is
  // decoded after that check: "\udd5d" (a lone surrogate) becomes bytes
  // that are not UTF-8. Such a string is not text and may be sent back to
  // the provider, so the whole answer is refused rather than guessed at.
  // Numbers that overflow a double are refused for the same reason.
  std::string path = "$";
  if (const char* why = FindUnfit(doc, path)) {
    return Malformed(provider, absl::StrCat("the value at ", path, " ", why));
  }
  return absl::OkStatus();
}

absl::Status CheckSyntax(absl::string_view body, absl::string_view provider,
                         ParseOptions options) {
  if (const size_t nul = body.find('\0'); nul != absl::string_view::npos) {
    return Malformed(provider, absl::StrCat("a NUL byte at offset ", nul));
  }
  // The reader Document::Parse runs, with a handler that keeps nothing.
  rj::MemoryStream memory(body.data(), body.size());
  rj::EncodedInputStream<rj::UTF8<>, rj::MemoryStream> input(memory);
  rj::Reader reader;
  rj::BaseReaderHandler<> ignore;
  constexpr unsigned kFlags = rj::kParseValidateEncodingFlag;
  const rj::ParseResult result =
      options.trailing_commas
          ? reader.Parse<kFlags | rj::kParseTrailingCommasFlag>(input, ignore)
          : reader.Parse<kFlags>(input, ignore);
  if (result.IsError()) {
    return Malformed(provider, absl::StrCat(rj::GetParseError_En(result.Code()), " at offset ",
                                            result.Offset()));
  }
  return absl::OkStatus();
}

const rj::Value* Member(const rj::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

std::optional<int64_t> Int64(const rapidjson::Value& value) {
  if (value.IsInt64()) return value.GetInt64();
  if (value.IsDouble()) {
    const double d = value.GetDouble();
    // 2^53: every integer below it is exact in a double.
    if (std::isfinite(d) && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
    return std::nullopt;
  }
  int64_t out;
  if (value.IsString() &&
      absl::SimpleAtoi(absl::string_view(value.GetString(), value.GetStringLength()), &out)) {
    return out;
  }
  return std::nullopt;
}

std::string Serialize(const rj::Value& value) {
  rj::StringBuffer buffer;
  rj::Writer<rj::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace cloudplane::json
