// ctrjoin-testbroker: runs the test broker as a process.
//
//   ctrjoin-testbroker [--port N] [--data-dir DIR] [--default-partitions N]
//                      [--no-auto-create] [--txn-check-interval-ms N]
//                      [--group-initial-delay-ms N] [--log-level 0|1|2] [--help]
//
// Prints the address it listens on ("127.0.0.1:PORT") as one line on stdout
// once it accepts connections, then serves until SIGTERM or SIGINT. --help
// prints the usage on stdout and exits 0; a bad argument prints why and the
// usage on stderr and exits 2; a broker that cannot start (port taken, data
// directory bad or held by another broker) exits 1.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/support/kafka_broker/broker.h"

namespace {

using ctrjoin::testbroker::BrokerOptions;

void Usage(std::FILE* out, const char* argv0) {
  std::fprintf(out,
               "usage: %s [--port N] [--data-dir DIR] [--default-partitions N]\n"
               "          [--no-auto-create] [--txn-check-interval-ms N]\n"
               "          [--group-initial-delay-ms N] [--log-level 0|1|2] [--help]\n",
               argv0);
}

bool ParseInt(const char* text, long min, long max, long* out) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

// The options that take a number: name, range, and the field it sets.
struct IntOption {
  const char* name;
  long min;
  long max;
  void (*set)(BrokerOptions* options, long value);
};

constexpr IntOption kIntOptions[] = {
    {"--port", 0, 65535, [](BrokerOptions* o, long v) { o->port = static_cast<std::uint16_t>(v); }},
    {"--default-partitions", 1, 10000,
     [](BrokerOptions* o, long v) { o->default_partitions = static_cast<std::int32_t>(v); }},
    {"--txn-check-interval-ms", 1, 3600000,
     [](BrokerOptions* o, long v) {
       o->transaction_check_interval_ms = static_cast<std::int32_t>(v);
     }},
    {"--group-initial-delay-ms", 0, 3600000,
     [](BrokerOptions* o, long v) {
       o->group_initial_rebalance_delay_ms = static_cast<std::int32_t>(v);
     }},
    {"--log-level", 0, 2, [](BrokerOptions* o, long v) { o->log_level = static_cast<int>(v); }},
};

enum class Command { kServe, kHelp, kBadArguments };

// Fills |options| from argv. kBadArguments after printing why to stderr.
Command ParseArgs(int argc, char** argv, BrokerOptions* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return Command::kHelp;
    if (arg == "--no-auto-create") {
      options->auto_create_topics = false;
      continue;
    }
    const IntOption* int_option = nullptr;
    for (const IntOption& o : kIntOptions) {
      if (arg == o.name) int_option = &o;
    }
    if (int_option == nullptr && arg != "--data-dir") {
      std::fprintf(stderr, "unknown option: %s\n", arg.c_str());
      return Command::kBadArguments;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "missing value for %s\n", arg.c_str());
      return Command::kBadArguments;
    }
    const char* value = argv[++i];
    long n = 0;
    if (int_option == nullptr) {
      options->data_dir = value;
    } else if (ParseInt(value, int_option->min, int_option->max, &n)) {
      int_option->set(options, n);
    } else {
      std::fprintf(stderr, "bad value for %s: %s (want an integer in %ld-%ld)\n", arg.c_str(),
                   value, int_option->min, int_option->max);
      return Command::kBadArguments;
    }
  }
  return Command::kServe;
}

}  // namespace

int main(int argc, char** argv) {
  BrokerOptions options;
  switch (ParseArgs(argc, argv, &options)) {
    case Command::kServe: break;
    case Command::kHelp: Usage(stdout, argv[0]); return 0;
    case Command::kBadArguments: Usage(stderr, argv[0]); return 2;
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
