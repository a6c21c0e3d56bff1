#include "adapters/common/scratch/durable_put.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters {
namespace {

// Runs the continuation exactly once: with the status of the durable write,
// or, when the last owner lets go without one (the EventLoop dropped the
// write and its callback at shutdown), with UNAVAILABLE. Finish and the
// destructor never race: the destructor runs after the last owner (the
// write's callback or the refused Put's caller) is done with it.
class WhenWritten {
 public:
  WhenWritten(std::string what, absl::AnyInvocable<void(absl::Status)> then)
      : what_(std::move(what)), then_(std::move(then)) {}
  ~WhenWritten() {
    Run(WithErrorInfo(absl::UnavailableError(absl::StrCat(
                          "the mark of ", what_, " was not written: the server is shutting down")),
                      reasons::kStateStoreFailed));
  }

  void Finish(absl::Status status) {
    if (!status.ok()) {
      status = WithErrorInfo(
          absl::Status(status.code(), absl::StrCat("could not mark ", what_, ": ",
                                                   status.message())),
          reasons::kStateStoreFailed);
    }
    Run(std::move(status));
  }

 private:
  void Run(absl::Status status) {
    if (!then_) return;
    absl::AnyInvocable<void(absl::Status)> then = std::move(then_);
    then_ = nullptr;
    then(std::move(status));
  }

  const std::string what_;
  absl::AnyInvocable<void(absl::Status)> then_;
};

}  // namespace

void PutDurably(ScratchStore& scratch, absl::string_view collection, absl::string_view id,
                std::string bytes, std::string what,
                absl::AnyInvocable<void(absl::Status)> then) {
  auto written = std::make_shared<WhenWritten>(std::move(what), std::move(then));
  absl::Status queued =
      scratch.Put(collection, id, std::move(bytes),
                  [written](absl::Status s) mutable { written->Finish(std::move(s)); });
  if (!queued.ok()) written->Finish(std::move(queued));
}

}  // namespace cloudplane::adapters
