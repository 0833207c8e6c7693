#pragma once
// Test support: a child process of the binary under test, for tests that
// run ctrjoin as users do (kill it, signal it, read its log).

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace ctrjoin::test_support {

// A `<binary> <args>` child process (the ctrjoin binary under test), its
// stdout and stderr appended to `log` (spdlog writes to stderr), with `env`
// added to its environment (the test
// hooks CTRJOIN_CRASH_AT and CTRJOIN_STOP_AT, src/core/crash_point.h). The
// destructor kills (SIGKILL) and reaps one still running, so that a failed
// test leaves no process behind. Test thread only.
class Child {
 public:
  using Clock = std::chrono::steady_clock;

  Child(const std::string& binary, const std::vector<std::string>& args, std::string log,
        const std::map<std::string, std::string>& env = {})
      : log_(std::move(log)) {
    std::error_code ec;
    log_start_ = std::filesystem::exists(log_) ? std::filesystem::file_size(log_, ec) : 0;
    pid_ = fork();
    if (pid_ == 0) {
      FILE* err = std::freopen(log_.c_str(), "a", stderr);
      if (err != nullptr) dup2(fileno(err), STDOUT_FILENO);
      for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
      std::vector<char*> argv{const_cast<char*>(binary.c_str())};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ <= 0 || exited_) return;
    kill(pid_, SIGKILL);
    kill(pid_, SIGCONT);  // a stopped process dies only once continued
    waitpid(pid_, &status_, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signal) const {
    if (!exited_) kill(pid_, signal);
  }
  // Waits up to `timeout` for the process to end; true once it has.
  bool WaitExit(std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (!exited_) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        exited_ = true;
      } else if (Clock::now() >= deadline) {
        return false;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    return true;
  }
  bool Running() { return !WaitExit(std::chrono::milliseconds(0)); }
  // Waits up to `timeout` until the kernel has stopped every thread of the
  // process (SIGSTOP, sent or raised by itself); false if it ended or the
  // time ran out first.
  bool WaitStopped(std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (!exited_) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG | WUNTRACED) == pid_) {
        if (WIFSTOPPED(status)) return true;
        exited_ = true;
        status_ = status;
      } else if (Clock::now() >= deadline) {
        return false;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    return false;
  }
  int status() const { return status_; }
  // The exit code, or -1 (running, or ended by a signal).
  int exit_code() const { return exited_ && WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }
  std::string Describe() const {
    if (!exited_) return fmt::format("pid {} still running", pid_);
    if (WIFSIGNALED(status_))
      return fmt::format("pid {} ended by signal {}", pid_, WTERMSIG(status_));
    return fmt::format("pid {} exited {}", pid_, WEXITSTATUS(status_));
  }
  // What this process appended to the log.
  std::string Log() const {
    std::ifstream in(log_);
    in.seekg(static_cast<std::streamoff>(log_start_));
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  // Waits up to `timeout` until this process's log has a line matching
  // `pattern`; false if the process ended or the time ran out first.
  bool WaitForLog(const std::regex& pattern, std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (true) {
      const bool running = Running();  // before reading: a last line is not missed
      if (std::regex_search(Log(), pattern)) return true;
      if (!running || Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  const std::string& log() const { return log_; }

 private:
  std::string log_;
  uintmax_t log_start_ = 0;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

}  // namespace ctrjoin::test_support
