/* files: reading files by path. This program reads its own binary (argv[0]; under
 * the kernel a read-only file of the initrd): open, read in pieces until end of
 * file, lseek (SEEK_SET/CUR/END), a dup sharing the offset, /dev/null, and the
 * errors of missing files and bad pointers. */
#include "common.h"
#include <fcntl.h>

int main(int argc, char **argv) {
    (void)argc;
    unbuffered();
    int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
    printf("open own binary: %s\n", fd >= 0 ? "OK" : errname(errno));
    char buf[1000];
    long total = 0, n;
    unsigned sum = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (long i = 0; i < n; i++)
            sum = sum * 31 + (unsigned char)buf[i];
        total += n;
    }
    printf("read to end of file: %s\n", n == 0 && total > 0 ? "yes" : "no");
    printf("size from lseek(SEEK_END) equals bytes read: %s\n", lseek(fd, 0, SEEK_END) == total ? "yes" : "no");
    lseek(fd, 1, SEEK_SET);
    char magic[4] = {0};
    read(fd, magic, 3);
    printf("bytes 1..4: %s\n", magic);
    int d = dup(fd);
    lseek(fd, 0, SEEK_SET);
    printf("dup shares the offset: %s\n", lseek(d, 0, SEEK_CUR) == 0 ? "yes" : "no");
    check("lseek to a negative offset", lseek(fd, -5, SEEK_SET));
    check("lseek on a pipe-like stdout", lseek(1, 0, SEEK_SET) == -1 && errno == ESPIPE ? 0 : -1);
    close(d);
    close(fd);
    int null = open("/dev/null", O_RDWR);
    printf("/dev/null: read %zd, write %zd\n", read(null, buf, 10), write(null, "abc", 3));
    close(null);
    errno = 0;
    check("open a missing file", open("/no/such/file", O_RDONLY));
    check("open from a kernel pointer", open((char *)0xffff800000000000UL, O_RDONLY));
    printf("files done\n");
    return 0;
}
