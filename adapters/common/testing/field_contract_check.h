// Checks an adapter's declaration of the strict field contract
// (ProviderInfo::honoured_fields, Provider::HonouredFields) against the API,
// so every adapter's test asks the same questions:
//
//   TEST(FieldContract, EveryMutationDeclaresRealFields) {
//     testutil::ExpectFieldContractDeclared(*provider);
//   }
//
// What it checks (FieldContractProblems), for the account's Provider:
//  (a) every mutation it supports (SupportedMethods(), CP_MUTATION rows of
//      api_methods.inc) has an entry: a key in Info().honoured_fields, or a
//      non-empty HonouredFields(method) from a Provider that overrides it.
//      An empty entry is a declaration too ("only the always-honoured
//      fields"), so a mutation nobody thought about is told from one whose
//      request has nothing else to carry out.
//  (b) every listed path, in HonouredFields(method) and in Info()'s entry,
//      names a real field of the method's request message: each dotted
//      segment found with FindFieldByName, walking into messages and
//      stopping at a leaf (a scalar, a map, a google.protobuf message such
//      as Struct), past which no segment may follow.
//  and what the contract says is never listed: the request's own parent,
//  name, request_id, validate_only, update_mask and provider_options, and a
//  resource's OUTPUT_ONLY or IDENTIFIER fields (the server never counts
//  them); a path listed twice; an entry for a method that is not a mutation
//  the adapter supports (Info().supported_methods).
#ifndef CLOUDPLANE_ADAPTERS_COMMON_TESTING_FIELD_CONTRACT_CHECK_H_
#define CLOUDPLANE_ADAPTERS_COMMON_TESTING_FIELD_CONTRACT_CHECK_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "adapters/provider.h"
#include "google/protobuf/descriptor.h"

namespace cloudplane::adapters::testutil {

// The request message of mutation `method` ("cloudplane.v1.<Service>.<Method>",
// a CP_MUTATION row of api_methods.inc); null for a read or an unknown name.
const google::protobuf::Descriptor* MutationRequestType(absl::string_view method);

// Why `path` cannot be an honoured field of `request`'s message (see (b)
// above); empty when it can.
std::string HonouredPathProblem(const google::protobuf::Descriptor& request,
                                absl::string_view path);

// Every problem with `provider`'s declaration, one line each naming the
// method and the path; empty when it passes (a) and (b).
std::vector<std::string> FieldContractProblems(const Provider& provider);

// A GoogleTest failure per FieldContractProblems line.
void ExpectFieldContractDeclared(const Provider& provider);

}  // namespace cloudplane::adapters::testutil

#endif  // CLOUDPLANE_ADAPTERS_COMMON_TESTING_FIELD_CONTRACT_CHECK_H_
