// `unipool train --nproc N`: starts N local workers of this same command (without --nproc),
// each with the launcher environment torchrun would give it, and waits for them. A worker that
// fails brings the others down within a bound; the exit code is the first failure's.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "commands.h"

extern char** environ;

namespace unipool::cli {

namespace {

std::vector<std::string> g_arguments;

std::vector<std::string> worker_environment(int rank, int nproc, int port) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string var = *e;
    for (const char* name : {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "MASTER_ADDR=", "MASTER_PORT="})
      if (var.rfind(name, 0) == 0) goto skip;
    env.push_back(var);
  skip:;
  }
  env.push_back("RANK=" + std::to_string(rank));
  env.push_back("LOCAL_RANK=" + std::to_string(rank));
  env.push_back("WORLD_SIZE=" + std::to_string(nproc));
  env.push_back("MASTER_ADDR=127.0.0.1");
  env.push_back("MASTER_PORT=" + std::to_string(port));
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

void set_program_arguments(int argc, char** argv) { g_arguments.assign(argv, argv + argc); }

int launch_local_workers(int nproc, double timeout_s) {
  std::vector<std::string> args;
  for (size_t i = 0; i < g_arguments.size(); ++i) {
    if (g_arguments[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (g_arguments[i].rfind("--nproc=", 0) == 0) continue;
    args.push_back(g_arguments[i]);
  }
  const char* env_port = std::getenv("MASTER_PORT");
  const int port = env_port ? std::atoi(env_port) : 20000 + int(getpid() % 20000);
  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> env = worker_environment(r, nproc, port);
    auto argv = pointers(args);
    auto envp = pointers(env);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (r != 0) posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int err =
        posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) {
      std::cerr << "error: cannot start worker " << r << ": " << std::strerror(err) << "\n";
      for (pid_t p : pids) kill(p, SIGTERM);
      return 1;
    }
    pids.push_back(pid);
  }
  int first_failure = 0, running = nproc;
  std::chrono::steady_clock::time_point deadline{};
  while (running > 0) {
    int status = 0;
    const pid_t done = waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      --running;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (code != 0 && first_failure == 0) {
        first_failure = code;
        // The others notice a dead peer at once, a hung one within the timeout: after that
        // they are stopped.
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(int64_t((timeout_s + 15) * 1000));
      }
      continue;
    }
    if (first_failure != 0 && std::chrono::steady_clock::now() > deadline) {
      for (pid_t p : pids) kill(p, SIGKILL);
      deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return first_failure;
}

}  // namespace unipool::cli
