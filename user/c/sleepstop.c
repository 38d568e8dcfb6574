/* sleepstop: a nanosleep (and a clock_nanosleep, relative and absolute) stopped
 * by SIGSTOP and resumed by SIGCONT (sent by a child) goes on to its first
 * deadline, as Linux's restart_block does: it neither sleeps its whole time again
 * nor ends early. Only bounds on the time slept are printed (a little below the
 * 400 ms asked for, as the kernel counts in 10 ms ticks). */
#include "common.h"
#include <pthread.h>

static void msleep_raw(long ms);

static void *napper(void *arg) {
    (void)arg;
    for (;;)
        msleep_raw(20);
    return NULL;
}

static long ms_since(struct timespec *a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

static void msleep_raw(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

static void msleep(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

/* A child that stops and continues its parent after 100 ms, for 100 ms. */
static pid_t stopper(void) {
    pid_t parent = getpid();
    pid_t c = fork();
    if (c == 0) {
        msleep(100);
        kill(parent, SIGSTOP);
        msleep(100);
        kill(parent, SIGCONT);
        _exit(0);
    }
    return c;
}

static void report(const char *what, int r, long ms) {
    printf("%s: returned %s, slept at least 380 ms: %s, less than 560 ms: %s\n", what, r ? errname(errno) : "0",
           ms >= 380 ? "yes" : "no", ms < 560 ? "yes" : "no");
}

int main(void) {
    unbuffered();
    struct timespec start, req = {0, 400 * 1000000};
    int st;

    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t c = stopper();
    int r = nanosleep(&req, NULL);
    report("nanosleep", r, ms_since(&start));
    waitpid(c, &st, 0);

    clock_gettime(CLOCK_MONOTONIC, &start);
    c = stopper();
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    report("clock_nanosleep relative", r ? (errno = r, -1) : 0, ms_since(&start));
    waitpid(c, &st, 0);

    clock_gettime(CLOCK_MONOTONIC, &start);
    struct timespec at = start;
    at.tv_nsec += 400 * 1000000;
    if (at.tv_nsec >= 1000000000) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000;
    }
    c = stopper();
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    report("clock_nanosleep absolute", r ? (errno = r, -1) : 0, ms_since(&start));
    waitpid(c, &st, 0);

    /* A group stop: every thread of a three-thread child stops; the parent hears of
     * it once (WUNTRACED), then of the SIGCONT (WCONTINUED). */
    c = fork();
    if (c == 0) {
        pthread_t t1, t2;
        pthread_create(&t1, NULL, napper, NULL);
        pthread_create(&t2, NULL, napper, NULL);
        napper(NULL);
    }
    msleep(100);
    kill(c, SIGSTOP);
    pid_t w = waitpid(c, &st, WUNTRACED);
    printf("group stop: %s\n", w == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP ? "stopped by SIGSTOP" : "?");
    printf("reported once: %s\n", waitpid(c, &st, WUNTRACED | WNOHANG) == 0 ? "yes" : "no");
    kill(c, SIGCONT);
    w = waitpid(c, &st, WCONTINUED);
    printf("then: %s\n", w == c && WIFCONTINUED(st) ? "continued" : "?");
    msleep(50);
    kill(c, SIGTERM);
    waitpid(c, &st, 0);
    printf("end: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? "killed by SIGTERM" : "?");
    return 0;
}
