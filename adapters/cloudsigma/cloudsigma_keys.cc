// ComputeService key pairs on CloudSigma keypairs (/keypairs/, keypairs.rst:
// not in the protocol reference or the dumps; the official Go SDK's
// keypairs.go uses it: list, get, POST {"objects":[{name, public_key}]},
// PUT, DELETE): list, get, import and delete. Servers take them by uuid in
// their `pubkeys` list (cloudsigma_compute.cc, key_name); responses may show
// that list as keypair objects, which RefUuid reads as well.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "base/errors.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

using http::HttpResponse;
using Empty = google::protobuf::Empty;

void DoneWithKey(const AccountPtr& account, const WireObject& key,
                 Callback<MutationProgress> done) {
  absl::StatusOr<v1::KeyPair> k = KeypairToKeyPair(key.json, account->id);
  if (!k.ok()) return std::move(done)(k.status());
  std::move(done)(kit::Finished(*k));
}

}  // namespace

void CloudSigmaProvider::ListKeyPairs(const CallContext& ctx,
                                      const v1::ListKeyPairsRequest& request,
                                      Callback<v1::ListKeyPairsResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  ListAll(account_, ctx.deadline, "/keypairs/detail/",
          [account = account_, page_size = request.page_size(), token = request.page_token(),
           done = std::move(done)](absl::StatusOr<std::vector<WireObject>> keys) mutable {
            if (!keys.ok()) return std::move(done)(keys.status());
            std::vector<v1::KeyPair> all;
            for (const WireObject& k : *keys) {
              absl::StatusOr<v1::KeyPair> key = KeypairToKeyPair(k.json, account->id);
              if (!key.ok()) return std::move(done)(key.status());
              all.push_back(*std::move(key));
            }
            std::move(done)(
                kit::AnswerPage<v1::ListKeyPairsResponse>(std::move(all), page_size, token));
          });
}

void CloudSigmaProvider::GetKeyPair(const CallContext& ctx, const v1::GetKeyPairRequest& request,
                                    Callback<v1::KeyPair> done) {
  auto id = IdFromName("name", account_->id, "keyPairs", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  FindObject(account_, ctx.deadline, "keypairs", *id, request.name(), "key pair",
             [account = account_, done = std::move(done)](absl::StatusOr<WireObject> k) mutable {
               if (!k.ok()) return std::move(done)(k.status());
               std::move(done)(KeypairToKeyPair(k->json, account->id));
             });
}

void CloudSigmaProvider::CreateKeyPair(const CallContext& ctx,
                                       const v1::CreateKeyPairRequest& request,
                                       Callback<MutationProgress> done) {
  absl::Status status;
  if (!request.key_pair_id().empty()) {
    if (absl::Status s = ValidateChosenId("key_pair_id", request.key_pair_id()); !s.ok()) {
      AddFieldViolation(status, "key_pair_id", s.message());
    }
  }
  if (request.key_pair().public_key().empty()) {
    AddFieldViolation(status, "key_pair.public_key", "must be an OpenSSH public key");
  }
  if (absl::Status s = ValidateLabels("key_pair.labels", request.key_pair().labels()); !s.ok()) {
    AddFieldViolation(status, "key_pair.labels", s.message());
  }
  if (!status.ok()) return std::move(done)(status);
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::KeyPair()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  std::string body = KeypairCreateBody(request.key_pair(), request.key_pair_id(), ctx.operation);
  const std::string resource_name = ResourceName(
      account->id, "keyPairs", request.key_pair_id().empty() ? "-" : request.key_pair_id());
  // A re-driven create adopts the keypair its first attempt made (its
  // operation is in the keypair's meta); a chosen id in use is ALREADY_EXISTS.
  CreateObject(account, deadline, "keypairs", request.key_pair_id(), ctx.operation,
               resource_name, "key pair", std::move(body), "key_pair.",
               [account, done = std::move(done)](absl::StatusOr<WireObject> k) mutable {
                 if (!k.ok()) return std::move(done)(k.status());
                 DoneWithKey(account, *k, std::move(done));
               });
}

void CloudSigmaProvider::DeleteKeyPair(const CallContext& ctx,
                                       const v1::DeleteKeyPairRequest& request,
                                       Callback<MutationProgress> done) {
  auto id = IdFromName("name", account_->id, "keyPairs", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(Empty()));
  // Servers that have the key keep it (the key is in their guests).
  DeleteObject(account_, ctx.deadline, "keypairs", *id, request.name(), "key pair", "keypair",
               request.allow_missing(), nullptr, nullptr, std::move(done));
}

}  // namespace cloudplane::adapters::cloudsigma
