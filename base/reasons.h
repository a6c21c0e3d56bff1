// The ErrorInfo reasons cloudplane sends, in one place.
//
// Every error that leaves the server carries a google.rpc.ErrorInfo whose
// `reason` is one of these (domain "cloudplane.dev"); clients may branch on
// them, so a reason is never renamed once released. The same list is the
// enum cloudplane.v1.ErrorReason (proto/cloudplane/v1/common.proto) for
// clients in other languages; reasons_test.cc keeps the two equal.
//
// A reason says what went wrong more precisely than the status code; where
// the code says it all, the reason still names the situation (FIELD_INVALID,
// not INVALID_ARGUMENT).
#ifndef CLOUDPLANE_BASE_REASONS_H_
#define CLOUDPLANE_BASE_REASONS_H_

#include "absl/strings/string_view.h"

namespace cloudplane::reasons {

// ---- The request ----------------------------------------------------------
// A field of the request is invalid; BadRequest names it (INVALID_ARGUMENT).
inline constexpr absl::string_view kFieldInvalid = "FIELD_INVALID";
// The request_id was used before for a different request (ALREADY_EXISTS).
inline constexpr absl::string_view kRequestIdReused = "REQUEST_ID_REUSED";
// The account does not exist (NOT_FOUND).
inline constexpr absl::string_view kAccountNotFound = "ACCOUNT_NOT_FOUND";
// The account failed to configure; its state says why (FAILED_PRECONDITION).
inline constexpr absl::string_view kAccountUnusable = "ACCOUNT_UNUSABLE";
// The call needs an account option that is not configured (FAILED_PRECONDITION).
inline constexpr absl::string_view kAccountOptionMissing = "ACCOUNT_OPTION_MISSING";
// The account's provider does not support the method (UNIMPLEMENTED).
inline constexpr absl::string_view kCapabilityUnsupported = "CAPABILITY_UNSUPPORTED";
// The request sets a field the account's adapter does not carry out
// (INVALID_ARGUMENT); BadRequest names each such field, metadata names the
// `method` and `provider`. Account.capabilities lists the honoured fields.
inline constexpr absl::string_view kFieldUnsupported = "FIELD_UNSUPPORTED";
// The caller's deadline passed (DEADLINE_EXCEEDED).
inline constexpr absl::string_view kCallDeadlineExceeded = "CALL_DEADLINE_EXCEEDED";

// ---- Resources -------------------------------------------------------------
// The resource does not exist (NOT_FOUND); metadata names it.
inline constexpr absl::string_view kResourceNotFound = "RESOURCE_NOT_FOUND";
// A resource with that name or id exists already (ALREADY_EXISTS).
inline constexpr absl::string_view kResourceAlreadyExists = "RESOURCE_ALREADY_EXISTS";
// The resource is in a state that does not allow the call (FAILED_PRECONDITION).
inline constexpr absl::string_view kWrongState = "WRONG_STATE";
// The resource is still being made or changed; try again (UNAVAILABLE or
// FAILED_PRECONDITION).
inline constexpr absl::string_view kResourceNotReady = "RESOURCE_NOT_READY";
// Someone else changed the resource meanwhile (ABORTED).
inline constexpr absl::string_view kConcurrentModification = "CONCURRENT_MODIFICATION";

// ---- Operations ------------------------------------------------------------
// The operation did not finish within operation_timeout (DEADLINE_EXCEEDED).
inline constexpr absl::string_view kOperationTimeout = "OPERATION_TIMEOUT";
// A client cancelled the operation (CANCELLED).
inline constexpr absl::string_view kOperationCancelled = "OPERATION_CANCELLED";
// The operation still runs, and the call needs it done (FAILED_PRECONDITION).
inline constexpr absl::string_view kOperationRunning = "OPERATION_RUNNING";
// The operation is done already, and the call needs it running (FAILED_PRECONDITION).
inline constexpr absl::string_view kOperationDone = "OPERATION_DONE";
// The stored progress of an operation cannot be read (DATA_LOSS).
inline constexpr absl::string_view kOperationStateUnreadable = "OPERATION_STATE_UNREADABLE";
// The operation cannot be cancelled at its provider, or not yet; it goes on
// (FAILED_PRECONDITION). metadata names the `method`.
inline constexpr absl::string_view kCancelUnsupported = "CANCEL_UNSUPPORTED";

// ---- The provider ----------------------------------------------------------
// Could not reach the provider, or it answered 5xx/429 (UNAVAILABLE).
inline constexpr absl::string_view kProviderUnavailable = "PROVIDER_UNAVAILABLE";
// The provider refused the account's credentials (UNAUTHENTICATED).
inline constexpr absl::string_view kProviderUnauthenticated = "PROVIDER_UNAUTHENTICATED";
// The account's credentials lack the right for the call (PERMISSION_DENIED).
inline constexpr absl::string_view kProviderPermissionDenied = "PROVIDER_PERMISSION_DENIED";
// The provider answered something its protocol does not allow (INTERNAL).
inline constexpr absl::string_view kProviderMalformedResponse = "PROVIDER_MALFORMED_RESPONSE";
// The provider reported an error of its own; metadata carries its code.
inline constexpr absl::string_view kProviderError = "PROVIDER_ERROR";
// A provider job (DCM) or provider-side work ended in failure.
inline constexpr absl::string_view kProviderJobFailed = "PROVIDER_JOB_FAILED";
// The resource entered a failure state at the provider (OpenNebula *_FAILURE).
inline constexpr absl::string_view kProviderFailureState = "PROVIDER_FAILURE_STATE";
// The provider changed the resource in a way the operation did not ask for.
inline constexpr absl::string_view kProviderStateChanged = "PROVIDER_STATE_CHANGED";
// The account's balance does not cover the request (CloudSigma).
inline constexpr absl::string_view kInsufficientFunds = "INSUFFICIENT_FUNDS";

// A limit was reached: a response too large, a quota (RESOURCE_EXHAUSTED).
inline constexpr absl::string_view kLimitExceeded = "LIMIT_EXCEEDED";
// A value lies outside what the API or the provider accepts (OUT_OF_RANGE).
inline constexpr absl::string_view kValueOutOfRange = "VALUE_OUT_OF_RANGE";
// A Watch stream fell further behind the live changes than the server buffers
// for it (ABORTED); metadata `lastSequence` is the last sequence it was sent,
// to resume with start_after_sequence.
inline constexpr absl::string_view kWatchFellBehind = "WATCH_FELL_BEHIND";

// ---- The caller ------------------------------------------------------------
// The call carries no credential, and the server requires one (UNAUTHENTICATED).
inline constexpr absl::string_view kCredentialsMissing = "CREDENTIALS_MISSING";
// The call's credential was refused: a bearer token that is malformed, badly
// signed, expired, not yet valid, or for another issuer or audience
// (UNAUTHENTICATED). The message says which check failed, never the token.
inline constexpr absl::string_view kCredentialsInvalid = "CREDENTIALS_INVALID";
// The caller is known but no role binding grants the permission the call
// needs (PERMISSION_DENIED); metadata names `permission` and `resource`.
inline constexpr absl::string_view kPermissionMissing = "PERMISSION_MISSING";

// ---- The server itself -----------------------------------------------------
// The state database failed (UNAVAILABLE, RESOURCE_EXHAUSTED, DATA_LOSS).
inline constexpr absl::string_view kStateStoreFailed = "STATE_STORE_FAILED";
// The server is stopping; the call may be retried with the same request_id
// once it is back (UNAVAILABLE).
inline constexpr absl::string_view kServerShuttingDown = "SERVER_SHUTTING_DOWN";
// Anything else (INTERNAL); a bug.
inline constexpr absl::string_view kInternal = "INTERNAL_ERROR";

// Every reason above, for tests that keep this header and the proto enum equal.
inline constexpr absl::string_view kAll[] = {
    kFieldInvalid,
    kRequestIdReused,
    kAccountNotFound,
    kAccountUnusable,
    kAccountOptionMissing,
    kCapabilityUnsupported,
    kCallDeadlineExceeded,
    kResourceNotFound,
    kResourceAlreadyExists,
    kWrongState,
    kResourceNotReady,
    kConcurrentModification,
    kOperationTimeout,
    kOperationCancelled,
    kOperationRunning,
    kOperationDone,
    kOperationStateUnreadable,
    kCancelUnsupported,
    kProviderUnavailable,
    kProviderUnauthenticated,
    kProviderPermissionDenied,
    kProviderMalformedResponse,
    kProviderError,
    kProviderJobFailed,
    kProviderFailureState,
    kProviderStateChanged,
    kInsufficientFunds,
    kLimitExceeded,
    kValueOutOfRange,
    kWatchFellBehind,
    kFieldUnsupported,
    kCredentialsMissing,
    kCredentialsInvalid,
    kPermissionMissing,
    kStateStoreFailed,
    kServerShuttingDown,
    kInternal,
};

}  // namespace cloudplane::reasons

#endif  // CLOUDPLANE_BASE_REASONS_H_
