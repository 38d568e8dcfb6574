/* tlbshoot: unmapping a page that another CPU keeps touching. A toucher thread
 * (pinned to one CPU where there are two) writes to a page in a loop; the main
 * thread (pinned to the other) waits until it runs, unmaps the page, and at once
 * maps and populates fresh pages, which may be given the freed frame. The toucher
 * must fault (SIGSEGV, si_addr the page) once the unmap returned, and its writes
 * must never show up in the fresh pages: a CPU that kept the old translation would
 * write into a frame handed out again. Repeated ROUNDS times.
 *   tlbshoot: rounds 20
 *   tlbshoot: the toucher faulted every round: yes
 *   tlbshoot: the fault was at the unmapped page: yes
 *   tlbshoot: fresh pages stayed zero: yes
 *   tlbshoot done
 * Usage: tlbshoot [ROUNDS] */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096
#define FRESH 256

static const char *yes(int v) { return v ? "yes" : "no"; }

static volatile unsigned char *target;
static volatile long touches;
static volatile int faulted;
static volatile uintptr_t fault_addr;
static sigjmp_buf escape;

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)ctx;
    fault_addr = (uintptr_t)info->si_addr;
    faulted = 1;
    siglongjmp(escape, 1);
}

/* Runs on CPU `cpu` if there is more than one (a failed pin runs anywhere). */
static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

static void *toucher(void *arg) {
    (void)arg;
    pin(1);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(escape, 1) == 0) {
        for (;;) {
            target[touches % PAGE] = 0x5a;
            touches++;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    unbuffered();
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    int all_faulted = 1, at_page = 1, zero = 1;
    pin(0);
    for (int r = 0; r < rounds; r++) {
        unsigned char *page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) {
            printf("tlbshoot: mmap: %s\n", errname(errno));
            return 1;
        }
        target = page;
        touches = 0;
        faulted = 0;
        pthread_t t;
        pthread_create(&t, NULL, toucher, NULL);
        while (touches < 10000)
            sched_yield();
        munmap(page, PAGE);
        unsigned char *fresh =
            mmap(NULL, FRESH * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        /* A CPU that kept the old translation never faults: give up after 2 s. */
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do {
            sched_yield();
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while (!faulted && now.tv_sec - start.tv_sec < 2);
        if (!faulted) {
            printf("tlbshoot: the toucher faulted every round: no\n");
            exit(1);
        }
        pthread_join(t, NULL);
        all_faulted &= faulted;
        at_page &= fault_addr >= (uintptr_t)page && fault_addr < (uintptr_t)page + PAGE;
        for (size_t i = 0; fresh != MAP_FAILED && i < FRESH * PAGE; i++)
            zero &= fresh[i] == 0;
        if (fresh != MAP_FAILED)
            munmap(fresh, FRESH * PAGE);
    }
    printf("tlbshoot: rounds %d\n", rounds);
    printf("tlbshoot: the toucher faulted every round: %s\n", yes(all_faulted));
    printf("tlbshoot: the fault was at the unmapped page: %s\n", yes(at_page));
    printf("tlbshoot: fresh pages stayed zero: %s\n", yes(zero));
    printf("tlbshoot done\n");
    return !(all_faulted && at_page && zero);
}
