/* brk: grow, use, shrink and re-grow the program break through the raw system
 * call (Linux returns the new break, or the old one on failure). Only differences
 * between breaks are printed, since the start is randomised on Linux. */
#include "common.h"
#include <stdint.h>
#include <sys/syscall.h>

#define PG 4096L

static long sys_brk(long addr) { return syscall(SYS_brk, addr); }
static const char *yes(int c) { return c ? "yes" : "no"; }

static int zero(const char *p, long n) {
    for (long i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static long start;
static void touch_above(void) { *(volatile char *)(start + 64 * PG) = 1; }

int main(void) {
    unbuffered();
    no_core_dumps();
    start = sys_brk(0);
    printf("brk(0) again is stable: %s\n", yes(sys_brk(0) == start));
    long want = start + 3 * PG + 100;
    long got = sys_brk(want);
    printf("grow by 3 pages + 100: returns request: %s\n", yes(got == want));
    char *p = (char *)start;
    printf("new memory zero: %s\n", yes(zero(p, 3 * PG + 100)));
    memset(p, 0x11, 3 * PG + 100);
    printf("new memory writable: %s\n", yes(p[3 * PG + 99] == 0x11));
    got = sys_brk(start + PG);
    printf("shrink to 1 page: %s\n", yes(got == start + PG));
    printf("kept page intact: %s\n", yes(p[PG - 1] == 0x11));
    got = sys_brk(start + 3 * PG);
    printf("re-grow: %s, re-grown pages zero: %s\n", yes(got == start + 3 * PG), yes(zero(p + PG, 2 * PG)));
    printf("below start refused: %s\n", yes(sys_brk(start - PG) == start + 3 * PG));
    printf("huge refused: %s\n", yes(sys_brk(start + (1L << 46)) == start + 3 * PG));
    printf("kernel address refused: %s\n", yes(sys_brk((long)0xffff800000000000UL) == start + 3 * PG));
    printf("back to start: %s\n", yes(sys_brk(start) == start));
    in_child("touch far above break", touch_above);
    char *m = malloc(1 << 20);
    memset(m, 1, 1 << 20);
    free(m);
    printf("malloc 1 MiB works: yes\n");
    printf("brk done\n");
    return 0;
}
