#include "model/parallel_work.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <vector>

namespace unipool {

namespace {

using SetThreads = void (*)(int);

SetThreads openblas_set_threads() {
  static const SetThreads fn =
      reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  return fn;
}

void tune_heap() {
  // A training step frees and reallocates the same few hundred MiB of activations. glibc
  // serves blocks this large with fresh mmaps, so every step paid page faults and kernel
  // page zeroing (~6% of a step); keeping them in the heap lets steps reuse warm memory.
  static const bool tuned = [] {
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)tuned;
}

}  // namespace

void use_engine_threads(int threads) {
  tune_heap();
  if (SetThreads fn = openblas_set_threads()) fn(1);
  at::set_num_threads(std::max(1, threads));
}

void use_blas_threads(int threads) {
  tune_heap();
  if (SetThreads fn = openblas_set_threads()) {
    at::set_num_threads(1);
    fn(std::max(1, threads));
  } else {
    at::set_num_threads(std::max(1, threads));  // another BLAS: LibTorch shares the threads out
  }
}

int parallel_threads() { return at::in_parallel_region() ? 1 : std::max(1, at::get_num_threads()); }

void parallel_items(int64_t n, const std::function<int64_t(int64_t)>& cost,
                    const std::function<void(int64_t)>& work) {
  const int threads = parallel_threads();
  if (threads <= 1 || n < 2) {
    for (int64_t i = 0; i < n; ++i) work(i);
    return;
  }
  // The costliest first, then whoever is free takes the next: a few large experts and many
  // small ones still end together.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return cost(a) > cost(b); });
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(threads, n);
  at::parallel_for(0, workers, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w)
      for (int64_t k = next.fetch_add(1); k < n; k = next.fetch_add(1)) work(order[size_t(k)]);
  });
}

}  // namespace unipool
