/*
 * xc_threads: pthreads, mutex contention, condition variables, thread-local
 * storage and raw futex wait/wake.
 *
 * Runs as /xc/xc_threads; prints one `XC-CHECK xc_threads <check> PASS|FAIL
 * <detail>` line per check and exits 0 only if all passed.
 *
 * The guest has a single CPU, so contention does not happen by itself:
 * threads yield while holding the mutex, which makes the others block in
 * FUTEX_WAIT and forces the kernel's futex sleep/wake and context-switch
 * paths. Nothing here depends on the CPL the guest runs at.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PROG "xc_threads"
#include "xc_check.h"

#define WATCHDOG_SECONDS 60

#define NTHREADS 4
#define MUTEX_ITERS 20000	/* per thread */
#define YIELD_EVERY 64		/* yield inside the critical section this often */
#define CONDVAR_ROUNDS 2000
#define FUTEX_ROUNDS 1000

/* ---- mutex contention + TLS ------------------------------------------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static long g_counter;		/* protected by g_lock */
static long g_contended;	/* trylock failures, protected by g_lock */
static __thread long t_private;	/* per-thread: each thread must see its own */
static int g_tls_bad;		/* protected by g_lock */

static void *mutex_worker(void *arg)
{
	long id = (long)(intptr_t)arg;
	long contended = 0;

	/* FS-based TLS: the value must survive every context switch below. */
	t_private = id * 1000003;
	for (long i = 0; i < MUTEX_ITERS; i++) {
		if (pthread_mutex_trylock(&g_lock) == EBUSY) {
			contended++;
			pthread_mutex_lock(&g_lock); /* blocks in FUTEX_WAIT */
		}
		/* Non-atomic read-modify-write: a broken lock loses updates. */
		long c = g_counter;
		if (i % YIELD_EVERY == 0)
			sched_yield(); /* let the others pile up on the lock */
		g_counter = c + 1;
		pthread_mutex_unlock(&g_lock);
	}
	pthread_mutex_lock(&g_lock);
	g_contended += contended;
	if (t_private != id * 1000003)
		g_tls_bad++;
	pthread_mutex_unlock(&g_lock);
	return (void *)&t_private; /* address differs per thread */
}

static void test_mutex(void)
{
	pthread_t th[NTHREADS];
	void *tls_addr[NTHREADS];
	int created = 0;

	for (long i = 0; i < NTHREADS; i++) {
		int rc = pthread_create(&th[i], NULL, mutex_worker, (void *)(intptr_t)i);
		if (rc != 0) {
			check("pthread_create", 0, "thread %ld: %s", i, strerror(rc));
			break;
		}
		created++;
	}
	for (int i = 0; i < created; i++)
		pthread_join(th[i], &tls_addr[i]);
	if (created != NTHREADS)
		return;
	check("pthread_create", 1, "threads=%d", NTHREADS);

	long want = (long)NTHREADS * MUTEX_ITERS;
	check("mutex_counter", g_counter == want, "count=%ld want=%ld", g_counter, want);
	/* Contention is what makes the lock go through the kernel at all. */
	check("mutex_contended", g_contended > 0,
	      "trylock-busy=%ld (must be >0 to exercise futex waits)", g_contended);

	int distinct = 1;
	for (int i = 0; i < NTHREADS; i++)
		for (int j = i + 1; j < NTHREADS; j++)
			if (tls_addr[i] == tls_addr[j])
				distinct = 0;
	check("tls_per_thread", distinct && g_tls_bad == 0,
	      "distinct-addresses=%d bad-values=%d", distinct, g_tls_bad);
}

/* ---- condition variable ping-pong -------------------------------------- */

static pthread_mutex_t cv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_turn;		/* 0: main's turn, 1: worker's turn */
static int cv_rounds_worker;
static int cv_order_bad;

static void *cv_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cv_lock);
	for (int i = 0; i < CONDVAR_ROUNDS; i++) {
		while (cv_turn != 1)
			pthread_cond_wait(&cv, &cv_lock);
		if (cv_rounds_worker != i)
			cv_order_bad++;
		cv_rounds_worker++;
		cv_turn = 0;
		pthread_cond_signal(&cv);
	}
	pthread_mutex_unlock(&cv_lock);
	return NULL;
}

static void test_condvar(void)
{
	pthread_t th;
	int main_rounds = 0;

	if (pthread_create(&th, NULL, cv_worker, NULL) != 0) {
		check("condvar_handoff", 0, "pthread_create failed");
		return;
	}
	pthread_mutex_lock(&cv_lock);
	for (int i = 0; i < CONDVAR_ROUNDS; i++) {
		/* Hand the token over and wait until it comes back. */
		cv_turn = 1;
		pthread_cond_signal(&cv);
		while (cv_turn != 0)
			pthread_cond_wait(&cv, &cv_lock);
		if (cv_rounds_worker != i + 1)
			cv_order_bad++;
		main_rounds++;
	}
	pthread_mutex_unlock(&cv_lock);
	pthread_join(th, NULL);
	check("condvar_handoff",
	      main_rounds == CONDVAR_ROUNDS && cv_rounds_worker == CONDVAR_ROUNDS &&
		      cv_order_bad == 0,
	      "rounds=%d/%d order-errors=%d", main_rounds, cv_rounds_worker, cv_order_bad);
}

/* ---- raw futex ---------------------------------------------------------- */

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* Ping-pong word: the owner is whoever's number is stored in it. */
static uint32_t fx_word;	/* 0: main's turn, 1: worker's turn */
static long fx_worker_waits;	/* FUTEX_WAIT calls that returned 0 (woken) */

/* Wait until *w == want, sleeping in the kernel while it is not. */
static long futex_wait_for(uint32_t *w, uint32_t want)
{
	long slept = 0;

	for (;;) {
		uint32_t cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);
		if (cur == want)
			return slept;
		/* EAGAIN: value changed before we slept; EINTR: retry. */
		if (futex(w, FUTEX_WAIT_PRIVATE, cur, NULL) == 0)
			slept++;
	}
}

static void futex_hand_to(uint32_t *w, uint32_t to)
{
	__atomic_store_n(w, to, __ATOMIC_RELEASE);
	futex(w, FUTEX_WAKE_PRIVATE, 1, NULL);
}

static void *futex_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < FUTEX_ROUNDS; i++) {
		fx_worker_waits += futex_wait_for(&fx_word, 1);
		futex_hand_to(&fx_word, 0);
	}
	return NULL;
}

static void test_futex(void)
{
	uint32_t word = 5;
	struct timespec short_ts = {0, 10 * 1000 * 1000}; /* 10 ms */
	pthread_t th;
	long main_waits = 0;

	/* FUTEX_WAIT with a stale expected value must return EAGAIN at once. */
	long rc = futex(&word, FUTEX_WAIT_PRIVATE, 4, NULL);
	int e = errno;
	check("futex_wait_eagain", rc == -1 && e == EAGAIN, "rc=%ld errno=%d (want EAGAIN=%d)",
	      rc, rc == -1 ? e : 0, EAGAIN);

	/* A timed wait nobody wakes must time out (timer + sleep path). */
	rc = futex(&word, FUTEX_WAIT_PRIVATE, 5, &short_ts);
	e = errno;
	check("futex_wait_timeout", rc == -1 && e == ETIMEDOUT,
	      "rc=%ld errno=%d (want ETIMEDOUT=%d)", rc, rc == -1 ? e : 0, ETIMEDOUT);

	/* FUTEX_WAKE with no waiters wakes nobody. */
	rc = futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL);
	check("futex_wake_none", rc == 0, "woken=%ld", rc);

	/* Two threads alternate ownership of fx_word purely through futexes. */
	if (pthread_create(&th, NULL, futex_worker, NULL) != 0) {
		check("futex_pingpong", 0, "pthread_create failed");
		return;
	}
	for (int i = 0; i < FUTEX_ROUNDS; i++) {
		futex_hand_to(&fx_word, 1);
		main_waits += futex_wait_for(&fx_word, 0);
	}
	pthread_join(th, NULL);
	/* With one CPU each side must actually sleep; on SMP hosts the other
	 * thread may already be done, so require at least some real sleeps. */
	check("futex_pingpong", fx_word == 0 && main_waits + fx_worker_waits > 0,
	      "rounds=%d sleeps main=%ld worker=%ld", FUTEX_ROUNDS, main_waits,
	      fx_worker_waits);
}

int main(void)
{
	xc_start_watchdog(WATCHDOG_SECONDS);

	test_mutex();
	test_condvar();
	test_futex();
	return g_failed ? 1 : 0;
}
