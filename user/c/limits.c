/* limits: resource limits. getrlimit/setrlimit/prlimit64 (raw system calls, so
 * each call is the one named) with Linux's errnos, inheritance by fork and exec,
 * prlimit64 on another process, and enforcement: RLIMIT_NOFILE bounds open, dup,
 * pipe, F_DUPFD and dup2/dup3; RLIMIT_AS bounds mmap and brk; RLIMIT_NPROC does
 * not stop root. Also the errnos of over-long path names and of clone with a
 * thread pointer outside user space. Prints only limits it set itself (the
 * defaults differ between a login shell and a kernel's first process), and only
 * lowers hard limits: raising one needs CAP_SYS_RESOURCE, which root in a
 * container may lack (the kernel's host tests check that root may raise them).
 * Expects uid 0 (RLIMIT_NPROC does not apply to the root user).
 * Usage: limits [--show]  (--show: print NOFILE and STACK, for the exec check) */
#include "common.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define KERNEL_PTR ((void *)0xffff800000000000UL)

static const char *ename(int e) {
    switch (e) {
    case EMFILE: return "EMFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return errname(e);
    }
}

/* "OK" or the errno's name for a raw call's result. */
static const char *res(long r) { return r == -1 ? ename(errno) : "OK"; }

static long get_raw(long resource, struct rlimit *l) { return syscall(SYS_getrlimit, resource, l); }
static long set_raw(long resource, const struct rlimit *l) { return syscall(SYS_setrlimit, resource, l); }
static long prlimit_raw(long pid, long resource, const struct rlimit *n, struct rlimit *o) {
    return syscall(SYS_prlimit64, pid, resource, n, o);
}

static void set_or_say(const char *what, int resource, rlim_t cur, rlim_t max) {
    struct rlimit l = {cur, max};
    if (set_raw(resource, &l) != 0)
        printf("%s: setrlimit failed: %s\n", what, ename(errno));
}

/* Sets the soft limit of `resource`, keeping its hard limit. */
static void set_soft(const char *what, int resource, rlim_t cur) {
    struct rlimit l;
    if (get_raw(resource, &l) != 0)
        printf("%s: getrlimit failed: %s\n", what, ename(errno));
    set_or_say(what, resource, cur, l.rlim_max);
}

static void show(const char *what, int resource) {
    struct rlimit l;
    if (get_raw(resource, &l) != 0) {
        printf("%s: getrlimit failed: %s\n", what, ename(errno));
        return;
    }
    char cur[32], max[32];
    snprintf(cur, sizeof cur, l.rlim_cur == RLIM_INFINITY ? "inf" : "%llu", (unsigned long long)l.rlim_cur);
    snprintf(max, sizeof max, l.rlim_max == RLIM_INFINITY ? "inf" : "%llu", (unsigned long long)l.rlim_max);
    printf("%s: %s %s\n", what, cur, max);
}

static void calls_and_errnos(void) {
    struct rlimit l;
    int sane = 1;
    for (int r = 0; r < 16; r++)
        sane &= get_raw(r, &l) == 0 && l.rlim_cur <= l.rlim_max;
    printf("all 16 resources readable, soft <= hard: %s\n", sane ? "yes" : "no");
    printf("getrlimit(16): %s\n", res(get_raw(16, &l)));
    printf("getrlimit(-1): %s\n", res(get_raw(-1, &l)));
    set_or_say("lower", RLIMIT_NOFILE, 64, 4096);
    show("NOFILE after setrlimit(64, 4096)", RLIMIT_NOFILE);
    struct rlimit bad = {100, 50};
    printf("setrlimit soft > hard: %s\n", res(set_raw(RLIMIT_NOFILE, &bad)));
    struct rlimit huge = {10, 1048577};
    printf("setrlimit NOFILE hard > nr_open: %s\n", res(set_raw(RLIMIT_NOFILE, &huge)));
    printf("setrlimit(16): %s\n", res(set_raw(16, &l)));
    show("NOFILE unchanged by the refusals", RLIMIT_NOFILE);
    struct rlimit lower = {64, 2048};
    printf("lower the hard limit: %s\n", res(set_raw(RLIMIT_NOFILE, &lower)));
    show("NOFILE", RLIMIT_NOFILE);
    printf("getrlimit to a kernel pointer: %s\n", res(get_raw(RLIMIT_NOFILE, KERNEL_PTR)));
    printf("getrlimit(16) to a kernel pointer: %s\n", res(get_raw(16, KERNEL_PTR)));
    printf("setrlimit from a kernel pointer: %s\n", res(set_raw(RLIMIT_NOFILE, KERNEL_PTR)));
    printf("setrlimit(16) from a kernel pointer: %s\n", res(set_raw(16, KERNEL_PTR)));
}

static void prlimit_calls(void) {
    struct rlimit old = {1, 1}, n = {48, 2048};
    printf("prlimit64(0) set, old back: %s\n", res(prlimit_raw(0, RLIMIT_NOFILE, &n, &old)));
    printf("old: %llu %llu\n", (unsigned long long)old.rlim_cur, (unsigned long long)old.rlim_max);
    printf("prlimit64(own pid) read: %s\n", res(prlimit_raw(getpid(), RLIMIT_NOFILE, NULL, &old)));
    printf("now: %llu %llu\n", (unsigned long long)old.rlim_cur, (unsigned long long)old.rlim_max);
    printf("prlimit64(no such pid): %s\n", res(prlimit_raw(0x7fffffff, RLIMIT_NOFILE, NULL, &old)));
    printf("prlimit64(-1): %s\n", res(prlimit_raw(-1, RLIMIT_NOFILE, NULL, &old)));
    printf("prlimit64(0, 16): %s\n", res(prlimit_raw(0, 16, NULL, &old)));
    printf("prlimit64 from a kernel pointer: %s\n", res(prlimit_raw(0, RLIMIT_NOFILE, KERNEL_PTR, NULL)));
    n.rlim_cur = 64;
    printf("prlimit64 old to a kernel pointer: %s\n", res(prlimit_raw(0, RLIMIT_NOFILE, &n, KERNEL_PTR)));
    show("NOFILE (the new limit was set)", RLIMIT_NOFILE);
}

/* Opens /dev/null until it fails; returns how many opened (fds from 3 up). */
static int open_until_full(int *last_fd) {
    int n = 0, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
        *last_fd = fd;
        n++;
    }
    return n;
}

static void nofile_enforced(void) {
    set_soft("nofile 200", RLIMIT_NOFILE, 200);
    int high = dup2(1, 100); /* stays open while the limit is below it */
    set_soft("nofile 10", RLIMIT_NOFILE, 10);
    int last = -1;
    int n = open_until_full(&last);
    printf("RLIMIT_NOFILE 10: opened %d (last fd %d), then %s\n", n, last, ename(errno));
    int p[2];
    printf("dup: %s\n", res(dup(1)));
    printf("pipe: %s\n", res(pipe(p)));
    printf("fcntl F_DUPFD 5 (none free): %s\n", res(fcntl(1, F_DUPFD, 5)));
    printf("fcntl F_DUPFD 10 (at the limit): %s\n", res(fcntl(1, F_DUPFD, 10)));
    printf("fcntl F_DUPFD_CLOEXEC 4096: %s\n", res(fcntl(1, F_DUPFD_CLOEXEC, 4096)));
    printf("dup2 to 10: %s\n", res(dup2(1, 10)));
    printf("dup3 to 10: %s\n", res(dup3(1, 10, 0)));
    printf("dup2 to 9 (below, replaces): %s\n", dup2(1, 9) == 9 ? "OK" : ename(errno));
    printf("fd 100 above the limit still works: %s\n", high == 100 && write(100, "", 0) == 0 ? "yes" : "no");
    close(9);
    printf("pipe with one free fd: %s\n", res(pipe(p)));
    printf("dup then takes fd %d\n", dup(1));
    for (int fd = 3; fd < 10; fd++)
        close(fd);
    close(100);
    set_soft("nofile back", RLIMIT_NOFILE, 64);
    int fd = open("/dev/null", O_RDONLY);
    printf("after raising it again, open gives fd %d\n", fd);
    close(fd);
}

static void child_shows_inherited(void) { show("child: NOFILE inherited", RLIMIT_NOFILE); }

static void fork_inherits(void) {
    set_soft("nofile 40", RLIMIT_NOFILE, 40);
    in_child("fork child", child_shows_inherited);
    int go[2];
    if (pipe(go) != 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        char b;
        read(go[0], &b, 1); /* the parent sets our limit first */
        show("child: NOFILE set by the parent with prlimit64", RLIMIT_NOFILE);
        set_soft("child own", RLIMIT_NOFILE, 30);
        _exit(0);
    }
    struct rlimit n = {25, 2048}, old = {1, 1};
    printf("prlimit64(child) set: %s\n", res(prlimit_raw(c, RLIMIT_NOFILE, &n, &old)));
    printf("child's old: %llu %llu\n", (unsigned long long)old.rlim_cur, (unsigned long long)old.rlim_max);
    write(go[1], "x", 1);
    int st = 0;
    waitpid(c, &st, 0);
    print_status("prlimit child", st);
    show("parent: NOFILE unchanged by its child", RLIMIT_NOFILE);
    close(go[0]);
    close(go[1]);
}

static void exec_keeps(const char *self) {
    pid_t c = fork();
    if (c == 0) {
        set_soft("before exec", RLIMIT_NOFILE, 33);
        set_soft("before exec", RLIMIT_STACK, 4 << 20);
        char *args[] = {(char *)self, "--show", NULL};
        char *env[] = {NULL};
        execve(self, args, env);
        printf("execve failed: %s\n", ename(errno));
        _exit(1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    print_status("exec child", st);
}

static void address_space_child(void) {
    set_soft("as", RLIMIT_AS, 256UL << 20);
    void *big = mmap(NULL, 1UL << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("RLIMIT_AS 256 MiB: mmap 1 GiB: %s\n", big == MAP_FAILED ? ename(errno) : "OK");
    void *small = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("RLIMIT_AS 256 MiB: mmap 1 MiB: %s\n", small == MAP_FAILED ? ename(errno) : "OK");
    long cur = syscall(SYS_brk, 0);
    long got = syscall(SYS_brk, cur + (512L << 20));
    printf("brk 512 MiB up: %s\n", got == cur ? "refused, break unchanged" : "moved");
    set_soft("as tiny", RLIMIT_AS, 1 << 20);
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("RLIMIT_AS below what is mapped: mmap 4 KiB: %s\n", page == MAP_FAILED ? ename(errno) : "OK");
    set_soft("as back", RLIMIT_AS, RLIM_INFINITY);
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("RLIMIT_AS unlimited again: mmap 4 KiB: %s\n", page == MAP_FAILED ? ename(errno) : "OK");
}

static void nproc_child(void) {
    set_or_say("nproc", RLIMIT_NPROC, 1, 1);
    pid_t c = fork();
    if (c == 0)
        _exit(0);
    printf("fork under RLIMIT_NPROC 1 as root: %s\n", c > 0 ? "OK" : ename(errno));
    if (c > 0)
        waitpid(c, NULL, 0);
}

static void long_names(void) {
    static char name[4200];
    memset(name, 'a', sizeof name);
    name[0] = '/';
    name[256] = 0; /* "/" and 255 bytes */
    printf("open a 255-byte name: %s\n", res(open(name, O_RDONLY)));
    name[256] = 'a';
    name[257] = 0;
    printf("open a 256-byte name: %s\n", res(open(name, O_RDONLY)));
    name[257] = 'a';
    name[4095] = 0;
    printf("open a 4095-byte name: %s\n", res(open(name, O_RDONLY)));
    name[4095] = 'a';
    name[4096] = 0;
    printf("open a 4096-byte name (no room for the NUL): %s\n", res(open(name, O_RDONLY)));
    for (int i = 0; i < 4000; i += 200)
        name[i] = '/';
    name[4000] = 0;
    printf("open a 4000-byte path of short names: %s\n", res(open(name, O_RDONLY)));
}

/* x86_64 Linux refuses an FS base outside user space (EPERM, no child); aarch64
 * Linux takes any TPIDR_EL0 value. The line says whether each did as its Linux. */
static void clone_bad_tls(void) {
    long flags = 0x80000 /* CLONE_SETTLS */ | SIGCHLD;
    long r;
#if defined(__x86_64__)
    r = syscall(SYS_clone, flags, 0, 0, 0, KERNEL_PTR);
    int as_linux = r == -1 && errno == EPERM;
    long r2 = syscall(SYS_clone, flags, 0, 0, 0, (void *)0x800000000000UL);
    as_linux &= r2 == -1 && errno == EPERM;
#else
    r = syscall(SYS_clone, flags, 0, 0, KERNEL_PTR, 0);
    if (r == 0)
        syscall(SYS_exit_group, 0);
    int st = 1;
    int as_linux = r > 0 && waitpid(r, &st, 0) == r && WIFEXITED(st) && WEXITSTATUS(st) == 0;
#endif
    printf("clone with a thread pointer outside user space, as this arch's Linux: %s\n", as_linux ? "yes" : "no");
}

int main(int argc, char **argv) {
    unbuffered();
    if (argc > 1 && strcmp(argv[1], "--show") == 0) {
        show("after exec: NOFILE", RLIMIT_NOFILE);
        struct rlimit l;
        get_raw(RLIMIT_STACK, &l);
        printf("after exec: STACK soft %llu\n", (unsigned long long)l.rlim_cur);
        return 0;
    }
    calls_and_errnos();
    prlimit_calls();
    nofile_enforced();
    fork_inherits();
    exec_keeps(argv[0]);
    in_child("address-space child", address_space_child);
    in_child("nproc child", nproc_child);
    long_names();
    clone_bad_tls();
    printf("limits done\n");
    return 0;
}
