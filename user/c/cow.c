/* cow: after fork, private memory (globals, heap, stack, anonymous mappings) is
 * copied on write in both directions, while MAP_SHARED memory stays shared. The
 * child prints and exits before the parent prints, so the order is fixed. */
#include "common.h"
#include <sched.h>
#include <sys/mman.h>

#define PG 4096
#define PAGES 64

static int global_data = 1;
static char bss[PAGES * PG];

static const char *yes(int c) { return c ? "yes" : "no"; }

static int filled(const char *p, size_t n, char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static void wait_child(pid_t pid, const char *who) {
    int st = 0;
    waitpid(pid, &st, 0);
    print_status(who, st);
}

static void private_isolation(void) {
    int stack_var = 10;
    char *heap = malloc(PAGES * PG);
    char *anon = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(heap, 'h', PAGES * PG);
    memset(anon, 'a', PAGES * PG);
    memset(bss, 'b', sizeof bss);
    pid_t pid = fork();
    if (pid == 0) {
        global_data = 2, stack_var = 20;
        memset(heap, 'H', PAGES * PG);
        memset(anon, 'A', PAGES * PG);
        memset(bss, 'B', sizeof bss);
        printf("child sees its own writes: %s\n",
               yes(global_data == 2 && stack_var == 20 && filled(heap, PAGES * PG, 'H') &&
                   filled(anon, PAGES * PG, 'A') && filled(bss, sizeof bss, 'B')));
        _exit(0);
    }
    wait_child(pid, "writer child");
    printf("parent global unchanged: %s\n", yes(global_data == 1));
    printf("parent stack unchanged: %s\n", yes(stack_var == 10));
    printf("parent heap unchanged: %s\n", yes(filled(heap, PAGES * PG, 'h')));
    printf("parent mmap unchanged: %s\n", yes(filled(anon, PAGES * PG, 'a')));
    printf("parent bss unchanged: %s\n", yes(filled(bss, sizeof bss, 'b')));
    munmap(anon, PAGES * PG);
    free(heap);
}

/* The parent writes after the fork; the child, released through shared memory,
 * must still see the old values. */
static void parent_writes_first(void) {
    volatile int *flag = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *data = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    data[0] = 'o';
    *flag = 0;
    pid_t pid = fork();
    if (pid == 0) {
        while (*flag == 0)
            sched_yield();
        printf("child still sees old value: %s\n", yes(data[0] == 'o'));
        _exit(0);
    }
    data[0] = 'n';
    *flag = 1;
    wait_child(pid, "reader child");
    printf("parent sees new value: %s\n", yes(data[0] == 'n'));
    munmap((void *)flag, PG);
    munmap(data, PG);
}

static void shared_stays_shared(void) {
    volatile int *s = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    s[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        s[0] += 10;
        s[PG / sizeof(int)] = 99; /* second page, first touched in the child */
        pid_t grandchild = fork();
        if (grandchild == 0) {
            s[0] += 100;
            _exit(0);
        }
        waitpid(grandchild, NULL, 0);
        _exit(0);
    }
    wait_child(pid, "shared writer");
    printf("shared counter=%d (expected 111)\n", s[0]);
    printf("page first touched by child is shared: %s\n", yes(s[PG / sizeof(int)] == 99));
    munmap((void *)s, 4 * PG);
}

/* Many forks of a process with dirty private memory: each child flips the memory
 * and exits; the parent's copy never changes. */
static void fork_storm(void) {
    memset(bss, 'p', sizeof bss);
    int bad = 0;
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            memset(bss, 'c' + i, sizeof bss);
            _exit(filled(bss, sizeof bss, (char)('c' + i)) ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    printf("20 forks: children ok: %s, parent intact: %s\n", yes(bad == 0), yes(filled(bss, sizeof bss, 'p')));
}

int main(void) {
    unbuffered();
    private_isolation();
    parent_writes_first();
    shared_stays_shared();
    fork_storm();
    printf("cow done\n");
    return 0;
}
