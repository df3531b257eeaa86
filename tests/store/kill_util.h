/* kill_util.h: killing a store writer provably inside its transaction, for the
 * store and hardening suites. A writer holds the store's write lock from its
 * BEGIN IMMEDIATE to its COMMIT (and through the checkpoint after it). `h` is the
 * test's own connection to the store (busy timeout 0). */
#ifndef CRAFT_KILL_UTIL_H
#define CRAFT_KILL_UTIL_H

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

/* Whether another connection holds the write lock now. */
static inline int write_locked(sqlite3 *h)
{
    int rc = sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_BUSY;
}

/* Waits until pid's writer holds the write lock (its transaction has begun): 1,
 * or 0 when pid ended first or `limit` seconds passed (pid is not reaped). */
static inline int wait_for_write_lock(sqlite3 *h, pid_t pid, double limit)
{
    struct timespec t0, t, nap = {0, 500000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (write_locked(h))
            return 1;
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 > limit)
            return 0;
        nanosleep(&nap, NULL);
    }
}

/* Stops pid (SIGSTOP, waited for), looks whether the write lock is held while it
 * is stopped, SIGKILLs and reaps it. 1: it was killed holding the lock, that is
 * inside its transaction (or the checkpoint right after its commit). */
static inline int kill_holding_lock(sqlite3 *h, pid_t pid)
{
    int st, held = 0;
    if (kill(pid, SIGSTOP) == 0 && waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st))
        held = write_locked(h);
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return held && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

#endif
