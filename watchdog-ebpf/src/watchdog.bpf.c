// SPDX-License-Identifier: GPL-2.0 OR MIT
/* mcp-watchdog's filesystem attribution: follow the process trees of spawned servers from
 * fork, and report their write-like syscalls with absolute paths and outcomes. Operations
 * inside a tree's declared write scope (not sensitive, no .git component) are only counted.
 * No LSM/fentry here: trampolines are unavailable on the target kernels (KERNEL.md §0). */

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "watchdog.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000
#define SIGKILL 9
#define WALK_SIZE 1024
#define WALK_DEPTH 64 /* path components plus mount crossings */
/* Wake the reader only once this much is waiting (or for a kill): a wakeup per record costs
 * more than the record. The reader also polls on a timer, which bounds the latency. */
#define WAKEUP_BYTES (64 << 10)

/* Per-CPU working memory: the record being built and the path walk. The pads only keep
 * verifier-visible worst cases inside the value. */
struct scratch {
	struct wd_event ev;
	char walk[WALK_SIZE];
	char pad[512];
	char rel[WD_PATH_LEN];
	char pad2[512];
};

/* Processes whose children each become the root of a watched tree. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} SPAWNERS SEC(".maps");

/* tgid -> root tgid of its tree. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, __u32);
} WATCHED SEC(".maps");

/* root tgid -> scope; a root without one has everything emitted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__uint(map_flags, 1 /* BPF_F_NO_PREALLOC: 15 KiB values */);
	__type(key, __u32);
	__type(value, struct wd_scope);
} SCOPES SEC(".maps");

/* spawner tgid -> the scope each of its children starts with, before its own is declared: in
 * strict mode the sensitive set, killed on touch from the child's first instruction. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, 1 /* BPF_F_NO_PREALLOC */);
	__type(key, __u32);
	__type(value, struct wd_scope);
} FIRST_SCOPES SEC(".maps");

/* pid_tgid -> record waiting for its syscall's return value. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct wd_event);
} PENDING SEC(".maps");

/* How many PENDING records exist: while none does, sys_exit returns before any hash lookup, so
 * processes nobody watches pay almost nothing on each syscall's return. A record lost without
 * its decrement (LRU eviction) only keeps the slower path on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} IN_FLIGHT SEC(".maps");

/* The syscall's path arguments, for records whose paths must be read again at exit. */
struct retry {
	__u64 p;
	__u64 p2;
	__s32 dfd;
	__s32 dfd2;
	__u32 path2_mode;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct retry);
} RETRY SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} SCRATCH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WD_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} STATS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} EVENTS SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&STATS, &which);
	if (v)
		*v += 1;
}

static __always_inline void forget_pending(__u64 id, __u64 *in_flight)
{
	if (bpf_map_delete_elem(&PENDING, &id) == 0)
		__sync_fetch_and_add(in_flight, -1);
}

/* ---- process trees ---------------------------------------------------------------------- */

/* Probe only, never attached: whether this kernel loads BPF-LSM programs at all (they need BPF
 * trampolines, which some VMs refuse with EPERM). Where it loads, BPF could refuse a syscall;
 * where it does not, strict mode refuses opens with fanotify permission events instead. */
SEC("lsm/file_open")
int BPF_PROG(lsm_probe, struct file *file, int ret)
{
	return ret;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	if (ptgid == ctgid)
		return 0; /* a thread */
	if (bpf_map_lookup_elem(&SPAWNERS, &ptgid)) {
		bpf_map_update_elem(&WATCHED, &ctgid, &ctgid, BPF_ANY);
		struct wd_scope *first = bpf_map_lookup_elem(&FIRST_SCOPES, &ptgid);
		if (first)
			bpf_map_update_elem(&SCOPES, &ctgid, first, BPF_ANY);
		return 0;
	}
	__u32 *root = bpf_map_lookup_elem(&WATCHED, &ptgid);
	if (root) {
		__u32 r = *root;
		bpf_map_update_elem(&WATCHED, &ctgid, &r, BPF_ANY);
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	/* A task must not end with its record still counted, whatever cut its syscall short. */
	__u32 zero = 0;
	__u64 *in_flight = bpf_map_lookup_elem(&IN_FLIGHT, &zero);
	if (in_flight && *in_flight)
		forget_pending((__u64)task->tgid << 32 | (__u32)task->pid, in_flight);
	if (task->pid != task->tgid)
		return 0; /* only the group leader ends the process */
	__u32 tgid = task->tgid;
	/* A root's scope goes with it (userspace forgets it too once the root is reaped): a first
	 * scope given at fork to a child nobody declared must not hold a SCOPES slot forever. */
	__u32 *root = bpf_map_lookup_elem(&WATCHED, &tgid);
	if (root && *root == tgid)
		bpf_map_delete_elem(&SCOPES, &tgid);
	bpf_map_delete_elem(&WATCHED, &tgid);
	bpf_map_delete_elem(&SPAWNERS, &tgid);
	bpf_map_delete_elem(&FIRST_SCOPES, &tgid);
	return 0;
}

/* ---- paths ------------------------------------------------------------------------------ */

struct walk_ctx {
	struct dentry *d;
	struct vfsmount *mnt;
	__u32 pos;
	__u32 truncated;
};

/* One step up from c->d: prepend "/name", or cross to the mount point of c->mnt. */
static long walk_step(__u32 i, struct walk_ctx *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&SCRATCH, &zero);
	if (!s || !c->d || !c->mnt)
		return 1;
	/* Locals: BPF_CORE_READ on c->mnt would relocate walk_ctx itself. */
	struct dentry *d = c->d;
	struct vfsmount *mnt = c->mnt;
	struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		struct mount *m = (void *)((char *)mnt - bpf_core_field_offset(struct mount, mnt));
		struct mount *up = BPF_CORE_READ(m, mnt_parent);
		if (up == m || d != mnt_root)
			return 1; /* the global root */
		c->d = BPF_CORE_READ(m, mnt_mountpoint);
		c->mnt = (void *)((char *)up + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	__u32 len = BPF_CORE_READ(d, d_name.len);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	__u32 pos = c->pos;
	if (len == 0 || len > 255 || pos < len + 1 || pos > WALK_SIZE) {
		c->truncated = 1;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&s->walk[pos & (WALK_SIZE - 1)], len & 255, name);
	pos -= 1;
	s->walk[pos & (WALK_SIZE - 1)] = '/';
	c->pos = pos;
	c->d = parent;
	return 0;
}

static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	struct file **arr = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* Writes into `out` (WD_PATH_LEN bytes) the absolute form of the user path `upath`, relative
 * to `dfd` (or the cwd); a NULL `upath` names `dfd` itself. Returns the length. Not
 * normalised (`..`, symlinks): userspace does that. */
static __always_inline __u32 resolve(struct scratch *s, char *out, int dfd, const char *upath)
{
	long n = 0;
	if (upath)
		n = bpf_probe_read_user_str(out, WD_PATH_LEN, upath);
	if (n < 0) {
		s->ev.flags |= WD_EVENT_UNREAD;
		n = 0;
	}
	if (n > WD_PATH_LEN)
		n = WD_PATH_LEN;
	if (n > 1 && out[0] == '/')
		return n - 1;
	__u32 rl = n > 0 ? n - 1 : 0;
	if (rl)
		bpf_probe_read_kernel(s->rel, rl & (WD_PATH_LEN - 1), out);

	struct task_struct *task = (void *)bpf_get_current_task();
	struct walk_ctx c = { .pos = WALK_SIZE };
	if (dfd == AT_FDCWD) {
		struct fs_struct *fs = BPF_CORE_READ(task, fs);
		c.mnt = BPF_CORE_READ(fs, pwd.mnt);
		c.d = BPF_CORE_READ(fs, pwd.dentry);
	} else {
		struct file *f = fd_file(task, dfd);
		if (!f) {
			/* Unresolvable: report the relative path as given. */
			s->ev.flags |= WD_EVENT_TRUNCATED;
			if (rl)
				out[rl & (WD_PATH_LEN - 1)] = 0;
			return rl;
		}
		c.mnt = BPF_CORE_READ(f, f_path.mnt);
		c.d = BPF_CORE_READ(f, f_path.dentry);
	}
	bpf_loop(WALK_DEPTH, walk_step, &c, 0);
	if (c.truncated)
		s->ev.flags |= WD_EVENT_TRUNCATED;

	__u32 pos = c.pos;
	if (pos > WALK_SIZE)
		pos = WALK_SIZE;
	__u32 dl = WALK_SIZE - pos;
	if (dl > WD_PATH_LEN - 2) {
		dl = WD_PATH_LEN - 2;
		s->ev.flags |= WD_EVENT_TRUNCATED;
	}
	if (dl)
		bpf_probe_read_kernel(out, dl, &s->walk[pos & (WALK_SIZE - 1)]);
	if (!rl) {
		if (!dl)
			out[dl++] = '/';
		out[dl & (WD_PATH_LEN - 1)] = 0;
		return dl;
	}
	out[dl & (WD_PATH_LEN - 1)] = '/';
	__u32 room = WD_PATH_LEN - 2 - dl;
	if (rl > room) {
		rl = room;
		s->ev.flags |= WD_EVENT_TRUNCATED;
	}
	rl &= WD_PATH_LEN - 1;
	bpf_probe_read_kernel(&out[(dl + 1) & (WD_PATH_LEN - 1)], rl, s->rel);
	__u32 total = dl + 1 + rl;
	out[total & (WD_PATH_LEN - 1)] = 0;
	return total;
}

/* ---- scope ------------------------------------------------------------------------------ */

/* The scope checks are global functions: the verifier checks each once, with unknown
 * arguments, instead of once per program and path length (which exceeds its budget). */

static __always_inline const char *path_of(struct wd_event *ev, int which, __u32 *plen)
{
	*plen = which ? ev->path2_len : ev->path_len;
	return which ? ev->path2 : ev->path;
}

/* Does path `which` start with the prefix (and, with `boundary`, end or continue with '/'
 * right after it)? Compared 8 bytes at a time; the prefix is NUL-padded, the path masked. */
__noinline int wd_prefix_match(struct wd_event *ev, int which, struct wd_prefix *p, int boundary)
{
	if (!ev || !p)
		return 0;
	__u32 plen;
	const char *path = path_of(ev, which, &plen);
	__u32 len = p->len;
	if (len == 0 || len >= WD_PREFIX_LEN || len > plen || plen >= WD_PATH_LEN)
		return 0;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < WD_PREFIX_LEN / 8; i++) {
		__u32 off = i * 8;
		if (off >= len)
			break;
		__u64 a = *(const __u64 *)(path + off);
		__u64 b = *(const __u64 *)(p->s + off);
		__u32 rest = len - off;
		if (rest < 8) {
			__u64 mask = (1ULL << (rest * 8)) - 1;
			a &= mask;
			b &= mask;
		}
		if (a != b)
			return 0;
	}
	if (!boundary)
		return 1;
	char next = path[len & (WD_PATH_LEN - 1)];
	return next == '/' || next == 0;
}

struct dot_ctx {
	__u32 which;
	__u32 plen;
	__u32 found;
};

/* One position of the scan below: a bpf_loop callback is verified once, a 511-step loop
 * in every program would cost seconds of verification at load. */
static long dot_step(__u32 i, struct dot_ctx *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&SCRATCH, &zero);
	if (!s || i + 1 >= c->plen)
		return 1;
	const char *path = c->which ? s->ev.path2 : s->ev.path;
	i &= WD_PATH_LEN - 1;
	if (path[i] != '/' || path[(i + 1) & (WD_PATH_LEN - 1)] != '.')
		return 0;
	char c2 = path[(i + 2) & (WD_PATH_LEN - 1)];
	char c3 = path[(i + 3) & (WD_PATH_LEN - 1)];
	if (c2 == '/' || c2 == 0 || (c2 == '.' && (c3 == '/' || c3 == 0)))
		c->found = 1;
	else if (c2 == 'g' && c3 == 'i' && path[(i + 4) & (WD_PATH_LEN - 1)] == 't') {
		char c5 = path[(i + 5) & (WD_PATH_LEN - 1)];
		if (c5 == '/' || c5 == 0)
			c->found = 1;
	}
	return c->found ? 1 : 0;
}

/* A "." / ".." / ".git" component in path `which` of the SCRATCH record: never trust a
 * prefix match over it. */
static __always_inline bool has_dot_component(struct wd_event *ev, int which)
{
	struct dot_ctx c = { .which = which };
	path_of(ev, which, &c.plen);
	if (c.plen >= WD_PATH_LEN)
		return true;
	bpf_loop(WD_PATH_LEN - 1, dot_step, &c, 0);
	return c.found;
}

static __always_inline bool in_write_scope(struct wd_event *ev, int which, struct wd_scope *sc)
{
	if (has_dot_component(ev, which))
		return false;
	__u32 n = sc->n_write;
#pragma clang loop unroll(disable)
	for (__u32 j = 0; j < WD_MAX_WRITE; j++) {
		if (j >= n)
			break;
		/* Stored with a trailing '/': a match is strictly inside. */
		if (wd_prefix_match(ev, which, &sc->write[j], 0))
			return true;
	}
	return false;
}

static __always_inline bool is_sensitive_path(struct wd_event *ev, int which, struct wd_scope *sc)
{
	__u32 n = sc->n_sensitive;
#pragma clang loop unroll(disable)
	for (__u32 j = 0; j < WD_MAX_SENSITIVE; j++) {
		if (j >= n)
			break;
		if (wd_prefix_match(ev, which, &sc->sensitive[j], 1))
			return true;
	}
	return false;
}

/* Global (verified once, not per program): may this operation be counted instead of sent?
 * `ev` is the SCRATCH record. */
__noinline int wd_filterable(struct wd_event *ev, struct wd_scope *sc)
{
	if (!ev || !sc)
		return 0;
	if (sc->flags & WD_SCOPE_NO_FILTER || ev->flags & WD_EVENT_TRUNCATED ||
	    ev->op == WD_OP_SYMLINK)
		return 0;
	if (ev->path_len >= WD_PATH_LEN - 1 || ev->path2_len >= WD_PATH_LEN - 1)
		return 0; /* possibly cut: cannot be trusted */
	if (!in_write_scope(ev, 0, sc) || is_sensitive_path(ev, 0, sc))
		return 0;
	if (ev->path2_len && (!in_write_scope(ev, 1, sc) || is_sensitive_path(ev, 1, sc)))
		return 0;
	return 1;
}

/* Global: does the operation touch the sensitive set (strict kill)? */
__noinline int wd_sensitive(struct wd_event *ev, struct wd_scope *sc)
{
	if (!ev || !sc)
		return 0;
	if (is_sensitive_path(ev, 0, sc))
		return 1;
	if (ev->path2_len && ev->op != WD_OP_SYMLINK && is_sensitive_path(ev, 1, sc))
		return 1;
	return 0;
}

/* ---- syscalls --------------------------------------------------------------------------- */

#define PATH2_NONE 0
#define PATH2_RESOLVE 1
#define PATH2_RAW 2 /* a symlink's target text, as given */

static __always_inline void fill_paths(struct scratch *s, int dfd, const char *p, int dfd2,
					      const char *p2, int path2_mode)
{
	struct wd_event *ev = &s->ev;
	ev->path_len = resolve(s, ev->path, dfd, p);
	ev->path2_len = 0;
	if (path2_mode == PATH2_RESOLVE) {
		ev->path2_len = resolve(s, ev->path2, dfd2, p2);
	} else if (path2_mode == PATH2_RAW) {
		long n = bpf_probe_read_user_str(ev->path2, WD_PATH_LEN, p2);
		if (n < 0)
			ev->flags |= WD_EVENT_UNREAD;
		ev->path2_len = n > 1 ? n - 1 : 0;
	}
}

static __always_inline int on_enter(__u32 root, __u16 op, int dfd, const char *p, int dfd2,
				    const char *p2, int path2_mode)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&SCRATCH, &zero);
	if (!s)
		return 0;
	struct wd_event *ev = &s->ev;
	ev->root = root;
	ev->tgid = tgid;
	ev->tid = (__u32)id;
	ev->op = op;
	ev->flags = 0;
	ev->ret = 0;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	fill_paths(s, dfd, p, dfd2, p2, path2_mode);
	if (ev->flags & WD_EVENT_UNREAD) {
		struct retry retry = {
			.p = (__u64)p, .p2 = (__u64)p2, .dfd = dfd, .dfd2 = dfd2,
			.path2_mode = path2_mode,
		};
		bpf_map_update_elem(&RETRY, &id, &retry, BPF_ANY);
	}

	__u32 r = ev->root;
	struct wd_scope *sc = bpf_map_lookup_elem(&SCOPES, &r);
	if (sc && !(ev->flags & WD_EVENT_UNREAD)) {
		if (wd_filterable(ev, sc)) {
			count(WD_STAT_FILTERED);
			return 0;
		}
		if (sc->flags & WD_SCOPE_KILL && wd_sensitive(ev, sc)) {
			bpf_send_signal(SIGKILL);
			ev->flags |= WD_EVENT_KILLED;
			count(WD_STAT_KILLED);
		}
	}
	if (bpf_map_update_elem(&PENDING, &id, ev, BPF_ANY)) {
		count(WD_STAT_STASH_FAILURES);
		return 0;
	}
	__u64 *in_flight = bpf_map_lookup_elem(&IN_FLIGHT, &zero);
	if (in_flight)
		__sync_fetch_and_add(in_flight, 1);
	return 0;
}

/* Two raw tracepoints instead of a perf tracepoint per syscall: two programs to verify and
 * two attachments (loading and detaching ~77 perf events took seconds). */

#if defined(__TARGET_ARCH_x86)
/* x86_64 syscall numbers of the hooked syscalls. */
#define WD_NR_open 2
#define WD_NR_truncate 76
#define WD_NR_ftruncate 77
#define WD_NR_rename 82
#define WD_NR_mkdir 83
#define WD_NR_rmdir 84
#define WD_NR_creat 85
#define WD_NR_link 86
#define WD_NR_unlink 87
#define WD_NR_symlink 88
#define WD_NR_chmod 90
#define WD_NR_fchmod 91
#define WD_NR_chown 92
#define WD_NR_fchown 93
#define WD_NR_lchown 94
#define WD_NR_mknod 133
#define WD_NR_setxattr 188
#define WD_NR_lsetxattr 189
#define WD_NR_fsetxattr 190
#define WD_NR_removexattr 197
#define WD_NR_lremovexattr 198
#define WD_NR_fremovexattr 199
#define WD_NR_openat 257
#define WD_NR_mkdirat 258
#define WD_NR_mknodat 259
#define WD_NR_fchownat 260
#define WD_NR_unlinkat 263
#define WD_NR_renameat 264
#define WD_NR_linkat 265
#define WD_NR_symlinkat 266
#define WD_NR_fchmodat 268
#define WD_NR_utimensat 280
#define WD_NR_renameat2 316
#define WD_NR_openat2 437
#define WD_NR_fchmodat2 452
/* thread_info.status while a 32-bit syscall runs: its numbers and registers differ. */
#define WD_TS_COMPAT 0x0002
#else
#error "syscall numbers are only defined for x86_64"
#endif

static __always_inline bool hooked(long nr)
{
	switch (nr) {
	case WD_NR_open: case WD_NR_openat: case WD_NR_openat2: case WD_NR_creat:
	case WD_NR_truncate: case WD_NR_ftruncate: case WD_NR_unlink: case WD_NR_unlinkat:
	case WD_NR_rmdir: case WD_NR_mkdir: case WD_NR_mkdirat: case WD_NR_rename:
	case WD_NR_renameat: case WD_NR_renameat2: case WD_NR_link: case WD_NR_linkat:
	case WD_NR_symlink: case WD_NR_symlinkat: case WD_NR_mknod: case WD_NR_mknodat:
	case WD_NR_chmod: case WD_NR_fchmod: case WD_NR_fchmodat: case WD_NR_fchmodat2:
	case WD_NR_chown: case WD_NR_lchown: case WD_NR_fchown: case WD_NR_fchownat:
	case WD_NR_setxattr: case WD_NR_lsetxattr: case WD_NR_fsetxattr:
	case WD_NR_removexattr: case WD_NR_lremovexattr: case WD_NR_fremovexattr:
	case WD_NR_utimensat:
		return true;
	default:
		return false;
	}
}

static __always_inline bool open_writes(__u64 flags)
{
	return (flags & O_ACCMODE) || (flags & (O_CREAT | O_TRUNC));
}

SEC("raw_tp/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	long nr = (long)ctx->args[1];
	if (!hooked(nr))
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *watched = bpf_map_lookup_elem(&WATCHED, &tgid);
	if (!watched)
		return 0;
	__u32 root = *watched;
	struct task_struct *task = (void *)bpf_get_current_task();
	if (BPF_CORE_READ(task, thread_info.status) & WD_TS_COMPAT)
		return 0;

	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	unsigned long a0 = BPF_CORE_READ(regs, di);
	unsigned long a1 = BPF_CORE_READ(regs, si);
	unsigned long a2 = BPF_CORE_READ(regs, dx);
	unsigned long a3 = BPF_CORE_READ(regs, r10);
	__u16 op;
	int dfd = AT_FDCWD, dfd2 = 0, mode = PATH2_NONE;
	const char *p = 0, *p2 = 0;
#define STR(a) ((const char *)(a))
	switch (nr) {
	case WD_NR_open:
		if (!open_writes(a1))
			return 0;
		op = WD_OP_OPEN_WRITE, p = STR(a0);
		break;
	case WD_NR_openat:
		if (!open_writes(a2))
			return 0;
		op = WD_OP_OPEN_WRITE, dfd = (int)a0, p = STR(a1);
		break;
	case WD_NR_openat2: {
		__u64 flags = 0;
		/* struct open_how starts with the u64 flags. */
		bpf_probe_read_user(&flags, sizeof(flags), (void *)a2);
		if (!open_writes(flags))
			return 0;
		op = WD_OP_OPEN_WRITE, dfd = (int)a0, p = STR(a1);
		break;
	}
	case WD_NR_creat:
		op = WD_OP_OPEN_WRITE, p = STR(a0);
		break;
	case WD_NR_truncate:
		op = WD_OP_TRUNCATE, p = STR(a0);
		break;
	case WD_NR_ftruncate:
		op = WD_OP_TRUNCATE, dfd = (int)a0;
		break;
	case WD_NR_unlink:
		op = WD_OP_UNLINK, p = STR(a0);
		break;
	case WD_NR_unlinkat:
		op = (a2 & AT_REMOVEDIR) ? WD_OP_RMDIR : WD_OP_UNLINK, dfd = (int)a0, p = STR(a1);
		break;
	case WD_NR_rmdir:
		op = WD_OP_RMDIR, p = STR(a0);
		break;
	case WD_NR_mkdir:
		op = WD_OP_MKDIR, p = STR(a0);
		break;
	case WD_NR_mkdirat:
		op = WD_OP_MKDIR, dfd = (int)a0, p = STR(a1);
		break;
	case WD_NR_rename:
		op = WD_OP_RENAME, p = STR(a0), dfd2 = AT_FDCWD, p2 = STR(a1), mode = PATH2_RESOLVE;
		break;
	case WD_NR_renameat:
	case WD_NR_renameat2:
		op = WD_OP_RENAME, dfd = (int)a0, p = STR(a1), dfd2 = (int)a2, p2 = STR(a3);
		mode = PATH2_RESOLVE;
		break;
	/* Links: `path` is the new name, `path2` the existing file. */
	case WD_NR_link:
		op = WD_OP_LINK, p = STR(a1), dfd2 = AT_FDCWD, p2 = STR(a0), mode = PATH2_RESOLVE;
		break;
	case WD_NR_linkat:
		op = WD_OP_LINK, dfd = (int)a2, p = STR(a3), dfd2 = (int)a0, p2 = STR(a1);
		mode = PATH2_RESOLVE;
		break;
	/* Symlinks: `path` is the new link, `path2` its target text. */
	case WD_NR_symlink:
		op = WD_OP_SYMLINK, p = STR(a1), p2 = STR(a0), mode = PATH2_RAW;
		break;
	case WD_NR_symlinkat:
		op = WD_OP_SYMLINK, dfd = (int)a1, p = STR(a2), p2 = STR(a0), mode = PATH2_RAW;
		break;
	case WD_NR_mknod:
		op = WD_OP_MKNOD, p = STR(a0);
		break;
	case WD_NR_mknodat:
		op = WD_OP_MKNOD, dfd = (int)a0, p = STR(a1);
		break;
	case WD_NR_chmod:
		op = WD_OP_CHMOD, p = STR(a0);
		break;
	case WD_NR_fchmod:
		op = WD_OP_CHMOD, dfd = (int)a0;
		break;
	case WD_NR_fchmodat:
	case WD_NR_fchmodat2:
		op = WD_OP_CHMOD, dfd = (int)a0, p = STR(a1);
		break;
	case WD_NR_chown:
	case WD_NR_lchown:
		op = WD_OP_CHOWN, p = STR(a0);
		break;
	case WD_NR_fchown:
		op = WD_OP_CHOWN, dfd = (int)a0;
		break;
	case WD_NR_fchownat:
		op = WD_OP_CHOWN, dfd = (int)a0, p = STR(a1);
		break;
	case WD_NR_setxattr:
	case WD_NR_lsetxattr:
	case WD_NR_removexattr:
	case WD_NR_lremovexattr:
		op = WD_OP_ATTRIB, p = STR(a0);
		break;
	case WD_NR_fsetxattr:
	case WD_NR_fremovexattr:
		op = WD_OP_ATTRIB, dfd = (int)a0;
		break;
	/* utimensat(dfd, NULL, ...) is futimens(dfd). */
	case WD_NR_utimensat:
		op = WD_OP_ATTRIB, dfd = (int)a0, p = STR(a1);
		break;
	default:
		return 0;
	}
#undef STR
	return on_enter(root, op, dfd, p, dfd2, p2, mode);
}

SEC("raw_tp/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	__u64 *in_flight = bpf_map_lookup_elem(&IN_FLIGHT, &zero);
	if (!in_flight || !*in_flight)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct wd_event *ev = bpf_map_lookup_elem(&PENDING, &id);
	if (!ev)
		return 0;
	ev->ret = (__s32)(long)ctx->args[1];
	if (ev->flags & WD_EVENT_UNREAD) {
		/* The syscall has faulted the strings in by now: read them again. */
		struct scratch *s = bpf_map_lookup_elem(&SCRATCH, &zero);
		struct retry *r = bpf_map_lookup_elem(&RETRY, &id);
		if (s && r) {
			bpf_probe_read_kernel(&s->ev, __builtin_offsetof(struct wd_event, path), ev);
			s->ev.flags &= ~WD_EVENT_UNREAD;
			fill_paths(s, r->dfd, (const char *)r->p, r->dfd2, (const char *)r->p2,
				   r->path2_mode);
			bpf_map_delete_elem(&RETRY, &id);
			ev = &s->ev;
		}
	}
	__u32 size;
	if (ev->path2_len) {
		__u32 l2 = ev->path2_len;
		if (l2 > WD_PATH_LEN - 1)
			l2 = WD_PATH_LEN - 1;
		size = __builtin_offsetof(struct wd_event, path2) + l2 + 1;
	} else {
		__u32 l1 = ev->path_len;
		if (l1 > WD_PATH_LEN - 1)
			l1 = WD_PATH_LEN - 1;
		size = __builtin_offsetof(struct wd_event, path) + l1 + 1;
	}
	__u64 wakeup = BPF_RB_NO_WAKEUP;
	if (ev->flags & WD_EVENT_KILLED ||
	    bpf_ringbuf_query(&EVENTS, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES)
		wakeup = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&EVENTS, ev, size, wakeup))
		count(WD_STAT_RINGBUF_DROPS);
	else
		count(WD_STAT_EMITTED);
	forget_pending(id, in_flight);
	return 0;
}
