#pragma once
// JSON encodings of samples and dead letters (one object per line, no
// trailing newline added). Pure functions: callable from any thread.
//
// Sample layout:
//   {"sample_id":"<u64 decimal>","label":0|1,"impression_id":"…","user_id":"…",
//    "item_id":"…","ts":<ms>,"click_ts":<ms, positives only>,
//    "correction":true (corrections only),
//    "partial":true (a feature lookup failed and lookup.emit_partial is on),
//    "features":{"<name>":<number|string|[numbers]>, "user.<col>":…}}
// sample_id is a string because JSON numbers lose precision above 2^53.

#include <string>

#include "src/core/event.h"

namespace ctrjoin {

void AppendSampleJson(const Sample& sample, std::string& out);
void AppendDeadLetterJson(const DeadLetter& letter, std::string& out);
// Appends one feature value as JSON (a number, a string or an array).
void AppendFeatureValueJson(const FeatureValue& value, std::string& out);
// Appends s as a JSON string literal (quoted, escaped).
void AppendJsonString(std::string_view s, std::string& out);

}  // namespace ctrjoin
