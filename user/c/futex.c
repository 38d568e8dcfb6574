/* futex: the raw futex calls threads are built on. WAIT checks the value (EAGAIN),
 * times out (relative for WAIT, absolute CLOCK_MONOTONIC for WAIT_BITSET: ETIMEDOUT,
 * after at least the time asked), a past deadline fails at once, WAKE wakes exactly
 * the waiters there are, and pthread_cond_timedwait times out. */
#include "common.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

/* From <linux/futex.h> (musl-gcc has no kernel headers). */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define FUTEX_WAIT_BITSET_PRIVATE (9 | 128)
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu

static uint32_t word;

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts, uint32_t val3) {
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, val3);
}

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r == -1 ? errname(errno == ETIMEDOUT ? 0 : errno) : "returned 0");
}

static void timeouts(void) {
    struct timespec rel = {0, 50 * 1000000L};
    long long t0 = now_ns();
    long r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &rel, 0);
    long long waited = now_ns() - t0;
    printf("relative 50 ms wait: %s, waited >= 40 ms: %s\n", r == -1 && errno == ETIMEDOUT ? "ETIMEDOUT" : "other",
           waited >= 40000000LL ? "yes" : "no");
    /* Measured from before the deadline is computed: a thread preempted between
     * the two (a loaded host) must still count the whole 30 ms. */
    t0 = now_ns();
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 30 * 1000000L;
    if (abs.tv_nsec >= 1000000000L)
        abs.tv_sec++, abs.tv_nsec -= 1000000000L;
    r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, FUTEX_BITSET_MATCH_ANY);
    waited = now_ns() - t0;
    printf("absolute +30 ms wait: %s, waited >= 20 ms: %s\n", r == -1 && errno == ETIMEDOUT ? "ETIMEDOUT" : "other",
           waited >= 20000000LL ? "yes" : "no");
    struct timespec past = {0, 1};
    r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &past, FUTEX_BITSET_MATCH_ANY);
    printf("deadline in the past: %s\n", r == -1 && errno == ETIMEDOUT ? "ETIMEDOUT" : "other");
    report("wait on a changed value", futex(&word, FUTEX_WAIT_PRIVATE, 1, NULL, 0));
    struct timespec bad = {0, 2000000000L};
    report("wait with a bad timeout", futex(&word, FUTEX_WAIT_PRIVATE, 0, &bad, 0));
}

static void *waiter(void *arg) {
    (void)arg;
    while (__atomic_load_n(&word, __ATOMIC_SEQ_CST) == 0)
        futex(&word, FUTEX_WAIT_PRIVATE, 0, NULL, 0);
    return NULL;
}

static void wake(void) {
    printf("wake without waiters: %ld\n", futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, 0));
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    /* Woken while the word is still 0, the waiter waits again: so it is counted
     * once it sleeps, however late it gets there, and cannot slip out unwoken.
     * Then the word changes and one more wake lets it go. */
    long woken = 0;
    for (int i = 0; i < 1000 && woken == 0; i++) {
        sleep_ms(1);
        woken = futex(&word, FUTEX_WAKE_PRIVATE, 10, NULL, 0);
    }
    __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
    futex(&word, FUTEX_WAKE_PRIVATE, 10, NULL, 0);
    pthread_join(t, NULL);
    printf("wake with one waiter: %ld\n", woken);
}

/* Two processes meet on a futex in MAP_SHARED memory (a non-private futex). */
static void across_processes(void) {
    uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *w = 0;
    pid_t c = fork();
    if (c == 0) {
        while (__atomic_load_n(w, __ATOMIC_SEQ_CST) == 0)
            futex(w, FUTEX_WAIT, 0, NULL, 0);
        _exit(__atomic_load_n(w, __ATOMIC_SEQ_CST));
    }
    sleep_ms(100); /* the child queues itself meanwhile */
    __atomic_store_n(w, 3, __ATOMIC_SEQ_CST);
    long woken = futex(w, FUTEX_WAKE, 1, NULL, 0);
    int st = 0;
    waitpid(c, &st, 0);
    printf("shared futex woke the other process: %s\n", woken == 1 ? "yes" : "no");
    print_status("waiting child", st);
    munmap(w, 4096);
}

static void cond_timedwait(void) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec abs;
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 20 * 1000000L;
    if (abs.tv_nsec >= 1000000000L)
        abs.tv_sec++, abs.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&m);
    int r = pthread_cond_timedwait(&c, &m, &abs);
    pthread_mutex_unlock(&m);
    printf("pthread_cond_timedwait 20 ms: %s\n", r == ETIMEDOUT ? "ETIMEDOUT" : "other");
}

int main(void) {
    unbuffered();
    timeouts();
    wake();
    across_processes();
    cond_timedwait();
    printf("futex done\n");
    return 0;
}
