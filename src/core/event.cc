#include "src/core/event.h"

namespace ctrjoin {

const char* StreamName(StreamKind kind) {
  switch (kind) {
    case StreamKind::kImpression: return "impressions";
    case StreamKind::kClick: return "clicks";
  }
  return "unknown";
}

}  // namespace ctrjoin
