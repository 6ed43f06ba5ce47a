/* Records shared with userspace (mirrored in src/lib.rs, checked by a test against the BTF). */
#ifndef WD_WATCHDOG_H
#define WD_WATCHDOG_H

#define WD_PATH_LEN 512
#define WD_PREFIX_LEN 256
#define WD_MAX_WRITE 8
#define WD_MAX_SENSITIVE 48

enum wd_op {
	WD_OP_OPEN_WRITE = 1,
	WD_OP_TRUNCATE = 2,
	WD_OP_UNLINK = 3,
	WD_OP_RMDIR = 4,
	WD_OP_MKDIR = 5,
	WD_OP_RENAME = 6,
	WD_OP_LINK = 7,
	WD_OP_SYMLINK = 8,
	WD_OP_MKNOD = 9,
	WD_OP_CHMOD = 10,
	WD_OP_CHOWN = 11,
	WD_OP_ATTRIB = 12,
};

#define WD_EVENT_KILLED 1
#define WD_EVENT_TRUNCATED 2
/* A user path was not readable at syscall entry (page not faulted in yet): re-read at exit. */
#define WD_EVENT_UNREAD 4

#define WD_SCOPE_KILL 1
#define WD_SCOPE_NO_FILTER 2

enum wd_stat {
	WD_STAT_EMITTED = 0,
	WD_STAT_FILTERED = 1,
	WD_STAT_RINGBUF_DROPS = 2,
	WD_STAT_STASH_FAILURES = 3,
	WD_STAT_KILLED = 4,
	WD_STAT_COUNT = 5,
};

struct wd_event {
	__u32 root;
	__u32 tgid;
	__u32 tid;
	__u16 op;
	__u16 flags;
	__s32 ret;
	__u16 path_len;
	__u16 path2_len;
	char comm[16];
	char path[WD_PATH_LEN];
	char path2[WD_PATH_LEN];
};

struct wd_prefix {
	__u32 len;
	__u32 _pad;
	char s[WD_PREFIX_LEN];
};

struct wd_scope {
	__u32 flags;
	__u32 n_write;
	__u32 n_sensitive;
	__u32 _pad;
	struct wd_prefix write[WD_MAX_WRITE];
	struct wd_prefix sensitive[WD_MAX_SENSITIVE];
};

_Static_assert(sizeof(struct wd_event) == 40 + 2 * WD_PATH_LEN, "wd_event layout");
_Static_assert(__builtin_offsetof(struct wd_event, path) == 40, "wd_event path offset");
_Static_assert(sizeof(struct wd_scope) == 16 + (WD_MAX_WRITE + WD_MAX_SENSITIVE) * 264, "wd_scope layout");

#endif
