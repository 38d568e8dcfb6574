/* fsfiles: regular files on a writable file system (tmpfs under the kernel), with
 * Linux's errnos. open/openat flags (O_CREAT, O_EXCL also on a dangling symlink,
 * O_TRUNC, O_APPEND, O_DIRECTORY, O_CLOEXEC, O_NONBLOCK, access modes, directories
 * opened for writing), read/write/pread64/pwrite64/readv/writev, lseek (SEEK_SET/
 * CUR/END, holes that read as zeros, a sparse file's st_blocks, SEEK_DATA/SEEK_HOLE),
 * ftruncate/truncate growing and shrinking, fsync/fdatasync, dup/dup2/dup3 sharing
 * the offset, fcntl (F_DUPFD_CLOEXEC, F_GETFL/F_SETFL, F_SETLK/F_GETLK with another
 * process), sendfile and copy_file_range. Everything happens in a scratch
 * directory from mkdtemp("/tmp/fsfiles.XXXXXX"), removed at the end; its name is
 * never printed. */
#include "fscommon.h"
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* "what: OK" or "what: ENAME" for a call returning -1 on failure. */

/* Opens (and closes) for the errno only. */
static void chk_open(const char *what, int dfd, const char *path, int flags) {
    int fd = openat(dfd, path, flags, 0644);
    chk(what, fd);
    if (fd >= 0)
        close(fd);
}


/* The whole content of `path` (at most n-1 bytes) as a string. */
static char *content(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY);
    ssize_t len = fd < 0 ? 0 : read(fd, buf, n - 1);
    buf[len < 0 ? 0 : len] = 0;
    if (fd >= 0)
        close(fd);
    return buf;
}

static off_t size_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Whether bytes [from, to) of fd read as zeros. */
static int zeros(int fd, off_t from, off_t to) {
    char buf[4096];
    while (from < to) {
        size_t want = to - from < (off_t)sizeof buf ? (size_t)(to - from) : sizeof buf;
        ssize_t n = pread(fd, buf, want, from);
        if (n <= 0)
            return 0;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i])
                return 0;
        from += n;
    }
    return 1;
}

static void open_flags(void) {
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    chk_open("openat O_CREAT|O_EXCL new file", dfd, "a", O_RDWR | O_CREAT | O_EXCL);
    chk_open("openat O_CREAT|O_EXCL existing file", dfd, "a", O_RDWR | O_CREAT | O_EXCL);
    chk_open("open O_CREAT existing file", AT_FDCWD, "a", O_RDWR | O_CREAT);
    chk_open("open missing file without O_CREAT", AT_FDCWD, "missing", O_RDONLY);
    chk_open("open through a file as a directory", AT_FDCWD, "a/x", O_RDONLY);
    chk_open("open O_CREAT in a missing directory", AT_FDCWD, "nodir/x", O_RDWR | O_CREAT);
    chk("symlink dangle -> target", symlink("target", "dangle"));
    chk_open("open O_CREAT|O_EXCL on a dangling symlink", AT_FDCWD, "dangle", O_RDWR | O_CREAT | O_EXCL);
    printf("dangling symlink's target still missing: %s\n", yes(size_of("target") == -1));
    chk_open("open O_CREAT through a dangling symlink", AT_FDCWD, "dangle", O_WRONLY | O_CREAT);
    printf("it created the target: %s\n", yes(size_of("target") == 0));
    close(dfd);

    put("a", "hello world");
    int fd = open("a", O_RDWR | O_TRUNC);
    struct stat st;
    fstat(fd, &st);
    printf("O_TRUNC: size %lld\n", (long long)st.st_size);
    close(fd);

    put("a", "0123456789");
    fd = open("a", O_WRONLY | O_APPEND);
    lseek(fd, 2, SEEK_SET);
    write(fd, "ab", 2);
    printf("O_APPEND write after lseek(2): offset now %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    pwrite(fd, "cd", 2, 0);
    char buf[64];
    printf("O_APPEND content (pwrite appends too): %s\n", content("a", buf, sizeof buf));
    close(fd);

    chk_open("O_DIRECTORY on a file", AT_FDCWD, "a", O_RDONLY | O_DIRECTORY);
    chk_open("O_DIRECTORY on a directory", AT_FDCWD, ".", O_RDONLY | O_DIRECTORY);
    chk_open("open a directory O_WRONLY", AT_FDCWD, ".", O_WRONLY);
    chk_open("open a directory O_RDWR", AT_FDCWD, ".", O_RDWR);
    chk_open("open a directory O_RDONLY|O_CREAT", AT_FDCWD, ".", O_RDONLY | O_CREAT);
    fd = open(".", O_RDONLY);
    chk("read a directory fd", read(fd, buf, sizeof buf));
    chk("write a directory fd", write(fd, "x", 1));
    close(fd);

    fd = open("a", O_RDONLY | O_CLOEXEC);
    printf("O_CLOEXEC: F_GETFD %d\n", fcntl(fd, F_GETFD));
    close(fd);
    fd = open("a", O_RDONLY);
    printf("without O_CLOEXEC: F_GETFD %d\n", fcntl(fd, F_GETFD));
    close(fd);
    fd = open("a", O_RDWR | O_NONBLOCK);
    int fl = fcntl(fd, F_GETFL);
    printf("F_GETFL: O_RDWR %s, O_NONBLOCK %s, O_APPEND %s\n", yes((fl & O_ACCMODE) == O_RDWR),
           yes(fl & O_NONBLOCK), yes(fl & O_APPEND));
    close(fd);
    fd = open("a", O_WRONLY);
    chk("read an O_WRONLY fd", read(fd, buf, 1));
    close(fd);
    fd = open("a", O_RDONLY);
    chk("write an O_RDONLY fd", write(fd, "x", 1));
    close(fd);
}

static void read_write(void) {
    put("rw", "abcdefghij");
    int fd = open("rw", O_RDWR);
    char buf[64] = {0};
    printf("read 4: %zd %.4s\n", read(fd, buf, 4), buf);
    printf("pwrite64 at 8: %zd\n", pwrite(fd, "XY", 2, 8));
    printf("offset after pwrite: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    printf("pread64 3 at 7: %zd %s\n", pread(fd, buf, 3, 7), buf);
    printf("offset after pread: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    chk("pread64 at a negative offset", pread(fd, buf, 1, -1));
    printf("pread64 at end of file: %zd\n", pread(fd, buf, 5, 10));
    printf("read past end of file: %zd\n", (lseek(fd, 100, SEEK_SET), read(fd, buf, 5)));
    lseek(fd, 0, SEEK_SET);
    struct iovec w[3] = {{"one-", 4}, {"", 0}, {"two-three", 9}};
    printf("writev: %zd\n", writev(fd, w, 3));
    char a[5] = {0}, b[20] = {0};
    struct iovec r[2] = {{a, 4}, {b, sizeof b - 1}};
    lseek(fd, 0, SEEK_SET);
    printf("readv: %zd [%s] [%s]\n", readv(fd, r, 2), a, b);
    close(fd);

    int p[2];
    pipe(p);
    write(p[1], "pipe", 4);
    chk("pread64 on a pipe", pread(p[0], buf, 1, 0));
    chk("pwrite64 on a pipe", pwrite(p[1], "x", 1, 0));
    chk("lseek on a pipe", lseek(p[0], 0, SEEK_CUR));
    chk("fsync on a pipe", fsync(p[1]));
    chk("ftruncate on a pipe", ftruncate(p[1], 0));
    close(p[0]);
    close(p[1]);
}

static void seeks_and_holes(void) {
    put("s", "0123456789");
    int fd = open("s", O_RDWR);
    printf("lseek SEEK_SET 3: %lld\n", (long long)lseek(fd, 3, SEEK_SET));
    printf("lseek SEEK_CUR +4: %lld\n", (long long)lseek(fd, 4, SEEK_CUR));
    printf("lseek SEEK_CUR -2: %lld\n", (long long)lseek(fd, -2, SEEK_CUR));
    printf("lseek SEEK_END -3: %lld\n", (long long)lseek(fd, -3, SEEK_END));
    chk("lseek SEEK_CUR to before 0", lseek(fd, -100, SEEK_CUR));
    chk("lseek whence 99", lseek(fd, 0, 99));
    printf("offset unchanged after failed lseeks: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    const off_t far = 1 << 20;
    printf("lseek beyond end of file: %lld\n", (long long)lseek(fd, far, SEEK_SET));
    printf("size before writing there: %lld\n", (long long)size_of("s"));
    write(fd, "Z", 1);
    struct stat st;
    fstat(fd, &st);
    printf("size after writing 1 byte there: %lld\n", (long long)st.st_size);
    printf("the hole reads as zeros: %s\n", yes(zeros(fd, 10, far)));
    printf("sparse: st_blocks < size/512: %s\n", yes(st.st_blocks < st.st_size / 512));
    printf("SEEK_DATA 0: %lld\n", (long long)lseek(fd, 0, SEEK_DATA));
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    printf("SEEK_HOLE 0 is past the first data and at most the size: %s\n", yes(hole >= 10 && hole <= far + 1));
    chk("SEEK_DATA at end of file", lseek(fd, far + 1, SEEK_DATA));
    chk("SEEK_HOLE beyond end of file", lseek(fd, far + 5, SEEK_HOLE));
    close(fd);
    unlink("s");
}

static void truncation(void) {
    put("t", "0123456789");
    int fd = open("t", O_RDWR);
    chk("ftruncate grow to 100", ftruncate(fd, 100));
    printf("size %lld, bytes 10..100 zero: %s\n", (long long)size_of("t"), yes(zeros(fd, 10, 100)));
    chk("ftruncate shrink to 5", ftruncate(fd, 5));
    chk("truncate (path) grow to 20", truncate("t", 20));
    char buf[32] = {0};
    printf("size %lld, first 5: %.5s, bytes 5..20 zero: %s\n", (long long)size_of("t"),
           (pread(fd, buf, 5, 0), buf), yes(zeros(fd, 5, 20)));
    chk("ftruncate to a negative length", ftruncate(fd, -1));
    chk("fsync", fsync(fd));
    chk("fdatasync", fdatasync(fd));
    close(fd);
    fd = open("t", O_RDONLY);
    chk("ftruncate on an O_RDONLY fd", ftruncate(fd, 0));
    close(fd);
    chk("truncate a directory", truncate(".", 0));
    chk("truncate a missing file", truncate("missing", 0));
    chk("fsync on a closed fd", fsync(fd));
}

static void dups(void) {
    put("d", "0123456789");
    int fd = open("d", O_RDWR);
    int d1 = dup(fd);
    lseek(fd, 3, SEEK_SET);
    printf("dup shares the offset: %lld\n", (long long)lseek(d1, 0, SEEK_CUR));
    int d2 = dup2(fd, 20);
    printf("dup2 to 20: %d\n", d2);
    lseek(d2, 6, SEEK_SET);
    printf("dup2 shares the offset: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    printf("dup2 onto itself: %d\n", dup2(fd, fd));
    int d3 = dup3(fd, 21, O_CLOEXEC);
    printf("dup3 O_CLOEXEC to 21: %d F_GETFD %d\n", d3, fcntl(d3, F_GETFD));
    /* Raw calls: musl's dup3 answers some of these itself. */
    chk("dup3 onto itself", syscall(SYS_dup3, fd, fd, 0));
    chk("dup3 with bad flags", syscall(SYS_dup3, fd, 22, 0x4));
    int d4 = fcntl(fd, F_DUPFD_CLOEXEC, 30);
    printf("F_DUPFD_CLOEXEC from 30: %d F_GETFD %d\n", d4, fcntl(d4, F_GETFD));
    int d5 = fcntl(fd, F_DUPFD, 30);
    printf("F_DUPFD from 30: %d F_GETFD %d\n", d5, fcntl(d5, F_GETFD));
    chk("F_DUPFD from a negative fd number", fcntl(fd, F_DUPFD, -1));
    chk("fcntl on a closed fd", fcntl(99, F_GETFL));
    close(d1), close(d2), close(d3), close(d4), close(d5);

    chk("F_SETFL O_APPEND", fcntl(fd, F_SETFL, O_APPEND));
    printf("F_GETFL has O_APPEND: %s\n", yes(fcntl(fd, F_GETFL) & O_APPEND));
    lseek(fd, 0, SEEK_SET);
    write(fd, "A", 1);
    chk("F_SETFL 0", fcntl(fd, F_SETFL, 0));
    printf("F_GETFL has O_APPEND: %s, still O_RDWR: %s\n", yes(fcntl(fd, F_GETFL) & O_APPEND),
           yes((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR));
    lseek(fd, 0, SEEK_SET);
    write(fd, "B", 1);
    char buf[32];
    printf("content after appending A then writing B at 0: %s\n", content("d", buf, sizeof buf));
    close(fd);
    fd = open("d", O_RDONLY);
    fcntl(fd, F_SETFL, O_RDWR);
    printf("F_SETFL cannot change the access mode: %s\n", yes((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY));
    close(fd);
}

static const char *lock_type(short t) {
    return t == F_UNLCK ? "F_UNLCK" : t == F_RDLCK ? "F_RDLCK" : t == F_WRLCK ? "F_WRLCK" : "?";
}

static struct flock range(short type, off_t start, off_t len) {
    struct flock l = {0};
    l.l_type = type;
    l.l_whence = SEEK_SET;
    l.l_start = start;
    l.l_len = len;
    return l;
}

/* The child's view of the parent's write lock on bytes 0..9 of "lk". */
static void lock_child(void) {
    int fd = open("lk", O_RDWR);
    struct flock l = range(F_WRLCK, 5, 10);
    fcntl(fd, F_GETLK, &l);
    printf("child F_GETLK: %s start %lld len %lld, held by the parent: %s\n", lock_type(l.l_type),
           (long long)l.l_start, (long long)l.l_len, yes(l.l_pid == getppid()));
    l = range(F_RDLCK, 0, 1);
    chk("child F_SETLK F_RDLCK on the locked range", fcntl(fd, F_SETLK, &l));
    l = range(F_WRLCK, 10, 5);
    chk("child F_SETLK F_WRLCK beside it", fcntl(fd, F_SETLK, &l));
    close(fd);
}

static void locks(void) {
    put("lk", "0123456789abcdef");
    int fd = open("lk", O_RDWR);
    struct flock l = range(F_WRLCK, 0, 10);
    chk("F_SETLK F_WRLCK 0..10", fcntl(fd, F_SETLK, &l));
    l = range(F_WRLCK, 0, 10);
    fcntl(fd, F_GETLK, &l);
    printf("F_GETLK of its own lock: %s\n", lock_type(l.l_type));
    in_child("lock child", lock_child);
    l = range(F_UNLCK, 0, 10);
    chk("F_SETLK F_UNLCK", fcntl(fd, F_SETLK, &l));
    in_child("lock child after unlock", lock_child);
    l = range(7, 0, 10);
    chk("F_SETLK with a bad type", fcntl(fd, F_SETLK, &l));
    close(fd);
    fd = open("lk", O_RDONLY);
    l = range(F_WRLCK, 0, 1);
    chk("F_SETLK F_WRLCK on an O_RDONLY fd", fcntl(fd, F_SETLK, &l));
    close(fd);
}

static void copies(void) {
    put("src", "The quick brown fox");
    int in = open("src", O_RDONLY);
    int out = open("dst", O_RDWR | O_CREAT | O_TRUNC, 0644);
    off_t off = 4;
    printf("sendfile 5 from offset 4: %zd\n", sendfile(out, in, &off, 5));
    printf("offset pointer now %lld, in's own offset %lld\n", (long long)off, (long long)lseek(in, 0, SEEK_CUR));
    printf("sendfile without offset: %zd\n", sendfile(out, in, NULL, 3));
    printf("in's own offset now %lld\n", (long long)lseek(in, 0, SEEK_CUR));
    char buf[64];
    printf("dst: %s\n", content("dst", buf, sizeof buf));
    loff_t ioff = 10, ooff = 0;
    printf("copy_file_range 5 from 10 to 0: %zd\n", copy_file_range(in, &ioff, out, &ooff, 5, 0));
    printf("offsets now %lld %lld\n", (long long)ioff, (long long)ooff);
    printf("copy_file_range without offsets: %zd\n", copy_file_range(in, NULL, out, NULL, 4, 0));
    printf("dst: %s\n", content("dst", buf, sizeof buf));
    ioff = 100;
    printf("copy_file_range from beyond end of file: %zd\n", copy_file_range(in, &ioff, out, NULL, 4, 0));
    chk("copy_file_range with flags 1", copy_file_range(in, NULL, out, NULL, 4, 1));
    chk("copy_file_range to an O_RDONLY fd", copy_file_range(out, NULL, in, NULL, 4, 0));
    ioff = 0, ooff = 2;
    chk("copy_file_range overlapping in one file", copy_file_range(out, &ioff, out, &ooff, 4, 0));
    close(in);
    close(out);
}

/* Removes the files the checks made; rmdir of the scratch directory tells whether
 * anything is left. */
static void cleanup(const char *scratch) {
    const char *names[] = {"a", "dangle", "target", "rw", "t", "d", "lk", "src", "dst"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (unlink(names[i]) != 0)
            printf("unlink %s: %s\n", names[i], errname(errno));
    chdir("/");
    chk("rmdir scratch directory", rmdir(scratch));
}

int main(void) {
    unbuffered();
    char scratch[] = "/tmp/fsfiles.XXXXXX";
    if (!mkdtemp(scratch) || chdir(scratch) != 0) {
        printf("mkdtemp: %s\n", errname(errno));
        return 1;
    }
    open_flags();
    read_write();
    seeks_and_holes();
    truncation();
    dups();
    locks();
    copies();
    cleanup(scratch);
    printf("fsfiles done\n");
    return 0;
}
