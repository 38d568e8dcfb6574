/* fsexec: execve of files made at run time on a writable file system. The program
 * copies its own binary (found through argv[0], as under the kernel there may be no
 * /proc/self/exe) into a scratch directory from mkdtemp("/tmp/fsexec.XXXXXX"),
 * chmods it 0755 and runs the copy in forked children: new argv and envp, exit
 * status 7 to the parent, also through a symlink and with mode 0100 (root needs one
 * x bit). "#!" scripts whose interpreter is the copy: the interpreter gets its own
 * path, the rest of the "#!" line as one argument (when there is one), the script's
 * path as execve was given it (not the old argv[0]), then the old argv[1..]; a
 * script may name another script. Failures, each leaving the caller running:
 * EACCES for a file without x bits and for a directory, ENOEXEC for garbage and an
 * empty file, ENOENT for a missing file and a script's missing interpreter, EACCES
 * for a non-executable interpreter, ENOTDIR through a file, ETXTBSY while the file
 * is open for writing. The scratch path is printed as SCRATCH; all is removed at
 * the end. Usage: fsexec  (the copy is run as `copy --child ...` or, through
 * scripts, with `--show-argv`) */
#include "common.h"
#include <fcntl.h>
#include <sys/stat.h>

static char scratch[] = "/tmp/fsexec.XXXXXX";

/* An argument with a "/tmp/fsexec.XXXXXX" prefix shown as "SCRATCH". */
static void show_arg(int i, const char *a) {
    const size_t n = strlen("/tmp/fsexec.XXXXXX");
    if (strncmp(a, "/tmp/fsexec.", 12) == 0 && strlen(a) >= n)
        printf("  argv[%d]=SCRATCH%s\n", i, a + n);
    else
        printf("  argv[%d]=%s\n", i, a);
}

/* The copy's modes: `--child WORD` prints and exits 7; any `--show-argv` (as the
 * interpreter of a script) prints the whole argv and exits 8. */
static int child_mode(int argc, char **argv, char **envp) {
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        int envc = 0;
        while (envp[envc])
            envc++;
        printf("copy running: argv[2]=%s envc=%d env0=%s\n", argv[2], envc, envc ? envp[0] : "-");
        return 7;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--show-argv") == 0) {
            printf("interpreter argc=%d\n", argc);
            for (int j = 0; j < argc; j++)
                show_arg(j, argv[j]);
            return 8;
        }
    return -1;
}

static char *at(const char *name) {
    static char bufs[4][200];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", scratch, name);
    return b;
}

static void put(const char *path, const char *text, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        printf("put failed: %s\n", errname(errno));
    close(fd);
    chmod(path, mode);
}

/* Copies our own binary to `to`; 0 when done. */
static int copy_self(const char *argv0, const char *to) {
    char alt[300];
    snprintf(alt, sizeof alt, "/%s", argv0);
    int in = open(argv0, O_RDONLY);
    if (in < 0 && !strchr(argv0, '/'))
        in = open(alt, O_RDONLY);
    if (in < 0)
        in = open("/proc/self/exe", O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0)
        return -1;
    char buf[8192];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n)
            return -1;
    close(in);
    return close(out) == 0 && n == 0 ? 0 : -1;
}

/* Forks; the child execs path with argv and a one-variable environment and reports
 * a failure (exit 1); the parent prints how it ended. */
static void run(const char *what, const char *path, char **argv) {
    pid_t c = fork();
    if (c == 0) {
        char *env[] = {"FSEXEC=1", NULL};
        execve(path, argv, env);
        printf("%s: execve failed: %s\n", what, errname(errno));
        _exit(1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    print_status(what, st);
}

static void run_copy(void) {
    char *copy = at("copy");
    printf("chmod 0755: %s\n", chmod(copy, 0755) == 0 ? "OK" : errname(errno));
    char *args[] = {copy, "--child", "hello", NULL};
    run("exec of the copy", copy, args);
    symlink(copy, at("copylink"));
    char *largs[] = {"via-link", "--child", "link", NULL};
    run("exec through a symlink", at("copylink"), largs);
    chmod(copy, 0100);
    char *oargs[] = {copy, "--child", "mode0100", NULL};
    run("exec of a mode 0100 file as root", copy, oargs);
    chmod(copy, 0755);
}

static void scripts(void) {
    char line[300];
    snprintf(line, sizeof line, "#!%s  one two  \nignored body\n", at("copy"));
    put(at("script"), line, 0755);
    char *args[] = {"argv0-is-dropped", "--show-argv", "last arg", NULL};
    run("script with an interpreter argument", at("script"), args);
    snprintf(line, sizeof line, "#!%s\n", at("copy"));
    put(at("plain"), line, 0755);
    run("script without an interpreter argument", at("plain"), args);
    snprintf(line, sizeof line, "#! %s\n", at("script"));
    put(at("nested"), line, 0755);
    run("script whose interpreter is a script", at("nested"), args);
}

/* execve in this process: each failure must leave it running. */
static void failure(const char *what, const char *path) {
    char *args[] = {(char *)path, NULL};
    char *env[] = {NULL};
    long r = execve(path, args, env);
    printf("execve %s: %s\n", what, r == -1 ? errname(errno) : "returned?");
}

static void failures(void) {
    put(at("noexec"), "#!/bin/sh\n", 0644);
    failure("a 0644 file", at("noexec"));
    mkdir(at("dir"), 0755);
    failure("a directory", at("dir"));
    put(at("garbage"), "this is not a program\n", 0755);
    failure("a file of garbage", at("garbage"));
    put(at("empty"), "", 0755);
    failure("an empty file", at("empty"));
    failure("a missing file", at("missing"));
    failure("through a file", at("garbage/x"));
    char line[300];
    snprintf(line, sizeof line, "#!%s\n", at("no-interpreter"));
    put(at("orphan"), line, 0755);
    failure("a script whose interpreter is missing", at("orphan"));
    snprintf(line, sizeof line, "#!%s\n", at("noexec"));
    put(at("badinterp"), line, 0755);
    failure("a script whose interpreter is mode 0644", at("badinterp"));
    snprintf(line, sizeof line, "#!%s\n", at("dir"));
    put(at("dirinterp"), line, 0755);
    failure("a script whose interpreter is a directory", at("dirinterp"));
    int w = open(at("copy"), O_WRONLY);
    failure("a file open for writing", at("copy"));
    close(w);
    printf("still running after failed execs: yes\n");
}

static void cleanup(void) {
    const char *files[] = {"copy", "copylink", "script", "plain", "nested", "noexec", "garbage", "empty", "orphan",
                           "badinterp", "dirinterp"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (unlink(at(files[i])) != 0)
            printf("cleanup: unlink %s: %s\n", files[i], errname(errno));
    rmdir(at("dir"));
    printf("rmdir scratch directory: %s\n", rmdir(scratch) == 0 ? "OK" : errname(errno));
}

int main(int argc, char **argv, char **envp) {
    unbuffered();
    int r = child_mode(argc, argv, envp);
    if (r >= 0)
        return r;
    if (!mkdtemp(scratch)) {
        printf("mkdtemp: %s\n", errname(errno));
        return 1;
    }
    if (copy_self(argv[0], at("copy")) != 0) {
        printf("cannot copy own binary: %s\n", errname(errno));
        return 1;
    }
    printf("copied own binary: yes\n");
    run_copy();
    scripts();
    failures();
    cleanup();
    printf("fsexec done\n");
    return 0;
}
