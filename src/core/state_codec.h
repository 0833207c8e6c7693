#pragma once
// Compact binary encoding of events for operator state (in memory and in
// RocksDB). Little-endian fixed-width integers and length-prefixed strings;
// not a wire format: the entries carry no version and are only ever read by
// the same build (a checkpoint's META names its own format, see
// src/pipeline/checkpoint.cc). Pure functions, any thread.

#include <cstdint>
#include <string>
#include <string_view>

#include "src/core/event.h"
#include "src/core/status.h"

namespace ctrjoin {

void EncodeImpression(const Impression& imp, std::string& out);
Status DecodeImpression(std::string_view in, Impression& out);

// Little helpers shared by the encoders.
void PutFixed64(std::string& out, uint64_t v);
void PutBigEndian64(std::string& out, uint64_t v);  // sorts bytewise like v
bool GetFixed64(std::string_view& in, uint64_t& v);
uint64_t ReadBigEndian64(const char* p);

}  // namespace ctrjoin
