// Key pairs: OpenNebula keeps SSH keys in the calling user's template, one
// attribute SSH_PUBLIC_KEY that may hold several lines (one key each); VMs
// get it through CONTEXT=[SSH_PUBLIC_KEY="$USER[SSH_PUBLIC_KEY]"] or a key
// given at instantiate. A KeyPair is one of those lines (ids: SshKey in
// opennebula_wire.h).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::opennebula {

namespace {

using xmlrpc::Value;

// The calling user (one.user.info -1): its id and SSH_PUBLIC_KEY text.
struct UserKeys {
  int64_t uid = 0;
  std::string text;
};

void ReadUserKeys(const AccountPtr& a, absl::Time deadline, Done<UserKeys> done) {
  CallDoc(a, deadline, "one.user.info", {Value::Int(-1)}, "USER",
          [done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) return done(doc.status());
            UserKeys u;
            (void)absl::SimpleAtoi((*doc)->Root().ChildText("ID"), &u.uid);
            u.text = SingleAttributes((*doc)->Root().Child("TEMPLATE"))["SSH_PUBLIC_KEY"];
            done(std::move(u));
          });
}

// Writes `lines` back as the user's SSH_PUBLIC_KEY (merge: the template's
// other attributes stay). The XML form, because the value spans lines.
void WriteUserKeys(const AccountPtr& a, absl::Time deadline, int64_t uid,
                   const std::vector<std::string>& lines, Done<bool> done) {
  absl::StatusOr<std::string> text =
      XmlTemplate("TEMPLATE", {XmlAttr{"SSH_PUBLIC_KEY", absl::StrJoin(lines, "\n"), {}}});
  if (!text.ok()) return done(text.status());
  Call(a, deadline, "one.user.update", {Value::Int(uid), Value::String(*text), Value::Int(1)},
       [done = std::move(done)](absl::StatusOr<Value> v) mutable {
         if (!v.ok()) return done(v.status());
         done(true);
       });
}

// The lines of the text, keys or not, without blank ones.
std::vector<std::string> Lines(absl::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(l));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> KeyIdOf(absl::string_view account, absl::string_view key_name,
                                    absl::string_view field) {
  absl::string_view id = key_name;
  absl::ConsumePrefix(&id, absl::StrCat("accounts/", account, "/keyPairs/"));
  if (id.empty() || id.find('/') != absl::string_view::npos) {
    return InvalidField(field, absl::StrCat("must name a key pair (accounts/", account,
                                            "/keyPairs/<id>)"));
  }
  return std::string(id);
}

void FindKey(const AccountPtr& a, absl::Time deadline, std::string id, std::string resource,
             Done<SshKey> done) {
  ReadUserKeys(a, deadline, [id, resource, done = std::move(done)](
                                absl::StatusOr<UserKeys> u) mutable {
    if (!u.ok()) return done(u.status());
    for (SshKey& k : SshKeysFromText(u->text)) {
      if (k.id == id) return done(std::move(k));
    }
    done(kit::NotFound("key pair", resource));
  });
}

void OpenNebulaProvider::ListKeyPairs(const CallContext& ctx, const v1::ListKeyPairsRequest& req,
                                      Callback<v1::ListKeyPairsResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  ReadUserKeys(a_, ctx.deadline,
               [a = a_, size = req.page_size(), token = req.page_token(),
                done = std::move(done)](absl::StatusOr<UserKeys> u) mutable {
                 if (!u.ok()) return std::move(done)(u.status());
                 std::vector<v1::KeyPair> items;
                 for (const SshKey& k : SshKeysFromText(u->text)) {
                   items.push_back(KeyPairFromSshKey(k, a->id));
                 }
                 std::sort(items.begin(), items.end(),
                           [](const auto& x, const auto& y) { return x.name() < y.name(); });
                 std::move(done)(
                     kit::AnswerPage<v1::ListKeyPairsResponse>(std::move(items), size, token));
               });
}

void OpenNebulaProvider::GetKeyPair(const CallContext& ctx, const v1::GetKeyPairRequest& req,
                                    Callback<v1::KeyPair> done) {
  auto id = KeyIdOf(a_->id, req.name(), "name");
  if (!id.ok() || !absl::StartsWith(req.name(), "accounts/")) {
    return std::move(done)(InvalidField("name", "must be accounts/<account>/keyPairs/<id>"));
  }
  FindKey(a_, ctx.deadline, *id, req.name(),
          [a = a_, done = std::move(done)](absl::StatusOr<SshKey> k) mutable {
            if (!k.ok()) return std::move(done)(k.status());
            std::move(done)(KeyPairFromSshKey(*k, a->id));
          });
}

void OpenNebulaProvider::CreateKeyPair(const CallContext& ctx,
                                       const v1::CreateKeyPairRequest& req,
                                       Callback<MutationProgress> done) {
  std::string line(absl::StripAsciiWhitespace(req.key_pair().public_key()));
  if (line.find('\n') != std::string::npos) {
    return std::move(done)(InvalidField("key_pair.public_key", "must be one key (one line)"));
  }
  absl::StatusOr<SshKey> key = ParseSshKey(line, "key_pair.public_key");
  if (!key.ok()) return std::move(done)(key.status());
  if (!req.key_pair_id().empty()) {
    if (!IsNameId(req.key_pair_id())) {
      return std::move(done)(InvalidField("key_pair_id", "must be [a-z][a-z0-9-]{0,62}"));
    }
    // The id lives in the key's comment (OpenNebula keeps only the line): a
    // key without one gets the id as comment; a key with another comment
    // cannot carry it.
    if (std::count(line.begin(), line.end(), ' ') == 1) {
      line = absl::StrCat(line, " ", req.key_pair_id());
      key = ParseSshKey(line, "key_pair.public_key");
      if (!key.ok()) return std::move(done)(key.status());
    } else if (key->id != req.key_pair_id()) {
      return std::move(done)(InvalidField(
          "key_pair_id", "OpenNebula names a key by its comment; give a key whose comment is "
                         "the id, or one without a comment"));
    }
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::KeyPair()));
  ReadUserKeys(a_, ctx.deadline,
               [a = a_, deadline = ctx.deadline, key = *key,
                done = Wrap(std::move(done))](absl::StatusOr<UserKeys> u) mutable {
                 if (!u.ok()) return done(u.status());
                 for (const SshKey& k : SshKeysFromText(u->text)) {
                   if (k.id != key.id) continue;
                   // The same key (a re-drive, or a repeated import) is the
                   // result; another key of that id is a conflict.
                   if (k.fingerprint == key.fingerprint) {
                     return done(kit::Finished(KeyPairFromSshKey(k, a->id)));
                   }
                   const std::string resource = ResourceName(*a, "keyPairs", key.id);
                   return done(WithErrorInfo(
                       absl::AlreadyExistsError(absl::StrCat("key pair ", resource,
                                                             " already exists")),
                       reasons::kResourceAlreadyExists, {{"resource", resource}}));
                 }
                 std::vector<std::string> lines = Lines(u->text);
                 lines.push_back(key.line);
                 WriteUserKeys(a, deadline, u->uid, lines,
                               [a, key, done = std::move(done)](absl::StatusOr<bool> w) mutable {
                                 if (!w.ok()) return done(w.status());
                                 done(kit::Finished(KeyPairFromSshKey(key, a->id)));
                               });
               });
}

void OpenNebulaProvider::DeleteKeyPair(const CallContext& ctx,
                                       const v1::DeleteKeyPairRequest& req,
                                       Callback<MutationProgress> done) {
  auto id = KeyIdOf(a_->id, req.name(), "name");
  if (!id.ok() || !absl::StartsWith(req.name(), "accounts/")) {
    return std::move(done)(InvalidField("name", "must be accounts/<account>/keyPairs/<id>"));
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  ReadUserKeys(
      a_, ctx.deadline,
      [a = a_, deadline = ctx.deadline, id = *id, name = req.name(), allow = req.allow_missing(),
       done = Wrap(std::move(done))](absl::StatusOr<UserKeys> u) mutable {
        if (!u.ok()) return done(u.status());
        std::vector<std::string> kept;
        bool found = false;
        for (const std::string& line : Lines(u->text)) {
          absl::StatusOr<SshKey> k = ParseSshKey(line, "");
          if (k.ok() && k->id == id) {
            found = true;
          } else {
            kept.push_back(line);
          }
        }
        if (!found) {
          if (allow) return done(kit::Finished(google::protobuf::Empty()));
          return done(kit::NotFound("key pair", name));
        }
        WriteUserKeys(a, deadline, u->uid, kept,
                      [done = std::move(done)](absl::StatusOr<bool> w) mutable {
                        if (!w.ok()) return done(w.status());
                        done(kit::Finished(google::protobuf::Empty()));
                      });
      });
}

}  // namespace cloudplane::adapters::opennebula
