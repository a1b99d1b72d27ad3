/*
 * xc_check.h: the reporting and process helpers every xc_* guest program
 * shares.
 *
 * Each program is a single static executable built on its own
 * (`cc -static -O2 -Wall -o NAME NAME.c`; build.rs compiles only *.c), so
 * there is no shared object file to link against: the helpers live here as
 * static (inline) functions, and every program gets its own private copy
 * of the code. `static inline` also keeps -Wall quiet about the helpers a
 * given program does not use.
 *
 * The host parses the console for lines
 *
 *   XC-CHECK <prog> <check> PASS|FAIL <detail>
 *
 * so the format produced by check() and watchdog() must not change.
 *
 * Before including this file a program defines
 *   PROG            its name, the <prog> field of every line (required);
 *   XC_DETAIL_MAX   size of the <detail> buffer (optional, default 256).
 */
#ifndef XC_CHECK_H
#define XC_CHECK_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PROG
#error "define PROG (the program name printed in XC-CHECK lines) before including xc_check.h"
#endif

#ifndef XC_DETAIL_MAX
#define XC_DETAIL_MAX 256
#endif

/* Set by any failed check; main() returns g_failed ? 1 : 0. */
static int g_failed;

/*
 * A child the watchdog must SIGKILL before giving up, or -1. Only needed
 * for children that would not die with us, such as a stopped tracee.
 */
static volatile pid_t xc_watchdog_victim = -1;

/* One XC-CHECK line; flushed at once so a later crash cannot swallow it and
 * a later fork() cannot duplicate it from an unflushed stdio buffer. */
static inline void __attribute__((format(printf, 3, 4)))
check(const char *name, int ok, const char *fmt, ...)
{
	char detail[XC_DETAIL_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf("XC-CHECK %s %s %s %s\n", PROG, name, ok ? "PASS" : "FAIL", detail);
	fflush(stdout);
	if (!ok)
		g_failed = 1;
}

/* SIGALRM handler: if anything hangs, say so on the console instead of
 * dying silently. Only async-signal-safe calls (kill, write, _exit). */
static inline void watchdog(int sig)
{
	static const char msg[] = "XC-CHECK " PROG " watchdog FAIL timed-out\n";
	(void)sig;
	if (xc_watchdog_victim > 0)
		kill(xc_watchdog_victim, SIGKILL);
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(2);
}

/* Whole-program time limit: generous, since TCG is 20-50x slower than a
 * host. */
static inline void xc_start_watchdog(unsigned seconds)
{
	signal(SIGALRM, watchdog);
	alarm(seconds);
}

/* Children that crash on purpose must not litter core files (on a host run
 * they would land in the working directory). Inherited across fork. */
static inline void xc_no_core_dumps(void)
{
	struct rlimit no_core = {0, 0};

	setrlimit(RLIMIT_CORE, &no_core);
}

/* Human-readable wait status for the detail field; -1 (from wait_for) is a
 * failed wait. Returns a static buffer: one call per check() line. */
static inline const char *status_str(int st)
{
	static char buf[64];

	if (st < 0)
		snprintf(buf, sizeof(buf), "wait-failed");
	else if (WIFEXITED(st))
		snprintf(buf, sizeof(buf), "exit=%d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof(buf), "signal=%d", WTERMSIG(st));
	else if (WIFSTOPPED(st)) /* only a tracer (xc_ptrace) sees these */
		snprintf(buf, sizeof(buf), "stopped=%d", WSTOPSIG(st));
	else
		snprintf(buf, sizeof(buf), "status=0x%x", st);
	return buf;
}

/* waitpid that survives EINTR; returns the status, or -1 if pid is a failed
 * fork() result or the wait failed. */
static inline int wait_for(pid_t pid)
{
	int st;

	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return st;
}

/* st (from wait_for) is a normal exit with the given code. */
static inline int exited_with(int st, int code)
{
	return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == code;
}

static inline int exited_ok(int st)
{
	return exited_with(st, 0);
}

/* st (from wait_for) is death by signal sig. */
static inline int killed_by(int st, int sig)
{
	return st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == sig;
}

/*
 * Run fn in a forked child with the default disposition for sig and no
 * signals blocked, so that a fault fn is expected to raise kills the child
 * and becomes a checked outcome instead of ending the whole program.
 * Returns the wait status; the child exits 0 if fn returns.
 */
static inline int crash_child(int sig, void (*fn)(void))
{
	pid_t pid = fork();

	if (pid == 0) {
		sigset_t none;

		xc_no_core_dumps();
		signal(sig, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		fn();
		_exit(0);
	}
	return wait_for(pid);
}

#endif /* XC_CHECK_H */
