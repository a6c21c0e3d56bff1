// Aliases: the caller-chosen id of an instance, firewall or volume created
// through cloudplane (`instance_id`, `firewall_id`, `volume_id`), kept for
// the DCM id that DCM assigns, so the resource keeps the caller's name until
// it is deleted (see enstratus_adapter.h).
//
// They live in the account's ScratchStore (adapters/scratch_store.h), one
// collection per kind ("enstratus-instances", "enstratus-firewalls",
// "enstratus-volumes"), one serialized AliasRecord (enstratus_aliases.proto)
// per alias. A create reserves its alias before the first request (record
// {operation}), the job that DCM starts is added ({operation, job}), then the
// DCM id once the job names it ({operation, job, dcm_id}); a failed create
// or a delete releases it.
//
// The book also keeps the create marks: one CreateMark per Operation whose
// create may have been sent (collection "enstratus-creates"), so that a
// re-drive knows to look for the work at DCM first (enstratus_jobs.h).
//
// Reads come from memory and writes change memory at once, so every method
// may run on any thread, an HTTP completion included; the durable write runs
// on the EventLoop and a failure of it is logged (stderr) with the operation
// that made it. Thread-safe.
#ifndef CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_ALIASES_H_
#define CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_ALIASES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/enstratus/enstratus_aliases.pb.h"
#include "adapters/enstratus/enstratus_wire.h"
#include "adapters/scratch_store.h"

namespace cloudplane::adapters::enstratus {

enum class AliasKind { kInstance, kFirewall, kVolume };

// The ScratchStore collection of `kind`.
absl::string_view AliasCollection(AliasKind kind);

class AliasBook {
 public:
  // Loads the three collections of `scratch` (reads the database: the
  // factory calls it, never a transport thread). `scratch` must outlive the
  // book. The store's errors as they are.
  static absl::StatusOr<std::unique_ptr<AliasBook>> Open(ScratchStore* scratch,
                                                         std::string account);

  // The record of `alias`; nullopt when the alias is free. DATA_LOSS when the
  // stored record is unreadable.
  absl::StatusOr<std::optional<AliasRecord>> Find(AliasKind kind, absl::string_view alias) const;

  // DCM id -> alias for every alias whose resource exists (unreadable
  // records are left out).
  absl::StatusOr<Aliases> All() const;

  // The DCM id that a name segment stands for: digits are the id itself; an
  // alias is looked up. NOT_FOUND ("<what> <name> does not exist") when it
  // names nothing; FAILED_PRECONDITION with reason RESOURCE_NOT_READY while
  // the create that reserved it is still running.
  absl::StatusOr<int64_t> Resolve(AliasKind kind, absl::string_view what, absl::string_view name,
                                  absl::string_view segment) const;

  // The writes below do nothing for an empty alias. A refusal of the
  // ScratchStore (the write did not happen) is returned; `operation` names
  // the work in the log line of a failed durable write.

  // Creates or replaces the record of `alias`.
  absl::Status Put(AliasKind kind, absl::string_view alias, const AliasRecord& record,
                   absl::string_view operation) const;
  // Sets the job and the DCM id of `alias`, keeping the operation that
  // reserved it (`operation` when there is no record).
  absl::Status Update(AliasKind kind, absl::string_view alias, int64_t job_id, int64_t dcm_id,
                      absl::string_view operation) const;
  // Frees `alias`.
  absl::Status Release(AliasKind kind, absl::string_view alias,
                       absl::string_view operation) const;

  // The create mark of `operation`; nullopt when there is none. DATA_LOSS
  // when the stored mark is unreadable.
  absl::StatusOr<std::optional<CreateMark>> FindMark(absl::string_view operation) const;
  // Writes the mark of `operation` and runs `written` once it is durable, with
  // the write's status (PutDurably: on the EventLoop, or inline when the
  // ScratchStore refused it).
  void PutMarkDurably(absl::string_view operation, const CreateMark& mark,
                      absl::AnyInvocable<void(absl::Status)> written) const;
  // Replaces the mark of `operation` without waiting for the disk (a failed
  // durable write is logged). Nothing when there is no mark.
  void UpdateMark(absl::string_view operation, const CreateMark& mark) const;
  // Removes the mark of `operation`, if any (a failure is logged).
  void DropMark(absl::string_view operation) const;

 private:
  AliasBook(ScratchStore* scratch, std::string account)
      : scratch_(scratch), account_(std::move(account)) {}

  ScratchStore::WriteDone LogFailure(AliasKind kind, absl::string_view alias,
                                     absl::string_view operation) const;
  ScratchStore::WriteDone LogMarkFailure(absl::string_view operation) const;

  ScratchStore* const scratch_;
  const std::string account_;
};

}  // namespace cloudplane::adapters::enstratus

#endif  // CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_ALIASES_H_
