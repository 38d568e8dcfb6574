/* threads: pthreads sharing a counter under a mutex, thread-local storage, join
 * values, gettid, and a condition-variable hand-off (futex wait/wake underneath). */
#include "common.h"
#include <pthread.h>
#include <sys/syscall.h>

#define THREADS 4
#define ITERS 100000
#define ITEMS 1000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static __thread long tls_value = 7;
static pid_t main_tid;
static int distinct_tids = 1;

static void *worker(void *arg) {
    long id = (long)arg;
    tls_value = id * 100;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    if (tid == main_tid || getpid() == tid)
        distinct_tids = 0;
    pthread_mutex_unlock(&lock);
    return (void *)(tls_value + 1);
}

static void counter_test(void) {
    pthread_t t[THREADS];
    main_tid = (pid_t)syscall(SYS_gettid);
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
            printf("pthread_create %ld failed\n", i);
    for (int i = 0; i < THREADS; i++) {
        void *ret = NULL;
        pthread_join(t[i], &ret);
        printf("thread %d returned %ld\n", i, (long)ret);
    }
    printf("counter=%ld (expected %d)\n", counter, THREADS * ITERS);
    printf("main tls_value=%ld\n", tls_value);
    printf("main tid == pid: %s\n", main_tid == getpid() ? "yes" : "no");
    printf("threads have their own tids: %s\n", distinct_tids ? "yes" : "no");
}

static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int slot, full, done_producing;

static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&lock);
        while (full)
            pthread_cond_wait(&cond, &lock);
        slot = i;
        full = 1;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void handoff_test(void) {
    pthread_t p;
    long sum = 0;
    pthread_create(&p, NULL, producer, NULL);
    for (int i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&lock);
        while (!full)
            pthread_cond_wait(&cond, &lock);
        sum += slot;
        full = 0;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    pthread_join(p, NULL);
    done_producing = 1;
    printf("hand-off sum=%ld (expected %d)\n", sum, ITEMS * (ITEMS + 1) / 2);
}

int main(void) {
    unbuffered();
    counter_test();
    handoff_test();
    printf("threads done\n");
    return 0;
}
