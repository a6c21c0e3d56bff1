// Small helpers for absl::Status plumbing.
//
// abseil LTS 20220623 (Debian 12) has no public RETURN_IF_ERROR or
// ASSIGN_OR_RETURN; these two macros fill the gap and can be swapped for
// abseil's own once a newer release is available.
#ifndef CLOUDPLANE_BASE_STATUS_H_
#define CLOUDPLANE_BASE_STATUS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CP_STATUS_CONCAT_INNER_(a, b) a##b
#define CP_STATUS_CONCAT_(a, b) CP_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function when it is not OK.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status cp_status_ = (expr);          \
    if (!cp_status_.ok()) return cp_status_;     \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr());` binds the value, or returns the
// error status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  CP_ASSIGN_OR_RETURN_IMPL_(CP_STATUS_CONCAT_(cp_statusor_, __LINE__), lhs, expr)

#define CP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(tmp).value()

#endif  // CLOUDPLANE_BASE_STATUS_H_
