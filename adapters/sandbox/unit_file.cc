#include "adapters/sandbox/unit_file.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/sandbox/sha1.h"

namespace cloudplane::adapters::sandbox {

std::string SerializeUnitFile(const google::protobuf::RepeatedPtrField<v1::UnitOption>& options) {
  std::vector<std::string> sections;
  for (const v1::UnitOption& option : options) {
    bool seen = false;
    for (const std::string& s : sections) seen = seen || s == option.section();
    if (!seen) sections.push_back(option.section());
  }
  std::string out;
  for (size_t i = 0; i < sections.size(); ++i) {
    absl::StrAppend(&out, "[", sections[i], "]\n");
    for (const v1::UnitOption& option : options) {
      if (option.section() == sections[i]) {
        absl::StrAppend(&out, option.name(), "=", option.value(), "\n");
      }
    }
    if (i + 1 < sections.size()) out.push_back('\n');
  }
  return out;
}

std::string UnitFileHash(const google::protobuf::RepeatedPtrField<v1::UnitOption>& options) {
  return Sha1Hex(SerializeUnitFile(options));
}

}  // namespace cloudplane::adapters::sandbox
