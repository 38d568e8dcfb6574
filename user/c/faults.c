/* faults: each exception user code can raise kills only the process that raised it,
 * with the signal Linux sends: an undefined instruction (SIGILL), a breakpoint
 * instruction (SIGTRAP), executing a data page (SIGSEGV), writing a read-only page
 * (SIGSEGV), jumping into the kernel (SIGSEGV), running off the stack (SIGSEGV).
 * The parent outlives them all. With a handler, the fault runs it instead: a
 * SIGSEGV handler sees si_code SEGV_MAPERR and si_addr of a NULL write, or
 * SEGV_ACCERR for a read-only page, and siglongjmp()s out with its mask restored;
 * a SIGILL handler recovers the same way. */
#include "common.h"
#include <setjmp.h>
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

static sigjmp_buf back;
static volatile int seen_sig, seen_code;
static void *volatile seen_addr;

static void on_fault(int sig, siginfo_t *info, void *uc) {
    (void)uc;
    seen_sig = sig;
    seen_code = info->si_code;
    seen_addr = info->si_addr;
    siglongjmp(back, 1);
}

static int blocked(int sig) {
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    return sigismember(&now, sig);
}

/* Runs `fn` with handlers for SIGSEGV and SIGILL and reports what they saw. */
static void recover(const char *what, void (*fn)(void), void *want_addr) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    seen_sig = 0;
    if (sigsetjmp(back, 1) == 0) {
        fn();
        printf("%s: no fault\n", what);
    } else {
        printf("%s: handler saw %s code %d, address %s; %s unblocked after siglongjmp: %s\n",
               what, signame(seen_sig), seen_code,
               want_addr == (void *)1 ? "(not checked)" : (seen_addr == want_addr ? "right" : "wrong"),
               signame(seen_sig), blocked(seen_sig) ? "no" : "yes");
    }
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = 0;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
}

static void null_write(void) {
    volatile int *volatile p = 0;
    *p = 1;
}

static volatile int *read_only;

static void read_only_write(void) { *read_only = 1; }

/* A stack overflow can only be handled on another stack. */
static void overflow_on_alt_stack(void) {
    static char alt[65536];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(back, 1) == 0) {
        overflow_stack();
        printf("stack overflow: no fault\n");
    } else {
        printf("stack overflow: handled on the alternate stack: %s\n",
               seen_sig == SIGSEGV ? "yes" : "no");
    }
}

int main(void) {
    unbuffered();
    no_core_dumps();
    recover("NULL write", null_write, NULL);
    read_only = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    recover("read-only write", read_only_write, (void *)read_only);
    recover("undefined instruction", undefined_instruction, (void *)1);
    in_child("stack overflow child", overflow_on_alt_stack);
    in_child("undefined instruction", undefined_instruction);
    in_child("breakpoint", breakpoint);
    in_child("execute a data page", execute_data);
    in_child("write a read-only page", write_read_only);
    in_child("jump into the kernel", jump_to_kernel);
    in_child("run off the stack", overflow_stack);
    printf("parent still running: yes\n");
    return 0;
}
