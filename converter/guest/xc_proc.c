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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "xc_proc"
#define BUSYBOX "/bin/busybox"
/* Whole-program watchdog: generous, since TCG is 20-50x slower than a host. */
#define WATCHDOG_SECONDS 60

extern char **environ;

static int g_failed;

/* One XC-CHECK line; flushed at once so a later crash cannot swallow it and
 * a later fork() cannot duplicate it. */
static void check(const char *name, int ok, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf("XC-CHECK %s %s %s %s\n", PROG, name, ok ? "PASS" : "FAIL", detail);
	fflush(stdout);
	if (!ok)
		g_failed = 1;
}

/* If anything hangs, say so on the console instead of dying silently. */
static void watchdog(int sig)
{
	static const char msg[] = "XC-CHECK " PROG " watchdog FAIL timed-out\n";
	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(2);
}

/* Human-readable wait status for the detail field. */
static const char *status_str(int st)
{
	static char buf[64];

	if (WIFEXITED(st))
		snprintf(buf, sizeof(buf), "exit=%d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof(buf), "signal=%d", WTERMSIG(st));
	else
		snprintf(buf, sizeof(buf), "status=0x%x", st);
	return buf;
}

/* waitpid that survives EINTR; returns the status or -1 on error. */
static int wait_for(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return st;
}

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
	check("fork_exit", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 42,
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
	if (pid < 0)
		return -1;
	return wait_for(pid);
}

static void test_exec_true(void)
{
	char *const argv[] = {"true", NULL};
	int st = run_busybox(argv);

	check("exec_true", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "busybox true: %s", status_str(st));
}

/* A non-zero exit code from an exec'd program must survive exit+wait. */
static void test_exec_exit_code(void)
{
	char *const argv[] = {"sh", "-c", "exit 7", NULL};
	int st = run_busybox(argv);

	check("exec_exit_code", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7,
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
	int st = pid < 0 ? -1 : wait_for(pid);
	check("exec_enoent", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child %s (0 means execve returned ENOENT)", status_str(st));
}

/* fork + exec busybox echo with stdout on a pipe; parent reads the output. */
static void test_exec_echo_output(void)
{
	int fds[2];
	char buf[128];

	if (pipe(fds) < 0) {
		check("exec_echo", 0, "pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(BUSYBOX, "echo", "hello", "xc", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	read_all(fds[0], buf, sizeof(buf));
	close(fds[0]);
	int st = pid < 0 ? -1 : wait_for(pid);
	int ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
		 strcmp(buf, "hello xc\n") == 0;
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
	int st = pid < 0 ? -1 : wait_for(pid);
	check("vfork_exec", st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 3 && marker == 2,
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
	int ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
		 strcmp(buf, "spawned\n") == 0;
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
	int fds[2];
	char buf[128];

	if (pipe(fds) < 0) {
		check("shell_pipeline", 0, "pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl("/bin/sh", "sh", "-c", "echo abc | cat | cat", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	read_all(fds[0], buf, sizeof(buf));
	close(fds[0]);
	int st = pid < 0 ? -1 : wait_for(pid);
	/* Strip the trailing newline that echo adds. */
	buf[strcspn(buf, "\n")] = '\0';
	int ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && strcmp(buf, "abc") == 0;
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
		int st = pid < 0 ? -1 : wait_for(pid);
		if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != (i & 0x7f))
			bad++;
	}
	check("fork_many", bad == 0, "children=%d bad=%d", n, bad);
}

int main(void)
{
	/* Children that crash on purpose (none here) must not litter core files. */
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	signal(SIGALRM, watchdog);
	alarm(WATCHDOG_SECONDS);

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
