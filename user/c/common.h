/* Helpers shared by the test programs. Everything printed must be the same on
 * Linux and on our kernel: never print a pid, an address or a time; print
 * errno values as names (see errname). stdout is made unbuffered so that output
 * written before a fork is never duplicated and parent/child lines interleave only
 * where the program orders them (by waiting). */
#ifndef USER_COMMON_H
#define USER_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline void unbuffered(void) { setvbuf(stdout, NULL, _IONBF, 0); }

/* Core dumps of the children we crash on purpose would litter the host. */
static inline void no_core_dumps(void) {
    struct rlimit r = {0, 0};
    setrlimit(RLIMIT_CORE, &r); /* may be ENOSYS on our kernel: ignored */
}

static inline const char *errname(int e) {
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOTTY: return "ENOTTY";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EBUSY: return "EBUSY";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EMLINK: return "EMLINK";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOEXEC: return "ENOEXEC";
    case ENOSPC: return "ENOSPC";
    case ENOTDIR: return "ENOTDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENXIO: return "ENXIO";
    case ERANGE: return "ERANGE";
    case ESPIPE: return "ESPIPE";
    case ETXTBSY: return "ETXTBSY";
    case EXDEV: return "EXDEV";
    default: return "E?";
    }
}

static inline const char *signame(int s) {
    switch (s) {
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGTERM: return "SIGTERM";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGTRAP: return "SIGTRAP";
    case SIGALRM: return "SIGALRM";
    default: return "SIG?";
    }
}

/* Prints a wait status as "exited status=N" or "killed by SIGxxx (N)". */
static inline void print_status(const char *who, int st) {
    if (WIFEXITED(st))
        printf("%s exited status=%d\n", who, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("%s killed by %s (%d)\n", who, signame(WTERMSIG(st)), WTERMSIG(st));
    else
        printf("%s strange status=%#x\n", who, st);
}

/* Result of a call that returns -1/errno: "name: OK" or "name: EINVAL". */
static inline void check(const char *what, long ret) {
    printf("%s: %s\n", what, ret == -1 ? errname(errno) : "OK");
}

/* Runs fn in a child and prints how the child ended. */
static inline void in_child(const char *what, void (*fn)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        printf("%s: fork/wait failed: %s\n", what, errname(errno));
        return;
    }
    print_status(what, st);
}

static inline long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
#endif
