/*
 * mta/net/ev.h -- the event loop: epoll (level-triggered) for descriptors, a
 * binary min-heap of timers, and one "after the batch" hook, which the
 * server uses for group commit: every message finished while handling one
 * batch of ready descriptors is committed together before the loop sleeps.
 *
 * The caller owns every struct ev_io and struct ev_timer (embed them in
 * your connection); the loop keeps pointers to them until ev_io_del() /
 * ev_timer_stop().  Times are CLOCK_MONOTONIC milliseconds.
 */
#ifndef MOAT_MTA_NET_EV_H
#define MOAT_MTA_NET_EV_H

#include <stddef.h>
#include <stdint.h>

#define EV_READ  0x1u
#define EV_WRITE 0x2u

struct ev_loop;
struct ev_io;
struct ev_timer;

typedef void ev_io_cb(struct ev_loop *l, struct ev_io *io, unsigned events);
typedef void ev_timer_cb(struct ev_loop *l, struct ev_timer *t);
typedef void ev_hook_cb(struct ev_loop *l, void *arg);

struct ev_io {
	int       fd;
	unsigned  events;    /* EV_READ | EV_WRITE currently asked for */
	unsigned  added : 1;
	ev_io_cb *cb;
	void     *arg;
};

struct ev_timer {
	int64_t      when;   /* monotonic ms */
	size_t       slot;   /* index in the heap + 1; 0 when not armed */
	ev_timer_cb *cb;
	void        *arg;
};

struct ev_loop {
	int               epfd;
	int               stop;
	int64_t           now;       /* cached at each wake-up */
	struct ev_timer **heap;
	size_t            nheap, capheap;
	ev_hook_cb       *after_batch;
	void             *after_arg;
	/* The batch ev_run() is dispatching: ev_io_del() removes its io from
	 * the rest, so that a callback may free an io still due in it. */
	struct epoll_event *batch;
	int               batch_i, batch_n;
};

int  ev_init(struct ev_loop *l);       /* 0 or -1 (errno) */
void ev_free(struct ev_loop *l);

/* Set interest (0 removes it from epoll but keeps the io registered).
 * Returns 0 or -1 (errno). */
int  ev_io_set(struct ev_loop *l, struct ev_io *io, unsigned events);
void ev_io_del(struct ev_loop *l, struct ev_io *io);

/* Arm (or re-arm) t to fire at now + ms; stop it. */
void ev_timer_start(struct ev_loop *l, struct ev_timer *t, int64_t ms);
void ev_timer_stop(struct ev_loop *l, struct ev_timer *t);

void ev_set_after_batch(struct ev_loop *l, ev_hook_cb *cb, void *arg);

/* Run until ev_stop(); returns 0, or -1 on an epoll failure. */
int  ev_run(struct ev_loop *l);
void ev_stop(struct ev_loop *l);

int64_t ev_monotonic_ms(void);

#endif
