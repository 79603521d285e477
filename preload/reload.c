/* SPDX-License-Identifier: Apache-2.0 */
/* The policy of M2MTLS_POLICY, one for every TLS context of the program, and
 * its live reload (M2MTLS_RELOAD=N seconds).
 *
 * libm2mtls takes the policy of each handshake from pl_policy_current() (its
 * m2_policy_source), not from the context: one pointer swap here reaches every
 * context at once, also one a connection switched to (SNI). Handshakes under
 * way finish with the policy they started with; a session whose peer the new
 * policy no longer grants is not resumed (its label is re-checked, and the
 * session id context is the policy's digest).
 *
 * No thread of its own: the check runs in the handshake path. At most once
 * every N seconds one handshake stats the file; when it changed (device,
 * inode, size, modification or change time), that handshake loads it and, if
 * it loads, swaps it in, and uses it. A file with errors keeps the policy in
 * force and logs every FILE:LINE, once for that version of the file. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "preload.h"

#define RELOAD_MAX_SECONDS 86400L

typedef struct file_id {
    int found;              /* 0: stat failed (errno in err) */
    int err;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_id;

static struct {
    pthread_mutex_t lock;   /* guards current and seen */
    m2mtls_policy *current;
    file_id seen;           /* the version of the file last read, loaded or not */
    char *path;             /* set once by pl_policy_start */
    long interval;          /* seconds between checks; 0: no reload */
} pol = { .lock = PTHREAD_MUTEX_INITIALIZER };

static atomic_llong next_check; /* CLOCK_MONOTONIC second of the next check */
static atomic_flag reloading = ATOMIC_FLAG_INIT;

static long long now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

static file_id file_id_of(const char *path)
{
    struct stat st;
    file_id id = { 0 };
    if (stat(path, &st) != 0) {
        id.err = errno;
        return id;
    }
    id.found = 1;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.size = st.st_size;
    id.mtime = st.st_mtim;
    id.ctime = st.st_ctim;
    return id;
}

static int same_file(const file_id *a, const file_id *b)
{
    if (a->found != b->found)
        return 0;
    if (!a->found)
        return a->err == b->err;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec
           && a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec
           && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* M2MTLS_RELOAD: unset, empty or 0 is off; otherwise 1..86400 seconds. */
static int read_interval(long *out)
{
    const char *v = getenv("M2MTLS_RELOAD");
    *out = 0;
    if (v == NULL || *v == '\0')
        return 1;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0 || n > RELOAD_MAX_SECONDS) {
        plog(LOG_ERR, "M2MTLS_RELOAD=%s is not a number of seconds from 0 (off) to %ld: no TLS context will be created",
             v, RELOAD_MAX_SECONDS);
        return 0;
    }
    *out = n;
    return 1;
}

/* Each line of m2mtls_last_error() ("FILE:LINE: ..." lines) as a log line. */
static void log_error_lines(const char *errors)
{
    while (*errors != '\0') {
        size_t n = strcspn(errors, "\n");
        if (n > 0)
            plog(LOG_ERR, "%.*s", (int)(n > INT_MAX ? INT_MAX : n), errors);
        errors += n;
        errors += *errors == '\n';
    }
}

/* PATH made absolute with the working directory of now: a program that
 * changes directory later (daemons do) must not make a reload read another
 * file of that name, nor resolve the policy's own relative file names
 * elsewhere. Symbolic links stay as they are (an operator may switch a link). */
static char *absolute(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return NULL;
    size_t n = strlen(cwd) + 1 + strlen(path) + 1;
    char *abs = malloc(n);
    if (abs != NULL)
        snprintf(abs, n, "%s/%s", cwd, path);
    return abs;
}

int pl_policy_start(const char *given)
{
    long interval;
    if (!read_interval(&interval))
        return 0;
    char *path = absolute(given);
    if (path == NULL) {
        plog(LOG_ERR, "M2MTLS_POLICY=%s: cannot make the path absolute (%s): no TLS context will be created", given,
             strerror(errno));
        return 0;
    }
    file_id id = file_id_of(path); /* before reading: a later change is seen */
    m2mtls_policy *p = m2mtls_policy_load(path);
    if (p == NULL) {
        log_error_lines(m2mtls_last_error());
        plog(LOG_ERR, "policy %s not loaded: no TLS context will be created", path);
        free(path);
        return 0;
    }
    pol.path = path;
    pol.current = p;
    pol.seen = id;
    pol.interval = interval;
    atomic_store(&next_check, now_seconds() + interval);
    plog(LOG_INFO, "policy %s loaded: %zu peers", path, m2mtls_policy_peer_count(p));
    if (interval > 0)
        plog(LOG_INFO, "policy %s is re-read when it changes (checked at most every %ld s)", path, interval);
    return 1;
}

/* The file changed since it was last read: load it, and swap it in if it loads. */
static void reload(const file_id *id)
{
    if (!id->found) {
        plog(LOG_ERR, "policy %s cannot be read (%s): the policy in force stays", pol.path, strerror(id->err));
        return;
    }
    m2mtls_policy *p = m2mtls_policy_load(pol.path);
    if (p == NULL) {
        plog(LOG_ERR, "policy %s has errors: not reloaded, the policy in force stays", pol.path);
        log_error_lines(m2mtls_last_error());
        return;
    }
    pthread_mutex_lock(&pol.lock);
    m2mtls_policy *old = pol.current;
    pol.current = p;
    pthread_mutex_unlock(&pol.lock);
    m2mtls_policy_free(old); /* handshakes under way keep their own reference */
    plog(LOG_NOTICE, "policy %s reloaded: %zu peers", pol.path, m2mtls_policy_peer_count(p));
}

static void maybe_reload(void)
{
    long long now = now_seconds();
    long long due = atomic_load(&next_check);
    /* One handshake per interval checks; the others go on meanwhile. */
    if (now < due || !atomic_compare_exchange_strong(&next_check, &due, now + pol.interval))
        return;
    if (atomic_flag_test_and_set(&reloading))
        return; /* a long load of the previous interval is still running */
    file_id id = file_id_of(pol.path);
    pthread_mutex_lock(&pol.lock);
    int changed = !same_file(&id, &pol.seen);
    pol.seen = id;
    pthread_mutex_unlock(&pol.lock);
    if (changed)
        reload(&id);
    atomic_flag_clear(&reloading);
}

m2mtls_policy *pl_policy_current(void)
{
    if (pol.interval > 0)
        maybe_reload();
    pthread_mutex_lock(&pol.lock);
    m2mtls_policy *p = pol.current;
    m2mtls_policy_up_ref(p);
    pthread_mutex_unlock(&pol.lock);
    return p;
}
