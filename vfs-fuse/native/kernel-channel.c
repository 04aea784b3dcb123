/*
 * CloudFS's channel to the kernel: libfuse 2's own, plus what lets the kernel cache attributes without
 * breaking close-to-open consistency. Included into fuse-native.c by build.mjs.
 *
 * libfuse 2's high-level API (all fuse-native offers) hides the kernel's node ids, so a file system
 * cannot tell the kernel that cached attributes went stale; CloudFS therefore had the kernel cache none
 * (attr_timeout=0), and every stat(2) crossed into JavaScript. This channel reads and writes /dev/fuse as
 * libfuse's does (fuse_kern_chan.c), and on the way:
 *  - before an OPEN is served, invalidates that inode's attributes, so what is read after open(2) is the
 *    size and times CloudFS has now, whatever another node did since (close-to-open);
 *  - learns each inode's node id from the replies that name one (LOOKUP, CREATE, MKDIR, SYMLINK, LINK,
 *    MKNOD: a fuse_entry_out whose attr.ino is CloudFS's inode number, `use_ino`), so that
 *    `fuse_native_invalidate(ino)` can invalidate an inode whose record the metadata watch saw change.
 *  - `fuse_native_invalidate_entry(parentIno, name)` drops the kernel's cached name, for a directory entry
 *    the watch saw change (renamed, replaced or removed on another node).
 * Only attributes are invalidated (offset -1): that takes no lock a pending request could hold, so it is
 * safe from a FUSE worker thread and from JavaScript's thread alike. Page caches stay libfuse's
 * `auto_cache` business. A name's invalidation takes its directory's lock, which a request in flight in
 * that directory holds until JavaScript answers it: those go through a thread of their own, never from
 * JavaScript's thread.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/uio.h>
#include "fuse_kernel.h"

/* Requests in flight whose reply names an inode; more than this at once are simply not learnt from. */
#define CFS_PENDING_SLOTS 512
/* The ino -> node id table grows to this many slots (16 bytes each), then starts again empty. */
#define CFS_MAX_SLOTS (1u << 21)

/* A name to invalidate, queued for the notifier thread. */
typedef struct cfs_name {
  struct cfs_name *next;
  uint64_t parent; /* node id */
  size_t length;
  char name[];
} cfs_name_t;

typedef struct {
  struct fuse_chan *chan; /* this channel (the session's); the kernel's own keeps owning the fd */
  pthread_mutex_t lock;
  int closed;
  uint64_t pending[CFS_PENDING_SLOTS]; /* request uniques, 0 = free */
  uint64_t *inos;                      /* open addressing, 0 = free */
  uint64_t *nodeids;
  size_t slots;
  size_t used;
  cfs_name_t *names, *last_name; /* the notifier's queue */
  pthread_cond_t named;
} cfs_chan_t;

static void cfs_reset_table(cfs_chan_t *c, size_t slots) {
  free(c->inos);
  free(c->nodeids);
  c->inos = calloc(slots, sizeof(uint64_t));
  c->nodeids = calloc(slots, sizeof(uint64_t));
  c->slots = (c->inos == NULL || c->nodeids == NULL) ? 0 : slots;
  c->used = 0;
}

static size_t cfs_slot(const cfs_chan_t *c, uint64_t ino) {
  size_t i = (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 11) & (c->slots - 1);
  while (c->inos[i] != 0 && c->inos[i] != ino) i = (i + 1) & (c->slots - 1);
  return i;
}

/* Called with the lock held. */
static void cfs_remember(cfs_chan_t *c, uint64_t ino, uint64_t nodeid) {
  if (c->slots == 0) return;
  if ((c->used + 1) * 2 > c->slots) {
    size_t old_slots = c->slots;
    uint64_t *old_inos = c->inos, *old_nodeids = c->nodeids;
    c->inos = c->nodeids = NULL;
    /* Past the cap: start afresh. A forgotten inode is invalidated only at its next open. */
    cfs_reset_table(c, old_slots * 2 <= CFS_MAX_SLOTS ? old_slots * 2 : old_slots);
    if (c->slots == old_slots * 2)
      for (size_t i = 0; i < old_slots; i++)
        if (old_inos[i] != 0) {
          size_t j = cfs_slot(c, old_inos[i]);
          c->inos[j] = old_inos[i];
          c->nodeids[j] = old_nodeids[i];
          c->used++;
        }
    free(old_inos);
    free(old_nodeids);
    if (c->slots == 0) return;
  }
  size_t i = cfs_slot(c, ino);
  if (c->inos[i] == 0) c->used++;
  c->inos[i] = ino;
  c->nodeids[i] = nodeid;
}

static void cfs_expect(cfs_chan_t *c, uint64_t unique) {
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < CFS_PENDING_SLOTS; i++)
    if (c->pending[i] == 0) {
      c->pending[i] = unique;
      break;
    }
  pthread_mutex_unlock(&c->lock);
}

/* A reply is about to be written: if its request was one that names an inode, learn the node id. */
static void cfs_learn(cfs_chan_t *c, const struct iovec iov[], size_t count) {
  const struct fuse_out_header *out = iov[0].iov_base;
  pthread_mutex_lock(&c->lock);
  int expected = 0;
  for (size_t i = 0; i < CFS_PENDING_SLOTS; i++)
    if (c->pending[i] == out->unique) {
      c->pending[i] = 0;
      expected = 1;
      break;
    }
  if (expected && out->error == 0) {
    /* The fuse_entry_out after the header, wherever libfuse split its iovecs. */
    struct fuse_entry_out entry;
    size_t got = 0;
    for (size_t i = 0; i < count && got < sizeof entry; i++) {
      size_t skip = i == 0 ? sizeof *out : 0;
      if (iov[i].iov_len <= skip) continue;
      size_t n = iov[i].iov_len - skip;
      if (n > sizeof entry - got) n = sizeof entry - got;
      memcpy((char *)&entry + got, (const char *)iov[i].iov_base + skip, n);
      got += n;
    }
    if (got >= offsetof(struct fuse_entry_out, attr) + sizeof entry.attr.ino && entry.nodeid != 0 && entry.attr.ino != 0)
      cfs_remember(c, entry.attr.ino, entry.nodeid);
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
  switch (in->opcode) {
    case FUSE_OPEN:
      fuse_lowlevel_notify_inval_inode(ch, in->nodeid, -1, 0);
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

/* As libfuse's fuse_kern_chan_send, learning from replies first. */
static int cfs_send(struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (iov == NULL) return 0;
  const struct fuse_out_header *out = count > 0 && iov[0].iov_len >= sizeof *out ? iov[0].iov_base : NULL;
  if (out != NULL && out->unique != 0) cfs_learn(fuse_chan_data(ch), iov, count);
  ssize_t res = writev(fuse_chan_fd(ch), iov, count);
  if (res == -1) {
    int err = errno;
    /* ENOENT: the request was interrupted */
    if (!fuse_session_exited(fuse_chan_session(ch)) && err != ENOENT) perror("fuse: writing device");
    return -err;
  }
  return 0;
}

/* The notifier thread: names to invalidate, one at a time, until the channel closes. */
static void *cfs_notifier(void *data) {
  cfs_chan_t *c = data;
  pthread_mutex_lock(&c->lock);
  for (;;) {
    while (c->names == NULL && !c->closed) pthread_cond_wait(&c->named, &c->lock);
    if (c->closed) break;
    cfs_name_t *n = c->names;
    c->names = n->next;
    if (c->names == NULL) c->last_name = NULL;
    pthread_mutex_unlock(&c->lock);
    /* ENOENT (the kernel has no such name cached) is the common, harmless answer. */
    fuse_lowlevel_notify_inval_entry(c->chan, n->parent, n->name, n->length);
    free(n);
    pthread_mutex_lock(&c->lock);
  }
  while (c->names != NULL) {
    cfs_name_t *n = c->names;
    c->names = n->next;
    free(n);
  }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

/* The session destroys this channel; its state is kept (a late invalidate finds it closed). */
static void cfs_destroy(struct fuse_chan *ch) {
  cfs_chan_t *c = fuse_chan_data(ch);
  pthread_mutex_lock(&c->lock);
  c->closed = 1;
  cfs_reset_table(c, 0);
  pthread_cond_signal(&c->named);
  pthread_mutex_unlock(&c->lock);
}

static struct fuse_chan_ops cfs_chan_ops = {.receive = cfs_receive, .send = cfs_send, .destroy = cfs_destroy};

/* A channel over the kernel channel's fd, for fuse_new; NULL if out of memory. */
static struct fuse_chan *cfs_chan_over(struct fuse_chan *kernel, cfs_chan_t **state) {
  cfs_chan_t *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->named, NULL);
  cfs_reset_table(c, 1024);
  c->chan = fuse_chan_new(&cfs_chan_ops, fuse_chan_fd(kernel), fuse_chan_bufsize(kernel), c);
  if (c->chan == NULL) return NULL;
  pthread_t notifier;
  if (pthread_create(&notifier, NULL, cfs_notifier, c) != 0) return NULL;
  pthread_detach(notifier);
  pthread_mutex_lock(&c->lock);
  cfs_remember(c, FUSE_ROOT_ID, FUSE_ROOT_ID); /* the root is never looked up */
  pthread_mutex_unlock(&c->lock);
  *state = c;
  return c->chan;
}

/* fuse_native_invalidate(thread, ino) -> whether the kernel was told (it knew the inode). */
NAPI_METHOD(fuse_native_invalidate) {
  NAPI_ARGV(2)
  NAPI_ARGV_BUFFER_CAST(fuse_thread_t *, ft, 0);
  int64_t ino;
  napi_get_value_int64(env, argv[1], &ino);
  int told = 0;
  cfs_chan_t *c = ft->cfs;
  if (c != NULL && ino > 0) {
    pthread_mutex_lock(&c->lock);
    if (!c->closed && c->slots > 0) {
      size_t i = cfs_slot(c, (uint64_t)ino);
      if (c->inos[i] == (uint64_t)ino) told = fuse_lowlevel_notify_inval_inode(c->chan, c->nodeids[i], -1, 0) == 0;
    }
    pthread_mutex_unlock(&c->lock);
  }
  napi_value result;
  napi_get_boolean(env, told, &result);
  return result;
}

/* fuse_native_invalidate_entry(thread, parentIno, name) -> whether it was queued (the parent is known). */
NAPI_METHOD(fuse_native_invalidate_entry) {
  NAPI_ARGV(3)
  NAPI_ARGV_BUFFER_CAST(fuse_thread_t *, ft, 0);
  int64_t parent;
  napi_get_value_int64(env, argv[1], &parent);
  NAPI_ARGV_BUFFER(name, 2);
  int queued = 0;
  cfs_chan_t *c = ft->cfs;
  if (c != NULL && parent > 0 && name_len > 0 && name_len <= 1024) {
    pthread_mutex_lock(&c->lock);
    if (!c->closed && c->slots > 0) {
      size_t i = cfs_slot(c, (uint64_t)parent);
      cfs_name_t *n = c->inos[i] == (uint64_t)parent ? malloc(sizeof *n + name_len) : NULL;
      if (n != NULL) {
        n->next = NULL;
        n->parent = c->nodeids[i];
        n->length = name_len;
        memcpy(n->name, name, name_len);
        if (c->last_name != NULL) c->last_name->next = n;
        else c->names = n;
        c->last_name = n;
        pthread_cond_signal(&c->named);
        queued = 1;
      }
    }
    pthread_mutex_unlock(&c->lock);
  }
  napi_value result;
  napi_get_boolean(env, queued, &result);
  return result;
}
