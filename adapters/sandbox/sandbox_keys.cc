// Key pairs of the sandbox: OpenSSH public keys, checked and fingerprinted
// as `ssh-keygen -l` does; CheckKeyName for CreateInstance; Sha256.
#include <openssl/sha.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

// OpenSSH public key types the sandbox takes, and how many SSH strings
// (RFC 4251 5) their key blob holds: ed25519 type + key; rsa type, e, n;
// ecdsa type, curve, point (RFC 5656 3.1).
struct KeyType {
  absl::string_view name;
  int strings;
};
constexpr KeyType kKeyTypes[] = {
    {"ssh-ed25519", 2}, {"ssh-rsa", 3}, {"ecdsa-sha2-nistp256", 3}};

// Reads one SSH string (uint32 length, then the bytes) off the front of
// `blob`.
bool ReadSshString(absl::string_view& blob, absl::string_view* out) {
  if (blob.size() < 4) return false;
  const uint32_t length = (uint32_t{static_cast<unsigned char>(blob[0])} << 24) |
                          (uint32_t{static_cast<unsigned char>(blob[1])} << 16) |
                          (uint32_t{static_cast<unsigned char>(blob[2])} << 8) |
                          uint32_t{static_cast<unsigned char>(blob[3])};
  blob.remove_prefix(4);
  if (length > blob.size()) return false;
  *out = blob.substr(0, length);
  blob.remove_prefix(length);
  return true;
}

struct PublicKey {
  std::string text;  // normalised: "<type> <base64>[ <comment>]"
  std::string fingerprint;
};

// Checks an OpenSSH public key line (`<type> <base64 blob> [comment]`, as
// in authorized_keys without options): a type the sandbox takes, a blob
// that decodes, names the same type and holds that type's fields. The
// fingerprint is the one `ssh-keygen -l` prints: "SHA256:" and the
// unpadded base64 of the SHA-256 of the blob.
absl::StatusOr<PublicKey> ParsePublicKey(absl::string_view line, absl::string_view field) {
  line = absl::StripAsciiWhitespace(line);
  if (line.empty()) return InvalidField(field, "required");
  std::vector<absl::string_view> parts =
      absl::StrSplit(line, absl::MaxSplits(absl::ByAnyChar(" \t"), 2), absl::SkipEmpty());
  const KeyType* type = nullptr;
  for (const KeyType& t : kKeyTypes) {
    if (parts[0] == t.name) type = &t;
  }
  if (type == nullptr) {
    return InvalidField(field, "must be an OpenSSH public key of type ssh-ed25519, ssh-rsa or "
                               "ecdsa-sha2-nistp256");
  }
  if (parts.size() < 2) return InvalidField(field, "the base64 key blob is missing");
  absl::string_view encoded = parts[1];
  std::string blob;
  bool alphabet = !encoded.empty();
  for (char c : encoded) {
    alphabet = alphabet && (absl::ascii_isalnum(c) || c == '+' || c == '/' || c == '=');
  }
  if (!alphabet || !absl::Base64Unescape(encoded, &blob) || blob.empty()) {
    return InvalidField(field, "the key blob is not base64");
  }
  absl::string_view rest = blob;
  absl::string_view inner_type;
  if (!ReadSshString(rest, &inner_type) || inner_type != type->name) {
    return InvalidField(field, absl::StrCat("the key blob is not an ", type->name, " key"));
  }
  absl::string_view item;
  for (int i = 1; i < type->strings; ++i) {
    if (!ReadSshString(rest, &item) || item.empty()) {
      return InvalidField(field, absl::StrCat("the ", type->name, " key blob is truncated"));
    }
  }
  if (!rest.empty()) {
    return InvalidField(field, absl::StrCat("the ", type->name, " key blob has trailing bytes"));
  }
  if (type->name == "ssh-ed25519" && item.size() != 32) {
    return InvalidField(field, "an ssh-ed25519 key is 32 bytes");
  }
  std::string fingerprint = absl::Base64Escape(Sha256(blob));
  absl::StripTrailingAsciiWhitespace(&fingerprint);
  while (!fingerprint.empty() && fingerprint.back() == '=') fingerprint.pop_back();
  PublicKey key;
  key.text = absl::StrCat(type->name, " ", encoded);
  if (parts.size() > 2) absl::StrAppend(&key.text, " ", parts[2]);
  key.fingerprint = absl::StrCat("SHA256:", fingerprint);
  return key;
}

}  // namespace

std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

// ---- Shared with the other services --------------------------------------------

absl::StatusOr<std::string> SandboxProvider::CheckKeyName(Txn& txn,
                                                          absl::string_view key_name) const {
  std::string id(key_name);
  if (absl::StartsWith(key_name, "accounts/")) {
    ASSIGN_OR_RETURN(id, ParseName(key_name, account_, kKeyPairs, "instance.key_name"));
  } else if (!IsValidId(key_name)) {
    return InvalidField("instance.key_name",
                        absl::StrCat("must be a key pair id or accounts/", account_,
                                     "/keyPairs/{id}"));
  }
  ASSIGN_OR_RETURN(std::optional<Record> record, txn.Load(kKeyPairs, id));
  if (!record.has_value()) return NotFound(kKeyPairs, Name(kKeyPairs, id));
  return Name(kKeyPairs, id);
}

// ---- Key pairs -----------------------------------------------------------------

void SandboxProvider::ListKeyPairs(const CallContext& ctx, const v1::ListKeyPairsRequest& request,
                                   Callback<v1::ListKeyPairsResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListKeyPairsResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListKeyPairsResponse response;
    RETURN_IF_ERROR(ListPage(kKeyPairs, request.page_size(), request.page_token(),
                             response.mutable_key_pairs(), response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetKeyPair(const CallContext& ctx, const v1::GetKeyPairRequest& request,
                                 Callback<v1::KeyPair> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::KeyPair> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kKeyPairs, "name"));
    return GetTyped<v1::KeyPair>(kKeyPairs, id);
  }());
}

void SandboxProvider::CreateKeyPair(const CallContext& ctx,
                                    const v1::CreateKeyPairRequest& request,
                                    Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        if (!request.has_key_pair()) return InvalidField("key_pair", "required");
        const v1::KeyPair& in = request.key_pair();
        ASSIGN_OR_RETURN(PublicKey key, ParsePublicKey(in.public_key(), "key_pair.public_key"));
        RETURN_IF_ERROR(CheckLabels(in.labels(), "key_pair.labels"));
        ASSIGN_OR_RETURN(std::string id,
                         ChooseId(txn, kKeyPairs, request.key_pair_id(), "key_pair_id", "key"));
        v1::KeyPair key_pair;
        key_pair.set_name(Name(kKeyPairs, id));
        key_pair.set_display_name(in.display_name());
        key_pair.set_public_key(key.text);
        key_pair.set_fingerprint(key.fingerprint);
        *key_pair.mutable_labels() = in.labels();
        Record record;
        SaveVersion(key_pair, record, txn.now());
        RETURN_IF_ERROR(txn.Put(kKeyPairs, id, record));
        return CurrentToken(kKeyPairs, id);
      },
      std::move(done));
}

void SandboxProvider::DeleteKeyPair(const CallContext& ctx,
                                    const v1::DeleteKeyPairRequest& request,
                                    Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kKeyPairs, "name"));
        ASSIGN_OR_RETURN(std::optional<Record> record, txn.Load(kKeyPairs, id));
        if (!record.has_value()) {
          if (request.allow_missing()) return GoneToken(kKeyPairs, id);
          return NotFound(kKeyPairs, request.name());
        }
        // Instances created with the key keep it (it was installed).
        RETURN_IF_ERROR(txn.Delete(kKeyPairs, id));
        return GoneToken(kKeyPairs, id);
      },
      std::move(done));
}

}  // namespace cloudplane::adapters::sandbox
