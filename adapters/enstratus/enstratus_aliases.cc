#include "adapters/enstratus/enstratus_aliases.h"

#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/scratch/durable_put.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters::enstratus {
namespace {

constexpr AliasKind kAllKinds[] = {AliasKind::kInstance, AliasKind::kFirewall, AliasKind::kVolume};

// The collection of the create marks, keyed by Operation name.
constexpr absl::string_view kMarks = "enstratus-creates";

std::optional<AliasRecord> Decode(const std::string& bytes) {
  AliasRecord record;
  if (!record.ParseFromString(bytes)) return std::nullopt;
  return record;
}

}  // namespace

absl::string_view AliasCollection(AliasKind kind) {
  switch (kind) {
    case AliasKind::kInstance:
      return "enstratus-instances";
    case AliasKind::kFirewall:
      return "enstratus-firewalls";
    case AliasKind::kVolume:
      return "enstratus-volumes";
  }
  return "enstratus-unknown";
}

absl::StatusOr<std::unique_ptr<AliasBook>> AliasBook::Open(ScratchStore* scratch,
                                                           std::string account) {
  for (AliasKind kind : kAllKinds) {
    if (absl::Status s = scratch->Load(AliasCollection(kind)); !s.ok()) return s;
  }
  if (absl::Status s = scratch->Load(kMarks); !s.ok()) return s;
  return std::unique_ptr<AliasBook>(new AliasBook(scratch, std::move(account)));
}

absl::StatusOr<std::optional<AliasRecord>> AliasBook::Find(AliasKind kind,
                                                           absl::string_view alias) const {
  absl::StatusOr<std::string> bytes = scratch_->Get(AliasCollection(kind), alias);
  if (bytes.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
  if (!bytes.ok()) return bytes.status();
  std::optional<AliasRecord> record = Decode(*bytes);
  if (!record.has_value()) {
    return absl::DataLossError(absl::StrCat("the stored alias ", alias, " is unreadable"));
  }
  return record;
}

absl::StatusOr<Aliases> AliasBook::All() const {
  Aliases out;
  for (AliasKind kind : kAllKinds) {
    absl::flat_hash_map<int64_t, std::string>& map = kind == AliasKind::kInstance ? out.instances
                                                     : kind == AliasKind::kFirewall
                                                         ? out.firewalls
                                                         : out.volumes;
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> entries =
        scratch_->List(AliasCollection(kind));
    if (!entries.ok()) return entries.status();
    for (const auto& [alias, bytes] : *entries) {
      std::optional<AliasRecord> record = Decode(bytes);
      if (record.has_value() && record->dcm_id() > 0) map[record->dcm_id()] = alias;
    }
  }
  return out;
}

absl::StatusOr<int64_t> AliasBook::Resolve(AliasKind kind, absl::string_view what,
                                           absl::string_view name,
                                           absl::string_view segment) const {
  if (std::optional<int64_t> id = ParseDcmId(segment)) return *id;
  if (!IsValidAlias(segment)) return kit::NotFound(what, name);
  absl::StatusOr<std::optional<AliasRecord>> record = Find(kind, segment);
  if (!record.ok()) return record.status();
  if (!record->has_value()) return kit::NotFound(what, name);
  if ((*record)->dcm_id() <= 0) {
    return WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(what, " ", name,
                                                   " is still being created (enStratus job ",
                                                   (*record)->job_id(), ")")),
        reasons::kResourceNotReady, {{"resource", std::string(name)}});
  }
  return (*record)->dcm_id();
}

absl::Status AliasBook::Put(AliasKind kind, absl::string_view alias, const AliasRecord& record,
                            absl::string_view operation) const {
  if (alias.empty()) return absl::OkStatus();
  return scratch_->Put(AliasCollection(kind), alias, record.SerializeAsString(),
                       LogFailure(kind, alias, operation));
}

absl::Status AliasBook::Update(AliasKind kind, absl::string_view alias, int64_t job_id,
                               int64_t dcm_id, absl::string_view operation) const {
  if (alias.empty()) return absl::OkStatus();
  absl::StatusOr<std::optional<AliasRecord>> found = Find(kind, alias);
  AliasRecord record;
  if (found.ok() && found->has_value()) {
    record = **found;
  } else {
    record.set_operation(std::string(operation));
  }
  record.set_job_id(job_id);
  record.set_dcm_id(dcm_id);
  return Put(kind, alias, record, operation);
}

absl::Status AliasBook::Release(AliasKind kind, absl::string_view alias,
                                absl::string_view operation) const {
  if (alias.empty()) return absl::OkStatus();
  return scratch_->Delete(AliasCollection(kind), alias, LogFailure(kind, alias, operation));
}

absl::StatusOr<std::optional<CreateMark>> AliasBook::FindMark(
    absl::string_view operation) const {
  if (operation.empty()) return std::nullopt;
  absl::StatusOr<std::string> bytes = scratch_->Get(kMarks, operation);
  if (bytes.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
  if (!bytes.ok()) return bytes.status();
  CreateMark mark;
  if (!mark.ParseFromString(*bytes)) {
    return absl::DataLossError(absl::StrCat("the stored create mark of ", operation,
                                            " is unreadable"));
  }
  return mark;
}

void AliasBook::PutMarkDurably(absl::string_view operation, const CreateMark& mark,
                               absl::AnyInvocable<void(absl::Status)> written) const {
  PutDurably(*scratch_, kMarks, operation, mark.SerializeAsString(),
             absl::StrCat("the create of ", operation), std::move(written));
}

void AliasBook::UpdateMark(absl::string_view operation, const CreateMark& mark) const {
  absl::StatusOr<std::optional<CreateMark>> found = FindMark(operation);
  if (!found.ok() || !found->has_value()) return;
  absl::Status s = scratch_->Put(kMarks, operation, mark.SerializeAsString(),
                                 LogMarkFailure(operation));
  if (!s.ok()) LogMarkFailure(operation)(s);
}

void AliasBook::DropMark(absl::string_view operation) const {
  absl::StatusOr<std::optional<CreateMark>> found = FindMark(operation);
  if (found.ok() && !found->has_value()) return;
  absl::Status s = scratch_->Delete(kMarks, operation, LogMarkFailure(operation));
  if (!s.ok()) LogMarkFailure(operation)(s);
}

ScratchStore::WriteDone AliasBook::LogMarkFailure(absl::string_view operation) const {
  return [account = account_, operation = std::string(operation)](absl::Status status) {
    if (status.ok()) return;
    std::cerr << "enstratus " << account << ": create mark of " << operation
              << " not saved: " << status << "\n";
  };
}

ScratchStore::WriteDone AliasBook::LogFailure(AliasKind kind, absl::string_view alias,
                                              absl::string_view operation) const {
  // Memory holds the write already; a lost durable write only matters after
  // a restart, when the alias resolves as it was before the write.
  return [account = account_, what = absl::StrCat(AliasCollection(kind), "/", alias),
          operation = operation.empty() ? std::string("a call without an operation")
                                        : std::string(operation)](absl::Status status) {
    if (status.ok()) return;
    std::cerr << "enstratus " << account << ": alias " << what << " of " << operation
              << " not saved: " << status << "\n";
  };
}

}  // namespace cloudplane::adapters::enstratus
