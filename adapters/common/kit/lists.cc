#include "adapters/common/kit/lists.h"

#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace cloudplane::adapters::kit {

absl::Status CheckPaging(int32_t page_size, absl::string_view page_token) {
  if (absl::StatusOr<int> size = paging::EffectivePageSize(page_size); !size.ok()) {
    return size.status();
  }
  return paging::DecodeToken(page_token).status();
}

void FillPage(google::protobuf::Message& response,
              std::vector<std::unique_ptr<google::protobuf::Message>> items,
              const std::string& next_page_token) {
  const google::protobuf::Descriptor* d = response.GetDescriptor();
  const google::protobuf::Reflection* r = response.GetReflection();
  if (const auto* next = d->FindFieldByName("next_page_token"); next != nullptr) {
    r->SetString(&response, next, next_page_token);
  }
  if (items.empty()) return;
  const google::protobuf::Descriptor* item_type = items.front()->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->is_repeated() && f->message_type() == item_type) {
      for (auto& item : items) r->AddAllocatedMessage(&response, f, item.release());
      return;
    }
  }
}

}  // namespace cloudplane::adapters::kit
