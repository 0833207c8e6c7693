#pragma once
// Turns a feature cell's text into a typed value: a number if the whole text
// is one, an array of numbers if it is a JSON array of numbers, otherwise the
// text itself. Pure function, any thread.

#include <string_view>

#include "src/core/event.h"

namespace ctrjoin {

FeatureValue DecodeCellValue(std::string_view text);

}  // namespace ctrjoin
