// ctrjoin-testbroker: runs the test broker as a process.
//
//   ctrjoin-testbroker [--port N] [--data-dir DIR] [--default-partitions N]
//                      [--no-auto-create] [--txn-check-interval-ms N]
//                      [--group-initial-delay-ms N] [--log-level 0|1|2]
//
// Prints the address it listens on ("127.0.0.1:PORT") as one line on stdout
// once it accepts connections, then serves until SIGTERM or SIGINT.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/support/kafka_broker/broker.h"

namespace {

using ctrjoin::testbroker::BrokerOptions;

void Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--port N] [--data-dir DIR] [--default-partitions N]\n"
               "          [--no-auto-create] [--txn-check-interval-ms N]\n"
               "          [--group-initial-delay-ms N] [--log-level 0|1|2]\n",
               argv0);
}

bool ParseInt(const char* text, long min, long max, long* out) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

// Fills |options| from argv; false (after printing why) on a bad argument.
bool ParseArgs(int argc, char** argv, BrokerOptions* options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--no-auto-create") {
      options->auto_create_topics = false;
      continue;
    }
    if (arg == "--help" || arg == "-h" || i + 1 >= argc) return false;
    const char* value = argv[++i];
    long n = 0;
    if (arg == "--data-dir") {
      options->data_dir = value;
    } else if (arg == "--port" && ParseInt(value, 0, 65535, &n)) {
      options->port = static_cast<std::uint16_t>(n);
    } else if (arg == "--default-partitions" && ParseInt(value, 1, 10000, &n)) {
      options->default_partitions = static_cast<std::int32_t>(n);
    } else if (arg == "--txn-check-interval-ms" && ParseInt(value, 1, 3600000, &n)) {
      options->transaction_check_interval_ms = static_cast<std::int32_t>(n);
    } else if (arg == "--group-initial-delay-ms" && ParseInt(value, 0, 3600000, &n)) {
      options->group_initial_rebalance_delay_ms = static_cast<std::int32_t>(n);
    } else if (arg == "--log-level" && ParseInt(value, 0, 2, &n)) {
      options->log_level = static_cast<int>(n);
    } else {
      std::fprintf(stderr, "bad argument: %s %s\n", arg.c_str(), value);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  BrokerOptions options;
  if (!ParseArgs(argc, argv, &options)) {
    Usage(argv[0]);
    return 2;
  }
  // Block the stop signals before the loop thread starts so that only
  // sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto broker = ctrjoin::testbroker::TestBroker::Start(options);
  if (!broker.ok()) {
    std::fprintf(stderr, "ctrjoin-testbroker: %s\n", broker.status().message().c_str());
    return 1;
  }
  std::printf("%s\n", (*broker)->bootstrap().c_str());
  std::fflush(stdout);

  int signo = 0;
  sigwait(&stop_signals, &signo);
  (*broker)->Stop();
  return 0;
}
