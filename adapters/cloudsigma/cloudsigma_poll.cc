// PollOperation: every pending CloudSigma mutation waits by reading its drive
// or server again (CloudSigma's changes are asynchronous; drives.rst,
// servers.rst) until the PollToken's goal is reached.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/progress.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

// Whether `o` (the token's object) has reached the token's goal.
bool Reached(const PollToken& token, const WireObject& o) {
  const bool has_server =
      std::find(o.referenced_uuids.begin(), o.referenced_uuids.end(), token.server_uuid()) !=
      o.referenced_uuids.end();
  switch (token.goal()) {
    case PollToken::SETTLED:
    case PollToken::BOOT_DRIVE_READY:
      return o.status == "unmounted" || o.status == "mounted";
    case PollToken::RUNNING:
      return o.status == "running";
    case PollToken::STOPPED:
      return o.status == "stopped";
    case PollToken::MOUNTED:
      return has_server && o.status != "creating";
    case PollToken::UNMOUNTED:
      return !has_server;
    default:  // GONE: only a 404 ends it
      return false;
  }
}

}  // namespace

MutationProgress PendingOn(const PollToken& token, std::string detail) {
  return kit::Pending(PackPollToken(token), std::move(detail));
}

void DoneWithVolume(const AccountPtr& account, absl::Time deadline, const WireObject& drive,
                    Callback<MutationProgress> done) {
  RenderVolume(account, deadline, drive,
               [done = std::move(done)](absl::StatusOr<v1::Volume> v) mutable {
                 if (!v.ok()) return std::move(done)(v.status());
                 std::move(done)(kit::Finished(*v));
               });
}

void DoneWithInstance(const AccountPtr& account, absl::Time deadline, const WireObject& server,
                      Callback<MutationProgress> done) {
  RenderInstance(account, deadline, server,
                 [done = std::move(done)](absl::StatusOr<v1::Instance> i) mutable {
                   if (!i.ok()) return std::move(done)(i.status());
                   std::move(done)(kit::Finished(*i));
                 });
}

void Poll(const AccountPtr& account, absl::Time deadline, const PollToken& token,
          Callback<MutationProgress> done) {
  const absl::string_view collection = CollectionOf(token.kind());
  const std::string context = absl::StrCat("GET ", collection, " ", token.uuid());
  Send(account, deadline, "GET", ObjectPath(collection, token.uuid()), "", context,
       [account, deadline, token, context,
        done = std::move(done)](absl::StatusOr<http::HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (r->status == 404) {
           if (token.goal() == PollToken::GONE) {
             return std::move(done)(kit::Finished(google::protobuf::Empty()));
           }
           return std::move(done)(WithErrorInfo(
               absl::NotFoundError(absl::StrCat(context, ": the object disappeared")),
               reasons::kResourceNotFound));
         }
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           return std::move(done)(s);
         }
         absl::StatusOr<WireObject> o = ParseObject(r->body);
         if (!o.ok()) return std::move(done)(o.status());
         if (!Reached(token, *o)) {
           return std::move(done)(
               PendingOn(token, absl::StrFormat("waiting for %s %s (now %s)",
                                                KindName(token.kind()), token.uuid(), o->status)));
         }
         if (token.goal() == PollToken::BOOT_DRIVE_READY) {
           return BootFromDrive(account, deadline, token, std::move(done));
         }
         if (token.kind() == PollToken::DRIVE) {
           return DoneWithVolume(account, deadline, *o, std::move(done));
         }
         DoneWithInstance(account, deadline, *o, std::move(done));
       });
}

void CloudSigmaProvider::PollOperation(const CallContext& ctx, const std::string& poll_token,
                                       Callback<MutationProgress> done) {
  absl::StatusOr<PollToken> token = ReadPollToken(poll_token);
  if (!token.ok()) return std::move(done)(token.status());
  Poll(account_, ctx.deadline, *token, std::move(done));
}

}  // namespace cloudplane::adapters::cloudsigma
