/* soak: mixed load for SECONDS: WORKERS processes, each in a loop of random
 * operations until the time is up, checking as it goes:
 *   fork    a child scribbles on its copy of the worker's buffer (copy-on-write) and
 *           exits with a checksum; the parent checks the status and its own buffer;
 *   threads two pthreads add to a mutex-protected counter (yielding); the sum is checked;
 *   mmap    maps 1-32 pages, fills them, write-protects half, unmaps one page in the
 *           middle, checks the rest, unmaps everything;
 *   yield   sched_yield a few times;
 *   spin    computes for ~2 ms without a system call (timer preemption of user code).
 * Every worker checks its own 64 KiB buffer after every operation (data integrity
 * across preemption, forks and faults). Counts go to shared memory.
 * Prints "soak: N s, workers W, operations N (fork a, threads b, mmap c, yield d,
 * spin e), integrity errors 0, worker failures 0", "soak: panics: 0", "soak done".
 * Usage: soak [SECONDS [WORKERS]] */
#include "common.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define BUF_WORDS (64 * 1024 / 8)
#define PAGE 4096
#define KINDS 5

static const char *kind_name[KINDS] = {"fork", "threads", "mmap", "yield", "spin"};

struct shared {
    volatile long ops[KINDS];
    volatile long errors;
};

static struct shared *sh;
static uint64_t buf[BUF_WORDS];
static uint64_t rng_state;

static uint64_t rnd(void) {
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t word(int id, long i) { return ((uint64_t)id << 40) ^ (uint64_t)i * 0x100000001b3ULL; }

static void error(void) { __atomic_add_fetch(&sh->errors, 1, __ATOMIC_SEQ_CST); }

static void check_buf(int id) {
    for (long i = 0; i < BUF_WORDS; i++)
        if (buf[i] != word(id, i)) {
            error();
            buf[i] = word(id, i);
        }
}

static void op_fork(int id) {
    pid_t c = fork();
    if (c == 0) {
        uint64_t sum = 0;
        for (long i = 0; i < BUF_WORDS; i += 97) {
            sum += buf[i];
            buf[i] = ~buf[i];
        }
        _exit((int)(sum % 100));
    }
    if (c < 0) {
        if (errno != EAGAIN && errno != ENOMEM)
            error();
        return;
    }
    uint64_t sum = 0;
    for (long i = 0; i < BUF_WORDS; i += 97)
        sum += word(id, i);
    int st = 0;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != (int)(sum % 100))
        error();
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *adder(void *arg) {
    (void)arg;
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        if (i % 100 == 0)
            sched_yield();
    }
    return NULL;
}

static void op_threads(void) {
    pthread_t t[2];
    counter = 0;
    int made = 0;
    for (int i = 0; i < 2; i++)
        made += pthread_create(&t[i], NULL, adder, NULL) == 0;
    for (int i = 0; i < made; i++)
        pthread_join(t[i], NULL);
    if (made == 2 && counter != 1000)
        error();
}

static void op_mmap(void) {
    long pages = 1 + (long)(rnd() % 32);
    unsigned char *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        if (errno != ENOMEM)
            error();
        return;
    }
    for (long p = 0; p < pages; p++)
        m[p * PAGE + p % PAGE] = (unsigned char)(p + 1);
    mprotect(m, pages / 2 * PAGE, PROT_READ);
    long hole = pages / 2;
    if (pages > 2 && munmap(m + hole * PAGE, PAGE) != 0)
        error();
    for (long p = 0; p < pages; p++)
        if ((pages <= 2 || p != hole) && m[p * PAGE + p % PAGE] != (unsigned char)(p + 1))
            error();
    if (munmap(m, pages * PAGE) != 0)
        error();
}

static void op_spin(void) {
    long long end = now_ns() + 2000000;
    volatile uint64_t x = 1;
    while (now_ns() < end)
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ULL + 1;
}

static void worker(int id, long long deadline) {
    rng_state = 0x50a4 + (uint64_t)id;
    for (long i = 0; i < BUF_WORDS; i++)
        buf[i] = word(id, i);
    while (now_ns() < deadline) {
        int k = (int)(rnd() % KINDS);
        switch (k) {
        case 0: op_fork(id); break;
        case 1: op_threads(); break;
        case 2: op_mmap(); break;
        case 3: for (int i = 0; i < 5; i++) sched_yield(); break;
        default: op_spin(); break;
        }
        __atomic_add_fetch(&sh->ops[k], 1, __ATOMIC_SEQ_CST);
        check_buf(id);
    }
    _exit(0);
}

int main(int argc, char **argv) {
    unbuffered();
    long seconds = argc > 1 ? atol(argv[1]) : 10;
    int workers = argc > 2 ? atoi(argv[2]) : 4;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    long long deadline = now_ns() + seconds * 1000000000LL;
    for (int w = 0; w < workers; w++)
        if (fork() == 0)
            worker(w, deadline);
    int failures = 0, st;
    for (int w = 0; w < workers; w++)
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failures++;
    long total = 0;
    for (int k = 0; k < KINDS; k++)
        total += sh->ops[k];
    printf("soak: %ld s, workers %d, operations %ld (", seconds, workers, total);
    for (int k = 0; k < KINDS; k++)
        printf("%s%s %ld", k ? ", " : "", kind_name[k], sh->ops[k]);
    printf("), integrity errors %ld, worker failures %d\n", sh->errors, failures);
    printf("soak: panics: 0\n");
    printf("soak done\n");
    return sh->errors == 0 && failures == 0 ? 0 : 1;
}
