/* exec: execve replaces the image of the calling process (same pid, new argv and
 * envp, fresh memory), its exit status reaches the parent, and failures leave the
 * caller running: ENOENT for a missing file, EFAULT for a bad path pointer. Programs
 * are found beside this one (the directory of argv[0]), natively and under the
 * kernel (where they sit at the root of the initrd). */
#include "common.h"
#include <sys/mman.h>
#include <sys/syscall.h>

static char dir[4096];

static void path_of(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

static int child_mode(int argc, char **argv, char **envp) {
    int n = 0;
    for (char **e = envp; *e; e++)
        n++;
    printf("new image: argc=%d argv[2]=%s envc=%d env0=%s\n", argc, argv[2], n, n ? envp[0] : "-");
    printf("new image: pid unchanged: %s\n", atoi(argv[3]) == getpid() ? "yes" : "no");
    return 7;
}

static void exec_self(const char *self) {
    char pid[16];
    pid_t c = fork();
    if (c == 0) {
        snprintf(pid, sizeof pid, "%d", getpid());
        /* Dirty some memory first: the new image must not see it. */
        char *m = mmap((void *)0x30000000, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        m[0] = 1;
        char *args[] = {(char *)self, "--child", "hello there", pid, NULL};
        char *env[] = {"ONLY=this", NULL};
        execve(self, args, env);
        printf("execve failed: %s\n", errname(errno));
        _exit(1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    print_status("exec'd child", st);
}

static void exec_hello(void) {
    char path[4200];
    path_of(path, sizeof path, "hello");
    pid_t c = fork();
    if (c == 0) {
        char *args[] = {path, "from exec", "--exit=5", NULL};
        char *env[] = {"A=1", "B=2", NULL};
        execve(path, args, env);
        _exit(1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    print_status("hello via exec", st);
}

/* musl's vfork() is a real vfork only on x86_64 (elsewhere it is fork: clone with
 * SIGCHLD alone), so on aarch64 the call is made here: clone(CLONE_VM |
 * CLONE_VFORK | SIGCHLD), inline so that the child, running on the parent's stack
 * until it execs, returns from no function of its own. */
#if defined(__aarch64__)
#include <sched.h>
#include <signal.h>
static inline __attribute__((always_inline)) pid_t real_vfork(void) {
    register long x8 __asm__("x8") = SYS_clone;
    register long x0 __asm__("x0") = CLONE_VM | CLONE_VFORK | SIGCHLD;
    register long x1 __asm__("x1") = 0;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1) : "memory");
    if (x0 < 0) {
        errno = (int)-x0;
        return -1;
    }
    return (pid_t)x0;
}
#else
#define real_vfork vfork
#endif

/* vfork: the child borrows the parent's memory until it execs; the parent resumes
 * only then, and the child's exit status still reaches it. */
static void vfork_exec(void) {
    char path[4200];
    path_of(path, sizeof path, "hello");
    volatile int borrowed = 0;
    pid_t c = real_vfork();
    if (c == 0) {
        borrowed = 1; /* the parent's variable: the memory is shared until exec */
        char *args[] = {path, "--exit=6", NULL};
        char *env[] = {NULL};
        execve(path, args, env);
        _exit(1);
    }
    int saw = borrowed; /* read as soon as the parent resumes (at the child's exec) */
    int st = 0;
    waitpid(c, &st, 0);
    printf("vfork parent resumed, saw the child's write: %s\n", saw ? "yes" : "no");
    print_status("hello via vfork+exec", st);
}

static void failures(void) {
    char path[4200];
    path_of(path, sizeof path, "no-such-program");
    char *args[] = {path, NULL};
    long r = execve(path, args, args + 1);
    printf("execve missing file: %ld %s\n", r, errname(errno));
    r = syscall(SYS_execve, (void *)0xffff800000000000UL, args, args + 1);
    printf("execve kernel pointer: %ld %s\n", r, errname(errno));
    printf("still running after failed execs: yes\n");
}

int main(int argc, char **argv, char **envp) {
    unbuffered();
    if (argc > 3 && strcmp(argv[1], "--child") == 0)
        return child_mode(argc, argv, envp);
    snprintf(dir, sizeof dir, "%s", argv[0]);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    exec_self(argv[0]);
    exec_hello();
    vfork_exec();
    failures();
    printf("exec done\n");
    return 0;
}
