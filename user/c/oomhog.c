/* oomhog: the OOM killer picks the process that holds the memory. A child hog maps
 * 1 MiB at a time with MAP_POPULATE (the kernel faults every page in itself) and never
 * stops; meanwhile the parent keeps working: it has the kernel fill fresh pages
 * (getrandom into an untouched mapping), writes and checks them from user mode, and
 * unmaps them again, round after round. Memory runs out while both work: the hog,
 * the heavier process, must be the one killed (SIGKILL), whoever faulted last. Then
 * the parent maps, fills and checks 8 MiB more: the hog's memory came back.
 *
 * Meant for our kernel with a small -m (a reliability case); natively it would fill
 * the host. Prints:
 *   oomhog: hog held N MiB
 *   oomhog: hog ended by SIGKILL: yes
 *   oomhog: parent rounds checked: yes
 *   oomhog: memory back: yes
 *   oomhog done
 * Exit status 0 when all went well. Usage: oomhog [ROUNDS_AFTER] */
#include "common.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/random.h>

#define MIB (1UL << 20)
#define PAGE 4096UL
#define WORK (1UL << 20)

static volatile long *hog_mib;

static void hog(void) {
    for (;;) {
        void *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED)
            continue; /* no address space left for it: keep asking */
        __atomic_add_fetch(hog_mib, 1, __ATOMIC_SEQ_CST);
    }
}

/* One round of the parent's work: the kernel fills a fresh mapping, user code
 * checks it has data and overwrites it. Returns 0 on success. */
static int work(unsigned long len) {
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    unsigned long got = 0;
    while (got < len) {
        long n = getrandom(p + got, len - got, 0);
        if (n <= 0) {
            munmap(p, len);
            return 2;
        }
        got += n;
    }
    int bad = 0;
    for (unsigned long off = 0; off < len; off += PAGE) {
        uint64_t *w = (uint64_t *)(p + off);
        uint64_t any = w[0] | w[1] | w[2] | w[3];
        w[0] = off;
        bad += any == 0 || w[0] != off;
    }
    munmap(p, len);
    return bad ? 3 : 0;
}

int main(int argc, char **argv) {
    unbuffered();
    int after = argc > 1 ? atoi(argv[1]) : 4;
    hog_mib = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (hog_mib == MAP_FAILED)
        return 1;
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0)
        hog();
    int failed = 0, status = 0;
    long rounds = 0;
    for (;;) {
        failed += work(WORK) != 0;
        rounds++;
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child)
            break;
        if (rounds > 100000) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            printf("oomhog: the hog was never killed\n");
            return 1;
        }
    }
    printf("oomhog: hog held %s MiB\n", *hog_mib > 0 ? "N" : "no");
    int by_kill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    printf("oomhog: hog ended by SIGKILL: %s\n", by_kill ? "yes" : "no");
    printf("oomhog: parent rounds checked: %s\n", failed == 0 ? "yes" : "no");
    int back = 0;
    for (int i = 0; i < after; i++)
        back += work(8 * MIB) == 0;
    printf("oomhog: memory back: %s\n", back == after ? "yes" : "no");
    printf("oomhog done\n");
    return by_kill && failed == 0 && back == after ? 0 : 1;
}
