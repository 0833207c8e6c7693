// Tests of the test broker against librdkafka 2.0.2 (the C API) and against
// raw protocol frames. Every test starts its own broker in-process on an
// ephemeral port; every wait is bounded (kWait / explicit timeouts).

#include "tests/support/kafka_broker/broker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "src/core/crc32c.h"
#include "tests/support/kafka_broker/broker_core.h"
#include "tests/support/kafka_broker/record_batch.h"
#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kWait = seconds(20);   // upper bound for anything expected to happen
constexpr int kApiTimeoutMs = 15000;  // librdkafka calls that take a timeout
using Props = std::vector<std::pair<std::string, std::string>>;

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// Short check intervals keep the timeout and rebalance tests fast; the
// environment variable CTRJOIN_TESTBROKER_LOG=0|1|2 shows the broker's log.
std::unique_ptr<TestBroker> StartBroker(BrokerOptions options = {}) {
  options.transaction_check_interval_ms = 100;
  options.group_initial_rebalance_delay_ms = 100;
  if (const char* level = std::getenv("CTRJOIN_TESTBROKER_LOG"))
    options.log_level = std::atoi(level);
  auto broker = TestBroker::Start(options);
  if (!broker.ok()) {
    ADD_FAILURE() << "broker did not start: " << broker.status().message();
    return nullptr;
  }
  return std::move(broker).value();
}

rd_kafka_conf_t* MakeConf(const std::string& bootstrap, const Props& props) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      ADD_FAILURE() << "conf " << k << "=" << v << ": " << err;
    }
  };
  set("bootstrap.servers", bootstrap);
  set("log_level", "4");  // warnings and worse
  for (const auto& [k, v] : props) set(k, v);
  return conf;
}

struct Delivery {
  rd_kafka_resp_err_t error;
  std::int32_t partition;
  std::int64_t offset;
};

// A librdkafka producer that records delivery reports. Test thread only.
class Producer {
 public:
  Producer(const std::string& bootstrap, const Props& props) {
    rd_kafka_conf_t* conf = MakeConf(bootstrap, props);
    rd_kafka_conf_set_dr_msg_cb(conf, &Producer::OnDelivery);
    rd_kafka_conf_set_opaque(conf, this);
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk_ == nullptr) {
      ADD_FAILURE() << "rd_kafka_new: " << err;
      rd_kafka_conf_destroy(conf);
    }
  }
  ~Producer() {
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  rd_kafka_t* get() const { return rk_; }

  rd_kafka_resp_err_t Produce(const std::string& topic, std::int32_t partition,
                              const std::string& value, std::int64_t timestamp_ms = 0) {
    return rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
  }
  bool Flush() { return rd_kafka_flush(rk_, kApiTimeoutMs) == RD_KAFKA_RESP_ERR_NO_ERROR; }

  std::vector<Delivery> deliveries() {
    std::lock_guard<std::mutex> lock(mu_);
    return deliveries_;
  }
  std::size_t failed_deliveries() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<std::size_t>(
        std::count_if(deliveries_.begin(), deliveries_.end(),
                      [](const Delivery& d) { return d.error != RD_KAFKA_RESP_ERR_NO_ERROR; }));
  }

 private:
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Producer*>(opaque);
    std::lock_guard<std::mutex> lock(self->mu_);
    self->deliveries_.push_back({m->err, m->partition, m->offset});
  }

  rd_kafka_t* rk_ = nullptr;
  std::mutex mu_;  // protects deliveries_ (callbacks run inside flush/poll)
  std::vector<Delivery> deliveries_;
};

struct Message {
  std::int32_t partition;
  std::int64_t offset;
  std::string value;
  std::int64_t timestamp;
};

// A librdkafka consumer; closed (LeaveGroup) and destroyed with the object.
class Consumer {
 public:
  Consumer(const std::string& bootstrap, Props props) {
    props.insert(props.begin(), {{"group.id", UniqueName("group")},
                                 {"auto.offset.reset", "earliest"},
                                 {"enable.auto.commit", "false"},
                                 {"fetch.wait.max.ms", "100"},
                                 {"session.timeout.ms", "6000"},
                                 {"heartbeat.interval.ms", "200"}});
    rd_kafka_conf_t* conf = MakeConf(bootstrap, props);
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk_ == nullptr) {
      ADD_FAILURE() << "rd_kafka_new: " << err;
      rd_kafka_conf_destroy(conf);
      return;
    }
    rd_kafka_poll_set_consumer(rk_);
  }
  ~Consumer() { Close(); }
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  rd_kafka_t* get() const { return rk_; }

  void Close() {
    if (rk_ == nullptr) return;
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }

  void Assign(const std::string& topic,
              const std::vector<std::pair<std::int32_t, std::int64_t>>& partitions_and_offsets) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(4);
    for (const auto& [p, offset] : partitions_and_offsets) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = offset;
    }
    ASSERT_EQ(rd_kafka_assign(rk_, list), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(list);
  }

  void Subscribe(const std::string& topic) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), RD_KAFKA_PARTITION_UA);
    ASSERT_EQ(rd_kafka_subscribe(rk_, list), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(list);
  }

  // Polls once; appends a message if one came.
  void PollOnce(std::vector<Message>* out, int timeout_ms = 100) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, timeout_ms);
    if (m == nullptr) return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out->push_back({m->partition, m->offset,
                      std::string(static_cast<const char*>(m->payload), m->len),
                      rd_kafka_message_timestamp(m, nullptr)});
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ADD_FAILURE() << "consumer error: " << rd_kafka_message_errstr(m);
    }
    rd_kafka_message_destroy(m);
  }

  // Polls until |count| messages arrived or |timeout| passed.
  std::vector<Message> Consume(std::size_t count, Clock::duration timeout = kWait) {
    std::vector<Message> out;
    auto deadline = Clock::now() + timeout;
    while (out.size() < count && Clock::now() < deadline) PollOnce(&out);
    return out;
  }

  // Polls for exactly |duration|, returning everything that arrived.
  std::vector<Message> ConsumeFor(Clock::duration duration) {
    std::vector<Message> out;
    auto deadline = Clock::now() + duration;
    while (Clock::now() < deadline) PollOnce(&out);
    return out;
  }

  std::set<std::int32_t> AssignedPartitions() {
    std::set<std::int32_t> result;
    rd_kafka_topic_partition_list_t* list = nullptr;
    if (rd_kafka_assignment(rk_, &list) != RD_KAFKA_RESP_ERR_NO_ERROR) return result;
    for (int i = 0; i < list->cnt; ++i) result.insert(list->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(list);
    return result;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
};

std::vector<std::string> Values(const std::vector<Message>& messages) {
  std::vector<std::string> values;
  for (const Message& m : messages) values.push_back(m.value);
  return values;
}

rd_kafka_resp_err_t CreateTopic(rd_kafka_t* rk, const std::string& name, int partitions,
                                int replication_factor = 1) {
  char err[512];
  rd_kafka_NewTopic_t* topic =
      rd_kafka_NewTopic_new(name.c_str(), partitions, replication_factor, err, sizeof(err));
  if (topic == nullptr) {
    ADD_FAILURE() << "NewTopic: " << err;
    return RD_KAFKA_RESP_ERR__INVALID_ARG;
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, kApiTimeoutMs, err, sizeof(err));
  rd_kafka_CreateTopics(rk, &topic, 1, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, kApiTimeoutMs + 5000);
  rd_kafka_resp_err_t result = RD_KAFKA_RESP_ERR__TIMED_OUT;
  if (event != nullptr) {
    result = rd_kafka_event_error(event);
    if (result == RD_KAFKA_RESP_ERR_NO_ERROR) {
      size_t n = 0;
      const rd_kafka_topic_result_t** topics =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &n);
      result = n == 1 ? rd_kafka_topic_result_error(topics[0]) : RD_KAFKA_RESP_ERR__FAIL;
    }
    rd_kafka_event_destroy(event);
  }
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(topic);
  rd_kafka_queue_destroy(queue);
  return result;
}

int PartitionCount(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  int count = -1;
  if (rd_kafka_metadata(rk, 0, rkt, &md, kApiTimeoutMs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      count = md->topics[0].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  return count;
}

std::pair<std::int64_t, std::int64_t> Watermarks(rd_kafka_t* rk, const std::string& topic,
                                                 std::int32_t partition) {
  std::int64_t low = -1;
  std::int64_t high = -1;
  EXPECT_EQ(
      rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, kApiTimeoutMs),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  return {low, high};
}

// Fails the test (and returns false) when a transactional call errs.
bool TxnOk(rd_kafka_error_t* error, const char* what) {
  if (error == nullptr) return true;
  ADD_FAILURE() << what << ": " << rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return false;
}

Props TransactionalProps(const std::string& transactional_id) {
  return {{"transactional.id", transactional_id}, {"linger.ms", "5"}};
}

// Produces |values| to partition 0 in one transaction and commits or aborts.
// Flushes first: librdkafka purges unsent messages on abort, and the tests
// want aborted records to be in the log.
void RunTransaction(Producer& producer, const std::string& topic,
                    const std::vector<std::string>& values, bool commit) {
  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(producer.get()), "begin"));
  for (const std::string& v : values) {
    ASSERT_EQ(producer.Produce(topic, 0, v), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_TRUE(producer.Flush());
  if (commit) {
    ASSERT_TRUE(TxnOk(rd_kafka_commit_transaction(producer.get(), kApiTimeoutMs), "commit"));
  } else {
    ASSERT_TRUE(TxnOk(rd_kafka_abort_transaction(producer.get(), kApiTimeoutMs), "abort"));
  }
}

std::vector<std::string> Sequence(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

// ---------------------------------------------------------------------------
// A minimal raw protocol client for frames librdkafka would never send.

class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }

  bool SendRaw(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  // A request frame with header v1 (client id "raw").
  static std::string Frame(std::int16_t api_key, std::int16_t version, std::int32_t correlation_id,
                           const std::string& body) {
    std::string out;
    WireWriter w(&out);
    w.Int32(0);
    w.Int16(api_key);
    w.Int16(version);
    w.Int32(correlation_id);
    w.String("raw");
    w.Raw(body.data(), body.size());
    w.PatchInt32(0, static_cast<std::int32_t>(out.size() - 4));
    return out;
  }

  // Reads one response frame; returns its bytes after the size prefix, or
  // nullopt if the peer closed the connection (or nothing came in 5 s).
  std::optional<std::string> ReadFrame() {
    std::string size_bytes = ReadExactly(4);
    if (size_bytes.size() != 4) return std::nullopt;
    auto size = LoadBe32(reinterpret_cast<const std::uint8_t*>(size_bytes.data()));
    std::string body = ReadExactly(static_cast<std::size_t>(size));
    if (body.size() != static_cast<std::size_t>(size)) return std::nullopt;
    return body;
  }

  // True if the broker closes the connection within 5 s without answering.
  bool ClosedByPeer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  std::string ReadExactly(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
  }

  int fd_ = -1;
  bool connected_ = false;
};

WireReader ReaderOf(const std::string& s) {
  return WireReader(Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

// A Fetch v11 request body for partition 0 of |topic|.
std::string FetchBody(const std::string& topic, std::int64_t offset, std::int32_t max_wait_ms,
                      std::int8_t isolation, std::int32_t partition_max_bytes = 1 << 20) {
  std::string body;
  WireWriter w(&body);
  w.Int32(-1);           // ReplicaId
  w.Int32(max_wait_ms);  // MaxWaitMs
  w.Int32(1);            // MinBytes
  w.Int32(1 << 20);      // MaxBytes
  w.Int8(isolation);
  w.Int32(0);   // SessionId
  w.Int32(-1);  // SessionEpoch
  w.ArrayCount(1);
  w.String(topic);
  w.ArrayCount(1);
  w.Int32(0);       // Partition
  w.Int32(-1);      // CurrentLeaderEpoch
  w.Int64(offset);  // FetchOffset
  w.Int64(-1);      // LogStartOffset
  w.Int32(partition_max_bytes);
  w.ArrayCount(0);  // ForgottenTopicsData
  w.String("");     // RackId
  return body;
}

struct FetchedPartition {
  std::int16_t error = -1;
  std::int64_t high_watermark = -1;
  std::int64_t last_stable_offset = -1;
  std::vector<std::pair<std::int64_t, std::int64_t>> aborted;  // (pid, first offset)
  bool aborted_is_null = false;
  std::vector<BatchHeader> batches;
};

// Parses a Fetch v11 response frame (after the size prefix) for one partition.
std::optional<FetchedPartition> ParseFetchResponse(const std::string& frame) {
  WireReader r = ReaderOf(frame);
  r.Int32();  // correlation id
  r.Int32();  // throttle
  r.Int16();  // error
  r.Int32();  // session
  if (r.ArrayCount() != 1) return std::nullopt;
  r.String();
  if (r.ArrayCount() != 1) return std::nullopt;
  FetchedPartition out;
  r.Int32();
  out.error = r.Int16();
  out.high_watermark = r.Int64();
  out.last_stable_offset = r.Int64();
  r.Int64();  // log start
  std::int32_t aborted = r.ArrayCount();
  out.aborted_is_null = aborted < 0;
  for (std::int32_t i = 0; i < aborted; ++i) {
    std::int64_t pid = r.Int64();
    out.aborted.emplace_back(pid, r.Int64());
  }
  r.Int32();  // preferred read replica
  Bytes records = r.BytesField();
  if (!r.ok() || r.remaining() != 0) return std::nullopt;
  while (!records.empty()) {
    auto h = ParseBatchHeader(records);
    if (!h || h->total_size() > records.size()) return std::nullopt;
    out.batches.push_back(*h);
    records = records.subspan(h->total_size());
  }
  return out;
}

// A magic-2 batch of |count| one-byte records, as a producer would send it.
std::string MakeBatch(std::int64_t pid, std::int16_t epoch, std::int32_t seq, bool transactional,
                      int count) {
  std::string records;
  WireWriter r(&records);
  for (int i = 0; i < count; ++i) {
    std::string body;
    WireWriter b(&body);
    b.Int8(0);           // attributes
    b.ZigzagVarint(0);   // timestamp delta
    b.ZigzagVarint(i);   // offset delta
    b.ZigzagVarint(-1);  // null key
    b.ZigzagVarint(1);   // value length
    b.Raw("x", 1);
    b.ZigzagVarint(0);  // headers
    r.ZigzagVarint(static_cast<std::int64_t>(body.size()));
    r.Raw(body.data(), body.size());
  }
  std::string batch;
  WireWriter w(&batch);
  w.Int64(0);
  w.Int32(0);  // length, patched
  w.Int32(0);
  w.Int8(2);
  w.Int32(0);  // crc, patched
  w.Int16(transactional ? 0x10 : 0);
  w.Int32(count - 1);
  w.Int64(1000);
  w.Int64(1000);
  w.Int64(pid);
  w.Int16(epoch);
  w.Int32(seq);
  w.Int32(count);
  w.Raw(records.data(), records.size());
  w.PatchInt32(8, static_cast<std::int32_t>(batch.size() - 12));
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(batch.data());
  w.PatchInt32(17, static_cast<std::int32_t>(Crc32c(bytes + 21, batch.size() - 21)));
  return batch;
}

// Sends a Produce v7 of |batch| to partition 0 of |topic|; returns
// (error code, base offset) from the response.
std::pair<std::int16_t, std::int64_t> RawProduce(RawClient& client, const std::string& topic,
                                                 const std::string& batch) {
  static std::int32_t correlation = 100;
  std::string body;
  WireWriter w(&body);
  w.NullableString(std::nullopt);
  w.Int16(-1);
  w.Int32(5000);
  w.ArrayCount(1);
  w.String(topic);
  w.ArrayCount(1);
  w.Int32(0);
  w.BytesField(Bytes(reinterpret_cast<const std::uint8_t*>(batch.data()), batch.size()));
  if (!client.SendRaw(RawClient::Frame(0, 7, ++correlation, body))) return {-100, -1};
  auto frame = client.ReadFrame();
  if (!frame) return {-101, -1};
  WireReader r = ReaderOf(*frame);
  r.Int32();
  r.ArrayCount();
  r.String();
  r.ArrayCount();
  r.Int32();
  std::int16_t error = r.Int16();
  std::int64_t base = r.Int64();
  return r.ok() ? std::make_pair(error, base)
                : std::make_pair(std::int16_t{-102}, std::int64_t{-1});
}

// A raw ListOffsets v2 (read_uncommitted) for partition 0 of |topic| at
// |timestamp_ms|; returns (offset, timestamp) of the answer, or
// (-100, -100) if there was no well-formed answer without error.
std::pair<std::int64_t, std::int64_t> RawListOffsets(RawClient& client, const std::string& topic,
                                                     std::int64_t timestamp_ms) {
  static std::int32_t correlation = 500;
  std::string body;
  WireWriter w(&body);
  w.Int32(-1);  // ReplicaId
  w.Int8(0);    // IsolationLevel
  w.ArrayCount(1);
  w.String(topic);
  w.ArrayCount(1);
  w.Int32(0);
  w.Int64(timestamp_ms);
  const std::pair<std::int64_t, std::int64_t> failed{-100, -100};
  if (!client.SendRaw(RawClient::Frame(2, 2, ++correlation, body))) return failed;
  auto frame = client.ReadFrame();
  if (!frame) return failed;
  WireReader r = ReaderOf(*frame);
  r.Int32();  // correlation id
  r.Int32();  // throttle
  r.ArrayCount();
  r.String();
  r.ArrayCount();
  r.Int32();  // partition
  std::int16_t error = r.Int16();
  std::int64_t timestamp = r.Int64();
  std::int64_t offset = r.Int64();
  if (!r.ok() || error != 0) return failed;
  return {offset, timestamp};
}

// A fresh directory under the temporary directory, removed with the object.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix)
      : path_(std::filesystem::temp_directory_path() / UniqueName(prefix)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The ctrjoin-testbroker executable as a child process, its stdout and
// stderr going to files in |dir|. Test thread only; the destructor stops it
// (SIGTERM, then SIGKILL after 5 s) and reaps it.
class BrokerProcess {
 public:
  // |open_files_limit| > 0 runs it under `ulimit -n` (through /bin/sh).
  BrokerProcess(const std::vector<std::string>& args, const std::filesystem::path& dir,
                int open_files_limit = 0)
      : stdout_path_(dir / "stdout"), stderr_path_(dir / "stderr") {
    std::vector<std::string> argv;
    if (open_files_limit > 0) {
      argv = {"/bin/sh", "-c",
              "ulimit -n " + std::to_string(open_files_limit) + R"( && exec "$0" "$@")"};
    }
    argv.push_back(CTRJOIN_TESTBROKER_PATH);
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (std::string& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, stdout_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    // Only stdin, stdout and stderr: the child's descriptor budget is its own.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (posix_spawn(&pid_, raw[0], &actions, nullptr, raw.data(), environ) != 0) {
      ADD_FAILURE() << "posix_spawn " << raw[0] << ": " << std::strerror(errno);
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
  }
  ~BrokerProcess() {
    if (pid_ <= 0 || exit_status_) return;
    ::kill(pid_, SIGTERM);
    if (!Wait(seconds(5))) {
      ::kill(pid_, SIGKILL);
      Wait(seconds(5));
    }
  }
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  // The exit code (128 + signal if killed) once the process ended within
  // |timeout|; nullopt while it runs.
  std::optional<int> Wait(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!exit_status_ && pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else if (Clock::now() >= deadline) {
        break;
      } else {
        std::this_thread::sleep_for(milliseconds(10));
      }
    }
    return exit_status_;
  }

  // The port of the "127.0.0.1:PORT" line once it is printed (0 if it was
  // not within |timeout|).
  std::uint16_t WaitForPort(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    const std::string prefix = "127.0.0.1:";
    while (Clock::now() < deadline) {
      const std::string out = Stdout();
      if (out.starts_with(prefix) && out.find('\n') != std::string::npos) {
        return static_cast<std::uint16_t>(std::atoi(out.c_str() + prefix.size()));
      }
      if (Wait(milliseconds(10))) break;
    }
    return 0;
  }

  std::string Stdout() const { return ReadFile(stdout_path_); }
  std::string Stderr() const { return ReadFile(stderr_path_); }

 private:
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// ---------------------------------------------------------------------------

TEST(KafkaBrokerRecordBatchTest, Crc32cMatchesKnownValueAndPortablePath) {
  const std::string check = "123456789";
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(check.data());
  EXPECT_EQ(Crc32c(bytes, check.size()), 0xE3069283u);
  EXPECT_EQ(Crc32cPortable(bytes, check.size()), 0xE3069283u);
  std::mt19937 rng(7);
  std::vector<std::uint8_t> data(10007);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 100u, 10007u}) {
    EXPECT_EQ(Crc32c(data.data(), len), Crc32cPortable(data.data(), len)) << len;
  }
}

TEST(KafkaBrokerRecordBatchTest, ControlBatchLayout) {
  std::string batch = BuildControlBatch(42, 7, 3, ControlType::kAbort, 1000);
  ASSERT_EQ(batch.size(), 78u);
  Bytes bytes(reinterpret_cast<const std::uint8_t*>(batch.data()), batch.size());
  auto h = ParseBatchHeader(bytes);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->base_offset, 42);
  EXPECT_EQ(h->batch_length, 66);
  EXPECT_TRUE(h->control());
  EXPECT_TRUE(h->transactional());
  EXPECT_EQ(h->producer_id, 7);
  EXPECT_EQ(h->producer_epoch, 3);
  EXPECT_EQ(h->crc, Crc32c(bytes.data() + 21, bytes.size() - 21));
  EXPECT_EQ(ReadControlType(bytes), ControlType::kAbort);
}

TEST(KafkaBrokerTest, StartsOnEphemeralPortAndStops) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  EXPECT_GT(broker->port(), 0);
  EXPECT_EQ(broker->bootstrap(), "127.0.0.1:" + std::to_string(broker->port()));
  auto start = Clock::now();
  broker->Stop();
  EXPECT_LT(Clock::now() - start, seconds(5));
  broker->Stop();  // idempotent
}

TEST(KafkaBrokerTest, PlainProduceAndConsumeAcrossPartitions) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("plain");
  Producer producer(broker->bootstrap(), {{"linger.ms", "5"}, {"acks", "1"}});
  ASSERT_EQ(CreateTopic(producer.get(), topic, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
  const int kCount = 3000;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(producer.Produce(topic, i % 3, "v" + std::to_string(i)), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_TRUE(producer.Flush());
  EXPECT_EQ(producer.failed_deliveries(), 0u);

  Consumer consumer(broker->bootstrap(), {});
  consumer.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING},
                          {1, RD_KAFKA_OFFSET_BEGINNING},
                          {2, RD_KAFKA_OFFSET_BEGINNING}});
  std::vector<Message> got = consumer.Consume(kCount);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kCount));
  std::map<std::int32_t, std::vector<Message>> by_partition;
  for (const Message& m : got) by_partition[m.partition].push_back(m);
  ASSERT_EQ(by_partition.size(), 3u);
  for (const auto& [p, messages] : by_partition) {
    ASSERT_EQ(messages.size(), static_cast<std::size_t>(kCount / 3));
    for (std::size_t i = 0; i < messages.size(); ++i) {
      EXPECT_EQ(messages[i].offset, static_cast<std::int64_t>(i));
      EXPECT_EQ(messages[i].value, "v" + std::to_string(i * 3 + static_cast<std::size_t>(p)));
    }
  }
  EXPECT_EQ(Watermarks(consumer.get(), topic, 1),
            std::make_pair(std::int64_t{0}, std::int64_t{kCount / 3}));
}

TEST(KafkaBrokerTest, CompressedBatchesPassThroughUntouched) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  for (const char* codec : {"gzip", "snappy", "lz4", "zstd"}) {
    const std::string topic = UniqueName(std::string("codec-") + codec);
    Producer producer(
        broker->bootstrap(),
        {{"compression.codec", codec}, {"linger.ms", "50"}, {"enable.idempotence", "true"}});
    for (int i = 0; i < 200; ++i) {
      ASSERT_EQ(producer.Produce(topic, 0, std::string(50, static_cast<char>('a' + i % 26))),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ASSERT_TRUE(producer.Flush());
    EXPECT_EQ(producer.failed_deliveries(), 0u) << codec;
    Consumer consumer(broker->bootstrap(), {{"check.crcs", "true"}});
    consumer.Assign(topic, {{0, 150}});
    std::vector<Message> got = consumer.Consume(50);
    ASSERT_EQ(got.size(), 50u) << codec;
    EXPECT_EQ(got.front().offset, 150) << codec;
    EXPECT_EQ(got.front().value, std::string(50, static_cast<char>('a' + 150 % 26))) << codec;
  }
}

TEST(KafkaBrokerTest, IdempotentProducerDeliversExactlyOnceInOrder) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("idem");
  Producer producer(
      broker->bootstrap(),
      {{"enable.idempotence", "true"}, {"linger.ms", "2"}, {"batch.num.messages", "100"}});
  const int kCount = 5000;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(producer.Produce(topic, 0, std::to_string(i)), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_TRUE(producer.Flush());
  EXPECT_EQ(producer.failed_deliveries(), 0u);

  Consumer consumer(broker->bootstrap(), {{"isolation.level", "read_committed"}});
  consumer.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  std::vector<Message> got = consumer.Consume(kCount);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(got[static_cast<std::size_t>(i)].value, std::to_string(i));
    EXPECT_EQ(got[static_cast<std::size_t>(i)].offset, i);
  }
  EXPECT_TRUE(consumer.ConsumeFor(milliseconds(300)).empty());
}

TEST(KafkaBrokerTxnTest, CommittedTransactionIsVisibleAndWritesMarker) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("txn-commit");
  Producer producer(broker->bootstrap(), TransactionalProps(UniqueName("tx")));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(producer.get(), kApiTimeoutMs), "init"));
  RunTransaction(producer, topic, Sequence("c", 10), /*commit=*/true);

  Consumer consumer(broker->bootstrap(), {{"isolation.level", "read_committed"}});
  consumer.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  std::vector<Message> got = consumer.Consume(10);
  EXPECT_EQ(Values(got), Sequence("c", 10));
  // Ten records plus the COMMIT marker; nothing open, so LSO = HWM.
  EXPECT_EQ(Watermarks(consumer.get(), topic, 0).second, 11);
  EXPECT_TRUE(consumer.ConsumeFor(milliseconds(300)).empty());
}

TEST(KafkaBrokerTxnTest, ReadCommittedSkipsAbortedTransactions) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("txn-abort");
  Producer producer(broker->bootstrap(), TransactionalProps(UniqueName("tx")));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(producer.get(), kApiTimeoutMs), "init"));
  RunTransaction(producer, topic, Sequence("a", 5), true);
  RunTransaction(producer, topic, Sequence("b", 5), false);
  RunTransaction(producer, topic, Sequence("c", 5), true);
  RunTransaction(producer, topic, Sequence("d", 3), false);

  std::vector<std::string> committed = Sequence("a", 5);
  for (const std::string& v : Sequence("c", 5)) committed.push_back(v);
  Consumer reader(broker->bootstrap(), {{"isolation.level", "read_committed"}});
  reader.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  std::vector<Message> got = reader.Consume(committed.size());
  EXPECT_EQ(Values(got), committed);
  EXPECT_TRUE(reader.ConsumeFor(milliseconds(500)).empty());

  // read_uncommitted sees every data record but no control record.
  Consumer dirty(broker->bootstrap(), {{"isolation.level", "read_uncommitted"}});
  dirty.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  std::vector<Message> all = dirty.Consume(18);
  ASSERT_EQ(all.size(), 18u);
  EXPECT_EQ(all[5].value, "b0");
  EXPECT_EQ(all[5].offset, 6);  // after a0..a4 and the COMMIT marker at 5
  EXPECT_TRUE(dirty.ConsumeFor(milliseconds(300)).empty());
}

TEST(KafkaBrokerTxnTest, ReadCommittedFromInsideBatchAndAfterAbort) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("txn-mid");
  Producer producer(broker->bootstrap(),
                    {{"transactional.id", UniqueName("tx")}, {"linger.ms", "200"}});
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(producer.get(), kApiTimeoutMs), "init"));
  RunTransaction(producer, topic, Sequence("x", 10), true);  // offsets 0-9 (one batch), marker 10
  RunTransaction(producer, topic, Sequence("y", 4), false);  // offsets 11-14, marker 15
  RunTransaction(producer, topic, Sequence("z", 3), true);   // offsets 16-18, marker 19

  {
    Consumer mid(broker->bootstrap(), {{"isolation.level", "read_committed"}});
    mid.Assign(topic, {{0, 4}});
    std::vector<Message> got = mid.Consume(9);
    ASSERT_EQ(got.size(), 9u);
    EXPECT_EQ(got.front().offset, 4);
    EXPECT_EQ(got.front().value, "x4");
    EXPECT_EQ(got[6].value, "z0");
    EXPECT_EQ(got[6].offset, 16);
  }
  {
    // Starting inside the aborted transaction: nothing of it may leak.
    Consumer in_abort(broker->bootstrap(), {{"isolation.level", "read_committed"}});
    in_abort.Assign(topic, {{0, 13}});
    EXPECT_EQ(Values(in_abort.Consume(3)), Sequence("z", 3));
  }
  {
    Consumer after(broker->bootstrap(), {{"isolation.level", "read_committed"}});
    after.Assign(topic, {{0, 16}});
    EXPECT_EQ(Values(after.Consume(3)), Sequence("z", 3));
    EXPECT_TRUE(after.ConsumeFor(milliseconds(300)).empty());
  }
}

TEST(KafkaBrokerTxnTest, OpenTransactionHoldsBackLastStableOffset) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("txn-lso");
  Producer plain(broker->bootstrap(), {{"linger.ms", "0"}});
  Producer txn(broker->bootstrap(), TransactionalProps(UniqueName("tx")));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(txn.get(), kApiTimeoutMs), "init"));

  ASSERT_EQ(plain.Produce(topic, 0, "before"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(plain.Flush());
  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(txn.get()), "begin"));
  ASSERT_EQ(txn.Produce(topic, 0, "in-txn"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(txn.Flush());
  ASSERT_EQ(plain.Produce(topic, 0, "after"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(plain.Flush());

  Consumer committed(broker->bootstrap(), {{"isolation.level", "read_committed"}});
  committed.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  Consumer uncommitted(broker->bootstrap(), {{"isolation.level", "read_uncommitted"}});
  uncommitted.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});

  EXPECT_EQ(Values(uncommitted.Consume(3)),
            (std::vector<std::string>{"before", "in-txn", "after"}));
  std::vector<Message> held = committed.ConsumeFor(seconds(2));
  EXPECT_EQ(Values(held), std::vector<std::string>{"before"});
  EXPECT_EQ(Watermarks(committed.get(), topic, 0).second, 1);    // LSO
  EXPECT_EQ(Watermarks(uncommitted.get(), topic, 0).second, 3);  // HWM

  ASSERT_TRUE(TxnOk(rd_kafka_commit_transaction(txn.get(), kApiTimeoutMs), "commit"));
  EXPECT_EQ(Values(committed.Consume(2)), (std::vector<std::string>{"in-txn", "after"}));
  EXPECT_EQ(Watermarks(committed.get(), topic, 0).second, 4);
}

TEST(KafkaBrokerTxnTest, NewProducerWithSameIdFencesZombie) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("txn-fence");
  const std::string id = UniqueName("tx");
  Producer zombie(broker->bootstrap(), TransactionalProps(id));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(zombie.get(), kApiTimeoutMs), "init zombie"));
  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(zombie.get()), "begin zombie"));
  ASSERT_EQ(zombie.Produce(topic, 0, "zombie"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(zombie.Flush());

  Producer successor(broker->bootstrap(), TransactionalProps(id));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(successor.get(), kApiTimeoutMs), "init new"));

  rd_kafka_error_t* error = rd_kafka_commit_transaction(zombie.get(), kApiTimeoutMs);
  ASSERT_NE(error, nullptr) << "the zombie's commit must fail";
  EXPECT_TRUE(rd_kafka_error_is_fatal(error)) << rd_kafka_error_string(error);
  EXPECT_EQ(rd_kafka_error_code(error), RD_KAFKA_RESP_ERR__FENCED) << rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);

  RunTransaction(successor, topic, {"successor"}, true);
  Consumer consumer(broker->bootstrap(), {{"isolation.level", "read_committed"}});
  consumer.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_EQ(Values(consumer.Consume(1)), std::vector<std::string>{"successor"});
  EXPECT_TRUE(consumer.ConsumeFor(milliseconds(500)).empty());
}

TEST(KafkaBrokerTxnTest, TimedOutTransactionIsAbortedAndProducerFenced) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("txn-timeout");
  // The topic exists and the producer knows it before the clock starts, so
  // the record is written well within the transaction timeout even on a
  // loaded machine.
  Producer producer(broker->bootstrap(), {{"transactional.id", UniqueName("tx")},
                                          {"transaction.timeout.ms", "3000"},
                                          {"linger.ms", "0"}});
  ASSERT_EQ(CreateTopic(producer.get(), topic, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(PartitionCount(producer.get(), topic), 1);
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(producer.get(), kApiTimeoutMs), "init"));
  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(producer.get()), "begin"));
  ASSERT_EQ(producer.Produce(topic, 0, "late"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(producer.Flush());
  ASSERT_EQ(producer.failed_deliveries(), 0u);

  // The broker aborts the transaction once it is 3 s old (checked every 100 ms).
  Consumer uncommitted(broker->bootstrap(), {{"isolation.level", "read_uncommitted"}});
  auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline && Watermarks(uncommitted.get(), topic, 0).second < 2) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(Watermarks(uncommitted.get(), topic, 0).second, 2);  // record + ABORT marker

  rd_kafka_error_t* error = rd_kafka_commit_transaction(producer.get(), kApiTimeoutMs);
  ASSERT_NE(error, nullptr) << "committing a timed-out transaction must fail";
  EXPECT_TRUE(rd_kafka_error_is_fatal(error)) << rd_kafka_error_string(error);
  EXPECT_EQ(rd_kafka_error_code(error), RD_KAFKA_RESP_ERR__FENCED) << rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);

  Consumer committed(broker->bootstrap(), {{"isolation.level", "read_committed"}});
  committed.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_TRUE(committed.ConsumeFor(seconds(1)).empty());
  EXPECT_EQ(Watermarks(committed.get(), topic, 0).second, 2);
}

std::int64_t CommittedOffset(Consumer& consumer, const std::string& topic, std::int32_t partition,
                             int timeout_ms = kApiTimeoutMs) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
  std::int64_t offset = -12345;
  if (rd_kafka_committed(consumer.get(), list, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR &&
      list->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    offset = list->elems[0].offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
  return offset;
}

TEST(KafkaBrokerTxnTest, SentOffsetsBecomeVisibleOnlyOnCommit) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string input = UniqueName("txn-in");
  const std::string output = UniqueName("txn-out");
  const std::string group = UniqueName("txn-group");
  Producer producer(broker->bootstrap(), TransactionalProps(UniqueName("tx")));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(producer.get(), kApiTimeoutMs), "init"));
  // read_uncommitted: OffsetFetch without RequireStable, which answers
  // what is committed, pending offsets left out.
  Consumer observer(broker->bootstrap(),
                    {{"group.id", group}, {"isolation.level", "read_uncommitted"}});
  // read_committed: OffsetFetch v7 with RequireStable (KIP-447), answered
  // UNSTABLE_OFFSET_COMMIT while a transaction holds an offset of the
  // partition; librdkafka asks again until it is stable.
  Consumer stable(broker->bootstrap(),
                  {{"group.id", group}, {"isolation.level", "read_committed"}});
  ASSERT_EQ(PartitionCount(producer.get(), input), 1);  // auto-creates the input topic

  auto send_offsets = [&](std::int64_t offset) {
    rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, input.c_str(), 0)->offset = offset;
    rd_kafka_consumer_group_metadata_t* metadata =
        rd_kafka_consumer_group_metadata_new(group.c_str());
    bool ok = TxnOk(
        rd_kafka_send_offsets_to_transaction(producer.get(), offsets, metadata, kApiTimeoutMs),
        "send_offsets_to_transaction");
    rd_kafka_consumer_group_metadata_destroy(metadata);
    rd_kafka_topic_partition_list_destroy(offsets);
    return ok;
  };

  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(producer.get()), "begin"));
  ASSERT_EQ(producer.Produce(output, 0, "out-1"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(send_offsets(3));
  EXPECT_EQ(CommittedOffset(observer, input, 0), RD_KAFKA_OFFSET_INVALID);
  EXPECT_EQ(CommittedOffset(stable, input, 0, 1500), -12345);  // not stable: no answer
  ASSERT_TRUE(TxnOk(rd_kafka_commit_transaction(producer.get(), kApiTimeoutMs), "commit"));
  EXPECT_EQ(CommittedOffset(observer, input, 0), 3);
  EXPECT_EQ(CommittedOffset(stable, input, 0), 3);

  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(producer.get()), "begin 2"));
  ASSERT_EQ(producer.Produce(output, 0, "out-2"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(send_offsets(7));
  ASSERT_TRUE(TxnOk(rd_kafka_abort_transaction(producer.get(), kApiTimeoutMs), "abort"));
  EXPECT_EQ(CommittedOffset(observer, input, 0), 3);

  // Offsets alone (no records) are a transaction of their own.
  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(producer.get()), "begin 3"));
  ASSERT_TRUE(send_offsets(9));
  ASSERT_TRUE(TxnOk(rd_kafka_commit_transaction(producer.get(), kApiTimeoutMs), "commit 3"));
  EXPECT_EQ(CommittedOffset(observer, input, 0), 9);
}

// The exactly-once loop ctrjoin runs: a read_committed group consumer feeds a
// transactional producer that commits the consumed offsets with its output.
// One transaction is aborted and its input re-read from the committed offset.
TEST(KafkaBrokerTxnTest, ConsumeTransformProduceExactlyOnce) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string input = UniqueName("eos-in");
  const std::string output = UniqueName("eos-out");
  const std::string group = UniqueName("eos-group");
  Producer source(broker->bootstrap(), {});
  for (int i = 0; i < 100; ++i) ASSERT_EQ(source.Produce(input, 0, std::to_string(i)), 0);
  ASSERT_TRUE(source.Flush());

  Consumer consumer(broker->bootstrap(),
                    {{"group.id", group}, {"isolation.level", "read_committed"}});
  consumer.Subscribe(input);
  Producer producer(broker->bootstrap(), TransactionalProps(UniqueName("eos-tx")));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(producer.get(), kApiTimeoutMs), "init"));

  int transactions = 0;
  std::int64_t next_offset = 0;
  auto deadline = Clock::now() + seconds(30);
  while (next_offset < 100 && Clock::now() < deadline) {
    std::vector<Message> batch;
    while (batch.size() < 10 && Clock::now() < deadline) consumer.PollOnce(&batch);
    if (batch.empty()) continue;
    ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(producer.get()), "begin"));
    for (const Message& m : batch) {
      ASSERT_EQ(producer.Produce(output, 0, "out-" + m.value), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, input.c_str(), 0)->offset = batch.back().offset + 1;
    rd_kafka_consumer_group_metadata_t* metadata = rd_kafka_consumer_group_metadata(consumer.get());
    ASSERT_TRUE(TxnOk(
        rd_kafka_send_offsets_to_transaction(producer.get(), offsets, metadata, kApiTimeoutMs),
        "send_offsets_to_transaction"));
    rd_kafka_consumer_group_metadata_destroy(metadata);
    if (++transactions == 3) {
      // Pretend the output failed: abort, then rewind to the committed offset.
      ASSERT_TRUE(producer.Flush());
      ASSERT_TRUE(TxnOk(rd_kafka_abort_transaction(producer.get(), kApiTimeoutMs), "abort"));
      rd_kafka_topic_partition_list_t* rewind = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(rewind, input.c_str(), 0);
      ASSERT_EQ(rd_kafka_committed(consumer.get(), rewind, kApiTimeoutMs), 0);
      EXPECT_EQ(rewind->elems[0].offset, next_offset);
      rd_kafka_error_t* seek = rd_kafka_seek_partitions(consumer.get(), rewind, kApiTimeoutMs);
      ASSERT_TRUE(TxnOk(seek, "seek"));
      rd_kafka_topic_partition_list_destroy(rewind);
    } else {
      ASSERT_TRUE(TxnOk(rd_kafka_commit_transaction(producer.get(), kApiTimeoutMs), "commit"));
      next_offset = batch.back().offset + 1;
    }
    rd_kafka_topic_partition_list_destroy(offsets);
  }
  ASSERT_EQ(next_offset, 100);
  EXPECT_EQ(CommittedOffset(consumer, input, 0), 100);

  Consumer reader(broker->bootstrap(), {{"isolation.level", "read_committed"}});
  reader.Assign(output, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  std::vector<std::string> expected;
  for (int i = 0; i < 100; ++i) expected.push_back("out-" + std::to_string(i));
  EXPECT_EQ(Values(reader.Consume(100)), expected);
  EXPECT_TRUE(reader.ConsumeFor(milliseconds(500)).empty());
}

// KIP-447: TxnOffsetCommit v3 carries the consumer's generation and member
// id. Offsets sent with the group metadata of a generation the group has
// left behind (a member that missed a rebalance: a zombie) are refused and
// never committed; the current generation's are accepted.
TEST(KafkaBrokerTxnTest, OffsetsOfAStaleGenerationAreRefused) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string input = UniqueName("kip447-in");
  const std::string group = UniqueName("kip447-group");
  Producer admin(broker->bootstrap(), {});
  ASSERT_EQ(CreateTopic(admin.get(), input, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
  const Props props = {{"group.id", group}, {"topic.metadata.refresh.interval.ms", "500"}};
  Consumer a(broker->bootstrap(), props);
  a.Subscribe(input);
  std::vector<Message> sink;
  auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline && a.AssignedPartitions().size() != 2) a.PollOnce(&sink);
  ASSERT_EQ(a.AssignedPartitions().size(), 2u);
  rd_kafka_consumer_group_metadata_t* stale = rd_kafka_consumer_group_metadata(a.get());

  Consumer b(broker->bootstrap(), props);  // a rebalance: a new generation
  b.Subscribe(input);
  deadline = Clock::now() + kWait;
  while (Clock::now() < deadline &&
         (a.AssignedPartitions().size() != 1 || b.AssignedPartitions().size() != 1)) {
    a.PollOnce(&sink, 50);
    b.PollOnce(&sink, 50);
  }
  ASSERT_EQ(a.AssignedPartitions().size(), 1u);
  const std::int32_t owned = *a.AssignedPartitions().begin();

  Producer producer(broker->bootstrap(), TransactionalProps(UniqueName("kip447-tx")));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(producer.get(), kApiTimeoutMs), "init"));
  auto send = [&](rd_kafka_consumer_group_metadata_t* metadata, std::int64_t offset) {
    rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, input.c_str(), owned)->offset = offset;
    rd_kafka_error_t* error =
        rd_kafka_send_offsets_to_transaction(producer.get(), offsets, metadata, kApiTimeoutMs);
    rd_kafka_topic_partition_list_destroy(offsets);
    rd_kafka_consumer_group_metadata_destroy(metadata);
    return error;
  };

  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(producer.get()), "begin"));
  rd_kafka_error_t* refused = send(stale, 1);
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(rd_kafka_error_code(refused), RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
      << rd_kafka_error_string(refused);
  rd_kafka_error_destroy(refused);
  ASSERT_TRUE(TxnOk(rd_kafka_abort_transaction(producer.get(), kApiTimeoutMs), "abort"));

  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(producer.get()), "begin 2"));
  ASSERT_TRUE(TxnOk(send(rd_kafka_consumer_group_metadata(a.get()), 2), "send current"));
  ASSERT_TRUE(TxnOk(rd_kafka_commit_transaction(producer.get(), kApiTimeoutMs), "commit"));
  Consumer observer(broker->bootstrap(), {{"group.id", group}});
  EXPECT_EQ(CommittedOffset(observer, input, owned), 2);
}

TEST(KafkaBrokerGroupTest, TwoMembersShareThenOneTakesAll) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("group-topic");
  const std::string group = UniqueName("group");
  Producer admin(broker->bootstrap(), {});
  ASSERT_EQ(CreateTopic(admin.get(), topic, 4), RD_KAFKA_RESP_ERR_NO_ERROR);
  for (int p = 0; p < 4; ++p) ASSERT_EQ(admin.Produce(topic, p, "m"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(admin.Flush());

  const Props props = {{"group.id", group}, {"topic.metadata.refresh.interval.ms", "500"}};
  Consumer a(broker->bootstrap(), props);
  a.Subscribe(topic);
  std::vector<Message> sink;
  auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline && a.AssignedPartitions().size() != 4) a.PollOnce(&sink);
  ASSERT_EQ(a.AssignedPartitions(), (std::set<std::int32_t>{0, 1, 2, 3}));

  auto b = std::make_unique<Consumer>(broker->bootstrap(), props);
  b->Subscribe(topic);
  deadline = Clock::now() + kWait;
  std::set<std::int32_t> pa;
  std::set<std::int32_t> pb;
  while (Clock::now() < deadline) {
    a.PollOnce(&sink, 50);
    b->PollOnce(&sink, 50);
    pa = a.AssignedPartitions();
    pb = b->AssignedPartitions();
    if (!pa.empty() && !pb.empty() && pa.size() + pb.size() == 4) break;
  }
  ASSERT_FALSE(pa.empty());
  ASSERT_FALSE(pb.empty());
  std::set<std::int32_t> all = pa;
  all.insert(pb.begin(), pb.end());
  EXPECT_EQ(all, (std::set<std::int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(pa.size() + pb.size(), 4u);

  b->Close();  // LeaveGroup
  deadline = Clock::now() + kWait;
  while (Clock::now() < deadline && a.AssignedPartitions().size() != 4) a.PollOnce(&sink);
  EXPECT_EQ(a.AssignedPartitions(), (std::set<std::int32_t>{0, 1, 2, 3}));
}

TEST(KafkaBrokerGroupTest, CommittedOffsetsOfAssignedConsumer) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("commit-topic");
  const std::string group = UniqueName("group");
  Producer producer(broker->bootstrap(), {});
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(producer.Produce(topic, 0, "m"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(producer.Flush());
  {
    Consumer c(broker->bootstrap(), {{"group.id", group}});
    c.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
    ASSERT_EQ(c.Consume(5).size(), 5u);
    ASSERT_EQ(rd_kafka_commit(c.get(), nullptr, /*async=*/0), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  Consumer resumed(broker->bootstrap(), {{"group.id", group}});
  EXPECT_EQ(CommittedOffset(resumed, topic, 0), 5);
  resumed.Assign(topic, {{0, RD_KAFKA_OFFSET_STORED}});
  ASSERT_EQ(producer.Produce(topic, 0, "next"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(producer.Flush());
  std::vector<Message> got = resumed.Consume(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, 5);
  EXPECT_EQ(got[0].value, "next");
}

TEST(KafkaBrokerOffsetsTest, OffsetsForTimesFindsFirstRecordAtOrAfter) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("times");
  // One batch holding timestamps 1000, 2000, ..., 10000 at offsets 0-9.
  Producer producer(broker->bootstrap(), {{"linger.ms", "200"}});
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(producer.Produce(topic, 0, "t" + std::to_string(i), 1000 * (i + 1)),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_TRUE(producer.Flush());
  auto lookup = [&](std::int64_t ts) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), 0)->offset = ts;
    std::int64_t offset = -12345;
    if (rd_kafka_offsets_for_times(producer.get(), list, kApiTimeoutMs) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        list->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      offset = list->elems[0].offset;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return offset;
  };
  EXPECT_EQ(lookup(0), 0);
  EXPECT_EQ(lookup(1000), 0);
  EXPECT_EQ(lookup(2500), 2);
  EXPECT_EQ(lookup(10000), 9);
  EXPECT_EQ(lookup(10001), RD_KAFKA_OFFSET_END);  // none: -1

  Consumer consumer(broker->bootstrap(), {});
  consumer.Assign(topic, {{0, 2}});
  std::vector<Message> got = consumer.Consume(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].timestamp, 3000);
}

TEST(KafkaBrokerOffsetsTest, OffsetsForTimesInsideCompressedBatchAnswersTheRecord) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::pair<const char*, int> codecs[] = {
      {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}};
  for (const auto& [codec, codec_id] : codecs) {
    SCOPED_TRACE(codec);
    const std::string topic = UniqueName(std::string("times-") + codec);
    // One compressed batch holding timestamps 1000, 2000, ..., 10000 at
    // offsets 0-9 (values long enough that compression pays).
    Producer producer(broker->bootstrap(), {{"linger.ms", "200"}, {"compression.codec", codec}});
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(
          producer.Produce(topic, 0, std::string(100, static_cast<char>('a' + i)), 1000 * (i + 1)),
          RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ASSERT_TRUE(producer.Flush());
    RawClient client(broker->port());
    ASSERT_TRUE(client.SendRaw(RawClient::Frame(1, 11, 1, FetchBody(topic, 0, 0, 0))));
    auto frame = client.ReadFrame();
    ASSERT_TRUE(frame);
    auto fetched = ParseFetchResponse(*frame);
    ASSERT_TRUE(fetched);
    // Usually one batch; librdkafka may send the first message alone while
    // the topic's metadata arrives. Either way most records share a batch,
    // so the targets below fall inside compressed batches.
    int records = 0, largest = 0;
    for (const auto& batch : fetched->batches) {
      ASSERT_EQ(batch.compression(), codec_id);
      records += batch.records_count;
      largest = std::max<int>(largest, batch.records_count);
    }
    ASSERT_EQ(records, 10);
    ASSERT_GE(largest, 5);

    using Found = std::pair<std::int64_t, std::int64_t>;  // (offset, timestamp)
    EXPECT_EQ(RawListOffsets(client, topic, 0), Found(0, 1000));
    EXPECT_EQ(RawListOffsets(client, topic, 1000), Found(0, 1000));
    EXPECT_EQ(RawListOffsets(client, topic, 2500), Found(2, 3000));
    EXPECT_EQ(RawListOffsets(client, topic, 9999), Found(9, 10000));
    EXPECT_EQ(RawListOffsets(client, topic, 10000), Found(9, 10000));
    EXPECT_EQ(RawListOffsets(client, topic, 10001), Found(-1, -1));

    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), 0)->offset = 4500;
    ASSERT_EQ(rd_kafka_offsets_for_times(producer.get(), list, kApiTimeoutMs),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(list->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(list->elems[0].offset, 4);
    rd_kafka_topic_partition_list_destroy(list);
  }
}

TEST(KafkaBrokerAdminTest, CreateTopicsReportsSuccessAndErrors) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("admin");
  Producer admin(broker->bootstrap(), {});
  EXPECT_EQ(CreateTopic(admin.get(), topic, 5), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(PartitionCount(admin.get(), topic), 5);
  EXPECT_EQ(CreateTopic(admin.get(), topic, 5), RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS);
  EXPECT_EQ(CreateTopic(admin.get(), UniqueName("admin-rf"), 1, 3),
            RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR);
  EXPECT_EQ(CreateTopic(admin.get(), "bad/name", 1), RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION);
}

TEST(KafkaBrokerAdminTest, AutoCreateCanBeDisabled) {
  BrokerOptions options;
  options.auto_create_topics = false;
  auto broker = StartBroker(options);
  ASSERT_TRUE(broker);
  Producer producer(broker->bootstrap(), {{"message.timeout.ms", "1500"}});
  ASSERT_EQ(producer.Produce("no-such-topic", 0, "x"), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_flush(producer.get(), 5000);
  std::vector<Delivery> deliveries = producer.deliveries();
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_NE(deliveries[0].error, RD_KAFKA_RESP_ERR_NO_ERROR);
}

// DeleteRecords through librdkafka's admin API: the error and the new low
// watermark of partition 0 of topic.
std::pair<rd_kafka_resp_err_t, std::int64_t> DeleteBefore(rd_kafka_t* rk, const std::string& topic,
                                                          std::int64_t offset) {
  rd_kafka_topic_partition_list_t* before = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(before, topic.c_str(), 0)->offset = offset;
  rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(before);
  rd_kafka_topic_partition_list_destroy(before);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_DeleteRecords(rk, &request, 1, nullptr, queue);
  rd_kafka_DeleteRecords_destroy(request);
  std::pair<rd_kafka_resp_err_t, std::int64_t> out{RD_KAFKA_RESP_ERR__TIMED_OUT, -1};
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, kApiTimeoutMs);
  if (event != nullptr) {
    const rd_kafka_DeleteRecords_result_t* result = rd_kafka_event_DeleteRecords_result(event);
    const rd_kafka_topic_partition_list_t* offsets =
        result != nullptr ? rd_kafka_DeleteRecords_result_offsets(result) : nullptr;
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      out = {rd_kafka_event_error(event), -1};
    } else if (offsets != nullptr && offsets->cnt == 1) {
      out = {offsets->elems[0].err, offsets->elems[0].offset};
    }
    rd_kafka_event_destroy(event);
  }
  rd_kafka_queue_destroy(queue);
  return out;
}

// DeleteRecords (what trims a changelog topic): the log start moves up and
// never back; records below it are gone for readers and for offsets-for-
// times; an offset past the end is refused; the start survives a restart.
TEST(KafkaBrokerAdminTest, DeleteRecordsMovesTheLogStartForGood) {
  ScratchDir dir("ctrjoin-testbroker");
  BrokerOptions options;
  options.data_dir = dir.path().string();
  const std::string topic = UniqueName("trimmed");
  {
    auto broker = StartBroker(options);
    ASSERT_TRUE(broker);
    Producer producer(broker->bootstrap(), {{"linger.ms", "200"}});
    ASSERT_EQ(CreateTopic(producer.get(), topic, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(producer.Produce(topic, 0, "r" + std::to_string(i), 1000 * (i + 1)),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ASSERT_TRUE(producer.Flush());  // one batch: the start falls inside it

    EXPECT_EQ(DeleteBefore(producer.get(), topic, 4),
              std::make_pair(RD_KAFKA_RESP_ERR_NO_ERROR, std::int64_t{4}));
    EXPECT_EQ(Watermarks(producer.get(), topic, 0),
              std::make_pair(std::int64_t{4}, std::int64_t{10}));
    EXPECT_EQ(DeleteBefore(producer.get(), topic, 2),
              std::make_pair(RD_KAFKA_RESP_ERR_NO_ERROR, std::int64_t{4}));
    EXPECT_EQ(DeleteBefore(producer.get(), topic, 11).first, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE);

    Consumer reader(broker->bootstrap(), {});
    reader.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
    std::vector<Message> got = reader.Consume(6);
    ASSERT_EQ(got.size(), 6u);
    EXPECT_EQ(got[0].offset, 4);
    EXPECT_EQ(got[0].value, "r4");

    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), 0)->offset = 0;  // a time
    ASSERT_EQ(rd_kafka_offsets_for_times(producer.get(), list, kApiTimeoutMs),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(list->elems[0].offset, 4);
    rd_kafka_topic_partition_list_destroy(list);
    broker->Stop();
  }
  auto broker = StartBroker(options);
  ASSERT_TRUE(broker);
  Producer admin(broker->bootstrap(), {});
  EXPECT_EQ(Watermarks(admin.get(), topic, 0), std::make_pair(std::int64_t{4}, std::int64_t{10}));
  EXPECT_EQ(DeleteBefore(admin.get(), topic, RD_KAFKA_OFFSET_END),
            std::make_pair(RD_KAFKA_RESP_ERR_NO_ERROR, std::int64_t{10}));
  broker->Stop();
}

TEST(KafkaBrokerPersistenceTest, RestartKeepsTopicsDataOffsetsAndTransactions) {
  ScratchDir dir("ctrjoin-testbroker");
  BrokerOptions options;
  options.data_dir = dir.path().string();
  const std::string topic = UniqueName("persist");
  const std::string group = UniqueName("group");
  const std::string txn_id = UniqueName("tx");
  {
    auto broker = StartBroker(options);
    ASSERT_TRUE(broker);
    Producer plain(broker->bootstrap(), {{"enable.idempotence", "true"}});
    ASSERT_EQ(CreateTopic(plain.get(), topic, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < 100; ++i) {
      ASSERT_EQ(plain.Produce(topic, 0, "p" + std::to_string(i)), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ASSERT_TRUE(plain.Flush());
    Producer txn(broker->bootstrap(), TransactionalProps(txn_id));
    ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(txn.get(), kApiTimeoutMs), "init"));
    RunTransaction(txn, topic, Sequence("c", 10), true);
    RunTransaction(txn, topic, Sequence("a", 5), false);
    Consumer c(broker->bootstrap(), {{"group.id", group}});
    c.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
    ASSERT_EQ(c.Consume(20).size(), 20u);
    ASSERT_EQ(rd_kafka_commit(c.get(), nullptr, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    c.Close();
    broker->Stop();
  }
  auto broker = StartBroker(options);
  ASSERT_TRUE(broker);
  Producer admin(broker->bootstrap(), {});
  EXPECT_EQ(PartitionCount(admin.get(), topic), 2);
  Consumer committed(broker->bootstrap(),
                     {{"group.id", group}, {"isolation.level", "read_committed"}});
  EXPECT_EQ(CommittedOffset(committed, topic, 0), 20);
  committed.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  std::vector<Message> got = committed.Consume(110);
  ASSERT_EQ(got.size(), 110u);
  EXPECT_EQ(got[0].value, "p0");
  EXPECT_EQ(got[100].value, "c0");
  EXPECT_TRUE(committed.ConsumeFor(milliseconds(500)).empty());
  EXPECT_EQ(Watermarks(committed.get(), topic, 0).second, 117);  // 115 records + 2 markers

  // The transactional id survives: a new producer gets a newer epoch and works.
  Producer txn(broker->bootstrap(), TransactionalProps(txn_id));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(txn.get(), kApiTimeoutMs), "init after restart"));
  RunTransaction(txn, topic, {"after-restart"}, true);
  EXPECT_EQ(Values(committed.Consume(1)), std::vector<std::string>{"after-restart"});
  broker->Stop();
}

TEST(KafkaBrokerPersistenceTest, SecondBrokerOnTheSameDataDirIsRefused) {
  ScratchDir dir("ctrjoin-testbroker-lock");
  BrokerOptions options;
  options.data_dir = dir.path().string();
  auto first = StartBroker(options);
  ASSERT_TRUE(first);
  auto second = TestBroker::Start(options);
  ASSERT_FALSE(second.ok()) << "two brokers now write the same logs";
  EXPECT_NE(second.status().message().find(dir.path().string()), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << second.status().message();

  // Stop() hands the directory over.
  first->Stop();
  auto third = TestBroker::Start(options);
  EXPECT_TRUE(third.ok()) << third.status().message();
}

TEST(KafkaBrokerPersistenceTest, LongTopicNamesWithManyPartitionsSurviveRestart) {
  ScratchDir dir("ctrjoin-testbroker-long");
  BrokerOptions options;
  options.data_dir = dir.path().string();
  // Two names of the maximum length (249) that differ only in the last
  // character, with 12 partitions each: "<name>-11.log" would be 256 bytes.
  std::string first_topic = UniqueName("long");
  first_topic.resize(248, 'x');
  const std::string second_topic = first_topic + "b";
  first_topic += "a";
  const std::int32_t kLast = 11;
  {
    auto broker = StartBroker(options);
    ASSERT_TRUE(broker);
    Producer producer(broker->bootstrap(), {{"linger.ms", "5"}});
    ASSERT_EQ(CreateTopic(producer.get(), first_topic, kLast + 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_EQ(CreateTopic(producer.get(), second_topic, kLast + 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (const std::string& v : Sequence("a", 5)) {
      ASSERT_EQ(producer.Produce(first_topic, kLast, v), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    for (const std::string& v : Sequence("b", 3)) {
      ASSERT_EQ(producer.Produce(second_topic, kLast, v), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ASSERT_TRUE(producer.Flush());
    EXPECT_EQ(producer.failed_deliveries(), 0u);
    broker->Stop();
  }
  auto broker = StartBroker(options);
  ASSERT_TRUE(broker);
  Producer admin(broker->bootstrap(), {});
  EXPECT_EQ(PartitionCount(admin.get(), first_topic), kLast + 1);
  EXPECT_EQ(PartitionCount(admin.get(), second_topic), kLast + 1);
  Consumer first(broker->bootstrap(), {});
  first.Assign(first_topic, {{kLast, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_EQ(Values(first.Consume(5)), Sequence("a", 5));
  Consumer second(broker->bootstrap(), {});
  second.Assign(second_topic, {{kLast, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_EQ(Values(second.Consume(3)), Sequence("b", 3));
  EXPECT_TRUE(second.ConsumeFor(milliseconds(300)).empty());
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    EXPECT_LE(entry.path().filename().string().size(), 255u) << entry.path();
  }
}

TEST(KafkaBrokerPersistenceTest, ReadsAndKeepsLogsOfTheFlatLayout) {
  // The layout before per-topic directories: logs/<topic>-<partition>.log.
  ScratchDir dir("ctrjoin-testbroker-flat");
  const std::string topic = UniqueName("flat");
  {
    std::ofstream(dir.path() / "topics") << topic << " 2\n";
    std::filesystem::create_directories(dir.path() / "logs");
    std::ofstream(dir.path() / "logs" / (topic + "-1.log"), std::ios::binary)
        << MakeBatch(-1, -1, -1, false, 3);
  }
  BrokerOptions options;
  options.data_dir = dir.path().string();
  for (int restart = 0; restart < 2; ++restart) {
    SCOPED_TRACE(restart);
    auto broker = StartBroker(options);
    ASSERT_TRUE(broker);
    Producer producer(broker->bootstrap(), {});
    EXPECT_EQ(PartitionCount(producer.get(), topic), 2);
    EXPECT_EQ(Watermarks(producer.get(), topic, 1).second, 3 + restart);
    ASSERT_EQ(producer.Produce(topic, 1, "new"), RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_TRUE(producer.Flush());
    EXPECT_EQ(producer.failed_deliveries(), 0u);
  }
  auto broker = StartBroker(options);
  ASSERT_TRUE(broker);
  Consumer consumer(broker->bootstrap(), {});
  consumer.Assign(topic, {{1, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_EQ(Values(consumer.Consume(5)), (std::vector<std::string>{"x", "x", "x", "new", "new"}));
}

TEST(KafkaBrokerProtocolTest, MalformedFramesCloseOnlyTheirConnection) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  {
    RawClient unknown_api(broker->port());
    ASSERT_TRUE(unknown_api.connected());
    ASSERT_TRUE(unknown_api.SendRaw(RawClient::Frame(999, 0, 1, "")));
    EXPECT_TRUE(unknown_api.ClosedByPeer());
  }
  {
    RawClient unsupported_version(broker->port());
    ASSERT_TRUE(unsupported_version.SendRaw(RawClient::Frame(3, 42, 1, "")));  // Metadata v42
    EXPECT_TRUE(unsupported_version.ClosedByPeer());
  }
  {
    RawClient oversize(broker->port());
    std::string frame;
    WireWriter(&frame).Int32(0x7fffffff);
    ASSERT_TRUE(oversize.SendRaw(frame + "garbage"));
    EXPECT_TRUE(oversize.ClosedByPeer());
  }
  {
    RawClient negative(broker->port());
    std::string frame;
    WireWriter(&frame).Int32(-5);
    ASSERT_TRUE(negative.SendRaw(frame));
    EXPECT_TRUE(negative.ClosedByPeer());
  }
  {
    RawClient truncated(broker->port());
    // A Produce v7 whose topic array claims more than the frame holds.
    std::string body;
    WireWriter w(&body);
    w.NullableString(std::nullopt);
    w.Int16(-1);
    w.Int32(1000);
    w.Int32(5);
    ASSERT_TRUE(truncated.SendRaw(RawClient::Frame(0, 7, 1, body)));
    EXPECT_TRUE(truncated.ClosedByPeer());
  }
  {
    RawClient corrupt_batch(broker->port());
    // A well-formed Produce v7 carrying a batch with a wrong CRC: an error
    // response, and the connection stays usable.
    std::string batch = BuildControlBatch(0, -1, -1, ControlType::kCommit, 0);
    batch[30] ^= 0x55;
    std::string body;
    WireWriter w(&body);
    w.NullableString(std::nullopt);
    w.Int16(1);
    w.Int32(1000);
    w.ArrayCount(1);
    w.String("corrupt");
    w.ArrayCount(1);
    w.Int32(0);
    w.BytesField(Bytes(reinterpret_cast<const std::uint8_t*>(batch.data()), batch.size()));
    // Create the topic first through Metadata (auto-create).
    std::string md;
    WireWriter m(&md);
    m.ArrayCount(1);
    m.String("corrupt");
    m.Bool(true);
    ASSERT_TRUE(corrupt_batch.SendRaw(RawClient::Frame(3, 4, 1, md)));
    ASSERT_TRUE(corrupt_batch.ReadFrame());
    ASSERT_TRUE(corrupt_batch.SendRaw(RawClient::Frame(0, 7, 2, body)));
    auto response = corrupt_batch.ReadFrame();
    ASSERT_TRUE(response);
    WireReader r = ReaderOf(*response);
    EXPECT_EQ(r.Int32(), 2);  // correlation id
    ASSERT_EQ(r.ArrayCount(), 1);
    EXPECT_EQ(r.String(), "corrupt");
    ASSERT_EQ(r.ArrayCount(), 1);
    EXPECT_EQ(r.Int32(), 0);
    EXPECT_EQ(r.Int16(), Code(KafkaError::kCorruptMessage));
  }
  {
    RawClient versions(broker->port());
    ASSERT_TRUE(versions.SendRaw(RawClient::Frame(18, 0, 7, "")));
    auto v0 = versions.ReadFrame();
    ASSERT_TRUE(v0);
    WireReader r = ReaderOf(*v0);
    EXPECT_EQ(r.Int32(), 7);
    EXPECT_EQ(r.Int16(), 0);
    EXPECT_GE(r.ArrayCount(), 18);
    ASSERT_TRUE(versions.SendRaw(RawClient::Frame(18, 99, 8, "")));
    auto v99 = versions.ReadFrame();
    ASSERT_TRUE(v99);
    WireReader r99 = ReaderOf(*v99);
    EXPECT_EQ(r99.Int32(), 8);
    EXPECT_EQ(r99.Int16(), Code(KafkaError::kUnsupportedVersion));
  }
  // The broker still serves real clients.
  const std::string topic = UniqueName("after-garbage");
  Producer producer(broker->bootstrap(), {});
  ASSERT_EQ(producer.Produce(topic, 0, "still-alive"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(producer.Flush());
  Consumer consumer(broker->bootstrap(), {});
  consumer.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_EQ(Values(consumer.Consume(1)), std::vector<std::string>{"still-alive"});
}

TEST(KafkaBrokerProtocolTest, RandomRequestBodiesNeverBreakTheBroker) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  std::mt19937 rng(20240601);
  int frames = 0;
  for (const ApiVersionRange& api : kSupportedApis) {
    for (std::int16_t v = api.min_version; v <= api.max_version; ++v) {
      for (int i = 0; i < 8; ++i) {
        std::string body(rng() % 96, '\0');
        for (char& b : body) b = static_cast<char>(rng());
        // Small counts and lengths make the decoders go deeper than pure noise.
        if (body.size() >= 8 && i % 2 == 0) {
          for (std::size_t k = 0; k + 4 <= body.size(); k += 6) {
            body[k] = body[k + 1] = 0;
          }
        }
        RawClient client(broker->port());
        ASSERT_TRUE(client.connected());
        ASSERT_TRUE(client.SendRaw(
            RawClient::Frame(static_cast<std::int16_t>(api.key), v, frames++, body)));
      }
    }
  }
  // Still serving: a full round trip through librdkafka.
  const std::string topic = UniqueName("after-fuzz");
  Producer producer(broker->bootstrap(), {});
  ASSERT_EQ(producer.Produce(topic, 0, "alive"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(producer.Flush());
  Consumer consumer(broker->bootstrap(), {});
  consumer.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_EQ(Values(consumer.Consume(1)), std::vector<std::string>{"alive"});
}

TEST(KafkaBrokerProtocolTest, IdempotentSequenceAndEpochRules) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("raw-idem");
  Producer admin(broker->bootstrap(), {});
  ASSERT_EQ(CreateTopic(admin.get(), topic, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  RawClient client(broker->port());
  using Result = std::pair<std::int16_t, std::int64_t>;
  const std::int64_t pid = 777000;
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 0, 0, false, 2)), Result(0, 0));
  // A retry of a recent batch gets its original offset and appends nothing.
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 0, 0, false, 2)), Result(0, 0));
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 0, 5, false, 1)).first,
            Code(KafkaError::kOutOfOrderSequenceNumber));
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 0, 2, false, 1)), Result(0, 2));
  // A new epoch must start at sequence 0 (librdkafka bumps epochs locally).
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 1, 3, false, 1)).first,
            Code(KafkaError::kOutOfOrderSequenceNumber));
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 1, 0, false, 1)), Result(0, 3));
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 0, 3, false, 1)).first,
            Code(KafkaError::kInvalidProducerEpoch));
  // A transactional batch opens a transaction that holds back the LSO; a
  // non-transactional batch of the same producer is then refused.
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 1, 1, true, 1)), Result(0, 4));
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid, 1, 2, false, 1)).first,
            Code(KafkaError::kInvalidTxnState));
  EXPECT_EQ(RawProduce(client, topic, MakeBatch(pid + 1, 0, 0, false, 1)), Result(0, 5));
  ASSERT_TRUE(client.SendRaw(RawClient::Frame(1, 11, 1, FetchBody(topic, 0, 0, 1))));
  auto frame = client.ReadFrame();
  ASSERT_TRUE(frame);
  auto fetched = ParseFetchResponse(*frame);
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->high_watermark, 6);
  EXPECT_EQ(fetched->last_stable_offset, 4);
  ASSERT_EQ(fetched->batches.size(), 3u);  // offsets 0-1, 2, 3: below the LSO
  EXPECT_EQ(fetched->batches[2].base_offset, 3);
}

TEST(KafkaBrokerProtocolTest, FetchLongPollsAndReturnsSeveralBatches) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("raw-fetch");
  Producer producer(broker->bootstrap(), {{"linger.ms", "0"}});
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(producer.Produce(topic, 0, "b" + std::to_string(i)), RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_TRUE(producer.Flush());  // one batch each
  }
  RawClient client(broker->port());
  ASSERT_TRUE(client.SendRaw(RawClient::Frame(1, 11, 1, FetchBody(topic, 0, 500, 0))));
  auto frame = client.ReadFrame();
  ASSERT_TRUE(frame);
  auto fetched = ParseFetchResponse(*frame);
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->error, 0);
  EXPECT_EQ(fetched->high_watermark, 5);
  EXPECT_TRUE(fetched->aborted_is_null);
  ASSERT_EQ(fetched->batches.size(), 5u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(fetched->batches[static_cast<std::size_t>(i)].base_offset, i);

  // Limits smaller than a batch still return one whole batch.
  ASSERT_TRUE(client.SendRaw(RawClient::Frame(1, 11, 9, FetchBody(topic, 1, 500, 0, 10))));
  frame = client.ReadFrame();
  ASSERT_TRUE(frame);
  fetched = ParseFetchResponse(*frame);
  ASSERT_TRUE(fetched);
  ASSERT_EQ(fetched->batches.size(), 1u);
  EXPECT_EQ(fetched->batches[0].base_offset, 1);

  // At the end of the log the request waits for MaxWaitMs, then answers empty.
  auto start = Clock::now();
  ASSERT_TRUE(client.SendRaw(RawClient::Frame(1, 11, 2, FetchBody(topic, 5, 400, 0))));
  frame = client.ReadFrame();
  auto waited = Clock::now() - start;
  ASSERT_TRUE(frame);
  fetched = ParseFetchResponse(*frame);
  ASSERT_TRUE(fetched);
  EXPECT_TRUE(fetched->batches.empty());
  EXPECT_GE(waited, milliseconds(350));
  EXPECT_LT(waited, seconds(3));

  // A parked fetch is answered as soon as data arrives.
  start = Clock::now();
  ASSERT_TRUE(client.SendRaw(RawClient::Frame(1, 11, 3, FetchBody(topic, 5, 10000, 0))));
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_EQ(producer.Produce(topic, 0, "wake"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(producer.Flush());
  frame = client.ReadFrame();
  ASSERT_TRUE(frame);
  fetched = ParseFetchResponse(*frame);
  ASSERT_TRUE(fetched);
  ASSERT_EQ(fetched->batches.size(), 1u);
  EXPECT_EQ(fetched->batches[0].base_offset, 5);
  EXPECT_LT(Clock::now() - start, seconds(5));

  // Out of range.
  ASSERT_TRUE(client.SendRaw(RawClient::Frame(1, 11, 4, FetchBody(topic, 100, 0, 0))));
  frame = client.ReadFrame();
  ASSERT_TRUE(frame);
  fetched = ParseFetchResponse(*frame);
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->error, Code(KafkaError::kOffsetOutOfRange));
}

TEST(KafkaBrokerProtocolTest, AbortedTransactionListIsSortedByFirstOffset) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  const std::string topic = UniqueName("raw-aborted");
  Producer first(broker->bootstrap(), TransactionalProps(UniqueName("tx1")));
  Producer second(broker->bootstrap(), TransactionalProps(UniqueName("tx2")));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(first.get(), kApiTimeoutMs), "init 1"));
  ASSERT_TRUE(TxnOk(rd_kafka_init_transactions(second.get(), kApiTimeoutMs), "init 2"));
  // first starts at offset 0, second at 1; second aborts first (marker 2),
  // then first (marker 3): completion order differs from start order.
  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(first.get()), "begin 1"));
  ASSERT_EQ(first.Produce(topic, 0, "t1"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(first.Flush());
  ASSERT_TRUE(TxnOk(rd_kafka_begin_transaction(second.get()), "begin 2"));
  ASSERT_EQ(second.Produce(topic, 0, "t2"), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(second.Flush());
  ASSERT_TRUE(TxnOk(rd_kafka_abort_transaction(second.get(), kApiTimeoutMs), "abort 2"));
  ASSERT_TRUE(TxnOk(rd_kafka_abort_transaction(first.get(), kApiTimeoutMs), "abort 1"));

  RawClient client(broker->port());
  ASSERT_TRUE(client.SendRaw(RawClient::Frame(1, 11, 1, FetchBody(topic, 0, 0, 1))));
  auto frame = client.ReadFrame();
  ASSERT_TRUE(frame);
  auto fetched = ParseFetchResponse(*frame);
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->high_watermark, 4);
  EXPECT_EQ(fetched->last_stable_offset, 4);
  ASSERT_EQ(fetched->aborted.size(), 2u);
  EXPECT_EQ(fetched->aborted[0].second, 0);
  EXPECT_EQ(fetched->aborted[1].second, 1);
  EXPECT_NE(fetched->aborted[0].first, fetched->aborted[1].first);
  ASSERT_EQ(fetched->batches.size(), 4u);
  EXPECT_TRUE(fetched->batches[2].control());
  EXPECT_TRUE(fetched->batches[3].control());

  Consumer consumer(broker->bootstrap(), {{"isolation.level", "read_committed"}});
  consumer.Assign(topic, {{0, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_TRUE(consumer.ConsumeFor(seconds(1)).empty());
}

TEST(KafkaBrokerProcessTest, HelpExitsZeroAndUnknownOptionsFailWithTheReason) {
  ScratchDir dir("ctrjoin-testbroker-cli");
  {
    BrokerProcess help({"--help"}, dir.path());
    EXPECT_EQ(help.Wait(seconds(10)), 0);
    EXPECT_NE(help.Stdout().find("usage:"), std::string::npos) << help.Stdout();
  }
  // Each refusal names the culprit before the usage that follows it.
  const std::vector<std::vector<std::string>> bad = {
      {"--no-such-option"}, {"--port"}, {"--port", "x"}, {"--log-level", "7"}};
  for (const std::vector<std::string>& args : bad) {
    SCOPED_TRACE(args.back());
    BrokerProcess process(args, dir.path());
    std::optional<int> status = process.Wait(seconds(10));
    ASSERT_TRUE(status);
    EXPECT_NE(*status, 0);
    const std::string err = process.Stderr();
    const std::string reason = err.substr(0, err.find("usage:"));
    EXPECT_NE(reason.find(args.front()), std::string::npos) << err;
    EXPECT_NE(reason.find(args.back()), std::string::npos) << err;
    EXPECT_NE(err.find("usage:"), std::string::npos) << err;
  }
}

TEST(KafkaBrokerProcessTest, AcceptBacksOffWhileOutOfFileDescriptors) {
  ScratchDir dir("ctrjoin-testbroker-emfile");
  BrokerProcess broker({"--port", "0"}, dir.path(), /*open_files_limit=*/24);
  const std::uint16_t port = broker.WaitForPort(seconds(10));
  ASSERT_NE(port, 0) << broker.Stderr();
  // More connections than the broker has descriptors: the rest wait in the
  // listen backlog, so accept fails with EMFILE until some are closed.
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::make_unique<RawClient>(port));
    ASSERT_TRUE(clients.back()->connected());
  }
  std::this_thread::sleep_for(milliseconds(1500));
  const std::string log = broker.Stderr();
  const auto lines = std::count(log.begin(), log.end(), '\n');
  EXPECT_GE(lines, 1);
  EXPECT_LE(lines, 5) << log.substr(0, 1000);
  EXPECT_NE(log.find("Too many open files"), std::string::npos) << log.substr(0, 1000);

  clients.clear();
  RawClient client(port);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.SendRaw(RawClient::Frame(18, 0, 7, "")));
  auto versions = client.ReadFrame();
  ASSERT_TRUE(versions) << "no answer once descriptors were free again";
  EXPECT_EQ(ReaderOf(*versions).Int32(), 7);
  EXPECT_NE(broker.Stderr().find("works again"), std::string::npos) << broker.Stderr();
}

}  // namespace
}  // namespace ctrjoin::testbroker
