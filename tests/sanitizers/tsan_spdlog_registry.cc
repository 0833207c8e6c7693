// ThreadSanitizer builds only (CMakeLists.txt, CTRJOIN_SANITIZE=thread):
// spdlog's registry is a function-local static inside the uninstrumented
// libspdlog, whose fast path (an acquire load of the guard) TSan cannot see.
// When two threads log first (a library's callback thread and ours, in a
// test that set no logger up), the second one's use of the registry looks
// like a race with its construction. ctrjoin's main sets logging up before
// any thread starts; this does the same for every test binary, at load.
//
// Runs once, on the loading thread, before main; owns nothing.

#include <spdlog/spdlog.h>

namespace {

[[gnu::constructor]] void MakeTheRegistryBeforeAnyThread() { spdlog::default_logger_raw(); }

}  // namespace
