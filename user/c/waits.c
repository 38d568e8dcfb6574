/* waits: blocking calls wait without polling and end as Linux ends them.
 *
 * - a reader blocked on an empty pipe for 300 ms wakes only when data comes: its
 *   voluntary context switches (getrusage ru_nvcsw) grow by very few, not by one
 *   per timer tick;
 * - a blocking write of 200 000 bytes into a 64 KiB pipe completes in full while a
 *   slow reader drains it; the last writer's close wakes a blocked reader (EOF) and
 *   the last reader's close wakes a blocked writer (EPIPE);
 * - poll, ppoll, select and pselect wait for a pipe, time out with 0, and end with
 *   EINTR when a handler runs (with or without SA_RESTART);
 * - nanosleep interrupted by a handler fails with EINTR and writes a time left that
 *   is less than asked; clock_nanosleep with TIMER_ABSTIME in the past returns at
 *   once; a relative one on a bad clock is EINVAL;
 * - a write blocked part-way and interrupted by a handler returns the bytes it moved;
 * - a futex wait with a timeout ends with ETIMEDOUT.
 * Only facts that hold on Linux are printed (no times, no counts that vary). */
#include "common.h"
#include <fcntl.h>
#ifndef FUTEX_WAIT_PRIVATE
#define FUTEX_WAIT_PRIVATE 128
#endif
#include <poll.h>
#include <sys/select.h>
#include <sys/syscall.h>

static volatile int alarms;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

static void handle_alarm(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
}

/* SIGALRM after `ms` milliseconds (one shot). */
static void alarm_in(int ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long nvcsw(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return -1;
    return ru.ru_nvcsw;
}

static void quiet_reader(void) {
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        nap_ms(300);
        write(p[1], "late", 4);
        _exit(0);
    }
    close(p[1]);
    long before = nvcsw();
    char buf[8];
    ssize_t n = read(p[0], buf, sizeof buf);
    long woke = nvcsw() - before;
    printf("read after 300 ms: %zd bytes\n", n);
    printf("reader woke at most 3 times: %s\n", woke >= 1 && woke <= 3 ? "yes" : "no");
    waitpid(c, NULL, 0);
    close(p[0]);
}

static void full_write(void) {
    enum { TOTAL = 200000 };
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        close(p[1]);
        long got = 0, sum = 0;
        char buf[1000];
        ssize_t n;
        nap_ms(50);
        while ((n = read(p[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                sum += (unsigned char)buf[i];
            got += n;
        }
        printf("reader got %ld bytes, sum %ld\n", got, sum);
        _exit(0);
    }
    close(p[0]);
    static char data[TOTAL];
    for (int i = 0; i < TOTAL; i++)
        data[i] = (char)(i % 251);
    ssize_t n = write(p[1], data, TOTAL);
    printf("blocking write of %d: %zd\n", TOTAL, n);
    close(p[1]);
    waitpid(c, NULL, 0);
}

static void closes_wake(void) {
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        nap_ms(100);
        _exit(0); /* its write end goes with it */
    }
    close(p[1]);
    char b;
    printf("read after the last writer left: %zd\n", read(p[0], &b, 1));
    waitpid(c, NULL, 0);
    close(p[0]);

    pipe(p);
    signal(SIGPIPE, SIG_IGN);
    static char fill[65536];
    write(p[1], fill, sizeof fill); /* the pipe is full now */
    c = fork();
    if (c == 0) {
        nap_ms(100);
        _exit(0);
    }
    close(p[0]);
    ssize_t n = write(p[1], "x", 1);
    printf("write after the last reader left: %zd %s\n", n, n < 0 ? errname(errno) : "");
    waitpid(c, NULL, 0);
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);
}

static void multiplexing(void) {
    int p[2];
    pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    printf("poll 50 ms on an empty pipe: %d\n", poll(&pf, 1, 50));
    struct timespec ts = {0, 30 * 1000000L};
    printf("ppoll 30 ms: %d\n", ppoll(&pf, 1, &ts, NULL));
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {0, 40000};
    int s = select(p[0] + 1, &r, NULL, NULL, &tv);
    printf("select 40 ms: %d, bit %d, time left %ld.%06ld\n", s, FD_ISSET(p[0], &r),
           (long)tv.tv_sec, (long)tv.tv_usec);
    FD_SET(p[0], &r);
    ts.tv_nsec = 20 * 1000000L;
    printf("pselect 20 ms: %d\n", pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL));

    pid_t c = fork();
    if (c == 0) {
        nap_ms(100);
        write(p[1], "y", 1);
        _exit(0);
    }
    pf.revents = 0;
    int n = poll(&pf, 1, -1);
    printf("poll forever: %d revents %#x\n", n, pf.revents);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    fd_set w;
    FD_ZERO(&w);
    FD_SET(p[1], &w);
    printf("select read+write: %d\n", select(p[1] + 1, &r, &w, NULL, NULL));
    waitpid(c, NULL, 0);
    char b;
    read(p[0], &b, 1);

    FD_ZERO(&r);
    FD_SET(p[0], &r);
    close(p[0]);
    errno = 0;
    n = select(p[0] + 1, &r, NULL, NULL, NULL);
    printf("select on a closed fd: %d %s\n", n, errname(errno));
    int q[2];
    pipe(q);
    pf.fd = q[0];
    for (int flags = 0; flags <= SA_RESTART; flags += SA_RESTART) {
        handle_alarm(flags);
        alarm_in(50);
        errno = 0;
        n = poll(&pf, 1, -1);
        printf("poll and SIGALRM (%s): %d %s\n", flags ? "SA_RESTART" : "no restart", n,
               errname(errno));
        alarm_in(50);
        FD_ZERO(&r);
        FD_SET(q[0], &r);
        errno = 0;
        n = select(q[0] + 1, &r, NULL, NULL, NULL);
        printf("select and SIGALRM: %d %s\n", n, errname(errno));
    }
    close(q[0]);
    close(q[1]);
    close(p[1]);
}

static void sleeps(void) {
    handle_alarm(SA_RESTART);
    alarm_in(100);
    struct timespec req = {2, 0}, rem = {0, 0};
    errno = 0;
    int r = nanosleep(&req, &rem);
    printf("nanosleep 2 s, SIGALRM at 0.1 s: %d %s, time left below 2 s and above 1 s: %s\n",
           r, errname(errno), rem.tv_sec == 1 ? "yes" : "no");
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("clock_nanosleep absolute in the past: %d\n",
           clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &now, NULL));
    struct timespec short_ = {0, 20 * 1000000L};
    printf("clock_nanosleep 20 ms: %d\n", clock_nanosleep(CLOCK_REALTIME, 0, &short_, NULL));
    printf("clock_nanosleep on CLOCK_THREAD_CPUTIME_ID: %s\n",
           clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &short_, NULL) == EINVAL ? "EINVAL"
                                                                              : "other");
}

static void partial_write(void) {
    int p[2];
    pipe(p);
    static char big[100000];
    handle_alarm(SA_RESTART);
    alarm_in(100);
    ssize_t n = write(p[1], big, sizeof big);
    printf("write of 100000 into an unread pipe, SIGALRM: %zd (the pipe's 65536)\n", n);
    close(p[0]);
    close(p[1]);
}

static void futex_timeout(void) {
    static int word = 0;
    struct timespec ts = {0, 30 * 1000000L};
    long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    printf("futex wait 30 ms: %ld %s\n", r, r < 0 ? errname(errno) : "");
}

int main(void) {
    unbuffered();
    quiet_reader();
    full_write();
    closes_wake();
    multiplexing();
    sleeps();
    partial_write();
    futex_timeout();
    printf("alarms handled: %d\n", alarms);
    return 0;
}
