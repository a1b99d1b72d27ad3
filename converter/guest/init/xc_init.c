/*
 * xc_init: PID 1 of a container VM made by `xc-convert wrap`.
 *
 * It is not a guest test program (it lives in guest/init/, outside the
 * behaviour suite): build.rs embeds it on its own and `wrap` installs it as
 * /.xc/init in the rootfs, next to the spec it reads (/.xc/spec, written by
 * converter/src/container/spec.rs: `KEY VALUE` lines, values escaped).
 *
 * Channels (four legacy serial ports, see docs/containers.md "The VM"):
 *   ttyS0  kernel console; our own diagnostics are copied there too
 *   ttyS1  the entrypoint's stdout (raw: no \n -> \r\n)
 *   ttyS2  the entrypoint's stderr, and init's error messages
 *   ttyS3  control: the host sends overrides (`arg`/`env` lines, then
 *          `start`) and later `signal N`; init answers `XC-EXIT <status>`
 *          once the entrypoint is gone, then reboots, which with QEMU's
 *          -no-reboot ends the VM.
 *
 * Exit statuses are the shell's: the entrypoint's own, 128+N when a signal
 * killed it, 127 when it does not exist, 126 when it cannot be executed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SPEC_PATH "/.xc/spec"
#define MAX_ARGS 1024
#define MAX_ENV 1024
#define MAX_GROUPS 64
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* How long to wait for the host's overrides before using the spec as is. */
#define OVERRIDE_WAIT_MS 60000

struct spec {
    char *args[MAX_ARGS + 1];
    int nargs;
    char *env[MAX_ENV + 1];
    int nenv;
    const char *cwd;
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
    int ngroups;
    const char *hostname;
    const char *address, *gateway, *dns;
};

static int console_fd = -1, out_fd = -1, err_fd = -1, ctl_fd = -1;

/* The host's secret for this run (`token HEX` before `start`): our exit
 * report carries it, so a container process that writes `XC-EXIT 0` to
 * ttyS3 is not taken for us. It lives only in PID 1's memory; the
 * entrypoint's copy from fork is wiped before exec. */
static char run_token[65];

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Diagnostics go to the entrypoint's stderr channel and to the console log. */
static void say(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    int fds[2] = {err_fd, console_fd};
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0 && write(fds[i], "xc-init: ", 9) > 0)
            (void)!write(fds[i], buf, n);
}

static void power_off(int status)
{
    char line[128];
    int n = snprintf(line, sizeof line, "XC-EXIT %s %d\n", run_token[0] ? run_token : "-", status);
    if (out_fd >= 0)
        tcdrain(out_fd);
    if (err_fd >= 0)
        tcdrain(err_fd);
    if (ctl_fd >= 0) {
        (void)!write(ctl_fd, line, n);
        tcdrain(ctl_fd);
    }
    /* The console log gets the status without the token. */
    n = snprintf(line, sizeof line, "XC-EXIT %d\n", status);
    if (console_fd >= 0) {
        (void)!write(console_fd, line, n);
        tcdrain(console_fd);
    }
    sync();
    /* QEMU runs with -no-reboot: a reset ends the VM. */
    reboot(RB_AUTOBOOT);
    for (;;)
        pause();
}

/* Undo spec.rs's escape() in place; 0 on a bad escape. */
static int unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        r++;
        if (*r == '\\')
            *w++ = '\\';
        else if (*r == 'n')
            *w++ = '\n';
        else if (*r == 't')
            *w++ = '\t';
        else
            return 0;
    }
    *w = 0;
    return 1;
}

static void set_env(struct spec *s, char *kv)
{
    size_t klen = strcspn(kv, "=");
    for (int i = 0; i < s->nenv; i++)
        if (strncmp(s->env[i], kv, klen) == 0 && s->env[i][klen] == '=') {
            s->env[i] = kv;
            return;
        }
    if (s->nenv < MAX_ENV)
        s->env[s->nenv++] = kv;
}

/*
 * Apply one `KEY VALUE` line (modified in place and kept: the spec points
 * into it). `overriding` is set for the host's lines: their first `arg`
 * replaces the spec's argv instead of extending it.
 */
static int apply_line(struct spec *s, char *line, int *args_replaced)
{
    char *value = strchr(line, ' ');
    if (!value)
        return line[0] == 0;
    *value++ = 0;
    if (!unescape(value))
        return 0;
    if (!strcmp(line, "arg")) {
        if (args_replaced && !*args_replaced) {
            s->nargs = 0;
            *args_replaced = 1;
        }
        if (s->nargs < MAX_ARGS)
            s->args[s->nargs++] = value;
    } else if (!strcmp(line, "env")) {
        set_env(s, value);
    } else if (!strcmp(line, "cwd")) {
        s->cwd = value;
    } else if (!strcmp(line, "uid")) {
        s->uid = strtoul(value, NULL, 10);
    } else if (!strcmp(line, "gid")) {
        s->gid = strtoul(value, NULL, 10);
    } else if (!strcmp(line, "group")) {
        if (s->ngroups < MAX_GROUPS)
            s->groups[s->ngroups++] = strtoul(value, NULL, 10);
    } else if (!strcmp(line, "hostname")) {
        s->hostname = value;
    } else if (!strcmp(line, "address")) {
        s->address = value;
    } else if (!strcmp(line, "gateway")) {
        s->gateway = value;
    } else if (!strcmp(line, "dns")) {
        s->dns = value;
    }
    /* version, port and unknown keys: nothing to do. */
    return 1;
}

static char *read_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += n;
    }
    close(fd);
    buf[len] = 0;
    return buf;
}

static int load_spec(struct spec *s)
{
    char *text = read_file(SPEC_PATH);
    if (!text) {
        say("cannot read %s: %s", SPEC_PATH, strerror(errno));
        return 0;
    }
    int lineno = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (!apply_line(s, line, NULL)) {
            say("%s line %d: bad escape or line", SPEC_PATH, lineno);
            return 0;
        }
    }
    return 1;
}

/* Read one line from the control port (raw tty); NULL when none arrives
 * within timeout_ms (0: only what is already there). */
static char *ctl_line(int timeout_ms)
{
    static char buf[65536];
    static size_t len;
    char *nl;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!(nl = memchr(buf, '\n', len))) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        long left = timeout_ms - spent;
        struct pollfd p = {ctl_fd, POLLIN, 0};
        if (len == sizeof buf - 1 || poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
            return NULL;
        ssize_t n = read(ctl_fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return NULL;
        len += n;
    }
    size_t linelen = nl - buf;
    char *line = malloc(linelen + 1);
    memcpy(line, buf, linelen);
    line[linelen] = 0;
    if (linelen && line[linelen - 1] == '\r')
        line[linelen - 1] = 0;
    memmove(buf, nl + 1, len - linelen - 1);
    len -= linelen + 1;
    return line;
}

/* The host's `run -e`/`-- ARGS`, sent on the control port before `start`. */
static void read_overrides(struct spec *s)
{
    if (ctl_fd < 0)
        return;
    /* Only now, with the port raw: bytes the host sent while the driver was
     * still setting the UART up could be lost or echoed. */
    (void)!write(ctl_fd, "XC-READY\n", 9);
    int replaced = 0;
    for (;;) {
        char *line = ctl_line(OVERRIDE_WAIT_MS);
        if (!line) {
            say("no `start` from the host on ttyS3 within %d s: running the spec as wrapped", OVERRIDE_WAIT_MS / 1000);
            return;
        }
        if (!strcmp(line, "start"))
            return;
        if (!strncmp(line, "token ", 6)) {
            size_t n = strlen(line + 6);
            if (n == 0 || n >= sizeof run_token || strspn(line + 6, "0123456789abcdef") != n) {
                say("ignoring a malformed token line from the host");
            } else {
                memcpy(run_token, line + 6, n + 1);
                /* Not readable through /proc/1/mem or ptrace by a process
                 * without CAP_SYS_PTRACE. */
                prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
            }
            memset(line, 0, n + 6);
            free(line);
            continue;
        }
        if (!apply_line(s, line, &replaced))
            say("ignoring a bad override line from the host");
    }
}

static int open_tty(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        /* Bytes as the program wrote them: no \n -> \r\n, no echo, no line editing. */
        cfmakeraw(&t);
        t.c_cflag |= CLOCAL;
        cfsetspeed(&t, B115200);
        tcsetattr(fd, TCSANOW, &t);
    }
    return fd;
}

static void mount_one(const char *src, const char *target, const char *type, unsigned long flags, const char *data)
{
    mkdir(target, 0755);
    if (mount(src, target, type, flags, data) != 0 && errno != EBUSY)
        say("mount %s on %s: %s", type, target, strerror(errno));
}

static void mount_filesystems(void)
{
    /* devtmpfs first: the ttys are in it. The kernel may have mounted it
     * already (DEVTMPFS_MOUNT, for a root on a disk): EBUSY then. */
    mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
    mount_one("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    /* No tmpfs over /tmp and /run: the image's files there stay, as in
     * docker. An image without them gets them, /tmp world-writable. */
    if (mkdir("/tmp", 01777) == 0)
        chmod("/tmp", 01777);
    mkdir("/run", 0755);
}

static int if_up(int sock, const char *name)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(sock, SIOCSIFFLAGS, &ifr);
}

static void set_sockaddr(struct sockaddr *sa, struct in_addr a)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)sa;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr = a;
}

static void network_up(const struct spec *s)
{
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        say("no IPv4 socket (%s): no network", strerror(errno));
        return;
    }
    if (if_up(sock, "lo") < 0)
        say("bringing up lo: %s", strerror(errno));
    if (!s->address)
        goto out;
    char addr[64];
    snprintf(addr, sizeof addr, "%s", s->address);
    int prefix = 24;
    char *slash = strchr(addr, '/');
    if (slash) {
        *slash = 0;
        prefix = atoi(slash + 1);
    }
    struct in_addr ip, mask, gw;
    if (inet_pton(AF_INET, addr, &ip) != 1 || prefix < 0 || prefix > 32) {
        say("bad address %s in the spec", s->address);
        goto out;
    }
    mask.s_addr = htonl(prefix ? ~0u << (32 - prefix) : 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "eth0", IFNAMSIZ - 1);
    set_sockaddr(&ifr.ifr_addr, ip);
    if (ioctl(sock, SIOCSIFADDR, &ifr) < 0) {
        say("eth0: cannot set address %s: %s (is there a NIC?)", s->address, strerror(errno));
        goto out;
    }
    set_sockaddr(&ifr.ifr_netmask, mask);
    if (ioctl(sock, SIOCSIFNETMASK, &ifr) < 0)
        say("eth0: netmask: %s", strerror(errno));
    if (if_up(sock, "eth0") < 0)
        say("eth0: up: %s", strerror(errno));
    if (s->gateway && inet_pton(AF_INET, s->gateway, &gw) == 1) {
        struct rtentry rt;
        memset(&rt, 0, sizeof rt);
        struct in_addr any = {0};
        set_sockaddr(&rt.rt_dst, any);
        set_sockaddr(&rt.rt_genmask, any);
        set_sockaddr(&rt.rt_gateway, gw);
        rt.rt_flags = RTF_UP | RTF_GATEWAY;
        rt.rt_dev = "eth0";
        if (ioctl(sock, SIOCADDRT, &rt) < 0)
            say("default route via %s: %s", s->gateway, strerror(errno));
    }
out:
    close(sock);
}

static void write_small_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return; /* a read-only /etc is the image's choice */
    (void)!write(fd, text, strlen(text));
    close(fd);
}

static void name_and_resolver(const struct spec *s)
{
    if (s->hostname && *s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
        say("sethostname %s: %s", s->hostname, strerror(errno));
    mkdir("/etc", 0755);
    char text[512];
    char ip[64] = "127.0.1.1";
    if (s->address) {
        snprintf(ip, sizeof ip, "%s", s->address);
        ip[strcspn(ip, "/")] = 0;
    }
    snprintf(text, sizeof text, "127.0.0.1\tlocalhost\n%s\t%s\n", ip, s->hostname ? s->hostname : "localhost");
    write_small_file("/etc/hosts", text);
    /* An empty value is the host's override clearing the spec's resolver
     * (a tap network without one). */
    if (s->dns && *s->dns) {
        snprintf(text, sizeof text, "nameserver %s\n", s->dns);
        write_small_file("/etc/resolv.conf", text);
    }
}

static const char *env_value(const struct spec *s, const char *key)
{
    size_t klen = strlen(key);
    for (int i = 0; i < s->nenv; i++)
        if (!strncmp(s->env[i], key, klen) && s->env[i][klen] == '=')
            return s->env[i] + klen + 1;
    return NULL;
}

/* argv[0] through PATH as execvp would, but with the *container's* PATH. */
static const char *resolve(const struct spec *s, const char *name, char *buf, size_t cap)
{
    if (strchr(name, '/'))
        return name;
    const char *path = env_value(s, "PATH");
    if (!path)
        path = DEFAULT_PATH;
    const char *p = path;
    while (*p) {
        size_t len = strcspn(p, ":");
        snprintf(buf, cap, "%.*s/%s", (int)len, len ? p : ".", name);
        if (access(buf, X_OK) == 0)
            return buf;
        p += len;
        if (*p == ':')
            p++;
    }
    return NULL;
}

/* In the forked child: become the entrypoint. Never returns. */
/* The program that runs `file`: a script's #! line, or an ELF file's
 * PT_INTERP (the dynamic loader). 0 when it has none or is unreadable. */
static int interpreter_of(const char *file, char *out, size_t size)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    unsigned char head[4096];
    ssize_t n = pread(fd, head, sizeof head, 0);
    int found = 0;
    if (n > 2 && head[0] == '#' && head[1] == '!') {
        size_t i = 2, j = 0;
        while (i < (size_t)n && (head[i] == ' ' || head[i] == '\t'))
            i++;
        while (i < (size_t)n && head[i] != ' ' && head[i] != '\t' && head[i] != '\n' && j + 1 < size)
            out[j++] = head[i++];
        out[j] = 0;
        found = j > 0;
    } else if (n >= 64 && !memcmp(head, "\177ELF", 4) && head[4] == 2) {
        /* ELF64, little endian (x86-64): e_phoff at 32, e_phentsize at 54, e_phnum at 56. */
        uint64_t phoff;
        uint16_t phentsize, phnum;
        memcpy(&phoff, head + 32, 8);
        memcpy(&phentsize, head + 54, 2);
        memcpy(&phnum, head + 56, 2);
        for (unsigned i = 0; i < phnum && i < 64 && phentsize >= 56; i++) {
            unsigned char ph[56];
            if (pread(fd, ph, sizeof ph, (off_t)(phoff + (uint64_t)i * phentsize)) != (ssize_t)sizeof ph)
                break;
            uint32_t type;
            uint64_t off, filesz;
            memcpy(&type, ph, 4);
            memcpy(&off, ph + 8, 8);
            memcpy(&filesz, ph + 32, 8);
            if (type != 3 /* PT_INTERP */)
                continue;
            if (filesz == 0 || filesz >= size)
                break;
            if (pread(fd, out, filesz, (off_t)off) == (ssize_t)filesz) {
                out[filesz] = 0;
                found = out[0] != 0;
            }
            break;
        }
    }
    close(fd);
    return found;
}

static void exec_entrypoint(const struct spec *s)
{
    memset(run_token, 0, sizeof run_token);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    setsid();
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd >= 0 ? null_fd : out_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    if (s->nargs == 0) {
        say("the spec has no arguments: nothing to run");
        _exit(127);
    }
    if (setgroups(s->ngroups, s->groups) < 0 || setgid(s->gid) < 0 || setuid(s->uid) < 0) {
        say("cannot become uid %u gid %u: %s", (unsigned)s->uid, (unsigned)s->gid, strerror(errno));
        _exit(126);
    }
    const char *cwd = s->cwd && *s->cwd ? s->cwd : "/";
    if (chdir(cwd) < 0) {
        say("cannot change to the working directory %s: %s", cwd, strerror(errno));
        _exit(126);
    }
    char buf[4096];
    const char *file = resolve(s, s->args[0], buf, sizeof buf);
    if (!file) {
        const char *path = env_value(s, "PATH");
        say("%s: not found in PATH=%s", s->args[0], path ? path : DEFAULT_PATH);
        _exit(127);
    }
    execve(file, s->args, s->env);
    int e = errno;
    char interp[256];
    if (e == ENOENT && access(file, F_OK) == 0 && interpreter_of(file, interp, sizeof interp))
        say("cannot execute %s: its interpreter %s is missing from the image", file, interp);
    else
        say("cannot execute %s: %s", file, strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/* The host's `signal N` lines (run's Ctrl-C) go to the entrypoint. */
static void handle_ctl(pid_t child)
{
    char *line;
    while ((line = ctl_line(0))) {
        int sig;
        if (sscanf(line, "signal %d", &sig) == 1 && sig > 0 && sig < NSIG)
            kill(child, sig);
        free(line);
    }
}

int main(void)
{
    mount_filesystems();
    /* Without a /dev/console in an initramfs the kernel starts us with no
     * fds 0-2; fill them so the ports below never land there (dup2 onto the
     * same number would keep their close-on-exec flag). */
    int fd;
    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd < 3)
        ;
    if (fd > 2)
        close(fd);
    console_fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    out_fd = open_tty("/dev/ttyS1");
    err_fd = open_tty("/dev/ttyS2");
    ctl_fd = open_tty("/dev/ttyS3");
    if (out_fd < 0 || err_fd < 0)
        say("cannot open the stdout/stderr ports ttyS1/ttyS2 (%s): output goes to the console",
            strerror(errno));
    if (out_fd < 0)
        out_fd = console_fd;
    if (err_fd < 0)
        err_fd = console_fd;
    if (getpid() != 1)
        say("not PID 1 (pid %d): orphans will not be reaped here", (int)getpid());

    static struct spec s;
    s.cwd = "/";
    if (!load_spec(&s))
        power_off(127);
    read_overrides(&s);
    s.args[s.nargs] = NULL;
    s.env[s.nenv] = NULL;
    network_up(&s);
    name_and_resolver(&s);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    pid_t child = fork();
    if (child < 0) {
        say("fork: %s", strerror(errno));
        power_off(126);
    }
    if (child == 0)
        exec_entrypoint(&s);
    if (console_fd >= 0) {
        char line[64];
        int n = snprintf(line, sizeof line, "XC-STARTED pid=%d\n", (int)child);
        (void)!write(console_fd, line, n);
    }

    for (;;) {
        struct pollfd p[2] = {{sfd, POLLIN, 0}, {ctl_fd, POLLIN, 0}};
        if (poll(p, ctl_fd >= 0 ? 2 : 1, -1) < 0)
            continue;
        if (p[1].revents & POLLIN)
            handle_ctl(child);
        if (!(p[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) != sizeof si)
            continue;
        if (si.ssi_signo != SIGCHLD) {
            kill(child, si.ssi_signo);
            continue;
        }
        /* Reap every exited process: the entrypoint and orphans alike. */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != child)
                continue;
            int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            /* As in docker: the container ends with its entrypoint. */
            kill(-1, SIGKILL);
            while (waitpid(-1, NULL, 0) > 0)
                ;
            power_off(code);
        }
    }
}
