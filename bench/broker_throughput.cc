// Produce/consume throughput of the test broker (ctrjoin-testbroker), run as
// a separate process, driven by librdkafka in this process.
//
//   broker_throughput [--broker PATH] [--messages N] [--size BYTES]
//                     [--partitions N] [--data-dir DIR]
//
// PATH defaults to the ctrjoin-testbroker built with this tool (or one next
// to this binary). Prints messages/s and MB/s for producing N messages and
// for consuming them back. Asserts nothing.

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "src/io/kafka_client.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string broker_path;
  long messages = 2000000;
  long size = 100;
  long partitions = 1;
  std::string data_dir;
};

// The broker child process; killed with SIGTERM and reaped on destruction.
class BrokerProcess {
 public:
  // Starts |path| and reads the address it prints; empty address on failure.
  BrokerProcess(const std::string& path, const std::string& data_dir) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      std::vector<const char*> argv = {path.c_str(), "--port", "0"};
      if (!data_dir.empty()) {
        argv.push_back("--data-dir");
        argv.push_back(data_dir.c_str());
      }
      argv.push_back(nullptr);
      ::execv(path.c_str(), const_cast<char* const*>(argv.data()));
      std::perror("execv");
      ::_exit(127);
    }
    ::close(out[1]);
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') address_ += c;
    ::close(out[0]);
  }
  ~BrokerProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  const std::string& address() const { return address_; }

 private:
  pid_t pid_ = -1;
  std::string address_;
};

std::string DefaultBrokerPath() {
  std::filesystem::path self = std::filesystem::canonical("/proc/self/exe");
  std::filesystem::path sibling = self.parent_path() / "ctrjoin-testbroker";
  if (std::filesystem::exists(sibling)) return sibling.string();
  return CTRJOIN_TESTBROKER_PATH;
}

bool ParseArgs(int argc, char** argv, Options* options) {
  options->broker_path = DefaultBrokerPath();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    const char* value = argv[i + 1];
    if (arg == "--broker") {
      options->broker_path = value;
    } else if (arg == "--messages") {
      options->messages = std::atol(value);
    } else if (arg == "--size") {
      options->size = std::atol(value);
    } else if (arg == "--partitions") {
      options->partitions = std::atol(value);
    } else if (arg == "--data-dir") {
      options->data_dir = value;
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && options->messages > 0 && options->size > 0 && options->partitions > 0;
}

rd_kafka_t* NewClient(rd_kafka_type_t type, const std::string& bootstrap,
                      const std::vector<std::pair<std::string, std::string>>& props,
                      void (*dr)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "conf %s: %s\n", k.c_str(), err);
      std::exit(1);
    }
  };
  set("bootstrap.servers", bootstrap);
  for (const auto& [k, v] : props) set(k, v);
  if (dr != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (rk == nullptr) {
    std::fprintf(stderr, "rd_kafka_new: %s\n", err);
    std::exit(1);
  }
  return rk;
}

std::atomic<long> g_delivered{0};
std::atomic<long> g_failed{0};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (g_failed++ == 0) std::fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
  } else {
    ++g_delivered;
  }
}

void Report(const char* what, long messages, long size, Clock::duration elapsed) {
  double seconds = std::chrono::duration<double>(elapsed).count();
  std::printf("%-8s %ld messages x %ld B in %.3f s: %.0f msg/s, %.1f MB/s\n", what, messages, size,
              seconds, messages / seconds, messages * static_cast<double>(size) / seconds / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: %s [--broker PATH] [--messages N] [--size BYTES] [--partitions N] "
                 "[--data-dir DIR]\n",
                 argv[0]);
    return 2;
  }
  BrokerProcess broker(options.broker_path, options.data_dir);
  if (broker.address().empty()) {
    std::fprintf(stderr, "could not start %s\n", options.broker_path.c_str());
    return 1;
  }
  std::printf("broker %s at %s\n", options.broker_path.c_str(), broker.address().c_str());
  const std::string topic = "throughput";
  const std::string partitions = std::to_string(options.partitions);

  // Producer: large batches, a little linger, no per-message copy.
  rd_kafka_t* producer = NewClient(RD_KAFKA_PRODUCER, broker.address(),
                                   {{"linger.ms", "5"},
                                    {"batch.num.messages", "10000"},
                                    {"batch.size", "1000000"},
                                    {"queue.buffering.max.messages", "1000000"},
                                    {"queue.buffering.max.kbytes", "1048576"},
                                    {"acks", "1"}},
                                   &OnDelivery);
  if (ctrjoin::Status st = ctrjoin::CreateKafkaTopics(
          producer, {{topic, static_cast<int>(options.partitions)}}, 10'000);
      !st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }

  std::string payload(static_cast<std::size_t>(options.size), 'x');
  auto start = Clock::now();
  for (long i = 0; i < options.messages; ++i) {
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(topic.c_str()),
          RD_KAFKA_V_PARTITION(static_cast<std::int32_t>(i % options.partitions)),
          RD_KAFKA_V_VALUE(payload.data(), payload.size()), RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
        return 1;
      }
      rd_kafka_poll(producer, 1);
    }
    if ((i & 0xffff) == 0) rd_kafka_poll(producer, 0);
  }
  rd_kafka_flush(producer, 120000);
  Report("produce", g_delivered.load(), options.size, Clock::now() - start);
  if (g_failed > 0) std::printf("  %ld deliveries failed\n", g_failed.load());
  rd_kafka_destroy(producer);

  // Consumer: assign all partitions from the beginning, poll in batches.
  rd_kafka_t* consumer = NewClient(RD_KAFKA_CONSUMER, broker.address(),
                                   {{"group.id", "throughput"},
                                    {"enable.auto.commit", "false"},
                                    {"fetch.max.bytes", "52428800"},
                                    {"max.partition.fetch.bytes", "4194304"},
                                    {"queued.min.messages", "1000000"}});
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  for (long p = 0; p < options.partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), static_cast<std::int32_t>(p))->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(consumer);
  std::vector<rd_kafka_message_t*> batch(10000);
  long consumed = 0;
  long bytes = 0;
  start = Clock::now();
  auto deadline = start + std::chrono::minutes(5);
  while (consumed < g_delivered && Clock::now() < deadline) {
    ssize_t n = rd_kafka_consume_batch_queue(queue, 100, batch.data(), batch.size());
    for (ssize_t i = 0; i < n; ++i) {
      if (batch[static_cast<std::size_t>(i)]->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++consumed;
        bytes += static_cast<long>(batch[static_cast<std::size_t>(i)]->len);
      }
      rd_kafka_message_destroy(batch[static_cast<std::size_t>(i)]);
    }
  }
  Report("consume", consumed, consumed > 0 ? bytes / consumed : 0, Clock::now() - start);
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return consumed == g_delivered && g_failed == 0 ? 0 : 1;
}
