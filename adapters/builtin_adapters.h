// The adapters compiled into cloudplaned, registered in one place.
#ifndef CLOUDPLANE_ADAPTERS_BUILTIN_ADAPTERS_H_
#define CLOUDPLANE_ADAPTERS_BUILTIN_ADAPTERS_H_

#include "absl/status/status.h"
#include "adapters/provider.h"

namespace cloudplane::adapters {

// Registers every built-in provider kind (sandbox, fleet, …). Called once
// from main(); tests may call it on registries of their own.
absl::Status RegisterBuiltinAdapters(AdapterRegistry& registry);

}  // namespace cloudplane::adapters

#endif  // CLOUDPLANE_ADAPTERS_BUILTIN_ADAPTERS_H_
