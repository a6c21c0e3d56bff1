#include "adapters/common/scratch/store_scratch.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/errors.h"
#include "store/store.h"

namespace cloudplane::adapters {
namespace {

std::string StoreCollection(absl::string_view collection) {
  return absl::StrCat("scratch/", collection);
}

class StoreScratch : public ScratchStore {
 public:
  using Collection = std::map<std::string, std::string, std::less<>>;

  StoreScratch(store::Store* store, EventLoop* loop, std::string account)
      : store_(store), loop_(loop), account_(std::move(account)) {}

  absl::Status Load(absl::string_view collection) override {
    if (collection.empty()) return InvalidField("collection", "must not be empty");
    {
      absl::MutexLock lock(&mu_);
      if (data_.contains(collection)) return absl::OkStatus();
    }
    Collection loaded;
    std::string token;
    do {
      absl::StatusOr<store::ResourcePage> page =
          store_->ListResources(account_, StoreCollection(collection), 1000, token);
      if (!page.ok()) return page.status();
      for (store::ResourceEntry& e : page->resources) loaded[e.id] = std::move(e.bytes);
      token = page->next_page_token;
    } while (!token.empty());
    absl::MutexLock lock(&mu_);
    data_.try_emplace(std::string(collection), std::move(loaded));
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Get(absl::string_view collection,
                                  absl::string_view id) const override {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<const Collection*> c = Find(collection, id);
    if (!c.ok()) return c.status();
    auto it = (*c)->find(id);
    if (it == (*c)->end()) {
      return absl::NotFoundError(absl::StrCat("no ", collection, " entry ", id));
    }
    return it->second;
  }

  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> List(
      absl::string_view collection) const override {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<const Collection*> c = Find(collection, "-");
    if (!c.ok()) return c.status();
    return std::vector<std::pair<std::string, std::string>>((*c)->begin(), (*c)->end());
  }

  absl::Status Put(absl::string_view collection, absl::string_view id, std::string bytes,
                   WriteDone done) override {
    {
      absl::MutexLock lock(&mu_);
      absl::StatusOr<const Collection*> c = Find(collection, id);
      if (!c.ok()) return c.status();
      data_.find(collection)->second[std::string(id)] = bytes;
    }
    Persist(collection, id, std::move(bytes), /*erase=*/false, std::move(done));
    return absl::OkStatus();
  }

  absl::Status Delete(absl::string_view collection, absl::string_view id,
                      WriteDone done) override {
    {
      absl::MutexLock lock(&mu_);
      absl::StatusOr<const Collection*> c = Find(collection, id);
      if (!c.ok()) return c.status();
      auto& entries = data_.find(collection)->second;
      if (auto it = entries.find(id); it != entries.end()) entries.erase(it);
    }
    Persist(collection, id, "", /*erase=*/true, std::move(done));
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<const Collection*> Find(absl::string_view collection, absl::string_view id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (collection.empty()) return InvalidField("collection", "must not be empty");
    if (id.empty()) return InvalidField("id", "must not be empty");
    auto it = data_.find(collection);
    if (it == data_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("scratch collection ", collection, " was not loaded"));
    }
    return &it->second;
  }

  // Writes run on the loop in the order they were made, so the database ends
  // as the memory did.
  void Persist(absl::string_view collection, absl::string_view id, std::string bytes, bool erase,
               WriteDone done) {
    auto write = [store = store_, account = account_, collection = StoreCollection(collection),
                  id = std::string(id), bytes = std::move(bytes), erase,
                  done = std::move(done)]() mutable {
      absl::Status status =
          erase ? store->DeleteResource(account, collection, id).status()
                : store->PutResource(account, collection, id, bytes);
      if (done) std::move(done)(status);
    };
    if (!loop_->Post(std::move(write))) {
      // The loop is shutting down and dropped the write (and `done` with it):
      // the memory holds it for this process only.
    }
  }

  store::Store* const store_;
  EventLoop* const loop_;
  const std::string account_;
  mutable absl::Mutex mu_;
  std::map<std::string, Collection, std::less<>> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<ScratchStore> NewStoreScratch(store::Store* store, EventLoop* loop,
                                              std::string account) {
  return std::make_unique<StoreScratch>(store, loop, std::move(account));
}

}  // namespace cloudplane::adapters
