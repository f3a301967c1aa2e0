/*
 * s3link_fuse: a small N-API binding to libfuse 2 (high-level API, multi-threaded loop).
 *
 * Threads:
 *  - fuse_loop_mt runs on a pthread of ours and spawns libfuse worker threads.
 *  - Each libfuse callback fills a req_t on its own stack, hands it to the JS thread through a
 *    threadsafe function (blocking call, unbounded queue) and waits on the req's semaphore.
 *  - On the JS thread, call_js calls dispatch(opName, token, ...args, caller). JS answers later with
 *    reply(token, errno, value?), which validates the value, writes the result into libfuse's
 *    buffers (stat, statvfs, read/readlink/xattr buffer, fuse_file_info.fh, readdir list) and posts
 *    the semaphore.
 *
 * Safety rules (JS input must never crash the process):
 *  - The token JS holds is a type-tagged external pointing to a heap token, never to the req: the
 *    token forgets the req as soon as it is answered, so late or double replies are ignored, and a
 *    token garbage-collected without a reply answers -EIO.
 *  - Read and write buffers are Node-owned copies, not views of libfuse memory: JS code (a timed out
 *    handler, an fs.read still in flight on the libuv pool) may keep using them after the reply.
 *  - Every value from JS is type- and range-checked; anything wrong answers -EIO.
 *
 * Unlinked open files: handlers get hard_remove semantics (unlink at unlink time, then path null
 * and the fh), emulated on top of libfuse's hiding so that fstat(2) keeps working ("Unlinked open
 * files" below). Do not pass hard_remove to libfuse (src/fuse/native.ts filters it out).
 *
 * Direct I/O ("Direct writes", "Direct reads" below): JS may hand the binding a file handle's
 * content fd; later writes on that handle are pwrite(2)n on the libfuse thread, and JS hears of
 * them afterwards; reads are pread(2) there, with or without asking JS first.
 *
 * Exports:
 *   mount(mountpoint: string, options: string, dispatch: Function): handle
 *   unmount(handle): Promise<void>
 *   reply(token, errno: number, value?): boolean   (false when already answered)
 *   notify(state: string): boolean                  (false when NOTIFY_SOCKET is unset)
 *   directWrites(handle, fh: number, fd: number): boolean   (fd -1 stops them; false: no such fh)
 *   directReads(handle, fh: number, fd: number, size: number): boolean  (size -1: fill; fd -1: off)
 *   forgetAttrs(handle, inos: number[] | null): void  (see "Cached attributes")
 *   updateDirs(handle, attrs: Attr[]): void           (the same)
 *   openBacking(handle, fd: number): number           (a backing id > 0, or -errno; see "Passthrough")
 *   closeBacking(handle, id: number): number          (0 or -errno)
 */
#define FUSE_USE_VERSION 29
#define NAPI_VERSION 8
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fuse.h>
#include <fuse_lowlevel.h> /* fuse_chan_fd */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                        */

enum op {
  OP_GETATTR, OP_FGETATTR, OP_ACCESS, OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK, OP_RMDIR,
  OP_SYMLINK, OP_RENAME, OP_LINK, OP_CHMOD, OP_CHOWN, OP_TRUNCATE, OP_FTRUNCATE, OP_UTIMENS,
  OP_OPEN, OP_CREATE, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR,
  OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR,
  OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
  "getattr", "fgetattr", "access", "readlink", "mknod", "mkdir", "unlink", "rmdir",
  "symlink", "rename", "link", "chmod", "chown", "truncate", "ftruncate", "utimens",
  "open", "create", "read", "write", "flush", "release", "fsync", "opendir", "readdir",
  "releasedir", "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr", "removexattr",
};

typedef struct {
  char *name;
  bool has_st;
  struct stat st;
} dir_entry;

/* One kernel request, on the stack of the libfuse thread that waits for its answer. */
typedef struct {
  int op;
  const char *path;   /* may be NULL for per-file operations on an unlinked file */
  const char *path2;  /* rename: to; link: new path; symlink: target */
  const char *name;   /* xattr name */
  mode_t mode;
  dev_t rdev;
  uid_t uid;
  gid_t gid;
  off_t off;          /* read/write offset, truncate size */
  size_t size;        /* buffer size */
  int flags;
  int mask;
  int datasync;
  struct fuse_file_info *fi;
  struct stat *st;
  struct statvfs *stv;
  char *buf;          /* read, readlink, getxattr, listxattr: output; write: input */
  const char *value;  /* setxattr */
  struct timespec tv[2];
  dir_entry *entries; /* readdir answer, filled on the JS thread, consumed on the libfuse thread */
  size_t nentries;
  uid_t caller_uid;
  gid_t caller_gid;
  pid_t caller_pid;
  bool fill;          /* read: JS got no buffer; the binding reads `result` bytes from the fd */
  int32_t backing;    /* open: > 0, the kernel reads and writes this backing file itself ("Passthrough") */
  bool has_after;     /* a change answered with the entry's attributes afterwards ("Attributes after a change") */
  struct stat after;
  int result;
  sem_t sem;
} req_t;

/* What JS holds for a pending request. Lives until the external is garbage-collected. */
typedef struct {
  req_t *req;         /* NULL once answered */
  napi_ref buf;       /* read: the JS buffer to copy from at reply */
} token_t;

enum { ST_MOUNTED, ST_UNMOUNTING, ST_UNMOUNTED };

typedef struct mount_s {
  struct fuse *fuse;
  struct fuse_chan *ch;
  char *mountpoint;         /* canonical path */
  pthread_t thread;
  int loop_result;
  napi_threadsafe_function tsfn;
  napi_async_work work;
  napi_deferred deferred;
  napi_env env;
  int state;
  bool handle_gone;
  bool have_dev;
  unsigned dev_major, dev_minor;
  pthread_mutex_t open_lock;
  struct open_file *open_files; /* fh -> current path of every open file (see "unlinked") */
  pthread_mutex_t attr_lock;
  struct attr_slot *attrs;       /* ATTR_SLOTS cached attributes (see "Cached attributes") */
  uint64_t attr_gen;             /* bumped by every forget but a path's (see attr_forget_path) */
  struct mount_s *next;
} mount_t;

struct open_file {
  uint64_t fh;
  char *path;
  int fd;              /* content fd for direct I/O, or -1 */
  bool write_direct;   /* writes go to fd here (see "Direct writes") */
  int read_mode;       /* READ_* (see "Direct reads") */
  off_t read_size;     /* READ_LOCAL: the file's size */
  bool note_queued;    /* a "wrote" note is on its way to JS */
  bool released;       /* RELEASE came while a note was queued: freed once the note is read */
  off_t end;           /* direct writes since the last note: highest end offset */
  int64_t mtime_ns;    /* ... the time of the last one */
  uint64_t bytes;      /* ... and how many bytes they wrote */
  struct open_file *next;
};

enum { READ_JS, READ_FILL, READ_LOCAL };

/* A "wrote" note: queued on the same threadsafe function as requests, so it keeps their order. */
#define OP_WROTE OP_COUNT
typedef struct {
  int op;              /* OP_WROTE; first, like req_t's, so call_js can tell them apart */
  uint64_t fh;
} note_t;

static const napi_type_tag REQ_TAG = { 0x7a1c5e0b9d3f4e21ULL, 0x8b6f2c4d1e0a9f37ULL };
static const napi_type_tag MOUNT_TAG = { 0x3c9e71f04b2d8a65ULL, 0x91d0e6a27f4c3b58ULL };

/* All live mounts, so a callback made without private_data (fuse_destroy) finds its mount. */
static pthread_mutex_t mounts_lock = PTHREAD_MUTEX_INITIALIZER;
static mount_t *mounts;

/* ------------------------------------------------------------------------------------------ */
/* Small N-API helpers                                                                          */

static void clear_exception(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
  }
}

static napi_value throw_error(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value make_undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

static napi_value make_bool(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

/* A JS string as a malloc'd UTF-8 C string; rejects non-strings and embedded NULs. */
static char *get_string(napi_env env, napi_value v, size_t *len_out) {
  napi_valuetype t;
  size_t len = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) return NULL;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok || strlen(s) != len) {
    free(s);
    return NULL;
  }
  if (len_out) *len_out = len;
  return s;
}

/* A safe integer (number, or bigint) within [min, max]. */
static bool value_to_int64(napi_env env, napi_value v, int64_t min, int64_t max, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_number) {
    double d;
    if (napi_get_value_double(env, v, &d) != napi_ok) return false;
    if (!isfinite(d) || d != trunc(d) || d < -9007199254740992.0 || d > 9007199254740992.0) return false;
    int64_t i = (int64_t)d;
    if (i < min || i > max) return false;
    *out = i;
    return true;
  }
  if (t == napi_bigint) {
    int64_t i;
    bool lossless;
    if (napi_get_value_bigint_int64(env, v, &i, &lossless) != napi_ok || !lossless) return false;
    if (i < min || i > max) return false;
    *out = i;
    return true;
  }
  return false;
}

static bool get_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  return napi_get_named_property(env, obj, key, out) == napi_ok;
}

static bool prop_int64(napi_env env, napi_value obj, const char *key, int64_t min, int64_t max, int64_t *out) {
  napi_value v;
  return get_prop(env, obj, key, &v) && value_to_int64(env, v, min, max, out);
}

static bool is_object(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_object;
}

/* Nanoseconds since the epoch (bigint, may be negative) to a timespec. */
static bool value_to_timespec(napi_env env, napi_value v, struct timespec *ts) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_bigint) return false;
  int sign = 0;
  size_t count = 2;
  uint64_t words[2] = { 0, 0 };
  if (napi_get_value_bigint_words(env, v, &sign, &count, words) != napi_ok || count > 2) return false;
  if (words[1] >> 62) return false;
  __int128 ns = ((__int128)words[1] << 64) | words[0];
  if (sign) ns = -ns;
  __int128 sec = ns / 1000000000;
  __int128 nsec = ns % 1000000000;
  if (nsec < 0) { nsec += 1000000000; sec -= 1; }
  if (sec > (__int128)INT64_MAX || sec < (__int128)INT64_MIN) return false;
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = (long)nsec;
  return true;
}

static bool prop_timespec(napi_env env, napi_value obj, const char *key, struct timespec *ts) {
  napi_value v;
  return get_prop(env, obj, key, &v) && value_to_timespec(env, v, ts);
}

static napi_value timespec_to_value(napi_env env, const struct timespec *ts) {
  __int128 ns = (__int128)ts->tv_sec * 1000000000 + ts->tv_nsec;
  napi_value v = NULL;
  if (ns >= INT64_MIN && ns <= INT64_MAX) {
    if (napi_create_bigint_int64(env, (int64_t)ns, &v) != napi_ok) return NULL;
    return v;
  }
  int sign = ns < 0;
  unsigned __int128 mag = sign ? (unsigned __int128)(-ns) : (unsigned __int128)ns;
  uint64_t words[2] = { (uint64_t)mag, (uint64_t)(mag >> 64) };
  if (napi_create_bigint_words(env, sign, 2, words, &v) != napi_ok) return NULL;
  return v;
}

/* ------------------------------------------------------------------------------------------ */
/* Converting JS answers                                                                        */

static int js_to_stat(napi_env env, napi_value v, struct stat *st) {
  int64_t ino, mode, nlink, uid, gid, rdev, size, blocks;
  struct timespec at, mt, ct;
  if (!is_object(env, v)) return -EIO;
  if (!prop_int64(env, v, "ino", 0, INT64_MAX, &ino) ||
      !prop_int64(env, v, "mode", 0, 0xFFFFFFFFLL, &mode) ||
      !prop_int64(env, v, "nlink", 0, INT64_MAX, &nlink) ||
      !prop_int64(env, v, "uid", -1, 0xFFFFFFFFLL, &uid) ||
      !prop_int64(env, v, "gid", -1, 0xFFFFFFFFLL, &gid) ||
      !prop_int64(env, v, "rdev", 0, INT64_MAX, &rdev) ||
      !prop_int64(env, v, "size", 0, INT64_MAX, &size) ||
      !prop_int64(env, v, "blocks", 0, INT64_MAX, &blocks) ||
      !prop_timespec(env, v, "atimeNs", &at) ||
      !prop_timespec(env, v, "mtimeNs", &mt) ||
      !prop_timespec(env, v, "ctimeNs", &ct)) {
    clear_exception(env);
    return -EIO;
  }
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)ino;
  st->st_mode = (mode_t)mode;
  st->st_nlink = (nlink_t)nlink;
  st->st_uid = (uid_t)uid;
  st->st_gid = (gid_t)gid;
  st->st_rdev = (dev_t)rdev;
  st->st_size = (off_t)size;
  st->st_blocks = (blkcnt_t)blocks;
  st->st_atim = at;
  st->st_mtim = mt;
  st->st_ctim = ct;
  return 0;
}

static int js_to_statvfs(napi_env env, napi_value v, struct statvfs *sv) {
  int64_t bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax;
  if (!is_object(env, v)) return -EIO;
  if (!prop_int64(env, v, "bsize", 0, 0xFFFFFFFFLL, &bsize) ||
      !prop_int64(env, v, "frsize", 0, 0xFFFFFFFFLL, &frsize) ||
      !prop_int64(env, v, "blocks", 0, INT64_MAX, &blocks) ||
      !prop_int64(env, v, "bfree", 0, INT64_MAX, &bfree) ||
      !prop_int64(env, v, "bavail", 0, INT64_MAX, &bavail) ||
      !prop_int64(env, v, "files", 0, INT64_MAX, &files) ||
      !prop_int64(env, v, "ffree", 0, INT64_MAX, &ffree) ||
      !prop_int64(env, v, "favail", 0, INT64_MAX, &favail) ||
      !prop_int64(env, v, "namemax", 0, 0xFFFFFFFFLL, &namemax)) {
    clear_exception(env);
    return -EIO;
  }
  memset(sv, 0, sizeof *sv);
  sv->f_bsize = (unsigned long)bsize;
  sv->f_frsize = (unsigned long)frsize;
  sv->f_blocks = (fsblkcnt_t)blocks;
  sv->f_bfree = (fsblkcnt_t)bfree;
  sv->f_bavail = (fsblkcnt_t)bavail;
  sv->f_files = (fsfilcnt_t)files;
  sv->f_ffree = (fsfilcnt_t)ffree;
  sv->f_favail = (fsfilcnt_t)favail;
  sv->f_namemax = (unsigned long)namemax;
  return 0;
}

/* Bytes of a Buffer / typed array / string answer. *owned is set when the caller must free. */
static bool js_bytes(napi_env env, napi_value v, const char **data, size_t *len, char **owned) {
  bool isbuf = false;
  *owned = NULL;
  if (napi_is_buffer(env, v, &isbuf) == napi_ok && isbuf) {
    void *d = NULL;
    if (napi_get_buffer_info(env, v, &d, len) != napi_ok) return false;
    *data = d ? d : "";
    return true;
  }
  char *s = get_string(env, v, len);
  if (!s) return false;
  *owned = s;
  *data = s;
  return true;
}

static bool is_hidden_name(const char *name);

static void free_entries(dir_entry *e, size_t n) {
  if (!e) return;
  for (size_t i = 0; i < n; i++) free(e[i].name);
  free(e);
}

static int js_to_entries(napi_env env, napi_value v, req_t *r) {
  bool isarr = false;
  uint32_t n = 0;
  if (napi_is_array(env, v, &isarr) != napi_ok || !isarr) return -EIO;
  if (napi_get_array_length(env, v, &n) != napi_ok) return -EIO;
  dir_entry *e = calloc(n ? n : 1, sizeof *e);
  if (!e) return -ENOMEM;
  size_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item, name, attr;
    napi_valuetype t;
    size_t len = 0;
    if (napi_get_element(env, v, i, &item) != napi_ok || !is_object(env, item)) goto bad;
    if (!get_prop(env, item, "name", &name)) goto bad;
    char *s = get_string(env, name, &len);
    if (!s) goto bad;
    if (len == 0 || len > 1024 || strchr(s, '/')) { free(s); goto bad; }
    /* we add . and ..; hidden names are reserved for unlinked open files */
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || is_hidden_name(s)) { free(s); continue; }
    e[k].name = s;
    k++;
    if (!get_prop(env, item, "attr", &attr) || napi_typeof(env, attr, &t) != napi_ok) goto bad;
    if (t == napi_undefined || t == napi_null) continue;
    /* libfuse only uses st_ino and st_mode (the d_type) of a directory entry. */
    int64_t ino, mode;
    if (t != napi_object || !prop_int64(env, attr, "ino", 0, INT64_MAX, &ino) ||
        !prop_int64(env, attr, "mode", 0, 0xFFFFFFFFLL, &mode)) goto bad;
    e[k - 1].has_st = true;
    e[k - 1].st.st_ino = (ino_t)ino;
    e[k - 1].st.st_mode = (mode_t)mode;
  }
  r->entries = e;
  r->nentries = k;
  return 0;
bad:
  clear_exception(env);
  free_entries(e, k);
  return -EIO;
}

/*
 * Attributes after a change. libfuse 2's high-level API follows every change of an entry (mknod,
 * mkdir, symlink, link, create, and each step of a SETATTR: chmod, chown, truncate, utimens) with a
 * GETATTR (or FGETATTR) of the same path on the same thread, for the kernel's reply: a second trip
 * to JS per change (rsync makes a dozen per file). JS may answer a change with the entry's
 * attributes afterwards; they are kept for that GETATTR only. dispatch() drops them first thing, so
 * they never outlive the request that made them (a SETATTR whose later step fails never asks).
 */
static __thread char after_path[PATH_MAX];
static __thread bool after_valid;
static __thread struct stat after_st;

/* JS thread: a change's optional answer. Anything but valid attributes keeps nothing (the change itself succeeded). */
static void keep_after(napi_env env, napi_value value, req_t *r) {
  r->has_after = is_object(env, value) && js_to_stat(env, value, &r->after) == 0;
  clear_exception(env);
}

/* libfuse thread, after a change at path succeeded. */
static void after_set(const char *path, const req_t *r) {
  after_valid = r->has_after && path && strlen(path) < sizeof after_path;
  if (after_valid) { strcpy(after_path, path); after_st = r->after; }
}

/* libfuse thread: the attributes the change just before kept for path, once. */
static bool after_take(const char *path, struct stat *st) {
  bool hit = after_valid && path && strcmp(after_path, path) == 0;
  if (hit) *st = after_st;
  after_valid = false;
  return hit;
}

/* open, opendir, create: the handle JS answered with (none: 0). */
static int set_fh(napi_env env, napi_value value, req_t *r) {
  napi_valuetype ty;
  int64_t n;
  if (napi_typeof(env, value, &ty) != napi_ok) return -EIO;
  if (ty == napi_undefined) { r->fi->fh = 0; return 0; }
  if (!value_to_int64(env, value, 0, INT64_MAX, &n)) return -EIO;
  r->fi->fh = (uint64_t)n;
  return 0;
}

/* The answer of a successful request: validates `value` and writes it where libfuse wants it. */
static int apply_value(napi_env env, token_t *t, napi_value value) {
  req_t *r = t->req;
  int64_t n;
  switch (r->op) {
  case OP_GETATTR:
  case OP_FGETATTR:
    return js_to_stat(env, value, r->st);
  case OP_STATFS:
    return js_to_statvfs(env, value, r->stv);
  case OP_READLINK: {
    const char *d; size_t len; char *owned;
    if (r->size == 0 || !js_bytes(env, value, &d, &len, &owned)) { clear_exception(env); return -EIO; }
    if (len > r->size - 1) len = r->size - 1;
    memcpy(r->buf, d, len);
    r->buf[len] = 0;
    free(owned);
    return 0;
  }
  case OP_CREATE:
    if (is_object(env, value)) { /* { fh, attr } */
      napi_value fh, attr;
      if (!get_prop(env, value, "fh", &fh) || !value_to_int64(env, fh, 0, INT64_MAX, &n)) { clear_exception(env); return -EIO; }
      r->fi->fh = (uint64_t)n;
      if (get_prop(env, value, "attr", &attr)) keep_after(env, attr, r);
      clear_exception(env);
      return 0;
    }
    return set_fh(env, value, r); /* a bare handle */
  case OP_OPEN:
    if (is_object(env, value)) { /* { fh, backing } */
      napi_value fh, backing;
      int64_t id;
      if (!get_prop(env, value, "fh", &fh) || !value_to_int64(env, fh, 0, INT64_MAX, &n) ||
          !get_prop(env, value, "backing", &backing) || !value_to_int64(env, backing, 1, INT32_MAX, &id)) {
        clear_exception(env);
        return -EIO;
      }
      r->fi->fh = (uint64_t)n;
      r->backing = (int32_t)id;
      return 0;
    }
    return set_fh(env, value, r);
  case OP_OPENDIR:
    return set_fh(env, value, r);
  case OP_MKNOD: case OP_MKDIR: case OP_SYMLINK: case OP_LINK: case OP_CHMOD: case OP_CHOWN:
  case OP_TRUNCATE: case OP_FTRUNCATE: case OP_UTIMENS:
    keep_after(env, value, r);
    return 0;
  case OP_READ: {
    napi_value buf;
    void *data = NULL;
    size_t len = 0;
    if (!value_to_int64(env, value, 0, (int64_t)r->size, &n)) return -EIO;
    if (r->fill) return (int)n; /* the libfuse thread reads the bytes (s_read) */
    if (!t->buf || napi_get_reference_value(env, t->buf, &buf) != napi_ok || !buf ||
        napi_get_buffer_info(env, buf, &data, &len) != napi_ok) return -EIO;
    if ((size_t)n > len) return -EIO; /* detached or shrunk */
    if (n > 0) memcpy(r->buf, data, (size_t)n);
    return (int)n;
  }
  case OP_WRITE:
    if (!value_to_int64(env, value, 0, (int64_t)r->size, &n)) return -EIO;
    return (int)n;
  case OP_GETXATTR: {
    const char *d; size_t len; char *owned;
    if (!js_bytes(env, value, &d, &len, &owned)) { clear_exception(env); return -EIO; }
    int res;
    if (len > INT_MAX) res = -E2BIG;
    else if (r->size == 0) res = (int)len;
    else if (len > r->size) res = -ERANGE;
    else { memcpy(r->buf, d, len); res = (int)len; }
    free(owned);
    return res;
  }
  case OP_LISTXATTR: {
    bool isarr = false;
    uint32_t count = 0;
    size_t total = 0;
    if (napi_is_array(env, value, &isarr) != napi_ok || !isarr ||
        napi_get_array_length(env, value, &count) != napi_ok) return -EIO;
    char **names = calloc(count ? count : 1, sizeof *names);
    size_t *lens = calloc(count ? count : 1, sizeof *lens);
    int res = 0;
    if (!names || !lens) { res = -ENOMEM; goto list_done; }
    for (uint32_t i = 0; i < count; i++) {
      napi_value item;
      if (napi_get_element(env, value, i, &item) != napi_ok ||
          !(names[i] = get_string(env, item, &lens[i])) || lens[i] == 0) { res = -EIO; goto list_done; }
      total += lens[i] + 1;
    }
    if (total > INT_MAX) res = -E2BIG;
    else if (r->size == 0) res = (int)total;
    else if (total > r->size) res = -ERANGE;
    else {
      char *p = r->buf;
      for (uint32_t i = 0; i < count; i++) { memcpy(p, names[i], lens[i] + 1); p += lens[i] + 1; }
      res = (int)total;
    }
  list_done:
    clear_exception(env);
    if (names) for (uint32_t i = 0; i < count; i++) free(names[i]);
    free(names);
    free(lens);
    return res;
  }
  case OP_READDIR:
    return js_to_entries(env, value, r);
  default:
    return 0; /* operations without a value */
  }
}

/* Answers a request (JS thread). After this the req belongs to its libfuse thread again. */
static void finish(napi_env env, token_t *t, int result) {
  req_t *r = t->req;
  if (t->buf) {
    napi_delete_reference(env, t->buf);
    t->buf = NULL;
  }
  if (!r) return;
  t->req = NULL;
  r->result = result;
  sem_post(&r->sem);
}

static void token_finalize(napi_env env, void *data, void *hint) {
  token_t *t = data;
  if (t->req) finish(env, t, -EIO); /* dropped without an answer */
  else if (t->buf) napi_delete_reference(env, t->buf);
  free(t);
}

/* ------------------------------------------------------------------------------------------ */
/* JS thread: calling dispatch                                                                  */

static napi_value str_or_null(napi_env env, const char *s) {
  napi_value v = NULL;
  if (!s) { napi_get_null(env, &v); return v; }
  if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) != napi_ok) return NULL;
  return v;
}

static napi_value num(napi_env env, double d) {
  napi_value v = NULL;
  if (napi_create_double(env, d, &v) != napi_ok) return NULL;
  return v;
}

static napi_value timespec_arg(napi_env env, const struct timespec *ts) {
  if (ts->tv_nsec == UTIME_NOW) return str_or_null(env, "now");
  if (ts->tv_nsec == UTIME_OMIT) return str_or_null(env, "omit");
  return timespec_to_value(env, ts);
}

static napi_value fh_arg(napi_env env, req_t *r) {
  return num(env, r->fi ? (double)r->fi->fh : 0);
}

static napi_value id_arg(napi_env env, uint32_t id) {
  return num(env, id == (uint32_t)-1 ? -1.0 : (double)id);
}

static void open_unlink_locked(mount_t *m, struct open_file *gone);
static bool reads_direct(void *context, struct fuse_file_info *fi);

/* JS thread: hands a "wrote" note to dispatch("wrote", undefined, fh, end, mtimeNs, bytes). */
static void deliver_note(napi_env env, napi_value js_cb, mount_t *m, note_t *n) {
  uint64_t fh = n->fh;
  free(n);
  if (!env || !js_cb || !m) return; /* tearing down: nobody is left to tell */
  off_t end = 0;
  int64_t mtime_ns = 0;
  uint64_t bytes = 0;
  bool found = false;
  pthread_mutex_lock(&m->open_lock);
  for (struct open_file *o = m->open_files; o; o = o->next) {
    if (o->fh != fh || !o->note_queued) continue;
    end = o->end;
    mtime_ns = o->mtime_ns;
    bytes = o->bytes;
    o->end = 0;
    o->bytes = 0;
    o->note_queued = false;
    found = true;
    if (o->released) open_unlink_locked(m, o);
    break;
  }
  pthread_mutex_unlock(&m->open_lock);
  if (!found) return;
  napi_value argv[6];
  napi_get_undefined(env, &argv[1]);
  argv[0] = str_or_null(env, "wrote");
  argv[2] = num(env, (double)fh);
  argv[3] = num(env, (double)end);
  if (napi_create_bigint_int64(env, mtime_ns, &argv[4]) != napi_ok) argv[4] = NULL;
  argv[5] = num(env, (double)bytes);
  for (size_t i = 0; i < 6; i++) if (!argv[i]) { clear_exception(env); return; }
  napi_value undef = make_undefined(env);
  if (napi_call_function(env, undef, js_cb, 6, argv, NULL) != napi_ok) clear_exception(env);
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  if (*(const int *)data == OP_WROTE) { deliver_note(env, js_cb, context, data); return; }
  req_t *r = data;
  if (!env || !js_cb) { /* tearing down */
    r->result = -EIO;
    sem_post(&r->sem);
    return;
  }
  token_t *t = calloc(1, sizeof *t);
  if (!t) { r->result = -ENOMEM; sem_post(&r->sem); return; }
  t->req = r;
  napi_value ext;
  if (napi_create_external(env, t, token_finalize, NULL, &ext) != napi_ok) {
    clear_exception(env);
    free(t);
    r->result = -EIO;
    sem_post(&r->sem);
    return;
  }
  if (napi_type_tag_object(env, ext, &REQ_TAG) != napi_ok) goto fail;

  napi_value argv[10];
  size_t argc = 0;
  argv[argc++] = str_or_null(env, op_names[r->op]);
  argv[argc++] = ext;
  switch (r->op) {
  case OP_GETATTR: case OP_READLINK: case OP_UNLINK: case OP_RMDIR: case OP_STATFS:
  case OP_LISTXATTR:
    argv[argc++] = str_or_null(env, r->path);
    break;
  case OP_FGETATTR: case OP_FLUSH: case OP_RELEASE: case OP_RELEASEDIR: case OP_READDIR:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = fh_arg(env, r);
    break;
  case OP_FSYNC: case OP_FSYNCDIR:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = fh_arg(env, r);
    argv[argc++] = make_bool(env, r->datasync != 0);
    break;
  case OP_ACCESS:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = num(env, r->mask);
    break;
  case OP_MKNOD:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = num(env, r->mode);
    argv[argc++] = num(env, (double)r->rdev);
    break;
  case OP_MKDIR: case OP_CHMOD:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = num(env, r->mode);
    break;
  case OP_SYMLINK: /* (target, path) */
    argv[argc++] = str_or_null(env, r->path2);
    argv[argc++] = str_or_null(env, r->path);
    break;
  case OP_RENAME: case OP_LINK: /* (from, to) */
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = str_or_null(env, r->path2);
    break;
  case OP_CHOWN:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = id_arg(env, r->uid);
    argv[argc++] = id_arg(env, r->gid);
    break;
  case OP_TRUNCATE:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = num(env, (double)r->off);
    break;
  case OP_FTRUNCATE:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = fh_arg(env, r);
    argv[argc++] = num(env, (double)r->off);
    break;
  case OP_UTIMENS:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = timespec_arg(env, &r->tv[0]);
    argv[argc++] = timespec_arg(env, &r->tv[1]);
    break;
  case OP_OPEN: case OP_OPENDIR:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = num(env, r->flags);
    break;
  case OP_CREATE:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = num(env, r->mode);
    argv[argc++] = num(env, r->flags);
    break;
  case OP_READ:
  case OP_WRITE: {
    napi_value buf = NULL;
    void *data_ptr = NULL;
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = fh_arg(env, r);
    if (r->op == OP_READ && (r->fill = reads_direct(context, r->fi))) {
      buf = num(env, (double)r->size); /* JS answers with a byte count; s_read fills the buffer */
    } else if (r->op == OP_READ) {
      if (napi_create_buffer(env, r->size, &data_ptr, &buf) != napi_ok ||
          napi_create_reference(env, buf, 1, &t->buf) != napi_ok) goto fail;
    } else if (napi_create_buffer_copy(env, r->size, r->size ? r->buf : "", NULL, &buf) != napi_ok) {
      goto fail;
    }
    argv[argc++] = buf;
    argv[argc++] = num(env, (double)r->off);
    break;
  }
  case OP_SETXATTR: {
    napi_value buf = NULL;
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = str_or_null(env, r->name);
    if (napi_create_buffer_copy(env, r->size, r->size ? r->value : "", NULL, &buf) != napi_ok) goto fail;
    argv[argc++] = buf;
    argv[argc++] = num(env, r->flags);
    break;
  }
  case OP_GETXATTR: case OP_REMOVEXATTR:
    argv[argc++] = str_or_null(env, r->path);
    argv[argc++] = str_or_null(env, r->name);
    break;
  default:
    goto fail;
  }

  napi_value caller;
  if (napi_create_object(env, &caller) != napi_ok) goto fail;
  napi_value cu = num(env, r->caller_uid), cg = num(env, r->caller_gid), cp = num(env, r->caller_pid);
  if (!cu || !cg || !cp ||
      napi_set_named_property(env, caller, "uid", cu) != napi_ok ||
      napi_set_named_property(env, caller, "gid", cg) != napi_ok ||
      napi_set_named_property(env, caller, "pid", cp) != napi_ok) goto fail;
  argv[argc++] = caller;

  for (size_t i = 0; i < argc; i++) if (!argv[i]) goto fail;

  napi_value undef = make_undefined(env);
  if (napi_call_function(env, undef, js_cb, argc, argv, NULL) != napi_ok) goto fail;
  return;

fail:
  clear_exception(env);
  if (t->req) finish(env, t, -EIO);
}

/* ------------------------------------------------------------------------------------------ */
/* libfuse threads                                                                              */

static mount_t *current_mount(void) {
  struct fuse_context *ctx = fuse_get_context();
  if (!ctx) return NULL;
  if (ctx->private_data) return ctx->private_data;
  mount_t *m;
  pthread_mutex_lock(&mounts_lock);
  for (m = mounts; m; m = m->next) if (m->fuse == ctx->fuse) break;
  pthread_mutex_unlock(&mounts_lock);
  return m;
}

static void attr_forget_path(mount_t *m, const char *path);
static void attr_forget(mount_t *m, const uint64_t *inos, size_t n);

/* Requests that change the entry at their path (a link: its source's link count). */
static bool changes_path(int op) {
  switch (op) {
    case OP_UNLINK: case OP_RMDIR: case OP_LINK: case OP_CHMOD: case OP_CHOWN: case OP_TRUNCATE:
    case OP_FTRUNCATE: case OP_UTIMENS: case OP_SETXATTR: case OP_REMOVEXATTR: return true;
    default: return false;
  }
}

static int dispatch(req_t *r) {
  after_valid = false;
  struct fuse_context *ctx = fuse_get_context();
  mount_t *m = current_mount();
  if (!m || !ctx) return -EIO;
  r->caller_uid = ctx->uid;
  r->caller_gid = ctx->gid;
  r->caller_pid = ctx->pid;
  r->result = -EIO;
  if (sem_init(&r->sem, 0, 0) != 0) return -EIO;
  if (napi_call_threadsafe_function(m->tsfn, r, napi_tsfn_blocking) != napi_ok) {
    sem_destroy(&r->sem);
    return -EIO;
  }
  while (sem_wait(&r->sem) != 0 && errno == EINTR) {}
  sem_destroy(&r->sem);
  if (changes_path(r->op)) attr_forget_path(m, r->path); /* before the kernel hears of it */
  return r->result;
}

#define REQ(OP) req_t r; memset(&r, 0, sizeof r); r.op = (OP)

/*
 * Unlinked open files.
 *
 * With libfuse 2's hard_remove, a file unlinked while open loses its path inside libfuse, and the
 * kernel sends GETATTR without a file handle (fstat, statx, `cat`, `tail`...), so fstat failed
 * with ENOENT. We therefore let libfuse hide such files instead (no hard_remove): it renames them to
 * ".fuse_hidden<16 hex>" and unlinks that name after the last release. The binding turns this
 * back into hard_remove semantics for JS: the hiding rename is sent to JS as unlink(path), every
 * later call on the hidden name reaches JS with path null and the file handle (getattr becomes
 * fgetattr(null, fh) and truncate ftruncate(null, fh)), and the final unlink is answered here. JS
 * never sees a hidden name. To find a handle for a hidden name we keep fh -> path of open files.
 * Names matching ".fuse_hidden<16 hex>" are reserved: creating one fails with EPERM.
 */
static bool is_hidden_name(const char *name) {
  if (strncmp(name, ".fuse_hidden", 12) != 0) return false;
  const char *h = name + 12;
  for (int i = 0; i < 16; i++) {
    if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return false;
  }
  return h[16] == 0;
}

static bool is_hidden(const char *path) {
  if (!path) return false;
  const char *slash = strrchr(path, '/');
  return is_hidden_name(slash ? slash + 1 : path);
}

static void open_add(uint64_t fh, const char *path) {
  mount_t *m = current_mount();
  struct open_file *o = malloc(sizeof *o);
  if (!m || !o || !path || !(o->path = strdup(path))) { free(o); return; }
  o->fh = fh;
  o->fd = -1;
  o->write_direct = false;
  o->read_mode = READ_JS;
  o->read_size = 0;
  o->note_queued = o->released = false;
  o->end = 0;
  o->mtime_ns = 0;
  o->bytes = 0;
  pthread_mutex_lock(&m->open_lock);
  o->next = m->open_files;
  m->open_files = o;
  pthread_mutex_unlock(&m->open_lock);
  attr_forget_path(m, path); /* after it is listed: see "Cached attributes" */
}

/* Unlinks and frees an open file; the caller holds open_lock. */
static void open_unlink_locked(mount_t *m, struct open_file *gone) {
  for (struct open_file **pp = &m->open_files; *pp; pp = &(*pp)->next) {
    if (*pp == gone) {
      *pp = gone->next;
      free(gone->path);
      free(gone);
      return;
    }
  }
}

/* The live open file of handle fh; the caller holds open_lock. */
static struct open_file *open_get_locked(mount_t *m, uint64_t fh) {
  for (struct open_file *o = m->open_files; o; o = o->next) {
    if (o->fh == fh && !o->released) return o;
  }
  return NULL;
}

/* RELEASE: no more writes on fh. A queued note still needs the record, and frees it when read. */
static void open_remove(uint64_t fh) {
  mount_t *m = current_mount();
  if (!m) return;
  char *path = NULL;
  pthread_mutex_lock(&m->open_lock);
  struct open_file *o = open_get_locked(m, fh);
  if (o) {
    path = strdup(o->path);
    o->fd = -1;
    if (o->note_queued) o->released = true;
    else open_unlink_locked(m, o);
  }
  pthread_mutex_unlock(&m->open_lock);
  /* What JS answered while it was open may be kept no more (see "Cached attributes"). Without the
   * path (out of memory), forget them all. */
  if (o && path) attr_forget_path(m, path);
  else if (o) attr_forget(m, NULL, 0);
  free(path);
}

/* After a rename: open files at `from`, or below it for a directory, are now under `to`. */
static void open_renamed(const char *from, const char *to) {
  mount_t *m = current_mount();
  if (!m) return;
  size_t fl = strlen(from), tl = strlen(to);
  pthread_mutex_lock(&m->open_lock);
  for (struct open_file *o = m->open_files; o; o = o->next) {
    if (o->released) continue;
    if (strncmp(o->path, from, fl) != 0 || (o->path[fl] != 0 && o->path[fl] != '/')) continue;
    size_t rest = strlen(o->path + fl);
    char *np = malloc(tl + rest + 1);
    if (!np) continue;
    memcpy(np, to, tl);
    memcpy(np + tl, o->path + fl, rest + 1);
    free(o->path);
    o->path = np;
  }
  pthread_mutex_unlock(&m->open_lock);
}

/* A handle of an open file now known by `path` (a hidden name). */
static bool open_find(const char *path, uint64_t *fh) {
  mount_t *m = current_mount();
  bool found = false;
  if (!m) return false;
  pthread_mutex_lock(&m->open_lock);
  for (struct open_file *o = m->open_files; o; o = o->next) {
    if (!o->released && strcmp(o->path, path) == 0) { *fh = o->fh; found = true; break; }
  }
  pthread_mutex_unlock(&m->open_lock);
  return found;
}

/* Whether a file is open at path (not hidden, not released). */
static bool open_at(mount_t *m, const char *path) {
  bool found = false;
  pthread_mutex_lock(&m->open_lock);
  for (struct open_file *o = m->open_files; o && !found; o = o->next) found = !o->released && strcmp(o->path, path) == 0;
  pthread_mutex_unlock(&m->open_lock);
  return found;
}

static void open_free_all(mount_t *m) {
  while (m->open_files) {
    struct open_file *o = m->open_files;
    m->open_files = o->next;
    free(o->path);
    free(o);
  }
}

/*
 * Direct writes.
 *
 * Every write used to travel to the JS thread and back, and fs.write() to the libuv pool and back:
 * four thread hand-offs per 128 KiB. Once JS has taken a file handle's first write (and so made
 * the file dirty and counted its writer), it may hand us the handle's content fd; the binding then
 * pwrite(2)s later writes on the libfuse thread and queues a "wrote" note for JS, which updates
 * size and mtime in memory. The note is queued before the write is answered, on the same FIFO as
 * requests, so any request the kernel sends after the write (getattr, flush, fsync, release) reaches
 * JS after the note. Notes coalesce: while one is queued, later writes only raise its end offset.
 * JS stops direct writes for a handle with directWrites(handle, fh, -1); RELEASE ends them anyway,
 * before JS closes the fd (the kernel sends no write on a handle after its RELEASE).
 */
static bool queue_note_locked(mount_t *m, struct open_file *o) {
  if (o->note_queued) return true;
  note_t *n = malloc(sizeof *n);
  if (!n) return false;
  n->op = OP_WROTE;
  n->fh = o->fh;
  if (napi_call_threadsafe_function(m->tsfn, n, napi_tsfn_blocking) != napi_ok) { free(n); return false; }
  o->note_queued = true;
  return true;
}

/* Writes directly if JS allowed it for this handle: true with *res set, false to ask JS. */
static bool direct_write(struct fuse_file_info *fi, const char *buf, size_t size, off_t off, int *res) {
  mount_t *m = current_mount();
  if (!m || !fi) return false;
  pthread_mutex_lock(&m->open_lock);
  struct open_file *o = open_get_locked(m, fi->fh);
  int fd = o && o->write_direct ? o->fd : -1;
  pthread_mutex_unlock(&m->open_lock);
  if (fd < 0) return false;

  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(fd, buf + done, size - done, off + (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (done == 0) { *res = n < 0 ? -errno : -EIO; return true; }
      break; /* a short write: report what is on disk */
    }
    done += (size_t)n;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  pthread_mutex_lock(&m->open_lock);
  o = open_get_locked(m, fi->fh); /* still there: RELEASE cannot overtake a write of its handle */
  bool noted = false;
  if (o) {
    off_t end = off + (off_t)done;
    if (end > o->end) o->end = end;
    o->bytes += done;
    if (o->read_mode == READ_LOCAL && end > o->read_size) o->read_size = end; /* its own writes */
    o->mtime_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    noted = queue_note_locked(m, o);
  }
  pthread_mutex_unlock(&m->open_lock);
  /* Without a note JS would not know of the bytes: fail the write rather than lose its size. */
  *res = noted ? (int)done : -EIO;
  return true;
}

/*
 * Direct reads.
 *
 * JS may let a handle's reads skip its thread too (directReads): READ_LOCAL when the whole file is
 * local and `read_size` bytes long, so reads that end within it are pread(2) here and JS never
 * hears of them; READ_FILL while the file loads from S3 (and for reads past read_size): the read
 * still goes to JS, which waits until its range is there and answers with a byte count instead of
 * bytes, and the binding preads them (no JS buffer, no copy on the event loop). Bytes the content
 * file lacks within the count (a hole at its end) read as zeros, as JS would give them.
 */
static int pread_full(int fd, char *buf, size_t size, off_t off) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, buf + done, size - done, off + (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) break;
    done += (size_t)n;
  }
  if (done < size) memset(buf + done, 0, size - done);
  return (int)size;
}

/* Content fd of fh for reads JS answers with a count, or -1. Any thread. */
static int fill_fd(mount_t *m, struct fuse_file_info *fi) {
  if (!m || !fi) return -1;
  pthread_mutex_lock(&m->open_lock);
  struct open_file *o = open_get_locked(m, fi->fh);
  int fd = o && o->read_mode != READ_JS ? o->fd : -1;
  pthread_mutex_unlock(&m->open_lock);
  return fd;
}

/* JS thread (call_js): whether this read goes to JS without a buffer. */
static bool reads_direct(void *context, struct fuse_file_info *fi) {
  return fill_fd(context, fi) >= 0;
}

/* Reads locally if the handle's file is local and the range within it: true with *res set. */
static bool direct_read(struct fuse_file_info *fi, char *buf, size_t size, off_t off, int *res) {
  mount_t *m = current_mount();
  if (!m || !fi) return false;
  pthread_mutex_lock(&m->open_lock);
  struct open_file *o = open_get_locked(m, fi->fh);
  int fd = o && o->read_mode == READ_LOCAL && off >= 0 && off + (off_t)size <= o->read_size ? o->fd : -1;
  pthread_mutex_unlock(&m->open_lock);
  if (fd < 0) return false;
  *res = pread_full(fd, buf, size, off);
  return true;
}

/* The path JS sees for a per-file operation: null once the file was unlinked. */
static const char *visible(const char *path) {
  return is_hidden(path) ? NULL : path;
}

static int s_fgetattr(const char *path, struct stat *st, struct fuse_file_info *fi);
static int s_ftruncate(const char *path, off_t size, struct fuse_file_info *fi);

/*
 * Cached attributes.
 *
 * libfuse 2's high-level API makes us mount with attr_timeout=0 (src/daemon/daemon.ts: a hard link's
 * cached attributes would miss changes made through its other names), so the kernel sends GETATTR
 * for every directory of every path it resolves, for each permission check (4 of the 10 requests a
 * create-write-close of /d/e/f made were its directories), and a LOOKUP and a GETATTR for every
 * stat(2) of a file, each a trip to JS (10,000 lstat(2)s of 50 files took 1.4 s; 0.7 s with files
 * kept, as below: the rest is the kernel's round trips through libfuse). So the attributes of directories, and of files with one link that nobody has open, are kept here
 * for ATTR_TTL_NS, and such a GETATTR is answered on the libfuse thread without a trip to JS.
 * Forgetting:
 *  - after every commit that changed or deleted inodes, whatever changed them (kernel requests,
 *    imports, settling), before the request is answered, JS calls updateDirs(attrs) with the
 *    directories as committed (their copies take them: the next GETATTR of a directory a create
 *    just touched needs no trip) and forgetAttrs(inos) with the other inodes written or deleted;
 *  - a change through the mount forgets the copy of the path it changed (chmod, chown, truncate,
 *    utimens, xattrs, link, unlink, rmdir), whatever JS says; a rename, the paths at and below its
 *    source and its target (no longer theirs);
 *  - an open forgets its path's copy, and none is kept while a file is open there: an open file's
 *    size and times change without a commit (writes, some of them here, never seen by JS at once);
 *    its release forgets again. A file with more links is never kept: its other names' opens are
 *    not its path's;
 *  - every forget bumps a generation (attr_gen; a path's, its slot's), and an answer is cached only
 *    if neither moved while JS computed it, so an answer from before a change never enters the
 *    cache after it.
 * What JS forgets to forget is at most ATTR_TTL_NS old, as with libfuse's default attr_timeout of 1 s.
 */
#define ATTR_SLOTS 4096 /* direct-mapped: a collision replaces */
#define ATTR_TTL_NS 1000000000LL

struct attr_slot {
  char *path;          /* NULL: empty */
  struct stat st;
  int64_t expires_ns;  /* CLOCK_MONOTONIC */
  uint64_t gen;        /* bumped by every forget of a path of this slot */
};

/* The generations an answer from JS must still be in to be kept. */
typedef struct { uint64_t all, slot; } attr_gen_t;

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct attr_slot *attr_slot_of(mount_t *m, const char *path) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) h = (h ^ *p) * 16777619u;
  return &m->attrs[h & (ATTR_SLOTS - 1)];
}

/* A hit fills st; a miss says which generation an answer from JS must still be in to be kept. */
static bool attr_cached(mount_t *m, const char *path, struct stat *st, attr_gen_t *gen) {
  if (!m->attrs) return false;
  pthread_mutex_lock(&m->attr_lock);
  struct attr_slot *d = attr_slot_of(m, path);
  bool hit = d->path && strcmp(d->path, path) == 0 && monotonic_ns() < d->expires_ns;
  if (hit) *st = d->st;
  gen->all = m->attr_gen;
  gen->slot = d->gen;
  pthread_mutex_unlock(&m->attr_lock);
  return hit;
}

static bool open_at(mount_t *m, const char *path);

static void attr_keep(mount_t *m, const char *path, const struct stat *st, attr_gen_t gen) {
  if (!m->attrs) return;
  if (!S_ISDIR(st->st_mode) && (st->st_nlink != 1 || open_at(m, path))) return;
  pthread_mutex_lock(&m->attr_lock);
  struct attr_slot *d = attr_slot_of(m, path);
  if (gen.all == m->attr_gen && gen.slot == d->gen) {
    char *copy = strdup(path);
    if (copy) {
      free(d->path);
      d->path = copy;
      d->st = *st;
      d->expires_ns = monotonic_ns() + ATTR_TTL_NS;
    }
  }
  pthread_mutex_unlock(&m->attr_lock);
}

/* Forgets the copies of these inodes, or every copy (inos NULL). */
static void attr_forget(mount_t *m, const uint64_t *inos, size_t n) {
  if (!m->attrs) return;
  pthread_mutex_lock(&m->attr_lock);
  m->attr_gen++;
  for (size_t i = 0; i < ATTR_SLOTS; i++) {
    struct attr_slot *d = &m->attrs[i];
    if (!d->path) continue;
    bool gone = inos == NULL;
    for (size_t k = 0; !gone && k < n; k++) gone = (uint64_t)d->st.st_ino == inos[k];
    if (gone) { free(d->path); d->path = NULL; }
  }
  pthread_mutex_unlock(&m->attr_lock);
}

/* These directories changed and now are so: their copies take the new attributes (by inode). */
static void attr_update(mount_t *m, const struct stat *sts, size_t n) {
  if (!m->attrs) return;
  pthread_mutex_lock(&m->attr_lock);
  m->attr_gen++;
  int64_t expires = monotonic_ns() + ATTR_TTL_NS;
  for (size_t i = 0; i < ATTR_SLOTS; i++) {
    struct attr_slot *d = &m->attrs[i];
    if (!d->path) continue;
    for (size_t k = 0; k < n; k++) {
      if (d->st.st_ino == sts[k].st_ino) { d->st = sts[k]; d->expires_ns = expires; break; }
    }
  }
  pthread_mutex_unlock(&m->attr_lock);
}

/* Forgets the copies of path and of every path below it (the paths a rename moves or replaces). */
static void attr_forget_under(mount_t *m, const char *path) {
  if (!m->attrs) return;
  size_t len = strlen(path);
  pthread_mutex_lock(&m->attr_lock);
  m->attr_gen++;
  for (size_t i = 0; i < ATTR_SLOTS; i++) {
    struct attr_slot *d = &m->attrs[i];
    if (d->path && strncmp(d->path, path, len) == 0 && (d->path[len] == '\0' || d->path[len] == '/')) {
      free(d->path);
      d->path = NULL;
    }
  }
  pthread_mutex_unlock(&m->attr_lock);
}

/* Forgets the copy of this path (a change through the mount, an open, a release). Its slot's
 * generation, not attr_gen: opens and changes of files would otherwise keep every directory from
 * being kept while a tree is written. */
static void attr_forget_path(mount_t *m, const char *path) {
  if (!m->attrs || !path) return;
  pthread_mutex_lock(&m->attr_lock);
  struct attr_slot *d = attr_slot_of(m, path);
  d->gen++;
  if (d->path && strcmp(d->path, path) == 0) { free(d->path); d->path = NULL; }
  pthread_mutex_unlock(&m->attr_lock);
}

static int s_getattr(const char *path, struct stat *st) {
  if (!path) return -ENOENT;
  if (is_hidden(path)) {
    struct fuse_file_info fi;
    memset(&fi, 0, sizeof fi);
    if (!open_find(path, &fi.fh)) return -ENOENT;
    return s_fgetattr(NULL, st, &fi);
  }
  if (after_take(path, st)) return 0;
  mount_t *m = current_mount();
  attr_gen_t gen = { 0, 0 };
  if (m && attr_cached(m, path, st, &gen)) return 0;
  REQ(OP_GETATTR); r.path = path; r.st = st;
  int res = dispatch(&r);
  if (res == 0 && m) attr_keep(m, path, st, gen);
  return res;
}

static int s_fgetattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  if (after_take(visible(path), st)) return 0;
  REQ(OP_FGETATTR); r.path = visible(path); r.st = st; r.fi = fi;
  return dispatch(&r);
}

static int s_access(const char *path, int mask) {
  if (!path) return -ENOENT;
  if (is_hidden(path)) { uint64_t fh; return open_find(path, &fh) ? 0 : -ENOENT; }
  REQ(OP_ACCESS); r.path = path; r.mask = mask;
  return dispatch(&r);
}

static int s_readlink(const char *path, char *buf, size_t size) {
  if (!path || is_hidden(path)) return -ENOENT;
  REQ(OP_READLINK); r.path = path; r.buf = buf; r.size = size;
  return dispatch(&r);
}

static int s_mknod(const char *path, mode_t mode, dev_t rdev) {
  if (!path) return -ENOENT;
  if (is_hidden(path)) return -EPERM;
  REQ(OP_MKNOD); r.path = path; r.mode = mode; r.rdev = rdev;
  int res = dispatch(&r);
  if (res == 0) after_set(path, &r);
  return res;
}

static int s_mkdir(const char *path, mode_t mode) {
  if (!path) return -ENOENT;
  if (is_hidden(path)) return -EPERM;
  REQ(OP_MKDIR); r.path = path; r.mode = mode;
  int res = dispatch(&r);
  if (res == 0) after_set(path, &r);
  return res;
}

static int s_unlink(const char *path) {
  if (!path) return -ENOENT;
  if (is_hidden(path)) return 0; /* libfuse removing a hidden file: JS had its unlink already */
  REQ(OP_UNLINK); r.path = path;
  return dispatch(&r);
}

static int s_rmdir(const char *path) {
  if (!path) return -ENOENT;
  if (is_hidden(path)) return -ENOTDIR;
  REQ(OP_RMDIR); r.path = path;
  return dispatch(&r);
}

static int s_symlink(const char *target, const char *path) {
  if (!path || !target) return -ENOENT;
  if (is_hidden(path)) return -EPERM;
  REQ(OP_SYMLINK); r.path = path; r.path2 = target;
  int res = dispatch(&r);
  if (res == 0) after_set(path, &r);
  return res;
}

static int s_rename(const char *from, const char *to) {
  if (!from || !to) return -ENOENT;
  if (is_hidden(from)) return -ENOENT;
  if (is_hidden(to)) {
    /* libfuse hiding a file that is unlinked (or replaced by a rename) while open */
    REQ(OP_UNLINK); r.path = from;
    int res = dispatch(&r);
    if (res == 0) open_renamed(from, to);
    return res;
  }
  REQ(OP_RENAME); r.path = from; r.path2 = to;
  int res = dispatch(&r);
  /* Before the kernel hears of it: the commit named the directories it wrote (the parents, the
   * renamed directory, a replaced one), not the paths at and below `from` and `to`, which are no
   * longer theirs. Other directories keep their copies (rsync renames every file it writes). */
  mount_t *m = current_mount();
  if (m) { attr_forget_under(m, from); attr_forget_under(m, to); }
  if (res == 0) open_renamed(from, to);
  return res;
}

static int s_link(const char *from, const char *to) {
  if (!from || !to) return -ENOENT;
  if (is_hidden(from)) return -ENOENT;
  if (is_hidden(to)) return -EPERM;
  REQ(OP_LINK); r.path = from; r.path2 = to;
  int res = dispatch(&r);
  if (res == 0) after_set(to, &r);
  return res;
}

/*
 * chmod, chown and utimens have no file handle in libfuse 2. On an unlinked open file there is
 * nothing to update by path; succeed, so that e.g. an ftruncate (which also sets mtime) does not
 * fail (the ftruncate handler, which has the fh, is the place to update times).
 */
static int s_chmod(const char *path, mode_t mode) {
  if (!path || is_hidden(path)) return 0;
  REQ(OP_CHMOD); r.path = path; r.mode = mode;
  int res = dispatch(&r);
  if (res == 0) after_set(path, &r);
  return res;
}

static int s_chown(const char *path, uid_t uid, gid_t gid) {
  if (!path || is_hidden(path)) return 0;
  REQ(OP_CHOWN); r.path = path; r.uid = uid; r.gid = gid;
  int res = dispatch(&r);
  if (res == 0) after_set(path, &r);
  return res;
}

static int s_truncate(const char *path, off_t size) {
  if (!path) return -ENOENT;
  if (is_hidden(path)) {
    struct fuse_file_info fi;
    memset(&fi, 0, sizeof fi);
    if (!open_find(path, &fi.fh)) return -ENOENT;
    return s_ftruncate(NULL, size, &fi);
  }
  REQ(OP_TRUNCATE); r.path = path; r.off = size;
  int res = dispatch(&r);
  if (res == 0) after_set(path, &r);
  return res;
}

static int s_ftruncate(const char *path, off_t size, struct fuse_file_info *fi) {
  REQ(OP_FTRUNCATE); r.path = visible(path); r.off = size; r.fi = fi;
  int res = dispatch(&r);
  if (res == 0) after_set(r.path, &r);
  return res;
}

static int s_utimens(const char *path, const struct timespec tv[2]) {
  if (!path || is_hidden(path)) return 0;
  REQ(OP_UTIMENS); r.path = path; r.tv[0] = tv[0]; r.tv[1] = tv[1];
  int res = dispatch(&r);
  if (res == 0) after_set(path, &r);
  return res;
}

/*
 * Passthrough (and 1 MiB requests).
 *
 * Linux 6.9+ can serve reads and writes of an open FUSE file from a backing file itself
 * (FUSE_PASSTHROUGH): no request per read, and the backing file's own page cache, where ours holds
 * 4 KiB pages only (a warm re-read ran at 0.36x local disk). libfuse 2 predates it, so the binding
 * talks to /dev/fuse through a channel of its own that edits two replies:
 *  - INIT asks for passthrough, and for requests of up to 1 MiB (MAX_PAGES; libfuse 2 and the
 *    kernel's default are 128 KiB: 1 GiB written by dd took 2.4x as long) in the 64-byte reply of
 *    protocol 7.40 (libfuse 2 sends 24 bytes);
 *  - the OPEN reply JS gave a backing id ({ fh, backing }) carries FOPEN_PASSTHROUGH and the id.
 * libfuse handles each request on one thread from read(2) to its reply, so the request being
 * answered is a thread-local. JS gets backing ids with openBacking(fd) (the kernel keeps its own
 * reference to the file) and drops them with closeBacking(id). The kernel's rules are JS's to keep
 * (src/fs/passthrough.ts): while a kernel inode has a passthrough open, every open of it must be
 * one with the same backing id, and a passthrough open fails while it has other opens.
 * Without the kernel's support (older kernels, no CAP_SYS_ADMIN, a state directory on a stacked
 * file system) openBacking fails and JS opens as before.
 */
#define WIRE_OPEN 14
#define WIRE_INIT 26
#define WIRE_INIT_EXT (1u << 30)
#define WIRE_MAX_PAGES (1u << 22)
#define MAX_PAGES 256 /* requests of up to 1 MiB (libfuse 2 and the kernel's default: 128 KiB) */
#define WIRE_PASSTHROUGH_HI (1u << 5)   /* FUSE_PASSTHROUGH (1 << 37), in flags2 */
#define WIRE_FOPEN_PASSTHROUGH (1u << 7)
#define WIRE_FOPEN_PASSTHROUGH_MASK 0xe1u /* direct_io, noflush, parallel_direct_writes, passthrough */

struct wire_in_header { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid, padding; };
struct wire_out_header { uint32_t len; int32_t error; uint64_t unique; };
struct wire_init_out {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, max_stack_depth;
  uint16_t request_timeout, unused[11];
};
struct wire_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };
struct wire_backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
_Static_assert(sizeof(struct wire_init_out) == 64, "fuse_init_out of protocol 7.40");
_Static_assert(sizeof(struct wire_open_out) == 16, "fuse_open_out");
#define WIRE_IOC_BACKING_OPEN _IOW(229, 1, struct wire_backing_map)
#define WIRE_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

static __thread uint64_t tl_unique;  /* the request this libfuse thread is answering */
static __thread uint32_t tl_opcode;
static __thread int32_t tl_backing;  /* s_open's answer: the reply opens this backing id */

/* libfuse's fuse_kern_chan_receive, noting which request the thread works on. */
static int chan_receive(struct fuse_chan **chp, char *buf, size_t size) {
  struct fuse_chan *ch = *chp;
  struct fuse_session *se = fuse_chan_session(ch);
  ssize_t res;
  int err;
  do { /* ENOENT: the request was interrupted; read the next */
    res = read(fuse_chan_fd(ch), buf, size);
    err = errno;
  } while (res < 0 && err == ENOENT && !fuse_session_exited(se));
  if (fuse_session_exited(se)) return 0;
  if (res < 0) {
    if (err == ENODEV) { fuse_session_exit(se); return 0; } /* unmounted */
    if (err != EINTR && err != EAGAIN) perror("fuse: reading device");
    return -err;
  }
  if ((size_t)res < sizeof(struct wire_in_header)) { fprintf(stderr, "short read on fuse device\n"); return -EIO; }
  const struct wire_in_header *in = (const void *)buf;
  tl_unique = in->unique;
  tl_opcode = in->opcode;
  tl_backing = 0;
  return (int)res;
}

/* Whether the reply to this thread's request is one to edit. */
static bool edits_reply(void) {
  return tl_opcode == WIRE_INIT || (tl_opcode == WIRE_OPEN && tl_backing > 0);
}

/* The reply's argument as sent, or edited into *arg (see above). */
static struct iovec edit_reply(const struct iovec *given, void *arg) {
  struct iovec out = *given;
  if (tl_opcode == WIRE_INIT && given->iov_len <= sizeof(struct wire_init_out)) {
    struct wire_init_out *init = arg;
    memset(init, 0, sizeof *init);
    memcpy(init, given->iov_base, given->iov_len);
    init->flags |= WIRE_INIT_EXT | WIRE_MAX_PAGES;
    init->max_pages = MAX_PAGES;
    init->flags2 |= WIRE_PASSTHROUGH_HI;
    init->max_stack_depth = 1; /* backing files on a file system that stacks on none */
    out.iov_base = init;
    out.iov_len = sizeof *init;
  } else if (tl_opcode == WIRE_OPEN && given->iov_len == sizeof(struct wire_open_out)) {
    struct wire_open_out *open = arg;
    memcpy(open, given->iov_base, sizeof *open);
    /* The kernel refuses passthrough with any other flag, keep_cache (auto_cache) among them. */
    open->open_flags = (open->open_flags & WIRE_FOPEN_PASSTHROUGH_MASK) | WIRE_FOPEN_PASSTHROUGH;
    open->backing_id = tl_backing;
    out.iov_base = open;
  }
  return out;
}

static int chan_send(struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (!iov) return 0;
  struct wire_out_header hdr;
  union { struct wire_init_out init; struct wire_open_out open; } arg;
  struct iovec edited[2];
  if (count == 2 && iov[0].iov_len == sizeof hdr && edits_reply()) {
    memcpy(&hdr, iov[0].iov_base, sizeof hdr);
    if (hdr.unique == tl_unique && hdr.error == 0) {
      edited[1] = edit_reply(&iov[1], &arg);
      hdr.len = (uint32_t)(sizeof hdr + edited[1].iov_len);
      edited[0].iov_base = &hdr;
      edited[0].iov_len = sizeof hdr;
      iov = edited;
    }
  }
  ssize_t res = writev(fuse_chan_fd(ch), iov, (int)count);
  if (res < 0) {
    int err = errno;
    /* ENOENT: the request was interrupted meanwhile */
    if (!fuse_session_exited(fuse_chan_session(ch)) && err != ENOENT) perror("fuse: writing device");
    return -err;
  }
  return 0;
}

static void chan_destroy(struct fuse_chan *ch) {
  int fd = fuse_chan_fd(ch);
  if (fd != -1) close(fd); /* fuse_unmount clears it first: it closes the fd itself */
}

/* Our channel on fuse_mount's device, in place of libfuse's (which it destroys), or kern on failure. */
static struct fuse_chan *own_channel(struct fuse_chan *kern, mount_t *m) {
  int fd = fcntl(fuse_chan_fd(kern), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return kern;
  struct fuse_chan_ops ops = { .receive = chan_receive, .send = chan_send, .destroy = chan_destroy };
  /* libfuse sizes max_write by the buffer: room for MAX_PAGES pages and the request's header */
  size_t bufsize = fuse_chan_bufsize(kern);
  if (bufsize < MAX_PAGES * 4096 + 0x1000) bufsize = MAX_PAGES * 4096 + 0x1000;
  struct fuse_chan *ch = fuse_chan_new(&ops, fd, bufsize, m);
  if (!ch) { close(fd); return kern; }
  fuse_chan_destroy(kern);
  return ch;
}

static int s_open(const char *path, struct fuse_file_info *fi) {
  if (!path || is_hidden(path)) return -ENOENT;
  REQ(OP_OPEN); r.path = path; r.flags = fi->flags; r.fi = fi;
  int res = dispatch(&r);
  if (res == 0) open_add(fi->fh, path);
  if (res == 0 && r.backing > 0) tl_backing = r.backing; /* libfuse replies next, on this thread */
  return res;
}

static int s_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  if (!path) return -ENOENT;
  if (is_hidden(path)) return -EPERM;
  REQ(OP_CREATE); r.path = path; r.mode = mode; r.flags = fi->flags; r.fi = fi;
  int res = dispatch(&r);
  if (res == 0) { open_add(fi->fh, path); after_set(path, &r); }
  return res;
}

static int s_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  if (size > INT_MAX) size = INT_MAX;
  int res;
  if (direct_read(fi, buf, size, off, &res)) return res;
  REQ(OP_READ); r.path = visible(path); r.buf = buf; r.size = size; r.off = off; r.fi = fi;
  res = dispatch(&r);
  if (!r.fill || res <= 0) return res;
  /* JS answered with a count: its range is in the content file (the fd stays open until RELEASE). */
  int fd = fill_fd(current_mount(), fi);
  return fd < 0 ? -EIO : pread_full(fd, buf, (size_t)res, off);
}

static int s_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  if (size > INT_MAX) size = INT_MAX;
  int res;
  if (direct_write(fi, buf, size, off, &res)) return res;
  REQ(OP_WRITE); r.path = visible(path); r.buf = (char *)buf; r.size = size; r.off = off; r.fi = fi;
  return dispatch(&r);
}

static int s_flush(const char *path, struct fuse_file_info *fi) {
  REQ(OP_FLUSH); r.path = visible(path); r.fi = fi;
  return dispatch(&r);
}

static int s_release(const char *path, struct fuse_file_info *fi) {
  open_remove(fi->fh);
  REQ(OP_RELEASE); r.path = visible(path); r.fi = fi;
  return dispatch(&r);
}

static int s_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  REQ(OP_FSYNC); r.path = visible(path); r.datasync = datasync; r.fi = fi;
  return dispatch(&r);
}

static int s_opendir(const char *path, struct fuse_file_info *fi) {
  if (!path || is_hidden(path)) return -ENOENT;
  REQ(OP_OPENDIR); r.path = path; r.flags = fi->flags; r.fi = fi;
  return dispatch(&r);
}

static int s_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi) {
  if (!path) return 0; /* a removed directory that is still open: empty */
  REQ(OP_READDIR); r.path = path; r.fi = fi;
  int res = dispatch(&r);
  if (res == 0) {
    if (filler(buf, ".", NULL, 0) == 0 && filler(buf, "..", NULL, 0) == 0) {
      for (size_t i = 0; i < r.nentries; i++) {
        if (filler(buf, r.entries[i].name, r.entries[i].has_st ? &r.entries[i].st : NULL, 0)) break;
      }
    }
  }
  free_entries(r.entries, r.nentries);
  return res;
}

static int s_releasedir(const char *path, struct fuse_file_info *fi) {
  REQ(OP_RELEASEDIR); r.path = path; r.fi = fi;
  return dispatch(&r);
}

static int s_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  REQ(OP_FSYNCDIR); r.path = path; r.datasync = datasync; r.fi = fi;
  return dispatch(&r);
}

static int s_statfs(const char *path, struct statvfs *stv) {
  if (!path || is_hidden(path)) path = "/";
  REQ(OP_STATFS); r.path = path; r.stv = stv;
  return dispatch(&r);
}

static int s_setxattr(const char *path, const char *name, const char *value, size_t size, int flags) {
  if (!path || is_hidden(path)) return -ENOENT;
  REQ(OP_SETXATTR); r.path = path; r.name = name; r.value = value; r.size = size; r.flags = flags;
  return dispatch(&r);
}

static int s_getxattr(const char *path, const char *name, char *value, size_t size) {
  if (!path || is_hidden(path)) return -ENOENT;
  /* Only user.* attributes exist here. ls asks for security.selinux and system.posix_acl_* on
   * every file: answering those without a trip to the JS thread makes `ls -l` several times faster. */
  if (strncmp(name, "user.", 5) != 0) return -ENODATA;
  REQ(OP_GETXATTR); r.path = path; r.name = name; r.buf = value; r.size = size;
  return dispatch(&r);
}

static int s_listxattr(const char *path, char *list, size_t size) {
  if (!path || is_hidden(path)) return -ENOENT;
  REQ(OP_LISTXATTR); r.path = path; r.buf = list; r.size = size;
  return dispatch(&r);
}

static int s_removexattr(const char *path, const char *name) {
  if (!path || is_hidden(path)) return -ENOENT;
  REQ(OP_REMOVEXATTR); r.path = path; r.name = name;
  return dispatch(&r);
}

/*
 * Stopping fuse_loop_mt: its main thread waits in sem_wait() until the session has exited, then
 * cancels the workers blocked in read(2) on /dev/fuse (workers busy with a request finish it
 * first) and joins them. sem_wait() returns on a signal, which is how libfuse's own signal handlers
 * stop it; we do the same with a private real-time signal sent to the loop thread only, so it works
 * whether or not the kernel connection has ended (a lazily detached mount with open files).
 */
#define WAKE_SIGNAL (SIGRTMIN + 5)

static void wake_handler(int sig) { (void)sig; }

static void install_wake_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = wake_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART (sem_wait is never restarted anyway) */
  sigaction(WAKE_SIGNAL, &sa, NULL);
}

static pthread_once_t wake_once = PTHREAD_ONCE_INIT;

static void *loop_main(void *arg) {
  mount_t *m = arg;
  /* Everything else stays blocked here (signals are Node's); libfuse blocks all in its workers. */
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, WAKE_SIGNAL);
  pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
  m->loop_result = fuse_loop_mt(m->fuse);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Mount bookkeeping                                                                            */

/* Undoes the octal escapes of /proc/self/mountinfo (\040 for a space, ...), in place. */
static void unescape_mountinfo(char *s) {
  char *w = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
      *w++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
      p += 3;
    } else {
      *w++ = *p;
    }
  }
  *w = 0;
}

/*
 * The device of the topmost FUSE mount at `mountpoint`, from /proc/self/mountinfo (never stat(2):
 * that would ask our own file system). With want_major/want_minor >= 0, tells whether that very
 * mount is still there.
 */
static bool find_fuse_mount(const char *mountpoint, long want_major, long want_minor, unsigned *maj, unsigned *min) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return false;
  char *line = NULL;
  size_t cap = 0;
  bool found = false;
  while (getline(&line, &cap, f) > 0) {
    unsigned a, b;
    char mp[PATH_MAX * 4 + 1];
    /* id parent major:minor root mountpoint ... - fstype source options */
    if (sscanf(line, "%*u %*u %u:%u %*s %4096s", &a, &b, mp) != 3) continue;
    char *sep = strstr(line, " - ");
    if (!sep || strncmp(sep + 3, "fuse", 4) != 0) continue;
    unescape_mountinfo(mp);
    if (strcmp(mp, mountpoint) != 0) continue;
    if (want_major >= 0 && (a != (unsigned)want_major || b != (unsigned)want_minor)) continue;
    found = true;
    if (maj) *maj = a;
    if (min) *min = b;
  }
  free(line);
  fclose(f);
  return found;
}

static bool connection_alive(mount_t *m) {
  struct pollfd p = { .fd = fuse_chan_fd(m->ch), .events = 0, .revents = 0 };
  if (p.fd < 0) return false;
  int res = poll(&p, 1, 0);
  return !(res == 1 && (p.revents & (POLLERR | POLLNVAL)));
}

/* Detaches our mount if it is still attached (lazily: open files keep working until closed). */
static void detach_if_mounted(mount_t *m) {
  if (!connection_alive(m)) return;
  if (m->have_dev && !find_fuse_mount(m->mountpoint, m->dev_major, m->dev_minor, NULL, NULL)) return;
  fuse_unmount(m->mountpoint, NULL); /* as root: umount2(MNT_DETACH); else fusermount -u -q -z */
}

static void list_remove(mount_t *m) {
  pthread_mutex_lock(&mounts_lock);
  for (mount_t **pp = &mounts; *pp; pp = &(*pp)->next) {
    if (*pp == m) { *pp = m->next; break; }
  }
  pthread_mutex_unlock(&mounts_lock);
}

static void free_mount(mount_t *m) {
  open_free_all(m);
  if (m->attrs) for (size_t i = 0; i < ATTR_SLOTS; i++) free(m->attrs[i].path);
  free(m->attrs);
  pthread_mutex_destroy(&m->attr_lock);
  pthread_mutex_destroy(&m->open_lock);
  free(m->mountpoint);
  free(m);
}

/* The process (or worker) is exiting with the file system still mounted: do not leave it behind. */
static void env_cleanup(void *arg) {
  mount_t *m = arg;
  if (m->state == ST_UNMOUNTED) return;
  fuse_exit(m->fuse);
  detach_if_mounted(m);
}

/* process.exit() and fatal exceptions end the process through exit(3) without running the env
 * cleanup hooks: detach there too, so that no dead mount ("Transport endpoint is not connected")
 * is left behind. (Killed by a signal, the kernel ends the connection and the mount stays stale.) */
static void detach_all_at_exit(void) {
  pthread_mutex_lock(&mounts_lock);
  for (mount_t *m = mounts; m; m = m->next) {
    if (m->state != ST_UNMOUNTED) detach_if_mounted(m);
  }
  pthread_mutex_unlock(&mounts_lock);
}

static void register_atexit(void) { atexit(detach_all_at_exit); }
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static void mount_handle_finalize(napi_env env, void *data, void *hint) {
  mount_t *m = data;
  m->handle_gone = true;
  if (m->state == ST_UNMOUNTED) free_mount(m);
  /* still mounted: the loop keeps using m, leave it */
}

/* ------------------------------------------------------------------------------------------ */
/* Exports                                                                                      */

static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3) return throw_error(env, "EINVAL", "mount(mountpoint, options, dispatch) needs 3 arguments");
  napi_valuetype t;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function)
    return throw_error(env, "EINVAL", "mount: dispatch must be a function");
  char *mp = get_string(env, argv[0], NULL);
  if (!mp || !*mp) { free(mp); return throw_error(env, "EINVAL", "mount: mountpoint must be a non-empty string"); }
  char *opts = get_string(env, argv[1], NULL);
  if (!opts) { free(mp); return throw_error(env, "EINVAL", "mount: options must be a string"); }

  char msg[PATH_MAX + 128];
  char *real = realpath(mp, NULL);
  if (!real) {
    int e = errno;
    snprintf(msg, sizeof msg, "mount: %s: %s", mp, strerror(e));
    free(mp); free(opts);
    return throw_error(env, e == ENOENT ? "ENOENT" : e == ENOTCONN ? "ENOTCONN" : "EINVAL", msg);
  }
  free(mp);

  mount_t *m = calloc(1, sizeof *m);
  if (!m) { free(real); free(opts); return throw_error(env, "ENOMEM", "mount: out of memory"); }
  m->mountpoint = real;
  m->env = env;
  pthread_mutex_init(&m->open_lock, NULL);
  pthread_mutex_init(&m->attr_lock, NULL);
  m->attrs = calloc(ATTR_SLOTS, sizeof *m->attrs); /* none: no cache, every GETATTR goes to JS */

  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  if (fuse_opt_add_arg(&args, "s3link") != 0 ||
      (*opts && (fuse_opt_add_arg(&args, "-o") != 0 || fuse_opt_add_arg(&args, opts) != 0))) {
    fuse_opt_free_args(&args);
    free(opts); free_mount(m);
    return throw_error(env, "ENOMEM", "mount: out of memory");
  }
  free(opts);

  m->ch = fuse_mount(m->mountpoint, &args);
  if (!m->ch) {
    fuse_opt_free_args(&args);
    snprintf(msg, sizeof msg, "fuse_mount failed on %s (libfuse printed the reason on stderr)", m->mountpoint);
    free_mount(m);
    return throw_error(env, "EFUSEMOUNT", msg);
  }
  m->ch = own_channel(m->ch, m);

  struct fuse_operations ops;
  memset(&ops, 0, sizeof ops);
  ops.getattr = s_getattr;
  ops.fgetattr = s_fgetattr;
  ops.access = s_access;
  ops.readlink = s_readlink;
  ops.mknod = s_mknod;
  ops.mkdir = s_mkdir;
  ops.unlink = s_unlink;
  ops.rmdir = s_rmdir;
  ops.symlink = s_symlink;
  ops.rename = s_rename;
  ops.link = s_link;
  ops.chmod = s_chmod;
  ops.chown = s_chown;
  ops.truncate = s_truncate;
  ops.ftruncate = s_ftruncate;
  ops.utimens = s_utimens;
  ops.open = s_open;
  ops.create = s_create;
  ops.read = s_read;
  ops.write = s_write;
  ops.flush = s_flush;
  ops.release = s_release;
  ops.fsync = s_fsync;
  ops.opendir = s_opendir;
  ops.readdir = s_readdir;
  ops.releasedir = s_releasedir;
  ops.fsyncdir = s_fsyncdir;
  ops.statfs = s_statfs;
  ops.setxattr = s_setxattr;
  ops.getxattr = s_getxattr;
  ops.listxattr = s_listxattr;
  ops.removexattr = s_removexattr;
  ops.flag_nullpath_ok = 1;
  ops.flag_nopath = 0;
  ops.flag_utime_omit_ok = 1;

  m->fuse = fuse_new(m->ch, &args, &ops, sizeof ops, m);
  fuse_opt_free_args(&args);
  if (!m->fuse) {
    fuse_unmount(m->mountpoint, m->ch);
    snprintf(msg, sizeof msg, "fuse_new failed for %s (an unknown option? libfuse printed the reason on stderr)", m->mountpoint);
    free_mount(m);
    return throw_error(env, "EFUSEMOUNT", msg);
  }
  m->have_dev = find_fuse_mount(m->mountpoint, -1, -1, &m->dev_major, &m->dev_minor);

  napi_value name;
  napi_create_string_utf8(env, "s3link_fuse", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, m, call_js, &m->tsfn) != napi_ok) {
    clear_exception(env);
    fuse_unmount(m->mountpoint, m->ch);
    fuse_destroy(m->fuse);
    free_mount(m);
    return throw_error(env, "EIO", "mount: cannot create the threadsafe function");
  }

  pthread_mutex_lock(&mounts_lock);
  m->next = mounts;
  mounts = m;
  pthread_mutex_unlock(&mounts_lock);

  /* Signals belong to Node's main thread: block them all in the loop thread (and so its workers). */
  pthread_once(&wake_once, install_wake_handler);
  pthread_once(&atexit_once, register_atexit);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = pthread_create(&m->thread, NULL, loop_main, m);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    list_remove(m);
    napi_release_threadsafe_function(m->tsfn, napi_tsfn_abort);
    fuse_unmount(m->mountpoint, m->ch);
    fuse_destroy(m->fuse);
    free_mount(m);
    return throw_error(env, "EIO", "mount: cannot start the FUSE loop thread");
  }
  m->state = ST_MOUNTED;
  napi_add_env_cleanup_hook(env, env_cleanup, m);

  napi_value handle;
  if (napi_create_external(env, m, mount_handle_finalize, NULL, &handle) != napi_ok ||
      napi_type_tag_object(env, handle, &MOUNT_TAG) != napi_ok) {
    /* cannot hand it out: nobody could unmount it, so the cleanup hook will */
    return NULL;
  }
  return handle;
}

static void unmount_execute(napi_env env, void *data) {
  mount_t *m = data;
  fuse_exit(m->fuse);
  /* Normally `fusermount -u` has already unmounted, which ended the connection. */
  detach_if_mounted(m);
  for (;;) {
    pthread_kill(m->thread, WAKE_SIGNAL);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 200 * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec += 1; deadline.tv_nsec -= 1000000000L; }
    if (pthread_timedjoin_np(m->thread, NULL, &deadline) == 0) break;
  }
  /* Closes /dev/fuse, which ends the kernel connection if open files still kept it alive. */
  fuse_destroy(m->fuse);
  m->fuse = NULL;
  m->ch = NULL;
}

static void unmount_complete(napi_env env, napi_status status, void *data) {
  mount_t *m = data;
  list_remove(m);
  napi_remove_env_cleanup_hook(env, env_cleanup, m);
  napi_release_threadsafe_function(m->tsfn, napi_tsfn_release);
  m->state = ST_UNMOUNTED;
  napi_delete_async_work(env, m->work);
  napi_deferred d = m->deferred;
  napi_value undef = make_undefined(env);
  bool gone = m->handle_gone;
  if (gone) free_mount(m);
  napi_resolve_deferred(env, d, undef);
}

/* The mount behind a handle passed as the first argument, or NULL. */
static mount_t *mount_arg(napi_env env, size_t argc, napi_value *argv) {
  bool ok = false;
  void *p = NULL;
  if (argc < 1 || napi_check_object_type_tag(env, argv[0], &MOUNT_TAG, &ok) != napi_ok || !ok ||
      napi_get_value_external(env, argv[0], &p) != napi_ok) return NULL;
  return p;
}

static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  mount_t *m = mount_arg(env, argc, argv);
  if (!m) {
    clear_exception(env);
    return throw_error(env, "EINVAL", "unmount: not a mount handle");
  }
  napi_value promise;
  napi_deferred deferred;
  if (napi_create_promise(env, &deferred, &promise) != napi_ok) return NULL;
  if (m->state != ST_MOUNTED) {
    napi_value msg, err;
    napi_create_string_utf8(env, "unmount: already unmounted", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, deferred, err);
    return promise;
  }
  napi_value name;
  napi_create_string_utf8(env, "s3link_fuse_unmount", NAPI_AUTO_LENGTH, &name);
  m->deferred = deferred;
  if (napi_create_async_work(env, NULL, name, unmount_execute, unmount_complete, m, &m->work) != napi_ok ||
      napi_queue_async_work(env, m->work) != napi_ok) {
    napi_value msg, err;
    clear_exception(env);
    napi_create_string_utf8(env, "unmount: cannot queue the work", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, deferred, err);
    return promise;
  }
  m->state = ST_UNMOUNTING;
  return promise;
}

static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  bool ok = false;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_check_object_type_tag(env, argv[0], &REQ_TAG, &ok) != napi_ok || !ok ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || !p) {
    clear_exception(env);
    return throw_error(env, "EINVAL", "reply: not a request");
  }
  token_t *t = p;
  if (!t->req) return make_bool(env, false);
  int64_t e = 0;
  int result;
  if (argc < 2 || !value_to_int64(env, argv[1], -4095, 0, &e)) result = -EIO;
  else if (e < 0) result = (int)e;
  else result = apply_value(env, t, argc >= 3 ? argv[2] : make_undefined(env));
  clear_exception(env);
  finish(env, t, result);
  return make_bool(env, true);
}

/*
 * directWrites(handle, fh, fd) and directReads(handle, fh, fd, size): what the binding may do by
 * itself on open file fh ("Direct writes", "Direct reads"). False when fh is not open.
 */
static napi_value direct_io(napi_env env, napi_callback_info info, bool reads) {
  const char *usage = reads
    ? "directReads(handle, fh, fd, size): a mount handle, an open file handle, a descriptor or -1, a size or -1"
    : "directWrites(handle, fh, fd): a mount handle, an open file handle, a descriptor or -1";
  size_t argc = 4;
  napi_value argv[4];
  int64_t fh, fd, size = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  mount_t *m = mount_arg(env, argc, argv);
  if (!m || argc < (reads ? 4u : 3u) || !value_to_int64(env, argv[1], 0, INT64_MAX, &fh) ||
      !value_to_int64(env, argv[2], -1, INT_MAX, &fd) || (reads && !value_to_int64(env, argv[3], -1, INT64_MAX, &size))) {
    clear_exception(env);
    return throw_error(env, "EINVAL", usage);
  }
  pthread_mutex_lock(&m->open_lock);
  struct open_file *o = m->state == ST_MOUNTED ? open_get_locked(m, (uint64_t)fh) : NULL;
  if (o && fd >= 0) o->fd = (int)fd;
  if (o && reads) {
    o->read_mode = fd < 0 ? READ_JS : size < 0 ? READ_FILL : READ_LOCAL;
    o->read_size = size < 0 ? 0 : (off_t)size;
  } else if (o) {
    o->write_direct = fd >= 0;
  }
  pthread_mutex_unlock(&m->open_lock);
  return make_bool(env, o != NULL);
}

/* forgetAttrs(handle, inos | null): these inodes' cached attributes are stale (null: all). */
static napi_value js_forget_attrs(napi_env env, napi_callback_info info) {
  const char *usage = "forgetAttrs(handle, inos): a mount handle and an array of inode numbers, or null";
  size_t argc = 2;
  napi_value argv[2];
  bool isarr = false;
  napi_valuetype ty;
  uint32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  mount_t *m = mount_arg(env, argc, argv);
  if (!m || argc < 2 || napi_typeof(env, argv[1], &ty) != napi_ok ||
      (ty != napi_null && (napi_is_array(env, argv[1], &isarr) != napi_ok || !isarr ||
                           napi_get_array_length(env, argv[1], &n) != napi_ok))) {
    clear_exception(env);
    return throw_error(env, "EINVAL", usage);
  }
  if (ty == napi_null || n > 64) { attr_forget(m, NULL, 0); return make_undefined(env); } /* many: all at once */
  uint64_t inos[64];
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    int64_t ino;
    if (napi_get_element(env, argv[1], i, &item) != napi_ok || !value_to_int64(env, item, 0, INT64_MAX, &ino)) {
      clear_exception(env);
      return throw_error(env, "EINVAL", usage);
    }
    inos[i] = (uint64_t)ino;
  }
  attr_forget(m, inos, n);
  return make_undefined(env);
}

/* updateDirs(handle, attrs[]): these directories changed and are now so (see "Cached attributes"). */
static napi_value js_update_dirs(napi_env env, napi_callback_info info) {
  const char *usage = "updateDirs(handle, attrs): a mount handle and an array of directory attributes";
  size_t argc = 2;
  napi_value argv[2];
  bool isarr = false;
  uint32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  mount_t *m = mount_arg(env, argc, argv);
  if (!m || argc < 2 || napi_is_array(env, argv[1], &isarr) != napi_ok || !isarr ||
      napi_get_array_length(env, argv[1], &n) != napi_ok) {
    clear_exception(env);
    return throw_error(env, "EINVAL", usage);
  }
  if (n > 64) { attr_forget(m, NULL, 0); return make_undefined(env); } /* many: all forgotten instead */
  struct stat sts[64];
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    memset(&sts[i], 0, sizeof sts[i]);
    if (napi_get_element(env, argv[1], i, &item) != napi_ok || js_to_stat(env, item, &sts[i]) != 0 || !S_ISDIR(sts[i].st_mode)) {
      clear_exception(env);
      attr_forget(m, NULL, 0); /* whatever they said, nothing kept may contradict it */
      return throw_error(env, "EINVAL", usage);
    }
  }
  attr_update(m, sts, n);
  return make_undefined(env);
}


/* openBacking(handle, fd) and closeBacking(handle, id): see "Passthrough". Errors are returned, not thrown. */
static napi_value backing(napi_env env, napi_callback_info info, bool open) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t arg;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  mount_t *m = mount_arg(env, argc, argv);
  if (!m || argc < 2 || !value_to_int64(env, argv[1], open ? 0 : 1, open ? INT_MAX : INT32_MAX, &arg)) {
    clear_exception(env);
    return throw_error(env, "EINVAL", open ? "openBacking(handle, fd): a mount handle and a descriptor"
                                           : "closeBacking(handle, id): a mount handle and a backing id");
  }
  if (m->state != ST_MOUNTED) return num(env, -ENOTCONN);
  int res;
  if (open) {
    struct wire_backing_map map = { .fd = (int32_t)arg, .flags = 0, .padding = 0 };
    res = ioctl(fuse_chan_fd(m->ch), WIRE_IOC_BACKING_OPEN, &map);
  } else {
    uint32_t id = (uint32_t)arg;
    res = ioctl(fuse_chan_fd(m->ch), WIRE_IOC_BACKING_CLOSE, &id);
  }
  return num(env, res < 0 ? -errno : res);
}

static napi_value js_open_backing(napi_env env, napi_callback_info info) { return backing(env, info, true); }
static napi_value js_close_backing(napi_env env, napi_callback_info info) { return backing(env, info, false); }
static napi_value js_direct_writes(napi_env env, napi_callback_info info) { return direct_io(env, info, false); }
static napi_value js_direct_reads(napi_env env, napi_callback_info info) { return direct_io(env, info, true); }

static napi_value js_notify(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string)
    return throw_error(env, "EINVAL", "notify: state must be a string");
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) return NULL;
  char *state = malloc(len + 1);
  if (!state) return throw_error(env, "ENOMEM", "notify: out of memory");
  napi_get_value_string_utf8(env, argv[0], state, len + 1, &len);

  const char *addr = getenv("NOTIFY_SOCKET");
  if (!addr || !*addr) { free(state); return make_bool(env, false); }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t alen = strlen(addr);
  if ((addr[0] != '/' && addr[0] != '@') || alen >= sizeof sa.sun_path) {
    free(state);
    return throw_error(env, "EAFNOSUPPORT", "notify: NOTIFY_SOCKET is not a Unix socket path or @abstract name");
  }
  memcpy(sa.sun_path, addr, alen);
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen);
  if (addr[0] == '@') sa.sun_path[0] = 0; /* abstract: no trailing NUL in the length */
  else salen += 1;

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ssize_t sent = -1;
  int e = 0;
  if (fd >= 0) {
    sent = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    if (sent < 0) e = errno;
    close(fd);
  } else {
    e = errno;
  }
  free(state);
  if (sent < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "notify: cannot send to NOTIFY_SOCKET %s: %s", addr, strerror(e));
    return throw_error(env, "ENOTIFY", msg);
  }
  return make_bool(env, true);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL },
    { "unmount", NULL, js_unmount, NULL, NULL, NULL, napi_enumerable, NULL },
    { "reply", NULL, js_reply, NULL, NULL, NULL, napi_enumerable, NULL },
    { "notify", NULL, js_notify, NULL, NULL, NULL, napi_enumerable, NULL },
    { "directWrites", NULL, js_direct_writes, NULL, NULL, NULL, napi_enumerable, NULL },
    { "directReads", NULL, js_direct_reads, NULL, NULL, NULL, napi_enumerable, NULL },
    { "forgetAttrs", NULL, js_forget_attrs, NULL, NULL, NULL, napi_enumerable, NULL },
    { "updateDirs", NULL, js_update_dirs, NULL, NULL, NULL, napi_enumerable, NULL },
    { "openBacking", NULL, js_open_backing, NULL, NULL, NULL, napi_enumerable, NULL },
    { "closeBacking", NULL, js_close_backing, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
