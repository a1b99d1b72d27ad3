/*
 * xc_ipc: inter-process communication through the kernel: pipes, AF_UNIX
 * stream and datagram socketpairs, and file-descriptor passing with
 * SCM_RIGHTS.
 *
 * Runs as /xc/xc_ipc; prints one `XC-CHECK xc_ipc <check> PASS|FAIL <detail>`
 * line per check and exits 0 only if all passed. Everything uses pipes and
 * socketpairs (no filesystem), since the guest's /tmp may not be tmpfs.
 * Children are forked so that both sides block and wake in the kernel, which
 * exercises the copy_{to,from}_user paths with real user buffers. Nothing
 * here depends on the CPL the guest runs at.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define PROG "xc_ipc"
#include "xc_check.h"

#define WATCHDOG_SECONDS 60

#define PIPE_TOTAL (64 * 1024)
#define PIPE_CHUNK (8 * 1024)	/* lock-step chunks: never fills both pipes */
#define STREAM_MSGS 200

/* Write exactly n bytes (pipes and stream sockets may write short). */
static int write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read exactly n bytes; -1 on error or early EOF. */
static int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Byte pattern that differs at every offset within a page and between pages. */
static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 131u) ^ (i >> 8) ^ 0x5a);
}

/*
 * Child side of the echo tests: copy in -> out in reads of at most chunk
 * bytes until EOF, then _exit(0); _exit(1) if a write fails.
 */
static void __attribute__((noreturn)) echo_child(int in, int out, size_t chunk)
{
	char buf[4096];

	if (chunk > sizeof(buf))
		chunk = sizeof(buf);
	for (;;) {
		ssize_t r = read(in, buf, chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (write_full(out, buf, (size_t)r) < 0)
			_exit(1);
	}
	_exit(0);
}

/* ---- pipe round trip ---------------------------------------------------- */

/*
 * Parent -> child over one pipe, child echoes back over another. The child
 * uses odd read sizes so data crosses page and chunk boundaries unevenly.
 */
static void test_pipe_roundtrip(void)
{
	int down[2], up[2];
	static unsigned char out[PIPE_TOTAL], back[PIPE_TOTAL];

	if (pipe(down) < 0 || pipe(up) < 0) {
		check("pipe_roundtrip_64k", 0, "pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		echo_child(down[0], up[1], 3001);
	}
	close(down[0]);
	close(up[1]);
	for (size_t i = 0; i < PIPE_TOTAL; i++)
		out[i] = pattern(i);

	int io_ok = pid > 0;
	for (size_t off = 0; io_ok && off < PIPE_TOTAL; off += PIPE_CHUNK) {
		io_ok = write_full(down[1], out + off, PIPE_CHUNK) == 0 &&
			read_full(up[0], back + off, PIPE_CHUNK) == 0;
	}
	close(down[1]); /* EOF lets the child exit */
	/* After EOF on down, the child closes up: we must see EOF too. */
	char extra;
	ssize_t tail = read(up[0], &extra, 1);
	close(up[0]);
	int st = wait_for(pid);

	size_t first_bad = PIPE_TOTAL;
	for (size_t i = 0; i < PIPE_TOTAL; i++)
		if (back[i] != out[i]) {
			first_bad = i;
			break;
		}
	check("pipe_roundtrip_64k",
	      io_ok && first_bad == PIPE_TOTAL && tail == 0 && exited_ok(st),
	      "bytes=%d io=%s first-mismatch=%zd eof=%s child=%s", PIPE_TOTAL,
	      io_ok ? "ok" : "error", first_bad == PIPE_TOTAL ? (ssize_t)-1 : (ssize_t)first_bad,
	      tail == 0 ? "yes" : "no", status_str(st));
}

/* ---- AF_UNIX stream ----------------------------------------------------- */

/* Child echoes everything back on a stream socket until EOF. */
static void test_unix_stream(void)
{
	int sv[2];
	char msg[1024], reply[1024];
	int bad = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		check("unix_stream_echo", 0, "socketpair: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		echo_child(sv[1], sv[1], 512);
	}
	close(sv[1]);
	for (int i = 0; i < STREAM_MSGS && pid > 0; i++) {
		/* Sizes 1..1000ish so some messages span the child's 512-byte reads. */
		size_t len = 1 + (size_t)(i * 37) % sizeof(msg);
		for (size_t k = 0; k < len; k++)
			msg[k] = (char)pattern(k + (size_t)i);
		if (write_full(sv[0], msg, len) < 0 || read_full(sv[0], reply, len) < 0 ||
		    memcmp(msg, reply, len) != 0) {
			bad++;
			break;
		}
	}
	shutdown(sv[0], SHUT_WR); /* EOF for the child */
	close(sv[0]);
	int st = wait_for(pid);
	check("unix_stream_echo", pid > 0 && bad == 0 && exited_ok(st),
	      "messages=%d bad=%d child=%s", STREAM_MSGS, bad, status_str(st));
}

/* ---- AF_UNIX datagram ----------------------------------------------------- */

/* Datagrams keep their boundaries: each recv returns exactly one send. */
static void test_unix_dgram(void)
{
	int sv[2];
	static const size_t sizes[] = {1, 100, 1000, 4096, 7};
	char buf[8192];
	int bad = 0;
	char seen[128] = "";

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0) {
		check("unix_dgram", 0, "socketpair: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Child sends each datagram filled with its own index. */
		char out[4096];
		close(sv[0]);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			memset(out, 'A' + (int)i, sizes[i]);
			if (send(sv[1], out, sizes[i], 0) != (ssize_t)sizes[i])
				_exit(1);
		}
		_exit(0);
	}
	close(sv[1]);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && pid > 0; i++) {
		ssize_t r;
		do
			r = recv(sv[0], buf, sizeof(buf), 0);
		while (r < 0 && errno == EINTR);
		size_t len = strlen(seen);
		snprintf(seen + len, sizeof(seen) - len, "%s%zd", i ? "," : "", r);
		if (r != (ssize_t)sizes[i]) {
			bad++;
			continue;
		}
		for (ssize_t k = 0; k < r; k++)
			if (buf[k] != 'A' + (int)i) {
				bad++;
				break;
			}
	}
	close(sv[0]);
	int st = wait_for(pid);
	check("unix_dgram", pid > 0 && bad == 0 && exited_ok(st),
	      "sizes=%s bad=%d child=%s", seen, bad, status_str(st));
}

/* ---- SCM_RIGHTS ------------------------------------------------------------ */

/* Send one fd (plus a one-byte payload, which SCM_RIGHTS requires). */
static int send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = {&byte, 1};
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = {0};

	memset(&ctl, 0, sizeof(ctl));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

/* Receive one fd; returns it or -1. */
static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = {&byte, 1};
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = {0};
	int fd = -1;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	ssize_t r;
	do
		r = recvmsg(sock, &msg, 0);
	while (r < 0 && errno == EINTR);
	if (r != 1 || byte != 'F')
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/*
 * The pipe is created AFTER the fork, so the child can only reach it through
 * the descriptor we pass. The child reads a message from the passed pipe and
 * echoes it back over the socket.
 */
static void test_scm_rights(void)
{
	int sv[2], p[2];
	static const char secret[] = "passed-through-scm-rights";
	char reply[64] = "";

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		check("scm_rights", 0, "socketpair: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char buf[64];
		close(sv[0]);
		int fd = recv_fd(sv[1]);
		if (fd < 0)
			_exit(3);
		if (read_full(fd, buf, sizeof(secret)) < 0)
			_exit(4);
		if (write_full(sv[1], buf, sizeof(secret)) < 0)
			_exit(5);
		_exit(0);
	}
	close(sv[1]);
	int ok = pid > 0 && pipe(p) == 0;
	if (ok) {
		ok = send_fd(sv[0], p[0]) == 0;
		close(p[0]); /* the child's copy keeps the read end alive */
		ok = ok && write_full(p[1], secret, sizeof(secret)) == 0 &&
		     read_full(sv[0], reply, sizeof(secret)) == 0 &&
		     memcmp(reply, secret, sizeof(secret)) == 0;
		close(p[1]);
	}
	close(sv[0]);
	int st = wait_for(pid);
	reply[sizeof(reply) - 1] = '\0';
	check("scm_rights", ok && exited_ok(st), "reply=\"%s\" child=%s", reply, status_str(st));
}

int main(void)
{
	xc_no_core_dumps();
	/* A dead peer must show up as EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	xc_start_watchdog(WATCHDOG_SECONDS);

	test_pipe_roundtrip();
	test_unix_stream();
	test_unix_dgram();
	test_scm_rights();
	return g_failed ? 1 : 0;
}
