/* fsdirs: the name space of a writable file system (tmpfs under the kernel), with
 * Linux's errnos. mkdir/mkdirat, rmdir (ENOTEMPTY, ENOTDIR, EINVAL for ".", EBUSY
 * for "/"), unlink/unlinkat (EISDIR, AT_REMOVEDIR), rename/renameat/renameat2
 * (replacing files and empty directories, ENOTEMPTY, EINVAL into its own subdir,
 * EISDIR, ENOTDIR, RENAME_NOREPLACE, RENAME_EXCHANGE), link/linkat and st_nlink,
 * symlink/symlinkat/readlink/readlinkat (dangling links, ELOOP, O_NOFOLLOW,
 * truncation to the buffer), getdents64 (sorted names and d_type; entries deleted
 * during a listing), chdir/fchdir/getcwd (after a rename of the cwd, and ENOENT once
 * it is removed), 255/256-byte names and 4096-byte paths, and "/.." being "/".
 * Works in a scratch directory from mkdtemp("/tmp/fsdirs.XXXXXX"), printed as
 * SCRATCH and removed at the end. */
#include "fscommon.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

static char scratch[] = "/tmp/fsdirs.XXXXXX";


/* The content of a small file (or its errno), in one of four rotating buffers so
 * that one printf may show several. */
static char *content(const char *path) {
    static char bufs[4][64];
    static int next;
    char *buf = bufs[next++ % 4];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof bufs[0] - 1);
    if (n < 0)
        snprintf(buf, sizeof bufs[0], "(%s)", errname(errno));
    else
        buf[n] = 0;
    if (fd >= 0)
        close(fd);
    return buf;
}

static const char *kind(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errname(errno);
    return S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : S_ISLNK(st.st_mode) ? "symlink" : "other";
}

static long nlink(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 ? (long)st.st_nlink : -1;
}

static long renameat2_raw(int ofd, const char *o, int nfd, const char *n, unsigned flags) {
    return syscall(SYS_renameat2, ofd, o, nfd, n, flags);
}

static void make_and_remove(void) {
    chk("mkdir d", mkdir("d", 0755));
    chk("mkdir existing d", mkdir("d", 0755));
    chk("mkdir with a missing parent", mkdir("nope/x", 0755));
    put("f", "file f");
    chk("mkdir under a file", mkdir("f/x", 0755));
    chk("mkdir over an existing file", mkdir("f", 0755));
    chk("mkdir empty path", mkdir("", 0755));
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    chk("mkdirat d2", mkdirat(dfd, "d2", 0755));
    chk("mkdir d/sub", mkdir("d/sub", 0755));
    printf("nlink of d with one subdir: %ld\n", nlink("d"));
    chk("rmdir non-empty d", rmdir("d"));
    chk("rmdir a file", rmdir("f"));
    chk("rmdir .", rmdir("."));
    chk("rmdir d/sub/.", rmdir("d/sub/."));
    chk("rmdir ..", rmdir(".."));
    chk("rmdir /", rmdir("/"));
    chk("rmdir missing", rmdir("missing"));
    chk("rmdir d/sub", rmdir("d/sub"));
    printf("nlink of d after: %ld\n", nlink("d"));
    chk("unlink a directory", unlink("d"));
    chk("unlinkat a directory without AT_REMOVEDIR", unlinkat(dfd, "d2", 0));
    chk("unlinkat a file with AT_REMOVEDIR", unlinkat(dfd, "f", AT_REMOVEDIR));
    chk("unlinkat bad flags", unlinkat(dfd, "f", 0x1));
    chk("unlinkat AT_REMOVEDIR d2", unlinkat(dfd, "d2", AT_REMOVEDIR));
    chk("unlink missing", unlink("missing"));
    chk("unlink under a file", unlink("f/x"));
    chk("unlink f/ (trailing slash on a file)", unlink("f/"));
    chk("unlinkat f", unlinkat(dfd, "f", 0));
    printf("f after unlink: %s\n", kind("f"));
    chk("rmdir d", rmdir("d"));
    close(dfd);
}

static void renames(void) {
    put("r1", "one");
    put("r2", "two");
    chk("rename file over file", rename("r1", "r2"));
    printf("r1: %s, r2: %s\n", kind("r1"), content("r2"));
    chk("rename onto itself", rename("r2", "r2"));
    chk("rename missing", rename("r1", "r3"));
    mkdir("a", 0755), mkdir("a/sub", 0755), mkdir("b", 0755), put("b/in", "x"), mkdir("e", 0755);
    chk("rename dir over non-empty dir", rename("a", "b"));
    chk("rename dir into its own subdir", rename("a", "a/sub/new"));
    chk("rename dir onto its own subdir", rename("a", "a/sub"));
    chk("rename file over dir", rename("r2", "e"));
    chk("rename dir over file", rename("e", "r2"));
    chk("rename dir over empty dir", rename("a", "e"));
    printf("a: %s, e/sub: %s\n", kind("a"), kind("e/sub"));
    int dfd = open("b", O_RDONLY | O_DIRECTORY);
    chk("renameat r2 to b/moved", renameat(AT_FDCWD, "r2", dfd, "moved"));
    printf("b/moved: %s\n", content("b/moved"));
    chk("renameat2 RENAME_NOREPLACE onto existing", renameat2_raw(dfd, "moved", dfd, "in", RENAME_NOREPLACE));
    chk("renameat2 RENAME_NOREPLACE to a new name", renameat2_raw(dfd, "moved", AT_FDCWD, "r4", RENAME_NOREPLACE));
    chk("renameat2 RENAME_EXCHANGE files", renameat2_raw(AT_FDCWD, "r4", dfd, "in", RENAME_EXCHANGE));
    printf("after exchange: r4 %s, b/in %s\n", content("r4"), content("b/in"));
    chk("renameat2 RENAME_EXCHANGE file and dir", renameat2_raw(AT_FDCWD, "r4", AT_FDCWD, "e", RENAME_EXCHANGE));
    printf("after exchange: r4 %s, e %s\n", kind("r4"), kind("e"));
    chk("renameat2 RENAME_EXCHANGE with a missing name", renameat2_raw(AT_FDCWD, "r4", AT_FDCWD, "nope", RENAME_EXCHANGE));
    chk("renameat2 NOREPLACE|EXCHANGE", renameat2_raw(AT_FDCWD, "r4", AT_FDCWD, "e", RENAME_NOREPLACE | RENAME_EXCHANGE));
    chk("rename . away", rename(".", "x"));
    close(dfd);
}

static void links(void) {
    put("h", "hard");
    chk("link h h2", link("h", "h2"));
    printf("nlink of h: %ld, h2 reads: %s\n", nlink("h"), content("h2"));
    chk("link onto an existing name", link("h", "h2"));
    chk("link a directory", (mkdir("hd", 0755), link("hd", "hd2")));
    chk("link a missing file", link("missing", "m2"));
    chk("unlink h", unlink("h"));
    printf("nlink of h2: %ld, h2 reads: %s\n", nlink("h2"), content("h2"));
    chk("symlink h2 -> sl", symlink("h2", "sl"));
    chk("linkat of a symlink (no follow)", linkat(AT_FDCWD, "sl", AT_FDCWD, "sl.link", 0));
    printf("sl.link: %s, nlink of h2: %ld\n", kind("sl.link"), nlink("h2"));
    chk("linkat AT_SYMLINK_FOLLOW", linkat(AT_FDCWD, "sl", AT_FDCWD, "h3", AT_SYMLINK_FOLLOW));
    printf("h3: %s, nlink of h2: %ld\n", kind("h3"), nlink("h2"));
    chk("linkat bad flags", linkat(AT_FDCWD, "h2", AT_FDCWD, "h4", 0x1));
}

static void symlinks(void) {
    put("tgt", "target text");
    mkdir("tdir", 0755);
    put("tdir/in", "inside");
    chk("symlink tgt -> l1", symlink("tgt", "l1"));
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    chk("symlinkat tdir -> ldir", symlinkat("tdir", dfd, "ldir"));
    struct stat st, lst;
    stat("l1", &st), lstat("l1", &lst);
    printf("stat l1: regular %s; lstat l1: symlink %s size %lld\n", yes(S_ISREG(st.st_mode)), yes(S_ISLNK(lst.st_mode)),
           (long long)lst.st_size);
    printf("read through l1: %s, through ldir/in: %s\n", content("l1"), content("ldir/in"));
    char buf[64] = {0};
    printf("readlink l1: %zd %s\n", readlink("l1", buf, sizeof buf), buf);
    memset(buf, 0, sizeof buf);
    printf("readlinkat ldir with a 2-byte buffer: %zd %s\n", readlinkat(dfd, "ldir", buf, 2), buf);
    chk("readlink of a regular file", readlink("tgt", buf, sizeof buf));
    chk("readlink missing", readlink("missing", buf, sizeof buf));
    chk("readlinkat with size 0 (raw: musl's readlink hides it)", syscall(SYS_readlinkat, AT_FDCWD, "l1", buf, 0));
    chk("symlink onto an existing name", symlink("x", "l1"));
    chk("symlink with an empty target", symlink("", "lempty"));
    chk("symlink dangling -> nowhere", symlink("nowhere", "dangling"));
    chk("stat dangling", stat("dangling", &st));
    chk("lstat dangling", lstat("dangling", &st));
    chk("open dangling", open("dangling", O_RDONLY));
    symlink("loopb", "loopa"), symlink("loopa", "loopb");
    chk("stat a loop of two links", stat("loopa", &st));
    chk("open a loop of two links", open("loopa", O_RDONLY));
    chk("open a symlink O_NOFOLLOW", open("l1", O_RDONLY | O_NOFOLLOW));
    int fd = open("l1", O_PATH | O_NOFOLLOW);
    chk("open a symlink O_PATH|O_NOFOLLOW", fd);
    close(fd);
    chk("open O_NOFOLLOW with the link in the middle", (fd = open("ldir/in", O_RDONLY | O_NOFOLLOW)));
    close(fd);
    chk("stat a file with a trailing slash", stat("tgt/", &st));
    chk("stat a dir symlink with a trailing slash", stat("ldir/", &st));
    printf("lstat ldir/ follows the link: %s\n", yes(lstat("ldir/", &st) == 0 && S_ISDIR(st.st_mode)));
    close(dfd);
}

struct ent {
    char name[256];
    unsigned char type;
};

static int by_name(const void *a, const void *b) { return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name); }

static const char *dtype(unsigned char t) {
    return t == DT_DIR ? "DT_DIR" : t == DT_REG ? "DT_REG" : t == DT_LNK ? "DT_LNK" : t == DT_FIFO ? "DT_FIFO" : "other";
}

/* Appends the entries of one getdents64 call (buffer of `size` bytes) to e[*n]. */
static long dents(int fd, size_t size, struct ent *e, int *n, int max) {
    char buf[4096] __attribute__((aligned(8)));
    long len = syscall(SYS_getdents64, fd, buf, size);
    for (long off = 0; off < len;) {
        struct dirent *d = (struct dirent *)(buf + off);
        if (*n < max) {
            snprintf(e[*n].name, sizeof e[*n].name, "%s", d->d_name);
            e[*n].type = d->d_type;
            (*n)++;
        }
        off += d->d_reclen;
    }
    return len;
}

static void listing(void) {
    mkdir("ls", 0755), put("ls/b", "b"), put("ls/a", "a"), mkdir("ls/sub", 0755), symlink("a", "ls/lnk"), mkfifo("ls/fifo", 0644);
    int fd = open("ls", O_RDONLY | O_DIRECTORY);
    struct ent e[300];
    int n = 0;
    while (dents(fd, sizeof(struct ent) * 2, e, &n, 300) > 0) {
    }
    qsort(e, n, sizeof *e, by_name);
    for (int i = 0; i < n; i++)
        printf("ls entry %s %s\n", e[i].name, dtype(e[i].type));
    char tiny[8];
    lseek(fd, 0, SEEK_SET);
    chk("getdents64 with an 8-byte buffer", syscall(SYS_getdents64, fd, tiny, sizeof tiny));
    close(fd);
    fd = open("ls/a", O_RDONLY);
    chk("getdents64 on a file", syscall(SYS_getdents64, fd, tiny, sizeof tiny));
    close(fd);

    mkdir("many", 0755);
    char name[64];
    for (int i = 0; i < 100; i++)
        snprintf(name, sizeof name, "many/file%03d", i), put(name, "");
    fd = open("many", O_RDONLY | O_DIRECTORY);
    n = 0;
    dents(fd, 200, e, &n, 300);
    int first = n;
    for (int i = 0; i < 100; i++)
        snprintf(name, sizeof name, "many/file%03d", i), unlink(name);
    while (dents(fd, 200, e, &n, 300) > 0) {
    }
    qsort(e, n, sizeof *e, by_name);
    int dup = 0;
    for (int i = 1; i < n; i++)
        dup |= strcmp(e[i - 1].name, e[i].name) == 0;
    printf("deleting during a listing: first call returned some: %s, none twice: %s, at most all: %s\n", yes(first > 0),
           yes(!dup), yes(n <= 102));
    lseek(fd, 0, SEEK_SET);
    n = 0;
    while (dents(fd, 4096, e, &n, 300) > 0) {
    }
    printf("after rewinding: %d entries\n", n);
    close(fd);
}

/* getcwd as a path relative to the scratch directory ("SCRATCH/..."). */
static void show_cwd(const char *what) {
    char buf[4200];
    if (!getcwd(buf, sizeof buf))
        printf("%s: getcwd %s\n", what, errname(errno));
    else if (strncmp(buf, scratch, strlen(scratch)) == 0)
        printf("%s: getcwd SCRATCH%s\n", what, buf + strlen(scratch));
    else
        printf("%s: getcwd outside the scratch directory\n", what);
}

static void cwd(void) {
    int top = open(".", O_RDONLY | O_DIRECTORY);
    show_cwd("start");
    mkdir("c1", 0755);
    chk("chdir c1", chdir("c1"));
    show_cwd("in c1");
    put("rel", "relative");
    printf("SCRATCH/c1/rel: %s\n", content("../c1/rel"));
    chk("rename the cwd c1 to c2", rename("../c1", "../c2"));
    show_cwd("after the rename");
    chk("fchdir to the scratch directory", fchdir(top));
    show_cwd("after fchdir");
    chk("chdir to a file", chdir("c2/rel"));
    chk("chdir missing", chdir("missing"));
    int fd = open("c2/rel", O_RDONLY);
    chk("fchdir to a file", fchdir(fd));
    close(fd);
    char small[4];
    chk("getcwd with a 4-byte buffer", syscall(SYS_getcwd, small, sizeof small));
    mkdir("gone", 0755);
    chdir("gone");
    chk("rmdir the cwd", rmdir("../gone"));
    show_cwd("in the removed cwd");
    chk("create a file in the removed cwd", open("new", O_WRONLY | O_CREAT, 0644));
    fchdir(top);
    chdir("/");
    chk("chdir .. from /", chdir(".."));
    char buf[16];
    printf("getcwd after chdir(\"/..\"): %s\n", getcwd(buf, sizeof buf));
    struct stat a, b;
    stat("/", &a), stat("/..", &b);
    printf("/.. is /: %s\n", yes(a.st_ino == b.st_ino && a.st_dev == b.st_dev));
    fchdir(top);
    close(top);
}

static void lengths(void) {
    char name[300];
    memset(name, 'n', 255);
    name[255] = 0;
    int fd = open(name, O_WRONLY | O_CREAT, 0644);
    chk("create a 255-byte name", fd);
    close(fd);
    struct stat st;
    chk("stat it", stat(name, &st));
    chk("unlink it", unlink(name));
    chk("mkdir a 255-byte name", mkdir(name, 0755));
    chk("rmdir it", rmdir(name));
    strcat(name, "n");
    chk("create a 256-byte name", open(name, O_WRONLY | O_CREAT, 0644));
    chk("mkdir a 256-byte name", mkdir(name, 0755));
    chk("stat a 256-byte name", stat(name, &st));
    static char path[4200];
    for (int i = 0; i < 4096; i += 2)
        memcpy(path + i, "x/", 2);
    path[4096] = 0;
    chk("stat a 4096-byte path", stat(path, &st));
    path[4095] = 0;
    chk("stat a 4095-byte path (first component missing)", stat(path, &st));
}

/* Removes `path` and everything under it (the checks' leftovers). */
static void remove_tree(int dfd, const char *path) {
    if (unlinkat(dfd, path, 0) == 0 || (errno != EISDIR && errno != EPERM))
        return;
    int fd = openat(dfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            remove_tree(fd, e->d_name);
    if (d)
        closedir(d);
    if (unlinkat(dfd, path, AT_REMOVEDIR) != 0)
        printf("cleanup: rmdir: %s\n", errname(errno));
}

int main(void) {
    unbuffered();
    if (!mkdtemp(scratch) || chdir(scratch) != 0) {
        printf("mkdtemp: %s\n", errname(errno));
        return 1;
    }
    make_and_remove();
    renames();
    links();
    symlinks();
    listing();
    cwd();
    lengths();
    chdir("/");
    remove_tree(AT_FDCWD, scratch);
    printf("scratch directory removed: %s\n", yes(access(scratch, F_OK) != 0 && errno == ENOENT));
    printf("fsdirs done\n");
    return 0;
}
