#include "distributed/communicator.h"

#include <chrono>
#include <cstdlib>
#include <thread>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace unipool {

namespace {

using Clock = std::chrono::steady_clock;

std::string where(const DistributedConfig& c) {
  return c.master_addr + ":" + std::to_string(c.master_port);
}

int env_int(const char* name, bool required, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (required) throw DistributedSetupError(std::string(name) + " is not set");
    return fallback;
  }
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 30)
    throw DistributedSetupError(std::string(name) + "='" + v + "' is not a whole number >= 0");
  return int(x);
}

}  // namespace

std::optional<DistributedConfig> distributed_from_env() {
  if (!std::getenv("WORLD_SIZE")) return std::nullopt;
  DistributedConfig c;
  c.world_size = env_int("WORLD_SIZE", true, 1);
  c.rank = env_int("RANK", true, 0);
  c.local_rank = env_int("LOCAL_RANK", false, c.rank);
  if (c.world_size < 1) throw DistributedSetupError("WORLD_SIZE must be at least 1");
  if (c.rank >= c.world_size)
    throw DistributedSetupError("RANK " + std::to_string(c.rank) + " is not below WORLD_SIZE " +
                                std::to_string(c.world_size));
  if (const char* a = std::getenv("MASTER_ADDR")) c.master_addr = a;
  c.master_port = env_int("MASTER_PORT", false, c.master_port);
  if (c.master_port < 1 || c.master_port > 65535)
    throw DistributedSetupError("MASTER_PORT " + std::to_string(c.master_port) +
                                " is not a port (1-65535)");
  if (const char* t = std::getenv("UNIPOOL_DIST_TIMEOUT")) c.timeout_s = std::atof(t);
  if (!(c.timeout_s > 0)) c.timeout_s = 60;
  return c;
}

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  int64_t step = 0;
  std::vector<c10::intrusive_ptr<c10d::Work>> started;  // start_sum's, until wait_started
};

Communicator::Communicator(const DistributedConfig& config)
    : impl_(std::make_unique<Impl>()), config_(config) {
  const auto timeout = std::chrono::milliseconds(int64_t(config.timeout_s * 1000));
  c10d::TCPStoreOptions o;
  o.port = uint16_t(config.master_port);
  o.isServer = config.rank == 0;
  o.numWorkers = config.world_size;
  o.waitWorkers = false;  // the world-size check below says more than a bare wait would
  o.timeout = timeout;
  if (config.rank == 0) {
    // The store's server socket may share its port (address reuse), so a second run on the
    // same port would not fail to bind: ask whether a rendezvous already answers there.
    c10d::TCPStoreOptions probe;
    probe.port = o.port;
    probe.isServer = false;
    probe.timeout = std::chrono::milliseconds(1500);  // a busy host still answers in time
    bool answered = false;
    try {
      c10d::TCPStore(config.master_addr, probe);
      answered = true;
    } catch (const std::exception&) {
    }
    if (answered)
      throw DistributedSetupError("rank 0 cannot host the rendezvous at " + where(config) +
                                  ": the port is in use by another run's rendezvous (choose "
                                  "another MASTER_PORT)");
  }
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(config.master_addr, o);
  } catch (const std::exception& e) {
    if (config.rank == 0)
      throw DistributedSetupError(
          "rank 0 cannot host the rendezvous at " + where(config) +
          " (is the port in use, or the address not this machine's?): " + e.what());
    throw DistributedSetupError("rank " + std::to_string(config.rank) +
                                " cannot reach the rendezvous at " + where(config) + " within " +
                                std::to_string(int(config.timeout_s)) + " s: " + e.what());
  }
  // Every rank states its world size; all must agree and all must arrive in time.
  auto& store = *impl_->store;
  const std::string mine = std::to_string(config.world_size);
  store.set("world_size/" + std::to_string(config.rank),
            std::vector<uint8_t>(mine.begin(), mine.end()));
  const auto deadline = Clock::now() + timeout;
  for (int r = 0; r < config.world_size; ++r) {
    const std::string key = "world_size/" + std::to_string(r);
    while (!store.check({key})) {
      if (Clock::now() > deadline)
        throw DistributedSetupError("rank " + std::to_string(r) + " of " + mine +
                                    " did not arrive at " + where(config) + " within " +
                                    std::to_string(int(config.timeout_s)) +
                                    " s (is WORLD_SIZE the same on every rank?)");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const auto v = store.get(key);
    const std::string theirs(v.begin(), v.end());
    if (theirs != mine)
      throw DistributedSetupError("world-size mismatch: rank " + std::to_string(r) +
                                  " says WORLD_SIZE=" + theirs + ", rank " +
                                  std::to_string(config.rank) + " says " + mine);
  }
  auto options = c10d::ProcessGroupGloo::Options::create();
  options->timeout = timeout;
  // On loopback every rank talks over 127.0.0.1 (tests, one machine); otherwise each rank
  // uses the interface of its own hostname.
  const bool loopback =
      config.master_addr.rfind("127.", 0) == 0 || config.master_addr == "localhost";
  options->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                      : c10d::ProcessGroupGloo::createDefaultDevice());
  try {
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, config.rank,
                                                               config.world_size, options);
  } catch (const std::exception& e) {
    throw DistributedSetupError(std::string("the process group did not form: ") + e.what());
  }
}

Communicator::~Communicator() = default;

void Communicator::heartbeat(int64_t step) {
  impl_->step = step;
  const std::string s = std::to_string(step);
  impl_->store->set("heartbeat/" + std::to_string(config_.rank),
                    std::vector<uint8_t>(s.begin(), s.end()));
}

void Communicator::fail(const std::exception& e) {
  // Which rank stopped: the one whose heartbeat is behind ours, or the only other one; if the
  // store itself is gone, rank 0 (it hosts it) stopped.
  std::string who;
  try {
    impl_->store->setTimeout(std::chrono::milliseconds(2000));
    for (int r = 0; r < config_.world_size; ++r) {
      if (r == config_.rank) continue;
      const std::string key = "heartbeat/" + std::to_string(r);
      int64_t step = -1;
      if (impl_->store->check({key})) {
        const auto v = impl_->store->get(key);
        step = std::stoll(std::string(v.begin(), v.end()));
      }
      if (step < impl_->step || config_.world_size == 2)
        who += (who.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) +
               (step >= 0 ? " (last seen at step " + std::to_string(step) + ")" : "");
    }
  } catch (const std::exception&) {
    who = "rank 0 (it hosts the rendezvous)";
  }
  if (who.empty()) who = "a peer rank";
  throw PeerFailure("rank " + std::to_string(config_.rank) + ": " + who +
                    " stopped responding at step " + std::to_string(impl_->step) + " (" + e.what() +
                    ")");
}

void Communicator::start_sum(at::Tensor flat) {
  const auto start = Clock::now();
  std::vector<at::Tensor> one = {std::move(flat)};
  try {
    impl_->started.push_back(impl_->group->allreduce(one));
  } catch (const std::exception& e) {
    fail(e);
  }
  seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

void Communicator::wait_started() {
  const auto start = Clock::now();
  std::vector<c10::intrusive_ptr<c10d::Work>> started;
  started.swap(impl_->started);
  try {
    for (auto& w : started) w->wait();
  } catch (const std::exception& e) {
    fail(e);
  }
  seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

void Communicator::sum(at::Tensor& t) {
  const auto start = Clock::now();
  std::vector<at::Tensor> one = {t};
  try {
    impl_->group->allreduce(one)->wait();
  } catch (const std::exception& e) {
    fail(e);
  }
  seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

void Communicator::sum(RoutingCounts& c) {
  if (c.zero_gate.size() != size_t(c.n_layers)) c.zero_gate.assign(size_t(c.n_layers), 0);
  std::vector<double> packed;
  auto put = [&packed](const auto& v) { packed.insert(packed.end(), v.begin(), v.end()); };
  put(c.counts);
  put(c.gate_sum);
  put(c.entropy_sum);
  put(c.zero_gate);
  put(c.domain_counts);
  put(c.domain_tokens);
  packed.push_back(c.reuse_sum);
  packed.push_back(double(c.tokens));
  at::Tensor t = at::tensor(packed, at::TensorOptions().dtype(at::kDouble));
  sum(t);
  const double* p = t.data_ptr<double>();
  auto take = [&p](auto& v) {
    for (auto& x : v) x = static_cast<std::decay_t<decltype(x)>>(*p++);
  };
  take(c.counts);
  take(c.gate_sum);
  take(c.entropy_sum);
  take(c.zero_gate);
  take(c.domain_counts);
  take(c.domain_tokens);
  c.reuse_sum = *p++;
  c.tokens = int64_t(*p++);
}

}  // namespace unipool
