/* lanes (kernel only, run by the in-QEMU test lanes_run_beside_the_table_lock):
 * for SECONDS of CLOCK_MONOTONIC, the calls a CPU answers without the process
 * table (getpid, gettid, clock_gettime, gettimeofday, a pipe write and read back)
 * and first touches of fresh anonymous pages (about 4 per millisecond), so that
 * a kernel test holding the process table's lock on another CPU can see them go
 * on. Checks what it gets back: the pipe returns the bytes written, a fresh page
 * reads zero. Prints nothing and exits 0 when all held; otherwise says what
 * failed and exits 1. With CPU, it first pins itself to that CPU.
 * Usage: lanes [SECONDS [CPU]] */
#include "common.h"
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define PAGE 4096
#define PAGES 8192 /* 32 MiB: 4 pages a millisecond for 2 seconds */

static long now_ms(void) {
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) {
        printf("lanes: clock_gettime failed: %s\n", errname(errno));
        exit(1);
    }
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

int main(int argc, char **argv) {
    unbuffered();
    long seconds = argc > 1 ? atol(argv[1]) : 2;
    if (argc > 2) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(atoi(argv[2]), &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) {
            printf("lanes: sched_setaffinity failed: %s\n", errname(errno));
            return 1;
        }
    }
    unsigned char *pages =
        mmap(NULL, (size_t)PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fds[2];
    if (pages == MAP_FAILED || pipe(fds) != 0) {
        printf("lanes: setup failed: %s\n", errname(errno));
        return 1;
    }
    long start = now_ms(), touched = 0;
    uint64_t round = 0;
    for (long ms = 0; ms < seconds * 1000; ms = now_ms() - start, round++) {
        if (syscall(SYS_getpid) != getpid() || syscall(SYS_gettid) <= 0) {
            printf("lanes: getpid/gettid disagree\n");
            return 1;
        }
        struct timeval tv;
        if (gettimeofday(&tv, NULL) != 0) {
            printf("lanes: gettimeofday failed: %s\n", errname(errno));
            return 1;
        }
        uint64_t back = 0;
        if (write(fds[1], &round, sizeof round) != sizeof round ||
            read(fds[0], &back, sizeof back) != sizeof back || back != round) {
            printf("lanes: the pipe lost round %llu\n", (unsigned long long)round);
            return 1;
        }
        for (long want = ms * 4 < PAGES ? ms * 4 : PAGES; touched < want; touched++) {
            unsigned char *p = pages + touched * PAGE;
            if (p[PAGE / 2] != 0) {
                printf("lanes: a fresh page was not zero\n");
                return 1;
            }
            p[0] = 1;
        }
    }
    munmap(pages, (size_t)PAGES * PAGE);
    return 0;
}
