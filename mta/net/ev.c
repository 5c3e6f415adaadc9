/* mta/ev.c -- see ev.h */
#include "ev.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 256

int64_t ev_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ev_init(struct ev_loop *l)
{
	*l = (struct ev_loop){0};
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -1;
	l->now = ev_monotonic_ms();
	return 0;
}

void ev_free(struct ev_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->heap);
	l->heap = NULL;
	l->epfd = -1;
}

int ev_io_set(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct epoll_event e = {0};
	int op;

	if (io->added && events == io->events)
		return 0;
	e.events = ((events & EV_READ) ? EPOLLIN : 0u) | ((events & EV_WRITE) ? EPOLLOUT : 0u);
	e.data.ptr = io;
	if (!io->added)
		op = EPOLL_CTL_ADD;
	else
		op = EPOLL_CTL_MOD;
	if (epoll_ctl(l->epfd, op, io->fd, &e) < 0)
		return -1;
	io->added = 1;
	io->events = events;
	return 0;
}

void ev_io_del(struct ev_loop *l, struct ev_io *io)
{
	if (io->added)
		(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->added = 0;
	io->events = 0;
	/* Its caller may free io next: no later event of this batch may
	 * reach it (a shutdown that ends deliveries in flight does). */
	for (int j = l->batch_i + 1; l->batch != NULL && j < l->batch_n; j++)
		if (l->batch[j].data.ptr == io)
			l->batch[j].data.ptr = NULL;
}

/* The heap: slot i (1-based) has children 2i and 2i+1. */
static void heap_place(struct ev_loop *l, size_t i, struct ev_timer *t)
{
	l->heap[i - 1] = t;
	t->slot = i;
}

static void heap_up(struct ev_loop *l, size_t i)
{
	struct ev_timer *t = l->heap[i - 1];

	while (i > 1 && l->heap[i / 2 - 1]->when > t->when) {
		heap_place(l, i, l->heap[i / 2 - 1]);
		i /= 2;
	}
	heap_place(l, i, t);
}

static void heap_down(struct ev_loop *l, size_t i)
{
	struct ev_timer *t = l->heap[i - 1];

	for (;;) {
		size_t c = 2 * i;

		if (c > l->nheap)
			break;
		if (c < l->nheap && l->heap[c]->when < l->heap[c - 1]->when)
			c++;
		if (l->heap[c - 1]->when >= t->when)
			break;
		heap_place(l, i, l->heap[c - 1]);
		i = c;
	}
	heap_place(l, i, t);
}

void ev_timer_stop(struct ev_loop *l, struct ev_timer *t)
{
	size_t i = t->slot;
	struct ev_timer *last;

	if (i == 0)
		return;
	t->slot = 0;
	last = l->heap[--l->nheap];
	if (last == t)
		return;
	heap_place(l, i, last);
	heap_up(l, i);
	heap_down(l, last->slot);
}

void ev_timer_start(struct ev_loop *l, struct ev_timer *t, int64_t ms)
{
	ev_timer_stop(l, t);
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct ev_timer **h = realloc(l->heap, cap * sizeof *h);

		if (h == NULL)
			abort(); /* a timer we cannot arm is a session that never ends */
		l->heap = h;
		l->capheap = cap;
	}
	t->when = l->now + ms;
	l->nheap++;
	heap_place(l, l->nheap, t);
	heap_up(l, l->nheap);
}

void ev_set_after_batch(struct ev_loop *l, ev_hook_cb *cb, void *arg)
{
	l->after_batch = cb;
	l->after_arg = arg;
}

void ev_stop(struct ev_loop *l)
{
	l->stop = 1;
}

int ev_run(struct ev_loop *l)
{
	struct epoll_event evs[EV_BATCH];

	while (!l->stop) {
		int timeout = -1, n, i;

		if (l->nheap) {
			int64_t d = l->heap[0]->when - ev_monotonic_ms();
			timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
		}
		n = epoll_wait(l->epfd, evs, EV_BATCH, timeout);
		if (n < 0 && errno != EINTR)
			return -1;
		l->now = ev_monotonic_ms();
		l->batch = evs;
		l->batch_n = n;
		for (i = 0; i < n; i++) {
			struct ev_io *io = evs[i].data.ptr;
			unsigned e = 0;

			l->batch_i = i;
			if (io == NULL)
				continue; /* deleted (and maybe freed) earlier in this batch */

			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				e |= EV_READ;
			if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				e |= EV_WRITE;
			/* An io deleted by an earlier callback in this batch has
			 * events == 0 and no longer wants to hear from us. */
			e &= io->events | ((evs[i].events & (EPOLLHUP | EPOLLERR)) ? EV_READ : 0u);
			if (e && io->added)
				io->cb(l, io, e);
		}
		l->batch = NULL;
		l->batch_n = 0;
		while (l->nheap && l->heap[0]->when <= l->now) {
			struct ev_timer *t = l->heap[0];

			ev_timer_stop(l, t);
			t->cb(l, t);
		}
		if (l->after_batch)
			l->after_batch(l, l->after_arg);
	}
	return 0;
}
