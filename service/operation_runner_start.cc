// OperationRunner's start threads (Options::start_threads) and their queue:
// Start records the operation in memory and queues it; a start thread
// runs Begin, which inserts it in the store and drives it.
#include "service/operation_runner.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errors.h"
#include "cloudplane/v1/common.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"
#include "openssl/evp.h"
#include "service/operation_runner_internal.h"

namespace cloudplane::service {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kAccepted[] = "accepted";

std::string NewOperationName() {
  absl::BitGen gen;
  return absl::StrFormat("operations/%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

// The SHA-256 (32 raw bytes) of the request without the fields that do not
// change its meaning, serialized deterministically: two requests are "the
// same" when these hashes are equal. A hash, not the bytes, because the
// fingerprint is kept as long as the operation, and the request may carry
// input-only secrets (user_data, passwords in provider options). The store
// rewrote fingerprints of older files to the same hash (store/store.cc).
std::string Fingerprint(const google::protobuf::Message& request) {
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  const auto* descriptor = copy->GetDescriptor();
  for (const char* field : {"request_id", "validate_only"}) {
    if (const auto* f = descriptor->FindFieldByName(field)) {
      copy->GetReflection()->ClearField(copy.get(), f);
    }
  }
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  copy->SerializeToCodedStream(&coded);
  coded.Trim();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    // Only without memory or a usable libcrypto: a true invariant.
    std::cerr << "cloudplaned: SHA-256 of a request failed" << std::endl;
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

}  // namespace

OperationRunner::OperationRunner(store::Store* store, EventLoop* loop, WatchHub* hub,
                                 const AccountTable* accounts, Options options)
    : store_(store), loop_(loop), hub_(hub), accounts_(accounts), options_(options) {
  for (int i = 0; i < std::max(1, options_.start_threads); ++i) {
    start_threads_.emplace_back([this] { StartThreadMain(); });
  }
}

OperationRunner::~OperationRunner() {
  {
    absl::MutexLock lock(&start_mu_);
    start_stop_ = true;
  }
  for (std::thread& t : start_threads_) t.join();
}

void OperationRunner::StartThreadMain() {
  while (true) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&start_mu_);
      start_mu_.Await(absl::Condition(
          +[](OperationRunner* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->start_mu_) {
            return r->start_stop_ || !r->start_queue_.empty();
          },
          this));
      // Queued Starts run even after the stop: each answers its caller.
      if (start_queue_.empty()) return;
      task = std::move(start_queue_.front());
      start_queue_.pop_front();
    }
    std::move(task)();
  }
}

void OperationRunner::Start(const std::string& method, const std::string& account,
                            const std::string& target, const google::protobuf::Message& request,
                            const std::string& request_id, const std::string& principal,
                            Accepted done) {
  store::OperationRecord record;
  record.op.set_name(NewOperationName());
  v1::OperationMetadata metadata;
  metadata.set_target(target);
  metadata.set_method(method);
  metadata.set_account(absl::StrCat("accounts/", account));
  metadata.set_request_id(request_id);
  metadata.set_principal(principal);
  *metadata.mutable_create_time() = TimeUtil::GetCurrentTime();
  *metadata.mutable_update_time() = metadata.create_time();
  metadata.set_status_detail("accepted");
  SetMetadata(record.op, metadata);
  record.account = account;
  record.method = method;
  record.request_id = request_id;
  record.request_fingerprint = Fingerprint(request);
  record.phase = kAccepted;
  // Until the provider has taken the request, the request itself is what is
  // needed to resume: it is kept as the poll token of the accepted phase.
  google::protobuf::Any packed;
  packed.PackFrom(request);
  record.poll_token = packed.SerializeAsString();
  absl::MutexLock lock(&start_mu_);
  start_queue_.push_back([this, record = std::move(record), request_id,
                          done = std::move(done)]() mutable {
    Begin(std::move(record), std::move(request_id), std::move(done));
  });
}

void OperationRunner::Begin(store::OperationRecord record, std::string request_id,
                            Accepted done) {
  absl::StatusOr<store::InsertResult> inserted = store_->InsertOperation(record);
  if (!inserted.ok()) {
    if (inserted.status().code() == absl::StatusCode::kAlreadyExists) {
      std::move(done)(WithErrorInfo(
          absl::AlreadyExistsError(absl::StrCat(
              "request_id \"", request_id, "\" was already used for a different request")),
          "REQUEST_ID_REUSED", {{"requestId", request_id}}));
      return;
    }
    std::move(done)(inserted.status());
    return;
  }
  if (inserted->existed) {
    std::move(done)(inserted->record.op);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      // Recorded but not started: it runs after the next start.
      std::move(done)(inserted->record.op);
      return;
    }
  }
  Drive(std::move(inserted->record), std::move(done), 0);
}

}  // namespace cloudplane::service
