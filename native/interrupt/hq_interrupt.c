/*
 * hq_interrupt: a SQLite loadable extension that gives a connection a deadline.
 *
 * better-sqlite3 is built with SQLITE_OMIT_PROGRESS_CALLBACK and exposes no interrupt(), yet
 * sqlite3_interrupt() is compiled in and the VDBE checks for it at the bottom of every loop.
 * sqlite3_interrupt() is documented as safe to call from another thread, so one watchdog thread
 * per process interrupts the connections whose deadline has passed.
 *
 * Loading the extension on a connection registers three SQL functions on it (and nothing else):
 *   hq_watch(token)         latches the connection's token on the first call (the loader makes
 *                           it right after loading, before any other SQL runs there); returns
 *                           the connection's id. Every other call must pass the same token, so
 *                           the SQL a user sends cannot disarm its own deadline.
 *   hq_deadline(token, ms)  ms >= 0: interrupt this connection once ms milliseconds have passed,
 *                           and every 5 ms after that until it is disarmed;
 *                           ms < 0: disarm.
 *   hq_interrupt(token, id) interrupts connection `id` now (id 0: every watched connection);
 *                           returns how many were interrupted.
 *   hq_limit(token, bytes)  sets this connection's SQLITE_LIMIT_LENGTH (the largest string, blob
 *                           or row it may make or read; SQLite caps it at its compile-time
 *                           SQLITE_MAX_LENGTH); returns the limit in effect before; bytes < 0
 *                           only returns it. better-sqlite3 offers no sqlite3_limit() of its own
 *                           (it sets the limit to V8's longest string when it opens a connection).
 * A connection leaves the registry when it closes (the functions' destructor).
 */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

#include <stdlib.h>

/*
 * The prebuilt copy shipped in the package (HQ_PORTABLE, built by `npm pack` on Linux x86-64)
 * binds the symbols glibc 2.34 moved into libc to their original versions, so it also loads on
 * older glibc (where they live in libpthread and libdl, linked with --no-as-needed).
 */
#if defined(HQ_PORTABLE) && defined(__x86_64__) && defined(__GLIBC__)
__asm__(".symver pthread_create,pthread_create@GLIBC_2.2.5");
__asm__(".symver pthread_once,pthread_once@GLIBC_2.2.5");
__asm__(".symver pthread_condattr_setclock,pthread_condattr_setclock@GLIBC_2.3.3");
__asm__(".symver dladdr,dladdr@GLIBC_2.2.5");
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
#endif

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef struct Watched Watched;
struct Watched {
  sqlite3 *db;
  sqlite3_int64 id;
  sqlite3_int64 token;
  int hasToken;
  int armed;
  int64_t deadlineNs; /* CLOCK_MONOTONIC */
  int refs;           /* one per registered function */
  Watched *next;
};

/* How often an armed connection past its deadline is interrupted again, until disarmed. */
#define REPEAT_NS 5000000

static pthread_mutex_t gMutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gCond;
static pthread_once_t gOnce = PTHREAD_ONCE_INIT;
static int gStarted = 0;
static Watched *gList = 0;
static sqlite3_int64 gNextId = 1;

static int64_t nowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits on gCond (gMutex held) until the monotonic time `untilNs`, or forever when < 0. */
static void waitUntil(int64_t untilNs) {
  if (untilNs < 0) {
    pthread_cond_wait(&gCond, &gMutex);
    return;
  }
#ifdef __APPLE__
  int64_t rel = untilNs - nowNs();
  if (rel <= 0) return;
  struct timespec ts = {(time_t)(rel / 1000000000), (long)(rel % 1000000000)};
  pthread_cond_timedwait_relative_np(&gCond, &gMutex, &ts);
#else
  struct timespec ts = {(time_t)(untilNs / 1000000000), (long)(untilNs % 1000000000)};
  pthread_cond_timedwait(&gCond, &gMutex, &ts);
#endif
}

static void *watchdog(void *unused) {
  (void)unused;
  pthread_mutex_lock(&gMutex);
  for (;;) {
    int64_t now = nowNs();
    int64_t next = -1;
    for (Watched *w = gList; w != 0; w = w->next) {
      if (!w->armed) continue;
      if (w->deadlineNs <= now) {
        /* Under gMutex: the connection cannot be closed (unregistered) meanwhile. It stays armed
         * and is interrupted again every REPEAT_NS until it is disarmed: SQLite clears the flag
         * when a statement starts with none running, so an interrupt that lands before the
         * statement starts (a deadline of 0 or 1 ms, or a thread that was slow to get there) was
         * lost, and the statement ran without end (found from outside: a read thread at 100% CPU
         * for good after endless queries with short limits). */
        sqlite3_interrupt(w->db);
        w->deadlineNs = now + REPEAT_NS;
      }
      if (next < 0 || w->deadlineNs < next) next = w->deadlineNs;
    }
    waitUntil(next);
  }
  return 0;
}

/*
 * The watchdog thread runs code of this library until the process ends, so the library must
 * never be unloaded (SQLite dlcloses an extension when the connection that loaded it closes).
 */
static void pinLibrary(void) {
  Dl_info info;
  if (dladdr((void *)&pinLibrary, &info) != 0 && info.dli_fname != 0) {
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
  }
}

static void startOnce(void) {
  pinLibrary();
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
#ifndef __APPLE__
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
  pthread_cond_init(&gCond, &attr);
  pthread_condattr_destroy(&attr);
  pthread_t t;
  pthread_attr_t ta;
  pthread_attr_init(&ta);
  pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
  gStarted = pthread_create(&t, &ta, watchdog, 0) == 0;
  pthread_attr_destroy(&ta);
}

/* With gMutex held: is `token` this connection's token (latching it on the first call)? */
static int tokenOk(Watched *w, sqlite3_value *v) {
  if (sqlite3_value_type(v) != SQLITE_INTEGER) return 0;
  sqlite3_int64 t = sqlite3_value_int64(v);
  if (!w->hasToken) {
    w->hasToken = 1;
    w->token = t;
    return 1;
  }
  return w->token == t;
}

static void fnWatch(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Watched *w = (Watched *)sqlite3_user_data(ctx);
  pthread_mutex_lock(&gMutex);
  int ok = tokenOk(w, argv[0]);
  sqlite3_int64 id = w->id;
  pthread_mutex_unlock(&gMutex);
  if (!ok) {
    sqlite3_result_error(ctx, "hq_watch: not allowed", -1);
    return;
  }
  sqlite3_result_int64(ctx, id);
}

static void fnDeadline(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Watched *w = (Watched *)sqlite3_user_data(ctx);
  sqlite3_int64 ms = sqlite3_value_int64(argv[1]);
  pthread_mutex_lock(&gMutex);
  int ok = w->hasToken && tokenOk(w, argv[0]);
  if (ok) {
    if (ms < 0) {
      w->armed = 0;
    } else {
      w->armed = 1;
      w->deadlineNs = nowNs() + ms * 1000000;
      pthread_cond_signal(&gCond);
    }
  }
  pthread_mutex_unlock(&gMutex);
  if (!ok) {
    sqlite3_result_error(ctx, "hq_deadline: not allowed", -1);
    return;
  }
  sqlite3_result_int(ctx, gStarted);
}

static void fnInterrupt(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Watched *w = (Watched *)sqlite3_user_data(ctx);
  sqlite3_int64 id = sqlite3_value_int64(argv[1]);
  int n = 0;
  pthread_mutex_lock(&gMutex);
  int ok = w->hasToken && tokenOk(w, argv[0]);
  if (ok) {
    for (Watched *x = gList; x != 0; x = x->next) {
      if (x == w || (id != 0 && x->id != id)) continue;
      sqlite3_interrupt(x->db);
      n++;
    }
  }
  pthread_mutex_unlock(&gMutex);
  if (!ok) {
    sqlite3_result_error(ctx, "hq_interrupt: not allowed", -1);
    return;
  }
  sqlite3_result_int(ctx, n);
}

static void fnLimit(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Watched *w = (Watched *)sqlite3_user_data(ctx);
  pthread_mutex_lock(&gMutex);
  int ok = w->hasToken && tokenOk(w, argv[0]);
  pthread_mutex_unlock(&gMutex);
  if (!ok) {
    sqlite3_result_error(ctx, "hq_limit: not allowed", -1);
    return;
  }
  sqlite3_int64 bytes = sqlite3_value_int64(argv[1]);
  if (bytes < 0) {
    sqlite3_result_int(ctx, sqlite3_limit(w->db, SQLITE_LIMIT_LENGTH, -1));
    return;
  }
  if (bytes < 1 || bytes > 0x7fffffff) {
    sqlite3_result_error(ctx, "hq_limit: bytes out of range", -1);
    return;
  }
  /* The connection running this function is w->db itself: no other thread uses it meanwhile. */
  sqlite3_result_int(ctx, sqlite3_limit(w->db, SQLITE_LIMIT_LENGTH, (int)bytes));
}

/* Called once per registered function when the connection closes; the last one unregisters. */
static void release(void *p) {
  Watched *w = (Watched *)p;
  pthread_mutex_lock(&gMutex);
  int last = --w->refs == 0;
  if (last) {
    for (Watched **at = &gList; *at != 0; at = &(*at)->next) {
      if (*at == w) {
        *at = w->next;
        break;
      }
    }
  }
  pthread_mutex_unlock(&gMutex);
  if (last) free(w);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_hqinterrupt_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  SQLITE_EXTENSION_INIT2(pApi);
  pthread_once(&gOnce, startOnce);
  if (!gStarted) {
    *pzErrMsg = sqlite3_mprintf("hq_interrupt: cannot start the watchdog thread");
    return SQLITE_ERROR;
  }
  Watched *w = (Watched *)calloc(1, sizeof(Watched));
  if (w == 0) return SQLITE_NOMEM;
  w->db = db;
  w->refs = 4;
  pthread_mutex_lock(&gMutex);
  w->id = gNextId++;
  w->next = gList;
  gList = w;
  pthread_mutex_unlock(&gMutex);
  const int flags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  /* On failure SQLite calls the destructor itself (sqlite3_create_function_v2); the references
     of the functions not registered are dropped here. */
  int rc = sqlite3_create_function_v2(db, "hq_watch", 1, flags, w, fnWatch, 0, 0, release);
  if (rc != SQLITE_OK) {
    release(w);
    release(w);
    release(w);
    return rc;
  }
  rc = sqlite3_create_function_v2(db, "hq_deadline", 2, flags, w, fnDeadline, 0, 0, release);
  if (rc != SQLITE_OK) {
    release(w);
    release(w);
    return rc;
  }
  rc = sqlite3_create_function_v2(db, "hq_interrupt", 2, flags, w, fnInterrupt, 0, 0, release);
  if (rc != SQLITE_OK) {
    release(w);
    return rc;
  }
  return sqlite3_create_function_v2(db, "hq_limit", 2, flags, w, fnLimit, 0, 0, release);
}
