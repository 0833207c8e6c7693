#include "src/io/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <queue>
#include <random>
#include <vector>

namespace ctrjoin {

namespace {

// Samples ranks 1..n with P(k) proportional to 1 / k^s (inverse CDF).
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s) : cdf_(n) {
    double sum = 0;
    for (uint64_t k = 0; k < n; ++k) {
      sum += 1.0 / std::pow(static_cast<double>(k + 1), s);
      cdf_[k] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }
  uint64_t operator()(std::mt19937_64& rng) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<uint64_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

struct Queued {
  int64_t arrival_ms;
  uint64_t seq;  // generation order breaks ties: deterministic
  GeneratedRecord record;
  bool operator>(const Queued& o) const {
    return arrival_ms != o.arrival_ms ? arrival_ms > o.arrival_ms : seq > o.seq;
  }
};

constexpr const char* kDevices[] = {"ios", "android", "web"};
constexpr double kDeviceEffect[] = {0.3, -0.2, 0.0};

// Deterministic per (seed, key, salt): splitmix64.
uint64_t Mix(uint64_t seed, uint64_t key, uint64_t salt) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + key * 0xbf58476d1ce4e5b9ULL + salt;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double UnitOf(uint64_t seed, uint64_t key, uint64_t salt) {
  return static_cast<double>(Mix(seed, key, salt) >> 11) * 0x1p-53;
}

// A standard normal (Box-Muller) per (seed, key, salt).
double NormalOf(uint64_t seed, uint64_t key, uint64_t salt) {
  const double u1 = std::max(UnitOf(seed, key, salt), 1e-12);
  const double u2 = UnitOf(seed, key, salt + 1);
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double Logit(double p) { return std::log(p / (1 - p)); }

// Feature versions of user u: 2, or 3 for a fifth of them.
int UserVersions(const WorkloadOptions& o, uint64_t u) {
  return UnitOf(o.seed, u, 101) < 0.2 ? 3 : 2;
}

// The user's hidden affinity in version v: a stable part and a drift.
double UserAffinity(const WorkloadOptions& o, uint64_t u, int v) {
  return 0.8 * NormalOf(o.seed, u, 201) + 0.3 * NormalOf(o.seed, u, 300 + 2 * v);
}

double ItemQuality(const WorkloadOptions& o, uint64_t i) {
  return 0.8 * NormalOf(o.seed ^ 0x17e5ULL, i, 401);
}

// The click model's intercept: the logit of ctr, widened for the spread of
// the other terms (variance about 1.6: probit approximation), and the mean
// position effect (-0.54) taken back.
double BaseLogit(const WorkloadOptions& o) {
  const double ctr = std::clamp(o.ctr, 1e-6, 1 - 1e-6);
  return Logit(ctr) * std::sqrt(1 + M_PI * 1.6 / 8) + 0.54;
}

}  // namespace

double ClickProbability(const WorkloadOptions& o, uint64_t user, uint64_t item, uint64_t position,
                        int device, double ctx0) {
  const double logit = BaseLogit(o) + UserAffinity(o, user, UserVersions(o, user) - 1) +
                       ItemQuality(o, item) - 0.12 * static_cast<double>(position) +
                       kDeviceEffect[device] + (ctx0 - 0.5);
  return Sigmoid(logit);
}

struct WorkloadGenerator::Impl {
  explicit Impl(WorkloadOptions o)
      : opts(o),
        rng(o.seed),
        users(o.users, o.zipf_exponent),
        items(o.items, o.zipf_exponent),
        clock_ms(static_cast<double>(o.start_ts_ms)) {}

  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng); }
  bool Chance(double p) { return p > 0 && Uniform() < p; }

  int64_t ArrivalFor(int64_t ts) {
    int64_t arrival =
        ts + static_cast<int64_t>(Uniform() * static_cast<double>(opts.max_disorder_ms));
    if (Chance(opts.late_rate)) arrival += opts.late_by_ms;
    return arrival;
  }

  // key: the impression id the record is about; p_click >= 0 only for a
  // well-formed first impression.
  void Push(StreamKind stream, int64_t arrival, std::string json, const std::string& key,
            double p_click = -1) {
    std::string impression_id = p_click >= 0 ? key : std::string();
    queue.push(Queued{
        arrival, seq++,
        GeneratedRecord{stream, arrival, std::move(json), p_click, std::move(impression_id), key}});
  }

  // Replaces a record by one of a few realistic kinds of garbage.
  std::string Corrupt(const std::string& json, StreamKind stream) {
    switch (static_cast<int>(Uniform() * 4)) {
      case 0: return json.substr(0, json.size() / 2);  // truncated
      case 1: return R"({"impression_id": 12.5, "ts": "yesterday"})";
      case 2: return stream == StreamKind::kClick ? R"({"ts": 1})" : R"({"user_id": "u1"})";
      default: return "not json at all";
    }
  }

  void GenerateImpression() {
    clock_ms += 1000.0 / opts.impressions_per_sec;
    const auto ts = static_cast<int64_t>(clock_ms);
    const uint64_t n = impressions++;
    const std::string id = fmt::format("imp-{}-{}", opts.seed, n);
    const uint64_t position = static_cast<uint64_t>(Uniform() * 10);
    const uint64_t user = users(rng);
    const uint64_t item = items(rng);
    const int device = static_cast<int>(Uniform() * 3);
    // Written with 3 decimals: the model sees what the sample holds.
    const double ctx0 = std::round(Uniform() * 1000) / 1000;
    const double ctx1 = std::round(Uniform() * 1000) / 1000;
    const double p_click = ClickProbability(opts, user, item, position, device, ctx0);
    std::string json = fmt::format(
        R"({{"impression_id":"{}","user_id":"u{}","item_id":"i{}","ts":{},"features":)"
        R"({{"position":{},"device":"{}","hour":{},"ctx":[{:.3f},{:.3f}])",
        id, user, item, ts, position, kDevices[device], (ts / 3'600'000) % 24, ctx0, ctx1);
    for (uint32_t f = 0; f < opts.extra_features; ++f) {
      fmt::format_to(std::back_inserter(json), R"(,"f{}":{:.4f})", f, Uniform());
    }
    // ,"pad":"…"}} closes the record at exactly payload_bytes.
    constexpr size_t kPadOverhead = 11;
    if (opts.payload_bytes > json.size() + kPadOverhead) {
      json += R"(,"pad":")";
      json.append(opts.payload_bytes - json.size() - 3, 'x');
      json += '"';
    }
    json += "}}";
    const bool malformed = Chance(opts.malformed_rate);
    if (malformed) json = Corrupt(json, StreamKind::kImpression);
    const int64_t arrival = ArrivalFor(ts);
    if (Chance(opts.duplicate_impression_rate)) {
      Push(StreamKind::kImpression, arrival + 1 + static_cast<int64_t>(Uniform() * 1000), json, id);
    }
    Push(StreamKind::kImpression, arrival, std::move(json), id, malformed ? -1 : p_click);

    if (Chance(p_click)) {
      const double delay = ClickDelayMs();
      const int64_t click_ts = ts + static_cast<int64_t>(delay);
      PushClick(id, click_ts);
      if (Chance(opts.duplicate_click_rate)) {
        PushClick(id, click_ts + static_cast<int64_t>(Uniform() * 5000));
      }
    }
    if (Chance(opts.orphan_click_rate)) {
      PushClick(fmt::format("ghost-{}-{}", opts.seed, n), ts);
    }
  }

  double ClickDelayMs() {
    const double mean = static_cast<double>(std::max<int64_t>(1, opts.mean_click_delay_ms));
    switch (opts.click_delay) {
      case ClickDelay::kUniform: return Uniform() * 2 * mean;
      case ClickDelay::kFixed: return mean;
      case ClickDelay::kExponential: break;
    }
    return std::exponential_distribution<double>(1.0 / mean)(rng);
  }

  void PushClick(const std::string& id, int64_t click_ts) {
    std::string json = fmt::format(R"({{"impression_id":"{}","ts":{}}})", id, click_ts);
    if (Chance(opts.malformed_rate)) json = Corrupt(json, StreamKind::kClick);
    Push(StreamKind::kClick, ArrivalFor(click_ts), std::move(json), id);
  }

  WorkloadOptions opts;
  std::mt19937_64 rng;
  ZipfSampler users;
  ZipfSampler items;
  double clock_ms;
  uint64_t impressions = 0;
  uint64_t seq = 0;
  std::priority_queue<Queued, std::vector<Queued>, std::greater<>> queue;
};

void GenerateFeatureRows(const WorkloadOptions& o,
                         const std::function<void(const std::string& json)>& emit) {
  std::mt19937_64 rng(o.seed ^ 0x5eedf00dULL);
  std::uniform_real_distribution<double> unit(0, 1);
  constexpr const char* kCountries[] = {"de", "fr", "us", "br", "in", "jp"};
  constexpr const char* kCategories[] = {"shoes", "books", "games", "garden", "music"};
  constexpr int64_t kDay = 86'400'000;
  const double base_ctr = Logit(std::clamp(o.ctr, 1e-6, 1 - 1e-6));
  for (uint64_t u = 0; u < o.users; ++u) {
    const int versions = UserVersions(o, u);
    const int age = 18 + static_cast<int>(unit(rng) * 50);
    const char* country = kCountries[static_cast<int>(unit(rng) * 6)];
    for (int v = 0; v < versions; ++v) {
      const int64_t ts = o.start_ts_ms - (v == 0 ? 30 * kDay : v == 1 ? 7 * kDay : kDay / 24);
      // The click model's affinity of this version, seen through ctr_7d.
      const double ctr_7d = Sigmoid(base_ctr + UserAffinity(o, u, v));
      emit(fmt::format(
          R"({{"table":"user_features","row":"u{}","ts":{},"columns":)"
          R"({{"age":{},"country":"{}","ctr_7d":{:.4f},"embedding":[{:.3f},{:.3f},{:.3f}]}}}})",
          u, ts, age + (v == 0 ? 0 : 1), country, ctr_7d, unit(rng), unit(rng), unit(rng)));
    }
  }
  for (uint64_t i = 0; i < o.items; ++i) {
    const char* category = kCategories[static_cast<int>(unit(rng) * 5)];
    for (int v = 0; v < 2; ++v) {
      const int64_t ts = o.start_ts_ms - (v == 0 ? 30 * kDay : 7 * kDay);
      emit(fmt::format(R"({{"table":"item_features","row":"i{}","ts":{},"columns":)"
                       R"({{"price":{:.2f},"category":"{}","popularity":{:.4f}}}}})",
                       i, ts, 1 + unit(rng) * 200, category, Sigmoid(ItemQuality(o, i))));
    }
  }
}

WorkloadGenerator::WorkloadGenerator(WorkloadOptions options)
    : impl_(std::make_unique<Impl>(options)) {}

WorkloadGenerator::~WorkloadGenerator() = default;

GeneratedRecord WorkloadGenerator::Next() {
  // A record may be returned once the generation clock has passed its
  // arrival time: every record generated later arrives later still.
  while (impl_->queue.empty() ||
         impl_->queue.top().arrival_ms > static_cast<int64_t>(impl_->clock_ms)) {
    impl_->GenerateImpression();
  }
  GeneratedRecord r = std::move(const_cast<Queued&>(impl_->queue.top()).record);
  impl_->queue.pop();
  return r;
}

bool WorkloadGenerator::Drain(GeneratedRecord& out) {
  if (impl_->queue.empty()) return false;
  out = std::move(const_cast<Queued&>(impl_->queue.top()).record);
  impl_->queue.pop();
  return true;
}

uint64_t WorkloadGenerator::impressions_generated() const { return impl_->impressions; }

}  // namespace ctrjoin
