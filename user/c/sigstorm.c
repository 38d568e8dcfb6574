/* sigstorm: signals at random times to processes whose threads block, fork and
 * exit. WORKERS processes loop for SECONDS over random operations:
 *   pipe   read a byte a child writes after a short nap (the read may see EINTR);
 *   sleep  nanosleep 1-4 ms;
 *   fork   a child exits with status 3, checked;
 *   thread a pthread naps and exits, joined;
 * while the parent sends each worker random signals: SIGUSR1 (handled, SA_RESTART),
 * SIGRTMIN+1 (handled, no SA_RESTART), SIGUSR2 (ignored), SIGCHLD (default), and
 * SIGSTOP followed by SIGCONT. Then SIGTERM asks each worker to finish (a handler
 * sets a flag); every worker must exit with status 0 after checking what it did.
 * Prints "sigstorm: N s, workers W, signals sent S, handled H, operations O,
 * worker failures F" and "sigstorm done".  Usage: sigstorm [SECONDS [WORKERS]] */
#include "common.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

struct shared {
    volatile long handled;
    volatile long ops;
    volatile long errors;
    volatile long ready;
};

static struct shared *sh;
static volatile sig_atomic_t finish;
static uint64_t rng_state;

static uint64_t rnd(void) {
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void nap_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void on_count(int s) {
    (void)s;
    __atomic_fetch_add(&sh->handled, 1, __ATOMIC_RELAXED);
}

static void on_term(int s) {
    (void)s;
    finish = 1;
}

static void handle(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static void *napper(void *arg) {
    (void)arg;
    nap_us(500 + (long)(rnd() % 1500));
    return (void *)7;
}

static void fail(void) { __atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED); }

static void one_op(void) {
    switch (rnd() % 4) {
    case 0: {
        int p[2];
        if (pipe(p) != 0) {
            fail();
            return;
        }
        pid_t c = fork();
        if (c == 0) {
            nap_us(200 + (long)(rnd() % 800));
            _exit(write(p[1], "x", 1) == 1 ? 0 : 1);
        }
        close(p[1]);
        char b;
        ssize_t n;
        do
            n = read(p[0], &b, 1);
        while (n < 0 && errno == EINTR);
        int st;
        while (waitpid(c, &st, 0) < 0 && errno == EINTR)
            ;
        if (c < 0 || n != 1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail();
        close(p[0]);
        break;
    }
    case 1:
        nap_us(1000 + (long)(rnd() % 3000));
        break;
    case 2: {
        pid_t c = fork();
        if (c == 0)
            _exit(3);
        int st;
        while (waitpid(c, &st, 0) < 0 && errno == EINTR)
            ;
        if (c < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
            fail();
        break;
    }
    default: {
        pthread_t t;
        void *res = NULL;
        if (pthread_create(&t, NULL, napper, NULL) != 0 || pthread_join(t, &res) != 0 ||
            res != (void *)7)
            fail();
        break;
    }
    }
    __atomic_fetch_add(&sh->ops, 1, __ATOMIC_RELAXED);
}

static void worker(int id) {
    rng_state = 0x5eed + (uint64_t)id * 7919;
    handle(SIGUSR1, on_count, SA_RESTART);
    handle(SIGRTMIN + 1, on_count, 0);
    handle(SIGUSR2, SIG_IGN, 0);
    handle(SIGTERM, on_term, 0);
    __atomic_fetch_add(&sh->ready, 1, __ATOMIC_RELAXED);
    while (!finish)
        one_op();
    _exit(0);
}

int main(int argc, char **argv) {
    unbuffered();
    int seconds = argc > 1 ? atoi(argv[1]) : 5;
    int workers = argc > 2 ? atoi(argv[2]) : 3;
    if (workers < 1 || workers > 16)
        workers = 3;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pids[16];
    for (int i = 0; i < workers; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            worker(i);
    }
    while (sh->ready < workers) /* signals only once every handler is in place */
        nap_us(1000);
    rng_state = 42;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long sent = 0;
    do {
        pid_t w = pids[rnd() % (uint64_t)workers];
        switch (rnd() % 5) {
        case 0: kill(w, SIGUSR1); break;
        case 1: kill(w, SIGRTMIN + 1); break;
        case 2: kill(w, SIGUSR2); break;
        case 3: kill(w, SIGCHLD); break;
        default:
            kill(w, SIGSTOP);
            nap_us(300);
            kill(w, SIGCONT);
            sent++;
            break;
        }
        sent++;
        nap_us((long)(rnd() % 2000));
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - start.tv_sec < seconds);
    int failures = 0;
    for (int i = 0; i < workers; i++) {
        kill(pids[i], SIGCONT);
        kill(pids[i], SIGTERM);
        int st;
        if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failures++;
    }
    printf("sigstorm: %d s, workers %d, signals sent %ld, handled %ld, operations %ld, "
           "worker failures %ld\n",
           seconds, workers, sent, sh->handled, sh->ops, failures + sh->errors);
    printf("sigstorm done\n");
    return failures + sh->errors ? 1 : 0;
}
