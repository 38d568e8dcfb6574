/* overcommit: Linux's heuristic overcommit (vm.overcommit_memory = 0). A single
 * request for more memory than the machine has (64 TiB here, more than any test
 * machine's RAM) fails with ENOMEM when it would be committed: a private writable
 * or shared anonymous mapping, mprotect making a reservation writable, brk. What
 * commits nothing succeeds: a PROT_NONE or MAP_NORESERVE reservation of the same
 * size; small mappings work as always. The same lines on any machine with less than
 * 64 GiB of RAM and swap. */
#include "common.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define TIB (1ULL << 40)
#define HUGE (64 * TIB)
/* Reservations are 64 GiB: more than the RAM of the machines this runs on (the
 * host has 23 GiB and no swap, a test VM 128 MiB), and small enough for
 * qemu-aarch64 (the aarch64 reference), which tracks every page of a mapping:
 * 1 TiB took it 77 to 105 s. */
#define RESERVE (64ULL << 30)

static const char *res(void *p) { return p == MAP_FAILED ? errname(errno) : "OK"; }
static const char *rc(long r) { return r != 0 ? errname(errno) : "OK"; }

static void *map(size_t len, int prot, int flags) {
    return mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

static void refused(void) {
    printf("private read-write 64 TiB: %s\n", res(map(HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE)));
    printf("shared read-write 64 TiB: %s\n", res(map(HUGE, PROT_READ | PROT_WRITE, MAP_SHARED)));
    void *cur = (void *)syscall(SYS_brk, 0);
    void *got = (void *)syscall(SYS_brk, (char *)cur + HUGE);
    printf("brk up by 64 TiB refused: %s\n", got == cur ? "yes" : "no");
}

static void reservations(void) {
    void *p = map(RESERVE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
    printf("MAP_NORESERVE read-write 64 GiB: %s\n", res(p));
    if (p != MAP_FAILED) {
        ((volatile char *)p)[12345] = 1;
        printf("  a page of it touched, munmap: %s\n", rc(munmap(p, RESERVE)));
    }
    char *q = map(RESERVE, PROT_NONE, MAP_PRIVATE);
    printf("PROT_NONE 64 GiB: %s\n", res(q));
    if (q == MAP_FAILED)
        return;
    printf("  mprotect all of it read-write: %s\n", rc(mprotect(q, RESERVE, PROT_READ | PROT_WRITE)));
    printf("  mprotect all of it read-only: %s\n", rc(mprotect(q, RESERVE, PROT_READ)));
    printf("  mprotect 1 MiB of it read-write: %s\n", rc(mprotect(q, 1 << 20, PROT_READ | PROT_WRITE)));
    memset(q, 7, 1 << 20);
    printf("  that MiB written and read back: %s\n", q[(1 << 20) - 1] == 7 ? "yes" : "no");
    printf("  munmap: %s\n", rc(munmap(q, RESERVE)));
}

static void small(void) {
    char *p = map(1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    printf("private read-write 1 MiB: %s\n", res(p));
    if (p != MAP_FAILED) {
        memset(p, 1, 1 << 20);
        printf("  munmap: %s\n", rc(munmap(p, 1 << 20)));
    }
    char *s = map(1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED);
    printf("shared read-write 1 MiB: %s\n", res(s));
    if (s != MAP_FAILED)
        printf("  munmap: %s\n", rc(munmap(s, 1 << 20)));
}

int main(void) {
    unbuffered();
    refused();
    reservations();
    small();
    printf("overcommit done\n");
    return 0;
}
