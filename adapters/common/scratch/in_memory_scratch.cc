#include "adapters/common/scratch/in_memory_scratch.h"

#include <utility>

#include "adapters/common/scratch/store_scratch.h"
#include "store/store.h"

namespace cloudplane::adapters {
namespace {

class InMemoryScratch final : public ScratchStore {
 public:
  InMemoryScratch(std::unique_ptr<store::Store> store, EventLoop* loop, std::string account)
      : store_(std::move(store)), scratch_(NewStoreScratch(store_.get(), loop, std::move(account))) {}

  absl::Status Load(absl::string_view collection) override { return scratch_->Load(collection); }
  absl::StatusOr<std::string> Get(absl::string_view collection,
                                  absl::string_view id) const override {
    return scratch_->Get(collection, id);
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> List(
      absl::string_view collection) const override {
    return scratch_->List(collection);
  }
  absl::Status Put(absl::string_view collection, absl::string_view id, std::string bytes,
                   WriteDone done) override {
    return scratch_->Put(collection, id, std::move(bytes), std::move(done));
  }
  absl::Status Delete(absl::string_view collection, absl::string_view id,
                      WriteDone done) override {
    return scratch_->Delete(collection, id, std::move(done));
  }

 private:
  const std::unique_ptr<store::Store> store_;
  const std::unique_ptr<ScratchStore> scratch_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ScratchStore>> NewInMemoryScratch(EventLoop* loop,
                                                                  std::string account) {
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::OpenInMemory();
  if (!store.ok()) return store.status();
  return std::make_unique<InMemoryScratch>(*std::move(store), loop, std::move(account));
}

}  // namespace cloudplane::adapters
