// Caps this process's address space while alive, so that code trusting a crafted size fails
// with bad_alloc instead of taking the machine's memory (an engine bug seen here: a negative
// corpus size once grew the text until the machine ran out of memory).
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

struct MemoryCap {
  rlimit old{};
  explicit MemoryCap(rlim_t extra) {  // on top of what is mapped now (sanitizers map a lot)
    getrlimit(RLIMIT_AS, &old);
    rlim_t pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    rlimit cap = old;
    cap.rlim_cur = std::min<rlim_t>(pages * rlim_t(sysconf(_SC_PAGESIZE)) + extra, old.rlim_max);
    setrlimit(RLIMIT_AS, &cap);
  }
  ~MemoryCap() { setrlimit(RLIMIT_AS, &old); }
  MemoryCap(const MemoryCap&) = delete;
  MemoryCap& operator=(const MemoryCap&) = delete;
};
