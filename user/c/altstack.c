/* altstack: sigaltstack with SS_AUTODISARM. While a handler runs, the alternate
 * stack is disabled for the thread (sigaltstack reports SS_DISABLE and a nested
 * signal's handler runs on the current stack, not from the top of the alternate
 * one); the frame's uc_stack holds the saved stack_t, and rt_sigreturn restores
 * it. Without the flag the stack stays armed (SS_ONSTACK inside the handler, and
 * sigaltstack may not change it there: EPERM). */
#include "common.h"
#include <stdint.h>
#include <sys/syscall.h>
#include <ucontext.h>

static char stack[65536] __attribute__((aligned(16)));
static volatile int depth;
static volatile int inner_on_alt, outer_on_alt, flags_inside, uc_flags, change_err;
static volatile uintptr_t outer_sp, inner_sp;

static int on_alt(uintptr_t sp) {
    return sp > (uintptr_t)stack && sp <= (uintptr_t)stack + sizeof stack;
}

static void handler(int sig, siginfo_t *si, void *ucv) {
    (void)si;
    ucontext_t *uc = ucv;
    char here;
    uintptr_t sp = (uintptr_t)&here;
    stack_t cur;
    if (sig == SIGUSR1) {
        outer_on_alt = on_alt(sp);
        outer_sp = sp;
        uc_flags = uc->uc_stack.ss_flags;
        sigaltstack(NULL, &cur);
        flags_inside = cur.ss_flags;
        stack_t again = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};
        change_err = sigaltstack(&again, NULL) ? errno : 0;
        if (change_err == 0) {
            /* Armed again (without auto-disarm) inside the handler: rt_sigreturn
             * puts the saved one back anyway. Disarm to keep the test simple. */
            stack_t off = {.ss_flags = SS_DISABLE};
            sigaltstack(&off, NULL);
        }
        raise(SIGUSR2);
    } else {
        inner_on_alt = on_alt(sp);
        inner_sp = sp;
    }
}

static const char *fl(int f) {
    static char bufs[2][64];
    static int next;
    char *b = bufs[next++ & 1];
    snprintf(b, 64, "%s%s%s%s", f & SS_ONSTACK ? "ONSTACK " : "", f & SS_DISABLE ? "DISABLE " : "",
             f & SS_AUTODISARM ? "AUTODISARM " : "", f == 0 ? "0 " : "");
    return b;
}

static void run(int flags) {
    stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = flags};
    if (sigaltstack(&ss, NULL))
        printf("sigaltstack: %s\n", errname(errno));
    raise(SIGUSR1);
    stack_t after;
    sigaltstack(NULL, &after);
    printf("flags %s: outer on alt %d, inner on alt %d, inner below outer %d\n", fl(flags), outer_on_alt,
           inner_on_alt, inner_sp < outer_sp);
    printf("  inside: sigaltstack says %s, uc_stack says %s, change: %s\n", fl(flags_inside), fl(uc_flags),
           errname(change_err));
    printf("  after return: %s size ok %d\n", fl(after.ss_flags), after.ss_size == sizeof stack);
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
}

int main(void) {
    unbuffered();
    struct sigaction sa = {0};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    run(SS_AUTODISARM);
    run(0);
    stack_t bad = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = SS_ONSTACK};
    /* musl refuses SS_ONSTACK itself; the raw call reaches the kernel. */
    printf("ss_flags SS_ONSTACK (libc): %s\n", sigaltstack(&bad, NULL) ? errname(errno) : "OK");
    long r = syscall(SYS_sigaltstack, &bad, NULL);
    printf("ss_flags SS_ONSTACK (raw): %s\n", r ? errname(errno) : "OK");
    stack_t now;
    sigaltstack(NULL, &now);
    printf("then: %s\n", fl(now.ss_flags));
    return 0;
}
