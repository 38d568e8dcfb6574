/* scale: throughput of THREADS threads doing the same work at once, for the
 * scaling rows of `cargo xtask bench` (run beside Linux with as many CPUs as
 * threads). Each thread does its share for about SECONDS of guest time; the line
 * is the operations all threads did per second of wall (guest) time:
 *   scale spin THREADS: N ops/s     (CPU-bound: blocks of 2^20 multiply-adds)
 *   scale fault THREADS: N ops/s    (first touch of a fresh page of a private mapping)
 *   scale fork THREADS: N ops/s     (fork of a process that exits at once, waited for)
 * Usage: scale MODE THREADS [SECONDS] (MODE spin, fault, fork or all). */
#include "common.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define FAULT_PAGES 256
#define PAGE 4096

static double seconds = 1.0;
static const char *mode;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long spin_block(void) {
    volatile uint64_t x = 1;
    for (int i = 0; i < (1 << 20); i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return 1;
}

static long fault_block(void) {
    char *m = mmap(NULL, FAULT_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 0;
    for (int i = 0; i < FAULT_PAGES; i++)
        m[i * PAGE] = 1;
    munmap(m, FAULT_PAGES * PAGE);
    return FAULT_PAGES;
}

static long fork_block(void) {
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    if (p < 0)
        return 0;
    waitpid(p, NULL, 0);
    return 1;
}

static void *worker(void *arg) {
    long *ops = arg;
    long (*block)(void) = strcmp(mode, "spin") == 0 ? spin_block : strcmp(mode, "fault") == 0 ? fault_block : fork_block;
    double end = now() + seconds;
    while (now() < end)
        *ops += block();
    return NULL;
}

static void run(const char *m, int threads) {
    mode = m;
    pthread_t t[64];
    long ops[64] = {0};
    double start = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, &ops[i]);
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += ops[i];
    }
    printf("scale %s %d: %.0f ops/s\n", m, threads, (double)total / (now() - start));
}

int main(int argc, char **argv) {
    unbuffered();
    if (argc < 3) {
        fprintf(stderr, "usage: scale MODE THREADS [SECONDS]\n");
        return 2;
    }
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > 64)
        threads = 1;
    if (argc > 3)
        seconds = atof(argv[3]);
    if (strcmp(argv[1], "all") == 0) {
        run("spin", threads);
        run("fault", threads);
        run("fork", threads);
    } else {
        run(argv[1], threads);
    }
    printf("scale done\n");
    return 0;
}
