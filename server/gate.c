/* gate.c - the door every request passes (serve_request): requests enter
 * and leave it; a drain waits for those in flight and holds new ones back
 * (they wait, none fails) until the gate opens again.  Lock-free on the
 * request path: an atomic count of requests inside and a flag; a request
 * that finds the gate closed waits on a condition variable.
 *
 * The drainer raises DRAINING, then waits for INSIDE to reach 0; a request
 * adds itself to INSIDE, then looks at DRAINING (both sequentially
 * consistent: one of the two sees the other), and if closed takes itself
 * out again and waits. */
#include <pthread.h>
#include <time.h>

#include "server.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;     /* INSIDE reached 0, or the gate opened */
	pthread_mutex_t drainers;   /* one drain at a time */
	int draining;               /* atomic */
	int64_t inside;             /* atomic */
	uint64_t drain_id;          /* which drain a waiter waited on */
	void *live;                 /* atomic: the running live merge, or NULL */
	gate_wait_fn on_wait;
} g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
	.drainers = PTHREAD_MUTEX_INITIALIZER,
};

void gate_set_wait_fn(gate_wait_fn fn)
{
	g.on_wait = fn;
}

static void wake(void)
{
	pthread_mutex_lock(&g.lock);
	pthread_cond_broadcast(&g.changed);
	pthread_mutex_unlock(&g.lock);
}

void *gate_enter(void)
{
	for (;;) {
		__atomic_add_fetch(&g.inside, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&g.draining, __ATOMIC_SEQ_CST))
			return __atomic_load_n(&g.live, __ATOMIC_ACQUIRE);
		if (__atomic_sub_fetch(&g.inside, 1, __ATOMIC_SEQ_CST) == 0)
			wake();
		uint64_t t0 = stats_now_ns(), id;
		pthread_mutex_lock(&g.lock);
		id = g.drain_id;
		while (__atomic_load_n(&g.draining, __ATOMIC_SEQ_CST))
			pthread_cond_wait(&g.changed, &g.lock);
		pthread_mutex_unlock(&g.lock);
		if (g.on_wait)
			g.on_wait(id, stats_now_ns() - t0);
	}
}

void gate_leave(void)
{
	if (__atomic_sub_fetch(&g.inside, 1, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&g.draining, __ATOMIC_SEQ_CST))
		wake();
}

uint64_t gate_drain(void)
{
	pthread_mutex_lock(&g.drainers);
	pthread_mutex_lock(&g.lock);
	uint64_t id = ++g.drain_id;
	__atomic_store_n(&g.draining, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&g.inside, __ATOMIC_SEQ_CST) > 0) {
		/* a timed wait: a wake-up lost between the count and the flag
		 * costs a millisecond, not a hang */
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 1000000;
		if (t.tv_nsec >= 1000000000)
			t.tv_sec++, t.tv_nsec -= 1000000000;
		pthread_cond_timedwait(&g.changed, &g.lock, &t);
	}
	pthread_mutex_unlock(&g.lock);
	return id;
}

void gate_open(void)
{
	pthread_mutex_lock(&g.lock);
	__atomic_store_n(&g.draining, 0, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&g.changed);
	pthread_mutex_unlock(&g.lock);
	pthread_mutex_unlock(&g.drainers);
}

void gate_set_live(void *live)
{
	__atomic_store_n(&g.live, live, __ATOMIC_RELEASE);
}
