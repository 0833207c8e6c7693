// ctrjoin-test-hbase: runs TestHBaseServer (an in-memory HBase Thrift2
// stand-in) for manual testing, until SIGINT or SIGTERM. Prints the address
// it listens on, "127.0.0.1:PORT", as the first line of stdout.
// Exit codes: 0 stopped by a signal, 1 could not start, 2 bad command line.

#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <string>

#include "tests/support/hbase_server.h"

int main(int argc, char** argv) {
  CLI::App app{"ctrjoin-test-hbase: in-memory HBase Thrift2 (THBaseService) server for tests"};
  ctrjoin::test_support::TestHBaseServerOptions options;
  app.add_option("--port", options.port, "port on 127.0.0.1; 0 picks a free one")
      ->check(CLI::Range(0, 65535));
  std::string protocol(ctrjoin::NameOf(options.protocol));
  std::string transport(ctrjoin::NameOf(options.transport));
  app.add_option("--protocol", protocol, "binary | compact");
  app.add_option("--transport", transport, "buffered | framed");
  CLI11_PARSE(app, argc, argv);
  for (ctrjoin::Status st : {ctrjoin::ParseEnum(protocol, "--protocol", options.protocol),
                             ctrjoin::ParseEnum(transport, "--transport", options.transport)}) {
    if (!st.ok()) {
      std::fprintf(stderr, "ctrjoin-test-hbase: %s\n", st.ToString().c_str());
      return 2;
    }
  }

  // Blocked before any thread starts, so every server thread inherits the
  // mask and sigwait below is the only receiver.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = ctrjoin::test_support::TestHBaseServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "ctrjoin-test-hbase: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", (*server)->address().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "ctrjoin-test-hbase: serving THBaseService (%s, %s); Ctrl-C stops\n",
               protocol.c_str(), transport.c_str());

  int signal = 0;
  sigwait(&stop_signals, &signal);
  (*server)->Stop();
  return 0;
}
