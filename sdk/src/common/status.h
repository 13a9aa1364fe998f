// status.h — the one pair of error-propagation macros used by the core, and
// the string_view bridge its error messages need.
// absl::Status / StatusOr inside; src/capi is the only place that converts.
#ifndef HEARTH_SDK_SRC_COMMON_STATUS_H_
#define HEARTH_SDK_SRC_COMMON_STATUS_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hearth {

// Debian's Abseil is built with its own string_view (not std::string_view),
// so StrCat and CHexEscape take a std::string_view through this bridge.
inline absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace hearth

#define HEARTH_STATUS_CONCAT_INNER_(a, b) a##b
#define HEARTH_STATUS_CONCAT_(a, b) HEARTH_STATUS_CONCAT_INNER_(a, b)

#define HEARTH_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::absl::Status hearth_status_ = (expr);       \
    if (!hearth_status_.ok()) return hearth_status_; \
  } while (0)

#define HEARTH_ASSIGN_OR_RETURN(lhs, expr) \
  HEARTH_ASSIGN_OR_RETURN_IMPL_(HEARTH_STATUS_CONCAT_(hearth_statusor_, __LINE__), lhs, expr)

#define HEARTH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

#endif  // HEARTH_SDK_SRC_COMMON_STATUS_H_
