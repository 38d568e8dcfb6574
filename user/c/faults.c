/* faults: each exception user code can raise kills only the process that raised it,
 * with the signal Linux sends: an undefined instruction (SIGILL), a breakpoint
 * instruction (SIGTRAP), executing a data page (SIGSEGV), writing a read-only page
 * (SIGSEGV), jumping into the kernel (SIGSEGV), running off the stack (SIGSEGV).
 * The parent outlives them all. */
#include "common.h"
#include <sys/mman.h>

static void undefined_instruction(void) {
#if defined(__x86_64__)
    __asm__ volatile("ud2");
#elif defined(__aarch64__)
    __asm__ volatile("udf #0");
#endif
}

static void breakpoint(void) {
#if defined(__x86_64__)
    __asm__ volatile("int3");
#elif defined(__aarch64__)
    __asm__ volatile("brk #0");
#endif
}

static void execute_data(void) {
    unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        _exit(2);
    memset(page, 0, 4096);
    void (*fn)(void) = (void (*)(void))page;
    fn();
}

static void write_read_only(void) {
    volatile int *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        _exit(2);
    *page = 1;
}

static void jump_to_kernel(void) {
    void (*fn)(void) = (void (*)(void))0xffffffff80000000UL;
    fn();
}

/* Recurses far deeper than the 8 MiB stack allows (the bound only keeps the compiler
 * from calling it infinite). */
static int recurse(volatile char *prev, long depth) {
    volatile char frame[4096];
    frame[0] = prev ? prev[0] + 1 : 0;
    if (depth > (1L << 40))
        return 0;
    return recurse(frame, depth + 1) + frame[100];
}

static void overflow_stack(void) { recurse(NULL, 0); }

int main(void) {
    unbuffered();
    no_core_dumps();
    in_child("undefined instruction", undefined_instruction);
    in_child("breakpoint", breakpoint);
    in_child("execute a data page", execute_data);
    in_child("write a read-only page", write_read_only);
    in_child("jump into the kernel", jump_to_kernel);
    in_child("run off the stack", overflow_stack);
    printf("parent still running: yes\n");
    return 0;
}
