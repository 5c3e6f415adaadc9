/*
 * queue/store.h -- what queue/store.c lends the other LMDB files of queue/
 * (queue/sts.c): its transactions and one more named database.  For
 * queue/ only: it names LMDB's types.  The rules of queue/store.c hold:
 * one read transaction reset and renewed (store_read/store_read_end), a
 * write transaction only in the writer, none left open across a call.
 */
#ifndef MOAT_QUEUE_STORE_H
#define MOAT_QUEUE_STORE_H

#include <lmdb.h>

#include "queue/queue.h"

/* The "sts" database (queue/FORMAT.md), opened once per queue: the writer
 * creates it if missing.  QUEUE_OK with *dbi set, QUEUE_ENOTFOUND when a
 * reader finds none (no policy was ever cached), or another QUEUE_* code. */
int store_sts_dbi(struct queue *q, MDB_dbi *dbi);

/* The queue's read transaction: begun or renewed; end it with
 * store_read_end() before returning to the caller.  An LMDB code. */
int store_read(struct queue *q, MDB_txn **txn);
void store_read_end(struct queue *q);

/* A write transaction (EINVAL on a reader); store_write_end() commits
 * it, or aborts it when rc is not 0, and returns the QUEUE_* code. */
int store_write(struct queue *q, MDB_txn **txn);
int store_write_end(MDB_txn *txn, int rc);

/* An LMDB or errno code as a QUEUE_* code. */
int store_rc(int rc);

#endif
