/* fsmeta: file metadata, special files and file mappings, with Linux's errnos.
 * stat/fstat/lstat, newfstatat (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH) and statx (mask
 * and fields equal to stat's), the umask on create and mkdir, chmod/fchmod/fchmodat,
 * chown/fchown/lchown/fchownat as root (setuid cleared by chown), utimensat/futimens
 * (explicit times, UTIME_NOW, UTIME_OMIT, mtime moved by a write),
 * access/faccessat/faccessat2 as root, mknod/mknodat of a FIFO (used O_RDWR) and of a
 * regular file, statfs/fstatfs, the /dev files (numbers, reads, ENOSPC of
 * /dev/full), and mmap of a file: MAP_PRIVATE copies, MAP_SHARED writes reaching the
 * file, the zeroed tail of the last page, EACCES for mismatched modes. Expects uid 0.
 * Works in a scratch directory from mkdtemp("/tmp/fsmeta.XXXXXX"), removed at the
 * end; prints no inode numbers, devices of files or times, only comparisons. */
#include "fscommon.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

/* struct statx of <linux/stat.h> (not in this musl's headers). */
struct statx_ts {
    int64_t tv_sec;
    uint32_t tv_nsec;
    int32_t pad;
};
struct statx_buf {
    uint32_t mask, blksize;
    uint64_t attributes;
    uint32_t nlink, uid, gid;
    uint16_t mode, pad1;
    uint64_t ino, size, blocks, attributes_mask;
    struct statx_ts atime, btime, ctime, mtime;
    uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
    uint64_t spare[14];
};
#define STATX_BASIC_STATS 0x7ffU


static unsigned perms(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 ? st.st_mode & 07777 : 0xffff;
}

static long newfstatat_raw(int dfd, const char *path, struct stat *st, int flags) {
    return syscall(SYS_newfstatat, dfd, path, st, flags);
}

static int same_file(const struct stat *a, const struct stat *b) { return a->st_ino == b->st_ino && a->st_dev == b->st_dev; }

static void stats(void) {
    put("m", "12345");
    symlink("m", "lnk");
    struct stat st, fst, lst;
    chk("stat m", stat("m", &st));
    printf("stat m: regular %s size %lld nlink %ld\n", yes(S_ISREG(st.st_mode)), (long long)st.st_size, (long)st.st_nlink);
    int fd = open("m", O_RDONLY);
    fstat(fd, &fst);
    printf("fstat is the same file: %s\n", yes(same_file(&st, &fst) && fst.st_size == 5));
    lstat("lnk", &lst);
    printf("lstat lnk: symlink %s size %lld, another file: %s\n", yes(S_ISLNK(lst.st_mode)), (long long)lst.st_size,
           yes(!same_file(&st, &lst)));
    struct stat a;
    newfstatat_raw(AT_FDCWD, "lnk", &a, AT_SYMLINK_NOFOLLOW);
    printf("newfstatat lnk AT_SYMLINK_NOFOLLOW: symlink %s\n", yes(S_ISLNK(a.st_mode)));
    newfstatat_raw(AT_FDCWD, "lnk", &a, 0);
    printf("newfstatat lnk: the target %s\n", yes(same_file(&a, &st)));
    chk("newfstatat fd \"\" AT_EMPTY_PATH", newfstatat_raw(fd, "", &a, AT_EMPTY_PATH));
    printf("  is the fd's file: %s\n", yes(same_file(&a, &st)));
    chk("newfstatat fd \"\" without AT_EMPTY_PATH", newfstatat_raw(fd, "", &a, 0));
    chk("newfstatat relative to a file fd", newfstatat_raw(fd, "x", &a, 0));
    chk("newfstatat bad flags", newfstatat_raw(AT_FDCWD, "m", &a, 0x1));
    chk("stat missing", stat("missing", &a));
    chk("fstat of a closed fd", fstat(99, &a));

    struct statx_buf sx;
    memset(&sx, 0, sizeof sx);
    chk("statx m", syscall(SYS_statx, AT_FDCWD, "m", 0, STATX_BASIC_STATS, &sx));
    printf("statx mask has the basic stats: %s\n", yes((sx.mask & STATX_BASIC_STATS) == STATX_BASIC_STATS));
    const char *bad = sx.mode != st.st_mode ? "mode" : sx.nlink != st.st_nlink ? "nlink" : sx.uid != st.st_uid ? "uid"
                      : sx.gid != st.st_gid ? "gid" : sx.ino != st.st_ino ? "ino" : (off_t)sx.size != st.st_size ? "size"
                      : (blkcnt_t)sx.blocks != st.st_blocks ? "blocks" : sx.mtime.tv_sec != st.st_mtim.tv_sec ? "mtime"
                      : sx.mtime.tv_nsec != st.st_mtim.tv_nsec ? "mtime nsec"
                      : makedev(sx.dev_major, sx.dev_minor) != st.st_dev ? "dev" : "none";
    printf("statx field differing from stat: %s\n", bad);
    syscall(SYS_statx, AT_FDCWD, "lnk", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx);
    printf("statx lnk AT_SYMLINK_NOFOLLOW: symlink %s\n", yes(S_ISLNK(sx.mode)));
    syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx);
    printf("statx fd AT_EMPTY_PATH: size %llu\n", (unsigned long long)sx.size);
    chk("statx bad flags", syscall(SYS_statx, AT_FDCWD, "m", 0x1, STATX_BASIC_STATS, &sx));
    chk("statx missing", syscall(SYS_statx, AT_FDCWD, "missing", 0, STATX_BASIC_STATS, &sx));
    close(fd);
}

static void modes(void) {
    printf("umask(022) returned the old %03o\n", umask(022));
    close(open("u1", O_WRONLY | O_CREAT, 0666));
    mkdir("ud1", 0777);
    printf("umask 022: file 0666 -> %04o, dir 0777 -> %04o\n", perms("u1"), perms("ud1"));
    printf("umask(0) returned %03o\n", umask(0));
    close(open("u2", O_WRONLY | O_CREAT, 0666));
    mkdir("ud2", 0777);
    printf("umask 0: file 0666 -> %04o, dir 0777 -> %04o\n", perms("u2"), perms("ud2"));
    umask(077);
    close(open("u3", O_WRONLY | O_CREAT, 0777));
    mkdir("ud3", 01777);
    printf("umask 077: file 0777 -> %04o, dir 01777 -> %04o\n", perms("u3"), perms("ud3"));
    umask(022);
    close(open("u1", O_WRONLY | O_CREAT, 0600));
    printf("O_CREAT of an existing file keeps its mode: %04o\n", perms("u1"));

    chk("chmod 0600", chmod("u1", 0600));
    printf("mode %04o\n", perms("u1"));
    int fd = open("u1", O_RDONLY);
    chk("fchmod 0640", fchmod(fd, 0640));
    printf("mode %04o\n", perms("u1"));
    chk("fchmodat 0604", fchmodat(AT_FDCWD, "u1", 0604, 0));
    printf("mode %04o\n", perms("u1"));
    chk("chmod 07755 (setuid, setgid, sticky)", chmod("u1", 07755));
    printf("mode %04o\n", perms("u1"));
    symlink("u2", "ulnk");
    chk("chmod through a symlink 0611", chmod("ulnk", 0611));
    printf("target mode %04o\n", perms("u2"));
    chk("chmod missing", chmod("missing", 0644));

    struct stat st;
    chk("chown to 1000:1000", chown("u1", 1000, 1000));
    stat("u1", &st);
    printf("st_uid %u st_gid %u mode %04o (chown clears setuid and setgid)\n", st.st_uid, st.st_gid, st.st_mode & 07777);
    chk("fchown gid only to 2000", fchown(fd, -1, 2000));
    stat("u1", &st);
    printf("st_uid %u st_gid %u\n", st.st_uid, st.st_gid);
    chk("lchown the symlink to 1000", lchown("ulnk", 1000, -1));
    lstat("ulnk", &st);
    printf("link st_uid %u, ", st.st_uid);
    stat("ulnk", &st);
    printf("target st_uid %u\n", st.st_uid);
    chk("fchownat AT_SYMLINK_NOFOLLOW back to 0", fchownat(AT_FDCWD, "ulnk", 0, 0, AT_SYMLINK_NOFOLLOW));
    chk("chown back to 0:0", chown("u1", 0, 0));
    stat("u1", &st);
    printf("st_uid %u st_gid %u\n", st.st_uid, st.st_gid);
    chk("chown missing", chown("missing", 0, 0));
    close(fd);
}

static int ts_eq(struct timespec a, long sec, long nsec) { return a.tv_sec == sec && a.tv_nsec == nsec; }

/* Whether t is within two seconds of now (file times use a coarse clock). */
static int recent(struct timespec t) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return t.tv_sec >= now.tv_sec - 2 && t.tv_sec <= now.tv_sec + 2;
}

static void times(void) {
    put("tm", "x");
    struct timespec ts[2] = {{1000000000, 123456789}, {1100000000, 987654321}};
    struct stat st;
    chk("utimensat explicit times", utimensat(AT_FDCWD, "tm", ts, 0));
    stat("tm", &st);
    printf("atime as set: %s, mtime as set: %s\n", yes(ts_eq(st.st_atim, 1000000000, 123456789)),
           yes(ts_eq(st.st_mtim, 1100000000, 987654321)));
    struct timespec omit[2] = {{0, UTIME_OMIT}, {1200000000, 5}};
    chk("utimensat UTIME_OMIT atime", utimensat(AT_FDCWD, "tm", omit, 0));
    stat("tm", &st);
    printf("atime kept: %s, mtime as set: %s\n", yes(ts_eq(st.st_atim, 1000000000, 123456789)),
           yes(ts_eq(st.st_mtim, 1200000000, 5)));
    struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
    chk("utimensat UTIME_NOW atime", utimensat(AT_FDCWD, "tm", now, 0));
    stat("tm", &st);
    printf("atime now: %s, mtime kept: %s\n", yes(recent(st.st_atim)), yes(ts_eq(st.st_mtim, 1200000000, 5)));
    int fd = open("tm", O_WRONLY);
    chk("futimens NULL (both now)", futimens(fd, NULL));
    stat("tm", &st);
    printf("both now: %s\n", yes(recent(st.st_atim) && recent(st.st_mtim)));
    utimensat(AT_FDCWD, "tm", ts, 0);
    write(fd, "y", 1);
    fstat(fd, &st);
    printf("a write moves mtime to now: %s\n", yes(recent(st.st_mtim)));
    close(fd);
    symlink("tm", "tlnk");
    utimensat(AT_FDCWD, "tm", ts, 0);
    struct timespec lt[2] = {ts[1], ts[1]};
    chk("utimensat AT_SYMLINK_NOFOLLOW on a symlink", utimensat(AT_FDCWD, "tlnk", lt, AT_SYMLINK_NOFOLLOW));
    stat("tm", &st);
    printf("target mtime untouched: %s, ", yes(ts_eq(st.st_mtim, 1100000000, 987654321)));
    lstat("tlnk", &st);
    printf("link mtime set: %s\n", yes(ts_eq(st.st_mtim, 1100000000, 987654321)));
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    chk("utimensat tv_nsec 1e9", utimensat(AT_FDCWD, "tm", bad, 0));
    chk("utimensat missing", utimensat(AT_FDCWD, "missing", ts, 0));
}

static void accesses(void) {
    put("ac", "x");
    chmod("ac", 0000);
    chk("access missing F_OK", access("missing", F_OK));
    chk("access F_OK", access("ac", F_OK));
    chk("access R_OK|W_OK on a 0000 file as root", access("ac", R_OK | W_OK));
    chmod("ac", 0644);
    chk("access X_OK on a 0644 file as root", access("ac", X_OK));
    chmod("ac", 0744);
    chk("access X_OK on a 0744 file as root", access("ac", X_OK));
    mkdir("adir", 0);
    chk("access X_OK on a 0000 directory as root", access("adir", X_OK));
    chk("access bad mode", access("ac", 8));
    chk("faccessat AT_EACCESS", faccessat(AT_FDCWD, "ac", R_OK, AT_EACCESS));
    symlink("missing", "adangle");
    chk("faccessat2 F_OK on a dangling link", syscall(SYS_faccessat2, AT_FDCWD, "adangle", F_OK, 0));
    chk("faccessat2 AT_SYMLINK_NOFOLLOW on it", syscall(SYS_faccessat2, AT_FDCWD, "adangle", F_OK, AT_SYMLINK_NOFOLLOW));
    chk("faccessat2 bad flags", syscall(SYS_faccessat2, AT_FDCWD, "ac", F_OK, 0x1));
    chk("access under a file", access("ac/x", F_OK));
}

static void nodes(void) {
    chk("mknod S_IFIFO", mknod("fifo", S_IFIFO | 0644, 0));
    struct stat st;
    stat("fifo", &st);
    printf("S_ISFIFO: %s mode %04o\n", yes(S_ISFIFO(st.st_mode)), st.st_mode & 07777);
    int fd = open("fifo", O_RDWR);
    chk("open the FIFO O_RDWR", fd);
    char buf[32] = {0};
    ssize_t w = write(fd, "through", 7);
    printf("write %zd, read back %zd: %s\n", w, read(fd, buf, sizeof buf), buf);
    chk("lseek on the FIFO", lseek(fd, 0, SEEK_SET));
    close(fd);
    chk("mkfifo existing", mkfifo("fifo", 0644));
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    chk("mknodat S_IFREG", mknodat(dfd, "reg", S_IFREG | 0600, 0));
    stat("reg", &st);
    printf("S_ISREG: %s size %lld mode %04o\n", yes(S_ISREG(st.st_mode)), (long long)st.st_size, st.st_mode & 07777);
    chk("mknod with no type", mknod("notype", 0600, 0));
    printf("no type is a regular file: %s\n", yes(stat("notype", &st) == 0 && S_ISREG(st.st_mode)));
    chk("mknod S_IFDIR", mknod("dir", S_IFDIR | 0755, 0));
    chk("mknod a bad type", mknod("bad", 0170000 | 0600, 0));
    close(dfd);

    struct statfs sf;
    chk("statfs /tmp", statfs("/tmp", &sf));
    printf("f_namelen %ld, f_bsize > 0: %s\n", (long)sf.f_namelen, yes(sf.f_bsize > 0));
    fd = open(".", O_RDONLY);
    chk("fstatfs of the scratch dir", fstatfs(fd, &sf));
    printf("f_namelen %ld\n", (long)sf.f_namelen);
    chk("write to a directory fd", write(fd, "x", 1));
    close(fd);
    chk("statfs missing", statfs("/tmp/missing/x", &sf));
}

static void devices(void) {
    const char *names[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        struct stat st;
        if (stat(names[i], &st) != 0)
            printf("stat %s: %s\n", names[i], errname(errno));
        else
            printf("stat %s: char device %s %u:%u mode %04o\n", names[i], yes(S_ISCHR(st.st_mode)), major(st.st_rdev),
                   minor(st.st_rdev), st.st_mode & 07777);
    }
    char buf[64];
    int fd = open("/dev/null", O_RDWR);
    printf("/dev/null: read %zd, write %zd\n", read(fd, buf, sizeof buf), write(fd, "abc", 3));
    close(fd);
    fd = open("/dev/zero", O_RDWR);
    memset(buf, 'x', sizeof buf);
    ssize_t n = read(fd, buf, sizeof buf);
    int z = 1;
    for (int i = 0; i < 64; i++)
        z &= buf[i] == 0;
    printf("/dev/zero: read %zd all zero %s, write %zd\n", n, yes(z), write(fd, "abc", 3));
    close(fd);
    fd = open("/dev/full", O_RDWR);
    chk("/dev/full write", write(fd, "abc", 3));
    printf("/dev/full: read %zd\n", read(fd, buf, sizeof buf));
    close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    memset(buf, 0, sizeof buf);
    n = read(fd, buf, 32);
    z = 1;
    for (int i = 0; i < 32; i++)
        z &= buf[i] == 0;
    printf("/dev/urandom: read %zd, not all zero %s\n", n, yes(!z));
    close(fd);
}

static void mappings(void) {
    int fd = open("map", O_RDWR | O_CREAT | O_TRUNC, 0644);
    char page[4096];
    memset(page, 'a', sizeof page);
    write(fd, page, sizeof page);
    write(fd, page, 5000 - 4096); /* 5000 bytes: the second page is partly past the end */
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *s = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("mmap MAP_PRIVATE and MAP_SHARED: %s\n", yes(p != MAP_FAILED && s != MAP_FAILED));
    if (p == MAP_FAILED || s == MAP_FAILED)
        return;
    int z = 1;
    for (int i = 5000; i < 8192; i++)
        z &= p[i] == 0;
    printf("first byte %c, bytes 5000..8192 past the end are zero: %s\n", p[0], yes(z));
    p[0] = 'P';
    char c = 0;
    pread(fd, &c, 1, 0);
    printf("MAP_PRIVATE write: file reads %c, shared map sees %c\n", c, s[0]);
    s[100] = 'S';
    pread(fd, &c, 1, 100);
    printf("MAP_SHARED write: file reads %c before msync, private map's copied page sees %c\n", c, p[100]);
    chk("msync MS_SYNC", msync(s, 8192, MS_SYNC));
    pwrite(fd, "W", 1, 4200);
    printf("file write: shared map sees %c, private map's untouched page sees %c, its copied page keeps %c\n", s[4200],
           p[4200], p[0]);
    munmap(s, 8192);
    close(fd);
    printf("after munmap and close: private map still reads %c\n", p[1]);
    munmap(p, 8192);
    fd = open("map", O_RDONLY);
    pread(fd, &c, 1, 100);
    printf("the shared write stayed in the file: %c\n", c);
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    chk("mmap MAP_SHARED PROT_WRITE of an O_RDONLY fd", m == MAP_FAILED ? -1 : 0);
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    chk("mmap MAP_PRIVATE PROT_WRITE of an O_RDONLY fd", m == MAP_FAILED ? -1 : 0);
    m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100);
    chk("mmap at an unaligned offset", m == MAP_FAILED ? -1 : 0);
    close(fd);
    fd = open("map", O_WRONLY);
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    chk("mmap of an O_WRONLY fd", m == MAP_FAILED ? -1 : 0);
    close(fd);
    fd = open(".", O_RDONLY);
    m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    chk("mmap of a directory", m == MAP_FAILED ? -1 : 0);
    close(fd);
}

static void cleanup(const char *scratch) {
    const char *files[] = {"m", "lnk", "u1", "u2", "u3", "ulnk", "tm", "tlnk", "ac", "adangle", "fifo", "reg", "notype", "map"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (unlink(files[i]) != 0)
            printf("cleanup: unlink %s: %s\n", files[i], errname(errno));
    const char *dirs[] = {"ud1", "ud2", "ud3", "adir"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if (rmdir(dirs[i]) != 0)
            printf("cleanup: rmdir %s: %s\n", dirs[i], errname(errno));
    chdir("/");
    chk("rmdir scratch directory", rmdir(scratch));
}

int main(void) {
    unbuffered();
    char scratch[] = "/tmp/fsmeta.XXXXXX";
    if (!mkdtemp(scratch) || chdir(scratch) != 0) {
        printf("mkdtemp: %s\n", errname(errno));
        return 1;
    }
    printf("running as root: %s\n", yes(getuid() == 0));
    stats();
    modes();
    times();
    accesses();
    nodes();
    devices();
    mappings();
    cleanup(scratch);
    printf("fsmeta done\n");
    return 0;
}
