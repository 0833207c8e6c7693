// ThreadSanitizer builds only (CMakeLists.txt, CTRJOIN_SANITIZE=thread):
// librdkafka makes its threads, mutexes and condition variables with C11's
// <threads.h>, which glibc 2.34+ implements without going through the
// pthread_* functions TSan intercepts. TSan then does not know those threads
// (it crashes in them) nor their locks (it reports librdkafka's hand-offs to
// our callbacks as races). This library defines the C11 functions librdkafka
// uses on top of pthread_*; linked into every executable ahead of libc, it is
// what librdkafka's calls bind to, and TSan sees everything.
//
// Called from whichever thread librdkafka calls them on; owns nothing beyond
// a start record per thread being created.

#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <ctime>

namespace {

// glibc's C11 types are the pthread ones under another name.
static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t));
static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t));
static_assert(sizeof(thrd_t) == sizeof(pthread_t));

pthread_mutex_t* Mutex(mtx_t* m) { return reinterpret_cast<pthread_mutex_t*>(m); }
pthread_cond_t* Cond(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }

int Result(int rc) {
  switch (rc) {
    case 0: return thrd_success;
    case ETIMEDOUT: return thrd_timedout;
    case EBUSY: return thrd_busy;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
  }
}

struct Start {
  thrd_start_t func;
  void* arg;
};

void* Run(void* p) {
  const Start start = *static_cast<Start*>(p);
  std::free(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* start = static_cast<Start*>(std::malloc(sizeof(Start)));
  if (start == nullptr) return thrd_nomem;
  *start = {func, arg};
  const int rc = pthread_create(reinterpret_cast<pthread_t*>(thr), nullptr, Run, start);
  if (rc != 0) std::free(start);
  return Result(rc);
}

int thrd_join(thrd_t thr, int* res) {
  void* value = nullptr;
  const int rc = pthread_join(static_cast<pthread_t>(thr), &value);
  if (rc == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(value));
  return Result(rc);
}

int thrd_detach(thrd_t thr) { return Result(pthread_detach(static_cast<pthread_t>(thr))); }

int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if ((type & mtx_recursive) != 0) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  const int rc = pthread_mutex_init(Mutex(m), &attr);
  pthread_mutexattr_destroy(&attr);
  return Result(rc);
}
int mtx_lock(mtx_t* m) { return Result(pthread_mutex_lock(Mutex(m))); }
int mtx_trylock(mtx_t* m) { return Result(pthread_mutex_trylock(Mutex(m))); }
int mtx_timedlock(mtx_t* __restrict m, const struct timespec* __restrict t) {
  return Result(pthread_mutex_timedlock(Mutex(m), t));
}
int mtx_unlock(mtx_t* m) { return Result(pthread_mutex_unlock(Mutex(m))); }
void mtx_destroy(mtx_t* m) { pthread_mutex_destroy(Mutex(m)); }

int cnd_init(cnd_t* c) { return Result(pthread_cond_init(Cond(c), nullptr)); }
int cnd_signal(cnd_t* c) { return Result(pthread_cond_signal(Cond(c))); }
int cnd_broadcast(cnd_t* c) { return Result(pthread_cond_broadcast(Cond(c))); }
int cnd_wait(cnd_t* c, mtx_t* m) { return Result(pthread_cond_wait(Cond(c), Mutex(m))); }
int cnd_timedwait(cnd_t* __restrict c, mtx_t* __restrict m, const struct timespec* __restrict t) {
  return Result(pthread_cond_timedwait(Cond(c), Mutex(m), t));
}
void cnd_destroy(cnd_t* c) { pthread_cond_destroy(Cond(c)); }

void call_once(once_flag* flag, void (*func)(void)) {
  pthread_once(reinterpret_cast<pthread_once_t*>(flag), func);
}

}  // extern "C"
