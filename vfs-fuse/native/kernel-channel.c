/*
 * CloudFS's channel to the kernel: libfuse 2's own, plus what lets the kernel cache attributes and
 * names without breaking close-to-open consistency. Included into fuse-native.c by build.mjs.
 *
 * libfuse 2's high-level API (all fuse-native offers) hides the kernel's node ids, so a file system
 * cannot tell the kernel that what it cached went stale; CloudFS therefore had the kernel cache no
 * attributes (attr_timeout=0), and every stat(2) crossed into JavaScript. This channel reads and writes
 * /dev/fuse as libfuse's does (fuse_kern_chan.c), and on the way:
 *  - before an OPEN is served, invalidates that inode's attributes, so what is read after open(2) is the
 *    size and times CloudFS has now, whatever another node did since (close-to-open);
 *  - before the answer to a lock request that took a lock (SETLK/SETLKW, POSIX or flock) goes out,
 *    drops that inode's cached pages: what is read under the lock is what its last holder stored;
 *  - learns each inode's node ids from the replies that name one (LOOKUP, CREATE, MKDIR, MKNOD, SYMLINK,
 *    LINK: a fuse_entry_out whose attr.ino is CloudFS's inode number, `use_ino`). libfuse gives a node
 *    id per name, so a hard-linked inode may have several; the last two are kept;
 *  - `fuse_native_invalidate(ino)` and `fuse_native_invalidate_entry(parentIno, name)` queue
 *    FUSE_NOTIFY_INVAL_INODE (attributes only) and FUSE_NOTIFY_INVAL_ENTRY for what the metadata watch
 *    saw change. A reply that names an inode invalidated while its request was in flight goes out with
 *    no attribute validity: the kernel may not have had the inode yet to be told.
 * Notifications other than the OPEN one go out from notifier threads, never from JavaScript's thread:
 * a name's takes its directory's lock, and an inode's may wait for the inode's eviction, and either
 * can be held by a request that waits for JavaScript. The OPEN's is safe on the FUSE thread: the
 * opening process holds the inode. Names and inodes have a thread each, so a busy directory does not
 * hold up attributes. `cfs_shutdown` stops both before libfuse closes the fd.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include "fuse_kernel.h"

/* Requests in flight whose reply names an inode; more than this at once are simply not learnt from. */
#define CFS_PENDING_SLOTS 512
/* The ino table grows to this many slots (32 bytes each), then starts again empty. */
#define CFS_MAX_SLOTS (1u << 20)
#define CFS_NODEIDS 2

/* A notification to send: an inode's attributes (length 0) or a name in a directory. */
typedef struct cfs_note {
  struct cfs_note *next;
  uint64_t nodeid;
  size_t length;
  char name[];
} cfs_note_t;

typedef struct {
  cfs_note_t *head, *tail;
  pthread_cond_t ready;
  pthread_t thread;
  int started;
} cfs_queue_t;

typedef struct {
  uint64_t ino; /* 0 = free */
  uint64_t nodeids[CFS_NODEIDS];
  uint64_t invalidated; /* generation of the last invalidation */
} cfs_slot_t;

typedef struct {
  uint64_t unique; /* 0 = free */
  uint64_t generation; /* when the request came in */
} cfs_pending_t;

/* A lock request in flight (SETLK/SETLKW taking a lock): its inode's pages are dropped when granted. */
#define CFS_LOCK_SLOTS 256
typedef struct {
  uint64_t unique; /* 0 = free */
  uint64_t nodeid;
} cfs_lock_pending_t;

/* The last requests the kernel asked to interrupt (a signal came to their caller): a ring. */
#define CFS_INTERRUPT_SLOTS 64

typedef struct {
  struct fuse_chan *chan; /* this channel (the session's); the kernel's own keeps owning the fd */
  pthread_mutex_t lock;
  int closed;
  uint64_t generation;
  cfs_pending_t pending[CFS_PENDING_SLOTS];
  cfs_lock_pending_t locking[CFS_LOCK_SLOTS];
  cfs_slot_t *slots;
  size_t capacity;
  size_t used;
  cfs_queue_t inodes, names;
  uint64_t interrupted[CFS_INTERRUPT_SLOTS];
  unsigned interrupted_next;
} cfs_chan_t;

/* Called with the lock held, as every function here that takes a cfs_chan_t unless it says otherwise. */
static void cfs_reset_table(cfs_chan_t *c, size_t capacity) {
  free(c->slots);
  c->slots = capacity == 0 ? NULL : calloc(capacity, sizeof(cfs_slot_t));
  c->capacity = c->slots == NULL ? 0 : capacity;
  c->used = 0;
}

static size_t cfs_index(const cfs_chan_t *c, uint64_t ino) {
  size_t i = (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 11) & (c->capacity - 1);
  while (c->slots[i].ino != 0 && c->slots[i].ino != ino) i = (i + 1) & (c->capacity - 1);
  return i;
}

/* The inode's slot, made if missing; NULL without a table. */
static cfs_slot_t *cfs_slot(cfs_chan_t *c, uint64_t ino) {
  if (c->capacity == 0) return NULL;
  if ((c->used + 1) * 2 > c->capacity) {
    cfs_slot_t *old = c->slots;
    size_t old_capacity = c->capacity;
    c->slots = NULL;
    if (old_capacity * 2 <= CFS_MAX_SLOTS) {
      cfs_reset_table(c, old_capacity * 2);
      for (size_t i = 0; i < old_capacity && c->capacity > 0; i++)
        if (old[i].ino != 0) {
          c->slots[cfs_index(c, old[i].ino)] = old[i];
          c->used++;
        }
    } else {
      /* Past the cap: start afresh. A forgotten inode is invalidated at its next open or lookup. */
      cfs_reset_table(c, old_capacity);
    }
    free(old);
    if (c->capacity == 0) return NULL;
    cfs_slot_t *root = &c->slots[cfs_index(c, FUSE_ROOT_ID)]; /* the root is never looked up again */
    if (root->ino == 0) {
      root->ino = FUSE_ROOT_ID;
      root->nodeids[0] = FUSE_ROOT_ID;
      c->used++;
    }
  }
  cfs_slot_t *s = &c->slots[cfs_index(c, ino)];
  if (s->ino == 0) {
    s->ino = ino;
    c->used++;
  }
  return s;
}

static void cfs_remember(cfs_chan_t *c, uint64_t ino, uint64_t nodeid) {
  cfs_slot_t *s = cfs_slot(c, ino);
  if (s == NULL) return;
  for (int i = 0; i < CFS_NODEIDS; i++)
    if (s->nodeids[i] == nodeid) return;
  memmove(&s->nodeids[1], &s->nodeids[0], sizeof(uint64_t) * (CFS_NODEIDS - 1));
  s->nodeids[0] = nodeid;
}

/* Queues a notification for its thread; false if out of memory. */
static int cfs_enqueue(cfs_chan_t *c, cfs_queue_t *q, uint64_t nodeid, const char *name, size_t length) {
  cfs_note_t *n = malloc(sizeof *n + length);
  if (n == NULL) return 0;
  n->next = NULL;
  n->nodeid = nodeid;
  n->length = length;
  if (length > 0) memcpy(n->name, name, length);
  if (q->tail != NULL) q->tail->next = n;
  else q->head = n;
  q->tail = n;
  pthread_cond_signal(&q->ready);
  return 1;
}

typedef struct {
  cfs_chan_t *c;
  cfs_queue_t *q;
} cfs_notifier_arg_t;

/* A notifier thread (takes the lock itself): sends its queue's notifications until the channel closes. */
static void *cfs_notifier(void *data) {
  cfs_notifier_arg_t arg = *(cfs_notifier_arg_t *)data;
  free(data);
  cfs_chan_t *c = arg.c;
  cfs_queue_t *q = arg.q;
  pthread_mutex_lock(&c->lock);
  for (;;) {
    while (q->head == NULL && !c->closed) pthread_cond_wait(&q->ready, &c->lock);
    if (c->closed) break;
    cfs_note_t *n = q->head;
    q->head = n->next;
    if (q->head == NULL) q->tail = NULL;
    pthread_mutex_unlock(&c->lock);
    /* ENOENT (the kernel has no such inode or name cached) is the common, harmless answer. */
    if (n->length == 0) fuse_lowlevel_notify_inval_inode(c->chan, n->nodeid, -1, 0);
    else fuse_lowlevel_notify_inval_entry(c->chan, n->nodeid, n->name, n->length);
    free(n);
    pthread_mutex_lock(&c->lock);
  }
  while (q->head != NULL) {
    cfs_note_t *n = q->head;
    q->head = n->next;
    free(n);
  }
  q->tail = NULL;
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

static int cfs_start_notifier(cfs_chan_t *c, cfs_queue_t *q) {
  pthread_cond_init(&q->ready, NULL);
  cfs_notifier_arg_t *arg = malloc(sizeof *arg);
  if (arg == NULL) return 0;
  arg->c = c;
  arg->q = q;
  if (pthread_create(&q->thread, NULL, cfs_notifier, arg) != 0) {
    free(arg);
    return 0;
  }
  q->started = 1;
  return 1;
}

/*
 * Stops the notifiers (takes the lock itself); nothing is sent on the channel afterwards. Called when
 * the session's loop has ended (its connection is gone, so no notification can be waiting on a lock),
 * before libfuse closes the fd, or when the mount failed.
 */
static void cfs_shutdown(cfs_chan_t *c) {
  if (c == NULL) return;
  pthread_mutex_lock(&c->lock);
  c->closed = 1;
  pthread_cond_signal(&c->inodes.ready);
  pthread_cond_signal(&c->names.ready);
  pthread_mutex_unlock(&c->lock);
  if (c->inodes.started) pthread_join(c->inodes.thread, NULL);
  if (c->names.started) pthread_join(c->names.thread, NULL);
  c->inodes.started = c->names.started = 0;
}

/* A request whose reply names an inode (takes the lock itself). */
static void cfs_expect(cfs_chan_t *c, uint64_t unique) {
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < CFS_PENDING_SLOTS; i++)
    if (c->pending[i].unique == 0) {
      c->pending[i].unique = unique;
      c->pending[i].generation = c->generation;
      break;
    }
  pthread_mutex_unlock(&c->lock);
}

/*
 * A reply is about to be written (takes the lock itself): if its request names an inode, learn the node
 * id, and if that inode was invalidated since the request came in, send its attributes as not valid.
 */
static void cfs_learn(cfs_chan_t *c, const struct iovec iov[], size_t count) {
  const struct fuse_out_header *out = iov[0].iov_base;
  pthread_mutex_lock(&c->lock);
  cfs_pending_t *p = NULL;
  for (size_t i = 0; i < CFS_PENDING_SLOTS && p == NULL; i++)
    if (c->pending[i].unique == out->unique) p = &c->pending[i];
  if (p != NULL) {
    p->unique = 0;
    /* libfuse sends the fuse_entry_out whole in the iovec after the header. */
    struct fuse_entry_out *entry = count > 1 ? iov[1].iov_base : NULL;
    size_t needed = offsetof(struct fuse_entry_out, attr) + sizeof entry->attr.ino;
    if (out->error == 0 && entry != NULL && iov[0].iov_len == sizeof *out && iov[1].iov_len >= needed &&
        entry->nodeid != 0 && entry->attr.ino != 0) {
      cfs_slot_t *s = cfs_slot(c, entry->attr.ino);
      if (s != NULL && s->invalidated > p->generation) {
        entry->attr_valid = 0;
        entry->attr_valid_nsec = 0;
      }
      cfs_remember(c, entry->attr.ino, entry->nodeid);
    }
  }
  pthread_mutex_unlock(&c->lock);
}

/* As libfuse's fuse_kern_chan_receive, then the bookkeeping above. */
static int cfs_receive(struct fuse_chan **chp, char *buf, size_t size) {
  struct fuse_chan *ch = *chp;
  struct fuse_session *se = fuse_chan_session(ch);
  ssize_t res;
  int err;
  do {
    res = read(fuse_chan_fd(ch), buf, size);
    err = errno;
  } while (res == -1 && err == ENOENT && !fuse_session_exited(se)); /* ENOENT: interrupted, restart */
  if (fuse_session_exited(se)) return 0;
  if (res == -1) {
    if (err == ENODEV) { /* unmounted */
      fuse_session_exit(se);
      return 0;
    }
    if (err != EINTR && err != EAGAIN) perror("fuse: reading device");
    return -err;
  }
  if ((size_t)res < sizeof(struct fuse_in_header)) {
    fprintf(stderr, "short read on fuse device\n");
    return -EIO;
  }
  const struct fuse_in_header *in = (const struct fuse_in_header *)buf;
  /* This thread serves the request next: the operation's handler reads it (fuse.caller[3]). */
  cfs_request_opcode = in->opcode;
  cfs_request_unique = in->unique;
  switch (in->opcode) {
    case FUSE_INTERRUPT:
      /*
       * libfuse 2's high-level API lets an operation run on (no `intr`): a request JavaScript keeps
       * waiting (a blocked F_SETLKW or flock) asks `fuse_native_interrupted` and answers EINTR.
       */
      if ((size_t)res >= sizeof(struct fuse_in_header) + sizeof(struct fuse_interrupt_in)) {
        const struct fuse_interrupt_in *arg = (const struct fuse_interrupt_in *)(buf + sizeof(struct fuse_in_header));
        cfs_chan_t *c = fuse_chan_data(ch);
        pthread_mutex_lock(&c->lock);
        c->interrupted[c->interrupted_next++ % CFS_INTERRUPT_SLOTS] = arg->unique;
        pthread_mutex_unlock(&c->lock);
      }
      break;
    case FUSE_OPEN:
      fuse_lowlevel_notify_inval_inode(ch, in->nodeid, -1, 0);
      break;
    case FUSE_SETATTR:
      /*
       * libfuse 2's high-level API sets the times only when both come, and drops a setattr of one
       * (utimensat with UTIME_OMIT: `touch -a`, `touch -m`): the other comes as UTIME_OMIT, which
       * CloudFS's utimens keeps (build.mjs's cfs_utime).
       */
      if ((size_t)res >= sizeof(struct fuse_in_header) + sizeof(struct fuse_setattr_in)) {
        struct fuse_setattr_in *arg = (struct fuse_setattr_in *)(buf + sizeof(struct fuse_in_header));
        uint32_t times = arg->valid & (FATTR_ATIME | FATTR_MTIME);
        if (times == FATTR_ATIME) {
          arg->valid |= FATTR_MTIME;
          arg->mtimensec = UTIME_OMIT;
        } else if (times == FATTR_MTIME) {
          arg->valid |= FATTR_ATIME;
          arg->atimensec = UTIME_OMIT;
        }
      }
      break;
    case FUSE_SETLK:
    case FUSE_SETLKW:
      /* A lock taken (POSIX or flock) is a consistency point, as NFS makes it: see cfs_send. */
      if ((size_t)res >= sizeof(struct fuse_in_header) + sizeof(struct fuse_lk_in)) {
        const struct fuse_lk_in *arg = (const struct fuse_lk_in *)(buf + sizeof(struct fuse_in_header));
        if (arg->lk.type != F_UNLCK) {
          cfs_chan_t *c = fuse_chan_data(ch);
          int kept = 0;
          pthread_mutex_lock(&c->lock);
          for (size_t i = 0; i < CFS_LOCK_SLOTS && !kept; i++)
            if (c->locking[i].unique == 0) {
              c->locking[i].unique = in->unique;
              c->locking[i].nodeid = in->nodeid;
              kept = 1;
            }
          pthread_mutex_unlock(&c->lock);
          /* More lock requests waiting than slots: drop the pages now, before serving, rather than never. */
          if (!kept) fuse_lowlevel_notify_inval_inode(ch, in->nodeid, 0, 0);
        }
      }
      break;
    case FUSE_LOOKUP:
    case FUSE_CREATE:
    case FUSE_MKDIR:
    case FUSE_MKNOD:
    case FUSE_SYMLINK:
    case FUSE_LINK:
      cfs_expect(fuse_chan_data(ch), in->unique);
      break;
  }
  return res;
}

/* As libfuse's fuse_kern_chan_send, learning from replies first (notifications have unique 0). */
static int cfs_send(struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (iov == NULL) return 0;
  const struct fuse_out_header *out = count > 0 && iov[0].iov_len >= sizeof *out ? iov[0].iov_base : NULL;
  if (out != NULL && out->unique != 0) {
    cfs_chan_t *c = fuse_chan_data(ch);
    cfs_learn(c, iov, count);
    /*
     * A lock granted: drop the inode's cached pages before the locker hears of it, so what it reads
     * under the lock is what the node that held the lock before wrote (it stored that before letting
     * go). The locker holds the file open, so the inode cannot be evicted meanwhile (as for OPEN).
     */
    uint64_t granted = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < CFS_LOCK_SLOTS; i++)
      if (c->locking[i].unique == out->unique) {
        if (out->error == 0) granted = c->locking[i].nodeid;
        c->locking[i].unique = 0;
        break;
      }
    pthread_mutex_unlock(&c->lock);
    if (granted != 0) fuse_lowlevel_notify_inval_inode(ch, granted, 0, 0);
  }
  ssize_t res = writev(fuse_chan_fd(ch), iov, count);
  if (res == -1) {
    int err = errno;
    /* ENOENT: the request was interrupted */
    if (!fuse_session_exited(fuse_chan_session(ch)) && err != ENOENT) perror("fuse: writing device");
    return -err;
  }
  return 0;
}

/* The session destroys this channel after cfs_shutdown; the state stays, closed, for late calls. */
static void cfs_destroy(struct fuse_chan *ch) {
  cfs_chan_t *c = fuse_chan_data(ch);
  pthread_mutex_lock(&c->lock);
  c->closed = 1;
  cfs_reset_table(c, 0);
  pthread_mutex_unlock(&c->lock);
}

static struct fuse_chan_ops cfs_chan_ops = {.receive = cfs_receive, .send = cfs_send, .destroy = cfs_destroy};

/* A channel over the kernel channel's fd, for fuse_new; NULL if it cannot be made. */
static struct fuse_chan *cfs_chan_over(struct fuse_chan *kernel, cfs_chan_t **state) {
  cfs_chan_t *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  pthread_mutex_init(&c->lock, NULL);
  pthread_mutex_lock(&c->lock);
  cfs_reset_table(c, 1024);
  cfs_remember(c, FUSE_ROOT_ID, FUSE_ROOT_ID); /* the root is never looked up */
  pthread_mutex_unlock(&c->lock);
  c->chan = fuse_chan_new(&cfs_chan_ops, fuse_chan_fd(kernel), fuse_chan_bufsize(kernel), c);
  if (c->chan == NULL || !cfs_start_notifier(c, &c->inodes) || !cfs_start_notifier(c, &c->names)) {
    cfs_shutdown(c);
    if (c->chan != NULL) fuse_chan_destroy(c->chan); /* not in a session yet: only frees it */
    free(c->slots);
    free(c);
    return NULL;
  }
  *state = c;
  return c->chan;
}

/* fuse_native_interrupted(thread, unique) -> whether the kernel asked to interrupt that request. */
NAPI_METHOD(fuse_native_interrupted) {
  NAPI_ARGV(2)
  NAPI_ARGV_BUFFER_CAST(fuse_thread_t *, ft, 0);
  int64_t unique = 0;
  napi_get_value_int64(env, argv[1], &unique);
  int found = 0;
  cfs_chan_t *c = ft->cfs;
  if (c != NULL && unique > 0) {
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < CFS_INTERRUPT_SLOTS && !found; i++) found = c->interrupted[i] == (uint64_t)unique;
    pthread_mutex_unlock(&c->lock);
  }
  napi_value result;
  napi_get_boolean(env, found, &result);
  return result;
}

/* fuse_native_invalidate(thread, ino) -> whether the kernel will be told (it has the inode). */
NAPI_METHOD(fuse_native_invalidate) {
  NAPI_ARGV(2)
  NAPI_ARGV_BUFFER_CAST(fuse_thread_t *, ft, 0);
  int64_t ino = 0;
  napi_get_value_int64(env, argv[1], &ino);
  int queued = 0;
  cfs_chan_t *c = ft->cfs;
  if (c != NULL && ino > 0) {
    pthread_mutex_lock(&c->lock);
    cfs_slot_t *s = c->closed ? NULL : cfs_slot(c, (uint64_t)ino);
    if (s != NULL) {
      s->invalidated = ++c->generation;
      for (int i = 0; i < CFS_NODEIDS; i++)
        if (s->nodeids[i] != 0) queued |= cfs_enqueue(c, &c->inodes, s->nodeids[i], NULL, 0);
    }
    pthread_mutex_unlock(&c->lock);
  }
  napi_value result;
  napi_get_boolean(env, queued, &result);
  return result;
}

/* fuse_native_invalidate_entry(thread, parentIno, name) -> whether the kernel will be told. */
NAPI_METHOD(fuse_native_invalidate_entry) {
  NAPI_ARGV(3)
  NAPI_ARGV_BUFFER_CAST(fuse_thread_t *, ft, 0);
  int64_t parent = 0;
  napi_get_value_int64(env, argv[1], &parent);
  NAPI_ARGV_BUFFER(name, 2);
  int queued = 0;
  cfs_chan_t *c = ft->cfs;
  if (c != NULL && parent > 0 && name_len > 0 && name_len <= 1024) {
    pthread_mutex_lock(&c->lock);
    cfs_slot_t *s = c->closed || c->capacity == 0 ? NULL : &c->slots[cfs_index(c, (uint64_t)parent)];
    if (s != NULL && s->ino == (uint64_t)parent)
      for (int i = 0; i < CFS_NODEIDS; i++)
        if (s->nodeids[i] != 0) queued |= cfs_enqueue(c, &c->names, s->nodeids[i], name, name_len);
    pthread_mutex_unlock(&c->lock);
  }
  napi_value result;
  napi_get_boolean(env, queued, &result);
  return result;
}
