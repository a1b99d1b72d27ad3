/*
 * xc_bench: the cost of a few system calls, for `xc-convert bench`.
 *
 * Runs as /xc/xc_bench [iterations] and prints one line per benchmark,
 *
 *   XC-BENCH <name> <ns_per_op>
 *
 * and `XC-BENCH-INFO <key> <value>` lines (the clocksource, the meltdown and
 * spectre_v2 status, the CPL, and on a library-OS kernel what /proc/xc_libos
 * counted while the benchmarks ran), and exits 0.
 * The host parses these lines (converter/src/pipeline/bench/); the format
 * must not change. Not part of the behaviour suite: it checks nothing.
 *
 * Every measured system call is issued from a site of the exact form
 *
 *   b8 NN NN NN NN    movl $nr,%eax
 *   0f 05             syscall
 *
 * because that is what a library-OS kernel's online binary translation
 * (patches/libos/0009-online-abom.toml) recognises and rewrites, the first
 * time it runs, into `call *0xffffffffff600000+8*nr`. So on a libos kernel
 * with translation on, every iteration after the warm-up enters through the
 * entry table; with `xc_abom=off` every iteration uses SYSCALL. libc
 * wrappers are not used for measured calls: their sites differ between libc
 * versions (and may load the number with another instruction).
 *
 * The translated site is a `call`, which pushes a return address at
 * -8(%rsp). A leaf function may keep data there (the x86-64 red zone), so
 * each site steps %rsp past the red zone first (`lea`, which leaves the
 * flags alone) and back after. That costs the same on every kernel.
 *
 * Clock: the rows are timed with clock_gettime(CLOCK_MONOTONIC), which is
 * only as good as the kernel's clocksource. Under QEMU TCG the kernel's
 * calibration of the TSC against the PIT races the host's load and often
 * fails, leaving the jiffies clocksource (4 ms steps: every row reads 0).
 * So the host pins the TSC frequency with `tsc_early_khz=` (TCG's TSC is
 * the host's), measured by running this same program on the host as
 * `xc_bench --tsc-khz`; and the clocksource is reported so the host can
 * refuse a run that timed with jiffies.
 *
 * Iterations: argv[1], else `xc_bench.iters=N` on the kernel command line
 * (how the host passes it: /init runs programs without arguments; the dotted
 * name makes the kernel ignore it instead of handing it to init), else
 * DEFAULT_ITERS. It is the getppid count; dearer rows divide it (see rows[]).
 * Each row runs a warm-up (where the translation happens) and then
 * BATCHES timed batches; the fastest batch is reported, as the least
 * disturbed by timer interrupts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xc_cpl.h"

#define DEFAULT_ITERS 400000L
#define BATCHES 3

/* x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define NR_READ 0
#define NR_WRITE 1
#define NR_MMAP 9
#define NR_MUNMAP 11
#define NR_GETPPID 110
#define NR_FORK 57
#define NR_WAIT4 61
#define NR_FUTEX 202
#define NR_EXIT_GROUP 231

/* Values from the uapi headers, spelled out to keep the includes minimal. */
#define XC_FUTEX_WAIT_PRIVATE 128	/* FUTEX_WAIT | FUTEX_PRIVATE_FLAG */
#define XC_FUTEX_WAKE_PRIVATE 129	/* FUTEX_WAKE | FUTEX_PRIVATE_FLAG */
#define XC_PROT_RW 3			/* PROT_READ | PROT_WRITE */
#define XC_MAP_PRIVATE_ANON 0x22	/* MAP_PRIVATE | MAP_ANONYMOUS */
#define PAGE 4096

/*
 * One system call from a translatable site. `nr` must be a compile-time
 * constant ("i"): `.byte 0xb8; .long nr` forces the 5-byte `movl $imm32,%eax`
 * encoding whatever the assembler would pick. Arguments go in the SysV
 * system-call registers; SYSCALL clobbers rcx and r11.
 */
#define XC_SYSCALL6(nr, a1, a2, a3, a4, a5, a6)                                \
	({                                                                     \
		long xc_ret_;                                                  \
		register long xc_r10_ __asm__("r10") = (long)(a4);             \
		register long xc_r8_ __asm__("r8") = (long)(a5);               \
		register long xc_r9_ __asm__("r9") = (long)(a6);               \
		__asm__ volatile("lea -128(%%rsp),%%rsp\n\t"                   \
				 ".byte 0xb8\n\t.long %c[n]\n\t"               \
				 "syscall\n\t"                                 \
				 "lea 128(%%rsp),%%rsp"                        \
				 : "=a"(xc_ret_)                               \
				 : [n] "i"(nr), "D"((long)(a1)),               \
				   "S"((long)(a2)), "d"((long)(a3)),           \
				   "r"(xc_r10_), "r"(xc_r8_), "r"(xc_r9_)      \
				 : "rcx", "r11", "memory");                    \
		xc_ret_;                                                       \
	})
#define XC_SYSCALL3(nr, a1, a2, a3) XC_SYSCALL6(nr, a1, a2, a3, 0, 0, 0)
#define XC_SYSCALL0(nr) XC_SYSCALL6(nr, 0, 0, 0, 0, 0, 0)

static int pipe_a[2], pipe_b[2];	/* [0] read end, [1] write end */
static int futex_word;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, long ret)
{
	printf("XC-BENCH-ERROR %s returned %ld\n", what, ret);
	fflush(stdout);
	exit(1);
}

/*
 * The loops. Each does `n` operations and returns 0, or -1 after printing
 * why. noinline keeps each row's sites in one place (objdump shows them).
 */
static __attribute__((noinline)) int loop_getppid(long n)
{
	for (long i = 0; i < n; i++)
		XC_SYSCALL0(NR_GETPPID);
	return 0;
}

/* Write one byte into a pipe and read it back: one write + one read. */
static __attribute__((noinline)) int loop_pipe(long n)
{
	char c = 'x';

	for (long i = 0; i < n; i++) {
		long w = XC_SYSCALL3(NR_WRITE, pipe_a[1], &c, 1);
		long r = XC_SYSCALL3(NR_READ, pipe_a[0], &c, 1);
		if (w != 1 || r != 1)
			die("pipe write/read", w != 1 ? w : r);
	}
	return 0;
}

/*
 * One byte to a forked child over pipe_a and back over pipe_b, per round
 * trip: two context switches and four system calls. The child is forked
 * with a raw fork from a site too, and leaves with a raw exit_group, so it
 * runs no libc code that could depend on a libc-level fork.
 */
static __attribute__((noinline)) int loop_pingpong(long n)
{
	char c = 'p';
	long pid = XC_SYSCALL0(NR_FORK);

	if (pid < 0)
		die("fork", pid);
	if (pid == 0) {
		for (long i = 0; i < n; i++) {
			if (XC_SYSCALL3(NR_READ, pipe_a[0], &c, 1) != 1)
				XC_SYSCALL3(NR_EXIT_GROUP, 3, 0, 0);
			if (XC_SYSCALL3(NR_WRITE, pipe_b[1], &c, 1) != 1)
				XC_SYSCALL3(NR_EXIT_GROUP, 4, 0, 0);
		}
		XC_SYSCALL3(NR_EXIT_GROUP, 0, 0, 0);
	}
	for (long i = 0; i < n; i++) {
		long w = XC_SYSCALL3(NR_WRITE, pipe_a[1], &c, 1);
		long r = XC_SYSCALL3(NR_READ, pipe_b[0], &c, 1);
		if (w != 1 || r != 1)
			die("ping-pong write/read", w != 1 ? w : r);
	}
	int st = 0;
	long w = XC_SYSCALL6(NR_WAIT4, pid, &st, 0, 0, 0, 0);
	if (w != pid || st != 0)
		die("ping-pong child wait status", st);
	return 0;
}

/* FUTEX_WAKE with nobody waiting, then FUTEX_WAIT on a value that does not
 * match (returns -EAGAIN at once): the cheapest real futex round. */
static __attribute__((noinline)) int loop_futex(long n)
{
	for (long i = 0; i < n; i++) {
		long wake = XC_SYSCALL6(NR_FUTEX, &futex_word, XC_FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
		long wait = XC_SYSCALL6(NR_FUTEX, &futex_word, XC_FUTEX_WAIT_PRIVATE, futex_word + 1, 0, 0, 0);
		if (wake != 0 || wait != -EAGAIN)
			die("futex wake/wait", wake != 0 ? wake : wait);
	}
	return 0;
}

/* Map one anonymous page, touch it (so a page is really allocated and
 * faulted in), unmap it. */
static __attribute__((noinline)) int loop_mmap(long n)
{
	for (long i = 0; i < n; i++) {
		long p = XC_SYSCALL6(NR_MMAP, 0, PAGE, XC_PROT_RW, XC_MAP_PRIVATE_ANON, -1, 0);
		if (p < 0 && p > -4096)
			die("mmap", p);
		*(volatile char *)p = 1;
		long u = XC_SYSCALL3(NR_MUNMAP, p, PAGE, 0);
		if (u != 0)
			die("munmap", u);
	}
	return 0;
}

/* fork, the child exits at once, the parent reaps it. */
static __attribute__((noinline)) int loop_fork(long n)
{
	for (long i = 0; i < n; i++) {
		long pid = XC_SYSCALL0(NR_FORK);
		if (pid == 0)
			XC_SYSCALL3(NR_EXIT_GROUP, 0, 0, 0);
		if (pid < 0)
			die("fork", pid);
		int st = 0;
		long w = XC_SYSCALL6(NR_WAIT4, pid, &st, 0, 0, 0, 0);
		if (w != pid || st != 0)
			die("fork child wait status", st);
	}
	return 0;
}

struct row {
	const char *name;	/* no spaces: a word of the XC-BENCH line */
	int (*loop)(long n);
	long divisor;		/* iterations = base / divisor: ~same time per row under TCG */
};

/* Divisors from TCG timings (getppid ~250 ns, fork ~600 us per op): with
 * the default base each timed batch takes ~0.1 s, the row ~0.4 s. */
static const struct row rows[] = {
	{"getppid", loop_getppid, 1},
	{"pipe_write_read_1B", loop_pipe, 10},
	{"pipe_pingpong", loop_pingpong, 200},
	{"futex_wake_wait", loop_futex, 4},
	{"mmap_munmap_page", loop_mmap, 500},
	{"fork_exit_wait", loop_fork, 2000},
};

/* Fastest of BATCHES timed batches, after one warm-up batch. */
static double ns_per_op(const struct row *r, long n)
{
	double best = -1.0;
	long warm = n < 100 ? n : 100;

	r->loop(warm);
	for (int b = 0; b < BATCHES; b++) {
		double start = now_ns();
		r->loop(n);
		double per = (now_ns() - start) / (double)n;
		if (best < 0.0 || per < best)
			best = per;
	}
	return best;
}

/* The value of `<key>N` (e.g. "xc_bench.iters=") on /proc/cmdline, or 0. */
static long long_from_cmdline(const char *key)
{
	char buf[4096];
	FILE *f = fopen("/proc/cmdline", "r");
	size_t klen = strlen(key);
	long n = 0;

	if (!f)
		return 0;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	for (char *w = strtok(buf, " \n"); w; w = strtok(NULL, " \n")) {
		if (strncmp(w, key, klen) == 0)
			n = strtol(w + klen, NULL, 10);
	}
	return n;
}

/* /proc/xc_libos is `key value` lines. Counters (decimal values of keys not
 * in `settings`) are reported as what the benchmarks added; settings and
 * hex values as they are. */
#define MAX_KEYS 32
struct counters {
	int n;
	char key[MAX_KEYS][48];
	char val[MAX_KEYS][48];
};

static int read_xc_libos(struct counters *c)
{
	FILE *f = fopen("/proc/xc_libos", "r");
	char line[128];

	c->n = 0;
	if (!f)
		return -1;
	while (c->n < MAX_KEYS && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%47s %47s", c->key[c->n], c->val[c->n]) == 2)
			c->n++;
	}
	fclose(f);
	return 0;
}

static int is_counter(const char *key, const char *val)
{
	static const char *const settings[] = {"abi_version", "entry_stride", "entry_slots",
					       "ist_index", "online_abom", NULL};

	for (int i = 0; settings[i]; i++)
		if (strcmp(key, settings[i]) == 0)
			return 0;
	return strncmp(val, "0x", 2) != 0 && strspn(val, "0123456789") == strlen(val);
}

static void print_info(const struct counters *before, int have_before)
{
	struct counters after;

	printf("XC-BENCH-INFO cpl %u\n", read_cs() & 3u);
	if (!have_before || read_xc_libos(&after) != 0) {
		printf("XC-BENCH-INFO xc_libos absent\n");
		return;
	}
	for (int i = 0; i < after.n; i++) {
		if (!is_counter(after.key[i], after.val[i])) {
			printf("XC-BENCH-INFO %s %s\n", after.key[i], after.val[i]);
			continue;
		}
		unsigned long long was = 0;
		for (int j = 0; j < before->n; j++)
			if (strcmp(before->key[j], after.key[i]) == 0)
				was = strtoull(before->val[j], NULL, 10);
		printf("XC-BENCH-INFO %s +%llu\n", after.key[i], strtoull(after.val[i], NULL, 10) - was);
	}
}

/* The kernel's clocksource, or "unknown". */
static void print_clock(void)
{
	char name[64] = "unknown";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");

	if (f) {
		if (fscanf(f, "%63s", name) != 1)
			strcpy(name, "unknown");
		fclose(f);
	}
	printf("XC-BENCH-INFO clocksource %s\n", name);
}

/* What the kernel says about the two vulnerabilities whose mitigations sit
 * on the system-call path (page-table isolation, retpolines/IBRS), so the
 * stock and stock-nomitig columns can be read for what they turned off. */
static void print_vulnerabilities(void)
{
	static const char *const names[] = {"meltdown", "spectre_v2", NULL};

	for (int i = 0; names[i]; i++) {
		char path[96], text[160] = "unknown";
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/vulnerabilities/%s", names[i]);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(text, sizeof(text), f))
				strcpy(text, "unknown");
			fclose(f);
			text[strcspn(text, "\n")] = '\0';
		}
		printf("XC-BENCH-INFO %s %s\n", names[i], text);
	}
}

/*
 * On the host: TSC ticks per millisecond, against CLOCK_MONOTONIC over
 * TSC_WINDOW_NS, median of three. Printed as `XC-BENCH-TSC-KHZ <n>`.
 */
#define TSC_WINDOW_NS 100000000.0
static int measure_tsc_khz(void)
{
	double khz[3];

	for (int i = 0; i < 3; i++) {
		double t0 = now_ns();
		unsigned long long c0 = __builtin_ia32_rdtsc();
		double t1;
		do
			t1 = now_ns();
		while (t1 - t0 < TSC_WINDOW_NS);
		unsigned long long c1 = __builtin_ia32_rdtsc();
		khz[i] = (double)(c1 - c0) * 1e6 / (t1 - t0);
	}
	/* median of three */
	double lo = khz[0] < khz[1] ? khz[0] : khz[1], hi = khz[0] < khz[1] ? khz[1] : khz[0];
	double med = khz[2] < lo ? lo : (khz[2] > hi ? hi : khz[2]);
	printf("XC-BENCH-TSC-KHZ %.0f\n", med);
	return 0;
}

/*
 * Path mode (`xc_bench --path`, or `xc_bench.path=1` on the kernel command
 * line): for `xc-convert bench --path`, which counts the instructions of one
 * system call by single-stepping the guest through QEMU's gdbstub
 * (converter/src/pipeline/bench/path.rs). Nothing is timed here.
 *
 * Each row is a function that issues one system call from a site of the
 * translatable form, with global labels the host finds in this binary's
 * symbol table:
 *
 *   xc_path_site_<row>       the `movl $nr,%eax` (after translation: the
 *                            `call *0xffffffffff600000+8*nr` that replaced it)
 *   xc_path_site_<row>_end   the instruction after the `syscall` (the call's
 *                            return address): where the count stops
 *
 * Each row runs twice: once warm (on a libos kernel that is where the site
 * is translated; everywhere it faults in the pages and caches the kernel
 * touches), then counted. Only before the counted run does the function
 * call xc_path_marker(row, XC_PATH_MAGIC): the host's one (hardware)
 * breakpoint sits there, and the magic in the second argument tells that it
 * is this program (busybox, also static, may have code at that address).
 * From the marker the host steps, uncounted, to the site, then counts every
 * instruction until the site's end.
 *
 * The row order and names must match PATH_ROWS in path.rs. The host checks
 * `XC-BENCH-PATH <row> <return value>` lines: a call that failed measured
 * an error path.
 */
#define XC_PATH_MAGIC 0x58435041544830L	/* "XCPATH0" */

__attribute__((noinline, noclone, used)) void xc_path_marker(long row, long magic)
{
	/* Keeps both arguments live in rdi/rsi at the breakpoint. */
	__asm__ volatile("" : : "D"(row), "S"(magic) : "memory");
}

/* One labelled system call: XC_SYSCALL6 with xc_path_site_<name> at the
 * `movl` and xc_path_site_<name>_end after the `syscall`. Used once per
 * row function (noinline, noclone), so each label is defined once. */
#define XC_PATH_SYSCALL(name, nr, a1, a2, a3, a4, a5, a6)                     \
	({                                                                     \
		long xc_ret_;                                                  \
		register long xc_r10_ __asm__("r10") = (long)(a4);             \
		register long xc_r8_ __asm__("r8") = (long)(a5);               \
		register long xc_r9_ __asm__("r9") = (long)(a6);               \
		__asm__ volatile("lea -128(%%rsp),%%rsp\n\t"                   \
				 ".globl xc_path_site_" name "\n"              \
				 "xc_path_site_" name ":\n\t"                  \
				 ".byte 0xb8\n\t.long %c[n]\n\t"               \
				 "syscall\n"                                   \
				 ".globl xc_path_site_" name "_end\n"          \
				 "xc_path_site_" name "_end:\n\t"              \
				 "lea 128(%%rsp),%%rsp"                        \
				 : "=a"(xc_ret_)                               \
				 : [n] "i"(nr), "D"((long)(a1)),               \
				   "S"((long)(a2)), "d"((long)(a3)),           \
				   "r"(xc_r10_), "r"(xc_r8_), "r"(xc_r9_)      \
				 : "rcx", "r11", "memory");                    \
		xc_ret_;                                                       \
	})

static char path_byte = 'x';
static long path_pages[2];

#define PATH_ROW(fn, name, row, nr, a1, a2, a3, a4, a5, a6)                     \
	static __attribute__((noinline, noclone)) long fn(int counted)          \
	{                                                                      \
		if (counted)                                                   \
			xc_path_marker(row, XC_PATH_MAGIC);                    \
		return XC_PATH_SYSCALL(name, nr, a1, a2, a3, a4, a5, a6);      \
	}

PATH_ROW(path_getppid, "getppid", 0, NR_GETPPID, 0, 0, 0, 0, 0, 0)
PATH_ROW(path_pipe_write, "pipe_write_1B", 1, NR_WRITE, pipe_a[1], &path_byte, 1, 0, 0, 0)
PATH_ROW(path_pipe_read, "pipe_read_1B", 2, NR_READ, pipe_a[0], &path_byte, 1, 0, 0, 0)
PATH_ROW(path_futex_wake, "futex_wake", 3, NR_FUTEX, &futex_word, XC_FUTEX_WAKE_PRIVATE, 1, 0, 0, 0)
PATH_ROW(path_futex_wait, "futex_wait_eagain", 4, NR_FUTEX, &futex_word, XC_FUTEX_WAIT_PRIVATE, futex_word + 1, 0, 0, 0)
PATH_ROW(path_mmap, "mmap_anon_page", 5, NR_MMAP, 0, PAGE, XC_PROT_RW, XC_MAP_PRIVATE_ANON, -1, 0)
PATH_ROW(path_munmap, "munmap_page", 6, NR_MUNMAP, path_pages[counted], PAGE, 0, 0, 0, 0)

struct path_row {
	const char *name;
	long (*call)(int counted);
	int (*ok)(long ret);
};

static int ok_zero(long r) { return r == 0; }
static int ok_positive(long r) { return r > 0; }
static int ok_one(long r) { return r == 1; }
static int ok_eagain(long r) { return r == -EAGAIN; }
static int ok_mapped(long r) { return !(r < 0 && r > -4096); }

static const struct path_row path_rows[] = {
	{"getppid", path_getppid, ok_positive},
	{"pipe_write_1B", path_pipe_write, ok_one},
	{"pipe_read_1B", path_pipe_read, ok_one},
	{"futex_wake", path_futex_wake, ok_zero},
	{"futex_wait_eagain", path_futex_wait, ok_eagain},
	{"mmap_anon_page", path_mmap, ok_mapped},
	{"munmap_page", path_munmap, ok_zero},
};

static int path_mode(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(pipe_a) != 0)
		die("pipe", errno);
	printf("XC-BENCH-INFO mode path\n");
	printf("XC-BENCH-INFO cpl %u\n", read_cs() & 3u);
	print_vulnerabilities();
	for (size_t i = 0; i < sizeof(path_rows) / sizeof(path_rows[0]); i++) {
		const struct path_row *r = &path_rows[i];
		long warm = r->call(0);
		if (i == 5)
			path_pages[0] = warm;
		long counted = r->call(1);
		if (i == 5)
			path_pages[1] = counted;
		if (!r->ok(warm) || !r->ok(counted))
			die(r->name, r->ok(warm) ? counted : warm);
		printf("XC-BENCH-PATH %s %ld\n", r->name, counted);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--tsc-khz") == 0)
		return measure_tsc_khz();

	if ((argc > 1 && strcmp(argv[1], "--path") == 0) || long_from_cmdline("xc_bench.path=") == 1)
		return path_mode();

	long base = argc > 1 ? strtol(argv[1], NULL, 10) : long_from_cmdline("xc_bench.iters=");
	struct counters before;

	if (base <= 0)
		base = DEFAULT_ITERS;
	/* Line-buffered so each result reaches the console as it is made; a
	 * forked child must not inherit unflushed output either. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(pipe_a) != 0 || pipe(pipe_b) != 0)
		die("pipe", errno);
	int have_before = read_xc_libos(&before) == 0;
	printf("XC-BENCH-INFO iterations %ld\n", base);
	print_clock();
	print_vulnerabilities();
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		long n = base / rows[i].divisor;
		printf("XC-BENCH %s %.1f\n", rows[i].name, ns_per_op(&rows[i], n > 0 ? n : 1));
	}
	print_info(&before, have_before);
	return 0;
}
