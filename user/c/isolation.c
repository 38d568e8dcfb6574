/* isolation: a process cannot reach the kernel's memory or another process's.
 * Kernel addresses (and unmapped ones) passed to system calls give EFAULT; touching
 * kernel memory kills the toucher with SIGSEGV; a page mapped by one process does
 * not exist in another, even at the same address. */
#include "common.h"
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sched.h>

#define KERNEL_TEXT 0xffffffff80000000UL
#define DIRECT_MAP 0xffff800000000000UL
#define SECRET_AT ((char *)0x20000000)

static void efault(const char *what, long r) {
    printf("%s: %s\n", what, r == -1 ? errname(errno) : "OK");
}

static void syscalls_refuse_bad_pointers(void) {
    struct timespec ts = {0, 1};
    efault("write from kernel text", syscall(SYS_write, 1, (void *)KERNEL_TEXT, 16));
    efault("write from direct map", syscall(SYS_write, 1, (void *)DIRECT_MAP, 16));
    efault("write from unmapped page", syscall(SYS_write, 1, (void *)0x10000, 16));
    efault("clock_gettime into kernel", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)DIRECT_MAP));
    efault("nanosleep from kernel", syscall(SYS_nanosleep, (void *)KERNEL_TEXT, &ts));
    efault("uname into kernel", syscall(SYS_uname, (void *)(KERNEL_TEXT + 0x1000)));
    efault("getrandom into kernel", syscall(SYS_getrandom, (void *)DIRECT_MAP, 8, 0));
    efault("non-canonical pointer", syscall(SYS_write, 1, (void *)0x0000900000000000UL, 8));
}

static void read_kernel(void) { printf("read %d\n", *(volatile char *)KERNEL_TEXT); }
static void write_direct_map(void) { *(volatile char *)(DIRECT_MAP + 0x100000) = 1; }
static void jump_to_kernel(void) { ((void (*)(void))KERNEL_TEXT)(); }
static void touch_secret(void) { printf("read %d\n", *(volatile char *)SECRET_AT); }

/* A child maps a page with a secret at SECRET_AT; a second child (a sibling, same
 * address space layout) faults on that address, and so does the parent's own read
 * in a third child. */
static void other_process_memory(void) {
    volatile int *flag = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *flag = 0;
    pid_t owner = fork();
    if (owner == 0) {
        char *p = mmap(SECRET_AT, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        strcpy(p, "secret");
        *flag = 1;
        while (*flag != 2)
            sched_yield();
        _exit(0);
    }
    while (*flag != 1)
        sched_yield();
    in_child("sibling touches the owner's page", touch_secret);
    *flag = 2;
    int st = 0;
    waitpid(owner, &st, 0);
    print_status("owner", st);
    munmap((void *)flag, 4096);
}

int main(void) {
    unbuffered();
    no_core_dumps();
    syscalls_refuse_bad_pointers();
    in_child("read kernel text", read_kernel);
    in_child("write the direct map", write_direct_map);
    in_child("jump into the kernel", jump_to_kernel);
    other_process_memory();
    printf("isolation done\n");
    return 0;
}
