/*
 * xc_proc: process lifecycle checks (fork, exec, wait, vfork, posix_spawn,
 * a shell pipeline).
 *
 * Runs as /xc/xc_proc in the test initramfs. Every check prints one line
 *
 *   XC-CHECK xc_proc <check> PASS|FAIL <detail>
 *
 * and the program exits 0 only if all checks passed. These paths exercise
 * the kernel's clone/execve/exit/wait entry points and the return-to-user
 * path of a brand-new process, which a library-OS conversion rewrites.
 * Nothing here depends on the CPL the guest runs at.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "xc_proc"
#include "xc_check.h"

#define BUSYBOX "/bin/busybox"
/* Whole-program watchdog: generous, since TCG is 20-50x slower than a host. */
#define WATCHDOG_SECONDS 60

extern char **environ;

/* Read everything from fd until EOF (bounded by cap-1 bytes), NUL-terminate. */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

/* Plain fork + _exit: the child's exit code must reach the parent intact. */
static void test_fork_exit(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(42);
	if (pid < 0) {
		check("fork_exit", 0, "fork: %s", strerror(errno));
		return;
	}
	int st = wait_for(pid);
	check("fork_exit", exited_with(st, 42),
	      "want exit=42 got %s", status_str(st));
}

/* fork + execve of busybox with a given argv; returns the wait status. */
static int run_busybox(char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		execv(BUSYBOX, argv);
		_exit(127); /* exec failed */
	}
	return wait_for(pid); /* -1 if fork failed */
}

static void test_exec_true(void)
{
	char *const argv[] = {"true", NULL};
	int st = run_busybox(argv);

	check("exec_true", exited_ok(st),
	      "busybox true: %s", status_str(st));
}

/* A non-zero exit code from an exec'd program must survive exit+wait. */
static void test_exec_exit_code(void)
{
	char *const argv[] = {"sh", "-c", "exit 7", NULL};
	int st = run_busybox(argv);

	check("exec_exit_code", exited_with(st, 7),
	      "busybox sh -c 'exit 7': want exit=7 got %s", status_str(st));
}

/* exec of a missing file must fail with ENOENT and leave the child running. */
static void test_exec_enoent(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl("/xc/does-not-exist", "nope", (char *)NULL);
		_exit(errno == ENOENT ? 0 : 1);
	}
	int st = wait_for(pid);
	check("exec_enoent", exited_ok(st),
	      "child %s (0 means execve returned ENOENT)", status_str(st));
}

/*
 * fork + exec path with argv and stdout on a pipe; the parent reads the
 * output into buf (NUL-terminated) and returns the child's wait status, or
 * -1 if fork/wait failed. If the pipe cannot be made, reports check `name`
 * as failed and returns -2.
 */
static int run_captured(const char *name, const char *path, char *const argv[], char *buf,
			size_t cap)
{
	int fds[2];

	if (pipe(fds) < 0) {
		check(name, 0, "pipe: %s", strerror(errno));
		return -2;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv(path, argv);
		_exit(127);
	}
	close(fds[1]);
	read_all(fds[0], buf, cap);
	close(fds[0]);
	return wait_for(pid);
}

/* fork + exec busybox echo with stdout on a pipe; parent reads the output. */
static void test_exec_echo_output(void)
{
	char *const argv[] = {"echo", "hello", "xc", NULL};
	char buf[128];
	int st = run_captured("exec_echo", BUSYBOX, argv, buf, sizeof(buf));

	if (st == -2)
		return;
	int ok = exited_ok(st) && strcmp(buf, "hello xc\n") == 0;
	check("exec_echo", ok, "%s output=\"%.*s\"", status_str(st),
	      (int)strcspn(buf, "\n"), buf);
}

/*
 * vfork shares the parent's memory and stack until the child execs or
 * exits; a kernel that mishandles the suspended parent's stack shows up here.
 */
static void test_vfork(void)
{
	volatile int marker = 1;
	pid_t pid = vfork();

	if (pid == 0) {
		marker = 2; /* visible to the parent: memory is shared */
		execl(BUSYBOX, "sh", "-c", "exit 3", (char *)NULL);
		_exit(127);
	}
	int st = wait_for(pid);
	check("vfork_exec", exited_with(st, 3) && marker == 2,
	      "%s marker=%d (want exit=3 marker=2)", status_str(st), marker);
}

/* posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)) with a dup2 file action. */
static void test_posix_spawn(void)
{
	int fds[2];
	char buf[128];
	pid_t pid;
	posix_spawn_file_actions_t fa;
	char *const argv[] = {"echo", "spawned", NULL};

	if (pipe(fds) < 0) {
		check("posix_spawn", 0, "pipe: %s", strerror(errno));
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	int rc = posix_spawn(&pid, BUSYBOX, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		check("posix_spawn", 0, "posix_spawn: %s", strerror(rc));
		return;
	}
	read_all(fds[0], buf, sizeof(buf));
	close(fds[0]);
	int st = wait_for(pid);
	int ok = exited_ok(st) && strcmp(buf, "spawned\n") == 0;
	check("posix_spawn", ok, "%s output=\"%.*s\"", status_str(st),
	      (int)strcspn(buf, "\n"), buf);
}

/*
 * popen-like: /bin/sh runs a three-stage pipeline (four processes, two
 * pipes) and we read its stdout. Uses fork+exec rather than popen() so the
 * exit status is checked precisely.
 */
static void test_shell_pipeline(void)
{
	char *const argv[] = {"sh", "-c", "echo abc | cat | cat", NULL};
	char buf[128];
	int st = run_captured("shell_pipeline", "/bin/sh", argv, buf, sizeof(buf));

	if (st == -2)
		return;
	/* Strip the trailing newline that echo adds. */
	buf[strcspn(buf, "\n")] = '\0';
	int ok = exited_ok(st) && strcmp(buf, "abc") == 0;
	check("shell_pipeline", ok, "%s output=\"%s\"", status_str(st), buf);
}

/* Many short-lived children in a row: catches leaks or slow exit paths. */
static void test_fork_many(void)
{
	int bad = 0;
	const int n = 50;

	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(i & 0x7f);
		int st = wait_for(pid);
		if (!exited_with(st, i & 0x7f))
			bad++;
	}
	check("fork_many", bad == 0, "children=%d bad=%d", n, bad);
}

int main(void)
{
	xc_no_core_dumps();
	xc_start_watchdog(WATCHDOG_SECONDS);

	test_fork_exit();
	test_fork_many();
	test_exec_true();
	test_exec_exit_code();
	test_exec_enoent();
	test_exec_echo_output();
	test_vfork();
	test_posix_spawn();
	test_shell_pipeline();

	return g_failed ? 1 : 0;
}
