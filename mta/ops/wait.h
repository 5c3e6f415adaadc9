/*
 * mta/ops/wait.h -- a request (an HTTP scrape, a control command) waiting
 * for its owner's data before it is answered, without the loop waiting:
 * the endpoint asks a gate whether it may answer now, and if not, the
 * owner calls w->go(w) once the data came (mta/ops/ops.h asks the queue
 * role).  The endpoint embeds the struct ops_wait in its connection and
 * calls ops_wait_leave() if the connection goes away first.
 */
#ifndef MOAT_MTA_OPS_WAIT_H
#define MOAT_MTA_OPS_WAIT_H

#include <stddef.h>

struct ops_wait {
	void (*go)(struct ops_wait *w);   /* set by the endpoint */
	struct ops_wait  *next;
	struct ops_wait **pprev;          /* NULL when not waiting */
};

/* 1: answer now; 0: w waits, and w->go(w) runs later, from the loop. */
typedef int ops_gate_fn(void *arg, struct ops_wait *w);

/* Put w at the head of list (the owner's). */
static inline void ops_wait_join(struct ops_wait **list, struct ops_wait *w)
{
	w->next = *list;
	if (*list != NULL)
		(*list)->pprev = &w->next;
	w->pprev = list;
	*list = w;
}

/* Take w out of the list it waits in, if any. */
static inline void ops_wait_leave(struct ops_wait *w)
{
	if (w->pprev == NULL)
		return;
	*w->pprev = w->next;
	if (w->next != NULL)
		w->next->pprev = w->pprev;
	w->next = NULL;
	w->pprev = NULL;
}

#endif
