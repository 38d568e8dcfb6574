/* mmap: anonymous private and shared mappings, hints, MAP_FIXED, munmap of
 * sub-ranges, mprotect, and the errno of bad calls. Faults are provoked in
 * children, whose fate is printed. No address is printed, only facts about them. */
#include "common.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define PG 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static char *area; /* used by the fault children */

static const char *yes(int c) { return c ? "yes" : "no"; }

static int all_zero(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* The raw system call: musl's wrapper checks some arguments itself. */
static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd) {
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, 0L);
}

/* mmap that prints the errno of a failure: "label: OK" or "label: EINVAL". */
static void *try_mmap(const char *label, void *addr, size_t len, int prot, int flags, int fd) {
    void *p = sys_mmap(addr, len, prot, flags, fd);
    printf("%s: %s\n", label, p == MAP_FAILED ? errname(errno) : "OK");
    return p;
}

static void private_anon(void) {
    char *p = try_mmap("mmap 3 pages private", NULL, 3 * PG, RW, ANON, -1);
    if (p == MAP_FAILED)
        return;
    printf("page aligned: %s\n", yes(((uintptr_t)p & (PG - 1)) == 0));
    printf("zero filled: %s\n", yes(all_zero(p, 3 * PG)));
    memset(p, 0x5a, 3 * PG);
    printf("write/read back: %s\n", yes(p[0] == 0x5a && p[3 * PG - 1] == 0x5a));
    check("munmap whole", munmap(p, 3 * PG));
}

static void hint_and_fixed(void) {
    char *hint = (char *)0x10000000;
    char *p = try_mmap("mmap with free hint", hint, PG, RW, ANON, -1);
    printf("hint honoured: %s\n", yes(p == hint));
    p[0] = 1;
    char *q = try_mmap("mmap same hint again", hint, PG, RW, ANON, -1);
    printf("busy hint moved elsewhere: %s\n", yes(q != MAP_FAILED && q != hint));
    char *f = try_mmap("MAP_FIXED over it", hint, PG, RW, ANON | MAP_FIXED, -1);
    printf("fixed at hint: %s, old contents gone: %s\n", yes(f == hint), yes(f[0] == 0));
    char *n = try_mmap("MAP_FIXED_NOREPLACE on busy", hint, PG, RW, ANON | MAP_FIXED_NOREPLACE, -1);
    (void)n;
    munmap(hint, PG);
    if (q != MAP_FAILED)
        munmap(q, PG);
}

static void touch_middle(void) { area[PG] = 1; }
static void touch_first_last(void) { area[0] = 1; area[2 * PG] = 1; }
static void write_readonly(void) { area[0] = 2; }
static void read_none(void) { printf("read %d\n", *(volatile char *)area); }

static void munmap_middle(void) {
    area = try_mmap("mmap 3 pages", NULL, 3 * PG, RW, ANON, -1);
    check("munmap middle page", munmap(area + PG, PG));
    in_child("touch first and last", touch_first_last);
    in_child("touch unmapped middle", touch_middle);
    check("munmap already unmapped middle", munmap(area + PG, PG));
    check("munmap across hole", munmap(area, 3 * PG));
    in_child("touch after full unmap", touch_first_last);
}

static void protect(void) {
    area = try_mmap("mmap 2 pages", NULL, 2 * PG, RW, ANON, -1);
    area[0] = 1;
    check("mprotect READ", mprotect(area, PG, PROT_READ));
    printf("still readable: %s\n", yes(area[0] == 1));
    in_child("write to read-only", write_readonly);
    check("mprotect NONE", mprotect(area, PG, PROT_NONE));
    in_child("read PROT_NONE", read_none);
    check("mprotect back to RW", mprotect(area, PG, RW));
    area[0] = 3;
    printf("writable again: %s\n", yes(area[0] == 3));
    check("mprotect unaligned", syscall(SYS_mprotect, area + 1, PG, PROT_READ));
    check("mprotect bad prot", mprotect(area, PG, 0x100));
    munmap(area, 2 * PG);
    check("mprotect unmapped", mprotect(area, PG, PROT_READ));
}

static void bad_calls(void) {
    try_mmap("mmap len 0", NULL, 0, RW, ANON, -1);
    try_mmap("mmap no PRIVATE/SHARED", NULL, PG, RW, MAP_ANONYMOUS, -1);
    try_mmap("mmap both PRIVATE and SHARED", NULL, PG, RW, ANON | MAP_SHARED, -1);
    try_mmap("mmap FIXED unaligned", (void *)0x10000001, PG, RW, ANON | MAP_FIXED, -1);
    try_mmap("mmap huge len", NULL, 1UL << 62, RW, ANON, -1);
    try_mmap("mmap len wraps", NULL, (size_t)-PG, RW, ANON, -1);
    try_mmap("mmap file with bad fd", NULL, PG, RW, MAP_PRIVATE, -1);
    try_mmap("mmap FIXED kernel address", (void *)0xffff800000000000UL, PG, RW, ANON | MAP_FIXED, -1);
    check("munmap unaligned", munmap((void *)0x10000001, PG));
    check("munmap len 0", munmap((void *)0x10000000, 0));
    check("munmap never mapped", munmap((void *)0x20000000, PG));
    check("munmap kernel address", munmap((void *)0xffff800000000000UL, PG));
}

static void shared_anon(void) {
    volatile int *s = try_mmap("mmap shared anon", NULL, PG, RW, MAP_SHARED | MAP_ANONYMOUS, -1);
    pid_t pid = fork();
    if (pid == 0) {
        s[0] = 1234;
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("shared page sees child's write: %s\n", yes(s[0] == 1234));
    munmap((void *)s, PG);
}

static void partial_unmap_big(void) {
    char *p = try_mmap("mmap 16 pages", NULL, 16 * PG, RW, ANON, -1);
    memset(p, 7, 16 * PG);
    check("munmap pages 2..5", munmap(p + 2 * PG, 4 * PG));
    check("munmap first page", munmap(p, PG));
    check("munmap last page", munmap(p + 15 * PG, PG));
    printf("remaining pages intact: %s\n", yes(p[PG] == 7 && p[6 * PG] == 7 && p[14 * PG] == 7));
    char *r = try_mmap("remap hole FIXED", p + 2 * PG, 2 * PG, RW, ANON | MAP_FIXED, -1);
    printf("hole zero filled: %s\n", yes(r == p + 2 * PG && all_zero(r, 2 * PG)));
    check("munmap rest", munmap(p, 16 * PG));
}

int main(void) {
    unbuffered();
    no_core_dumps();
    private_anon();
    hint_and_fixed();
    munmap_middle();
    protect();
    bad_calls();
    shared_anon();
    partial_unmap_big();
    printf("mmap done\n");
    return 0;
}
