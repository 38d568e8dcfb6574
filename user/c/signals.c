/* signals: handlers run and return as on Linux. A handler set with sigaction runs
 * when kill() sends its signal to the caller, with the signal masked inside it;
 * SA_SIGINFO gives si_signo, si_code and si_pid; registers, x87/SSE state and the
 * stack are intact after the handler returns; a blocked signal waits until it is
 * unblocked; SA_RESETHAND runs the handler once, then the default action kills;
 * raise() (tkill) works; SIG_IGN discards; a corrupt frame given to rt_sigreturn
 * kills the process with SIGSEGV. */
#include "common.h"

static volatile int count;
static volatile int blocked_inside;
static volatile int info_ok;

static int is_blocked(int sig) {
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    return sigismember(&now, sig);
}

static void on_usr1(int sig) {
    count++;
    blocked_inside = is_blocked(sig);
}

static void on_info(int sig, siginfo_t *info, void *uc) {
    (void)uc;
    info_ok = sig == SIGUSR2 && info->si_signo == SIGUSR2 && info->si_code == SI_USER &&
              info->si_pid == getpid();
}

static char alt[65536];
static volatile int on_alt, onstack_flag;

static void on_alt_handler(int sig) {
    (void)sig;
    char here;
    on_alt = &here >= alt && &here < alt + sizeof alt;
    stack_t now;
    sigaltstack(NULL, &now);
    onstack_flag = (now.ss_flags & SS_ONSTACK) != 0;
}

static void set(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static void once_then_die(void) {
    set(SIGUSR1, on_usr1, SA_RESETHAND);
    kill(getpid(), SIGUSR1);
    printf("first SIGUSR1 handled: %s\n", count == 1 ? "yes" : "no");
    kill(getpid(), SIGUSR1);
    printf("not reached\n");
}

/* rt_sigreturn with a stack of 0xff bytes: no valid frame, so SIGSEGV. */
static void corrupt_sigreturn(void) {
    static unsigned char junk[8192] __attribute__((aligned(16)));
    memset(junk, 0xff, sizeof junk);
    unsigned char *top = junk + sizeof junk / 2;
#if defined(__x86_64__)
    __asm__ volatile("mov %0, %%rsp\n\tmov $15, %%eax\n\tsyscall" ::"r"(top) : "memory");
#elif defined(__aarch64__)
    __asm__ volatile("mov sp, %0\n\tmov x8, #139\n\tsvc #0" ::"r"(top) : "memory");
#endif
}

int main(void) {
    unbuffered();
    no_core_dumps();
    set(SIGUSR1, on_usr1, 0);
    volatile double x = 1.5;
    long before = 12345;
    kill(getpid(), SIGUSR1);
    printf("handler ran %d time(s), signal blocked inside: %s, after: %s\n", count,
           blocked_inside ? "yes" : "no", is_blocked(SIGUSR1) ? "yes" : "no");
    printf("registers and FP intact: %s\n", (before == 12345 && x * 2 == 3.0) ? "yes" : "no");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    kill(getpid(), SIGUSR2);
    printf("SA_SIGINFO: signo, code and pid right: %s\n", info_ok ? "yes" : "no");

    sigset_t set1;
    sigemptyset(&set1);
    sigaddset(&set1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set1, NULL);
    kill(getpid(), SIGUSR1);
    printf("delivered while blocked: %s\n", count == 2 ? "yes" : "no");
    sigset_t pend;
    sigemptyset(&pend);
    sigpending(&pend);
    printf("pending while blocked: %s\n", sigismember(&pend, SIGUSR1) ? "yes" : "no");
    sigprocmask(SIG_UNBLOCK, &set1, NULL);
    printf("delivered once unblocked: %s\n", count == 2 ? "yes" : "no");

    raise(SIGUSR1);
    printf("raise: handler ran: %s\n", count == 3 ? "yes" : "no");

    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    stack_t old;
    sigaltstack(&ss, &old);
    printf("no alternate stack before: %s\n", old.ss_flags == SS_DISABLE ? "yes" : "no");
    ss.ss_size = 100;
    printf("a too small one: %s\n", sigaltstack(&ss, NULL) == -1 && errno == ENOMEM ? "ENOMEM" : "?");
    set(SIGUSR2, on_alt_handler, SA_ONSTACK);
    kill(getpid(), SIGUSR2);
    printf("SA_ONSTACK handler ran on the alternate stack: %s, saw SS_ONSTACK: %s\n",
           on_alt ? "yes" : "no", onstack_flag ? "yes" : "no");

    set(SIGUSR1, SIG_IGN, 0);
    kill(getpid(), SIGUSR1);
    printf("SIG_IGN discards: %s\n", count == 3 ? "yes" : "no");

    count = 0;
    in_child("SA_RESETHAND child", once_then_die);
    in_child("corrupt signal frame", corrupt_sigreturn);
    printf("signals done\n");
    return 0;
}
