/* ucopy: system calls copy to and from user memory at page edges as Linux does:
 * into pages not resident yet (demand zero), into copy-on-write pages after a fork
 * (the other process keeps its bytes), out of pages never touched (zeroes), and up
 * to a page they may not reach (EFAULT, the bytes left in the pipe), a signal frame
 * on a fresh stack included. On x86_64 each copy goes through the MMU first and
 * meets the page fault these cases raise mid-copy. */
#include "common.h"
#include <sys/mman.h>

#define PG 4096L

static void fill(char *p, long n, char c) {
    for (long i = 0; i < n; i++)
        p[i] = (char)(c + i % 7);
}

static int same(const char *a, const char *b, long n) { return memcmp(a, b, n) == 0; }

/* A read across two pages, the first resident, the second not. */
static void into_fresh(int p[2]) {
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static char src[3000], back[3000];
    fill(src, sizeof src, 'a');
    m[0] = 1;
    write(p[1], src, sizeof src);
    ssize_t n = read(p[0], m + PG - 1000, sizeof src);
    printf("read across a fresh page: %zd, bytes %s, first byte %d\n", n,
           same(m + PG - 1000, src, sizeof src) ? "match" : "differ", m[0]);
    /* And back out: a write from pages touched only by the kernel's copy, and from
     * a page never touched (zeroes). */
    write(p[1], m + PG - 1000, sizeof src);
    n = read(p[0], back, sizeof back);
    printf("written back: %zd, bytes %s\n", n, same(back, src, sizeof src) ? "match" : "differ");
    char *z = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    write(p[1], z + 100, 64);
    memset(back, 7, 64);
    read(p[0], back, 64);
    int zeros = 1;
    for (int i = 0; i < 64; i++)
        zeros &= back[i] == 0;
    printf("untouched page reads as zeroes: %s\n", zeros ? "yes" : "no");
    munmap(z, PG);
    munmap(m, 2 * PG);
}

/* After fork both share the buffer copy-on-write: the child's read breaks it. */
static void into_cow(int p[2]) {
    char *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(m, 'P', PG);
    pid_t c = fork();
    if (c == 0) {
        write(p[1], "child bytes", 11);
        ssize_t n = read(p[0], m + 10, 11);
        printf("child read into a shared page: %zd, sees %.11s\n", n, m + 10);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("parent's page after the child's read: %.11s\n", m + 10);
    munmap(m, PG);
}

/* A buffer whose tail lies in a page with no access: EFAULT both ways. */
static void up_to_a_hole(int p[2]) {
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(m + PG, PG, PROT_NONE);
    memset(m, 'h', PG);
    errno = 0;
    ssize_t n = write(p[1], m + PG - 8, 16);
    printf("write from across a hole: %zd %s\n", n, errname(errno));
    write(p[1], "12345678abcdefgh", 16);
    errno = 0;
    n = read(p[0], m + PG - 8, 16);
    printf("read into across a hole: %zd %s\n", n, errname(errno));
    char rest[17] = {0};
    n = read(p[0], rest, 16);
    printf("the bytes stayed in the pipe: %zd %s\n", n, rest);
    mprotect(m + PG, PG, PROT_READ);
    errno = 0;
    write(p[1], "xy", 2);
    n = read(p[0], m + PG, 2);
    printf("read into a read-only page: %zd %s\n", n, errname(errno));
    read(p[0], rest, 2);
    munmap(m, 2 * PG);
}

static volatile int handled;
static void on_usr1(int sig) {
    volatile char big[2000];
    big[0] = (char)sig;
    handled = big[0];
}

/* The signal frame goes on an alternate stack not resident yet. */
static void frame_on_fresh_stack(void) {
    char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stack_t ss = {.ss_sp = m, .ss_size = 4 * PG, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("handler on a fresh alternate stack ran: %s\n", handled == SIGUSR1 ? "yes" : "no");
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    signal(SIGUSR1, SIG_DFL);
    munmap(m, 4 * PG);
}

int main(void) {
    unbuffered();
    int p[2];
    check("pipe", pipe(p));
    into_fresh(p);
    into_cow(p);
    up_to_a_hole(p);
    frame_on_fresh_stack();
    printf("ucopy done\n");
    return 0;
}
