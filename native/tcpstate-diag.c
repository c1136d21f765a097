/*
 * tcpstate-diag: dumps the kernel's TCP socket table through NETLINK_SOCK_DIAG (inet_diag, the
 * interface ss and node_exporter use) and copies the kernel's netlink messages to stdout
 * unchanged. tcpstate-exporter's `netlink` source parses them (src/parsers/inet-diag.ts); doing
 * no parsing here keeps this program small and lets the parser be tested on captured bytes.
 *
 * usage: tcpstate-diag [--netns NSFILE] STATES[:EXT] [STATES[:EXT]]...
 *        tcpstate-diag --serve STATES[:EXT] [STATES[:EXT]]...
 *   STATES  hex bit mask of TCP states (bit n = state n of include/net/tcp_states.h)
 *   EXT     hex bit mask of extensions (bit n-1 = INET_DIAG_* attribute n), default 0
 * Each spec is one dump of IPv4, then one of IPv6. Every dump ends with its NLMSG_DONE.
 *
 * How: one walk of the kernel's socket tables for both families. The kernel's TCP hash tables
 * hold every socket of the host (all network namespaces, both families), and a dump walks all of
 * them whatever it asks for: a dump per family walked them twice per spec. The older request
 * (TCPDIAG_GETSOCK with struct inet_diag_req, which ss used before sock_diag) dumps both families
 * in one walk; its messages differ only in their type, so this program gives them the type of the
 * per-family answers (SOCK_DIAG_BY_FAMILY) and ends the walk's answer with two NLMSG_DONE, one per
 * family: the output reads as before. A kernel that refuses that request (NLMSG_ERROR before any
 * socket) gets the two per-family dumps from then on; so does every run with the environment
 * variable TCPSTATE_DIAG_PER_FAMILY set (tests compare the two ways).
 *
 * One-shot: the specs are dumped one after the other to stdout, then the program exits.
 * --netns NSFILE (one-shot): dump inside the network namespace behind NSFILE (/proc/PID/ns/net,
 * /run/netns/NAME), entered with setns(2); exit status 2 if it cannot be entered.
 * --serve: the program stays, so that a poll costs no process creation in the exporter. Each
 * line read on stdin starts one round (an empty line: this program's own network namespace; a
 * line naming a namespace file: that namespace, entered for the round only, so one helper serves
 * every namespace of a poll). On Linux >= 5.2 (where /proc/thread-self/net follows setns), a namespace whose own counters say it holds no TCP socket (sockstat:
 * no socket in use, no TIME-WAIT) is answered with empty dumps without asking the kernel, which
 * would walk every socket of the host to find none. A namespace that cannot be entered (gone: ENOENT; not allowed: EPERM,
 * EACCES) is not fatal: each output gets, instead of its two dumps, two NLMSG_ERROR messages
 * carrying the errno, and the next request is served. Each round: every spec is dumped at the same time by a thread
 * of its own (the kernel's work spread over the CPUs), spec 0 to fd 1 (stdout), spec i to fd i+2
 * (fd 3, 4, ...). End of stdin ends the program. The outputs are made blocking (the exporter gives
 * Unix stream sockets it reads into one reused buffer each).
 *
 * Threads, not forked processes: the exporter kills this program at its timeout, and forked
 * children would outlive it, be reparented to PID 1 and, when the exporter is PID 1 (a container
 * without an init), never be reaped: a zombie per child per timeout. Threads die with it.
 *
 * Exit status: 0 when every dump completed (one-shot) or stdin ended (--serve); 1 on a usage
 * error; 2 when the kernel or a system call failed (the reason is on stderr, and the output may
 * hold a partial table).
 *
 * Needs no privileges for its own namespace: any user may dump the socket table (as with ss).
 * Another namespace needs CAP_SYS_ADMIN (setns) and the right to open its file: a /run/netns
 * file is world-readable; another user's /proc/PID/ns/net needs CAP_SYS_PTRACE (docs/netns.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sched.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

/* The kernel fills each dump read with up to 32 KiB of messages (netlink_dump()). */
#define RECV_BUFFER (64 * 1024)
/* A big output buffer lets the kernel's dump run ahead of the exporter's parsing. */
#define OUTPUT_BUFFER (1024 * 1024)

/*
 * An output, made ready for the dumps' blocking writes. A pipe (one-shot into a shell pipeline)
 * gets OUTPUT_BUFFER of pipe; a Unix stream socket (the exporter's --serve outputs: it makes
 * socket pairs and reads each into one reused buffer) a send buffer as big, which only
 * SO_SNDBUFFORCE (CAP_NET_ADMIN) grants: without it SO_SNDBUF is capped at net.core.wmem_max
 * (the kernel doubles it: ~416 KiB by default), which is what a deploy without that capability
 * gets. With `blocking`, the output is made blocking: the socket the exporter hands over was
 * accepted by node, non-blocking, and the flag belongs to the socket, not to this descriptor.
 * One-shot leaves it alone (its stdout may be shared with others).
 */
static void prepare_output(int fd, int blocking) {
  int size = OUTPUT_BUFFER;
  if (fcntl(fd, F_SETPIPE_SZ, OUTPUT_BUFFER) < 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (!blocking) return;
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

/*
 * Whether /proc/thread-self/net follows the namespace a thread has entered with setns(): Linux 5.2
 * ("proc: fix /proc/net/... after setns(2)"); before, a thread kept seeing the files of the first
 * namespace it looked at, so per-namespace counters read there could be another namespace's.
 */
static int proc_net_follows_setns(void) {
  struct utsname u;
  if (uname(&u) != 0) return 0;
  int major = 0, minor = 0;
  if (sscanf(u.release, "%d.%d", &major, &minor) != 2) return 0;
  return major > 5 || (major == 5 && minor >= 2);
}

static int fail(const char *what, int err) {
  fprintf(stderr, "tcpstate-diag: %s: %s\n", what, strerror(err));
  return 2;
}

static int write_all(int out, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(out, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int parse_hex(const char *text, char **end, unsigned long max, unsigned long *out) {
  errno = 0;
  unsigned long v = strtoul(text, end, 16);
  if (errno != 0 || *end == text || v > max) return -1;
  *out = v;
  return 0;
}

/* Zeroes a netlink message of len bytes (a struct whose first member is its struct nlmsghdr) and
 * sets the header's length and type. */
static void nl_init(void *msg, size_t len, unsigned short type) {
  memset(msg, 0, len);
  struct nlmsghdr *nlh = msg;
  nlh->nlmsg_len = (unsigned int)len;
  nlh->nlmsg_type = type;
}

/* Whether the kernel answers the both-families request: 1 yes (or not asked yet), 0 refused. */
static atomic_int both_families = 1;

/* A refused both-families request: nothing was written, ask per family. */
#define REFUSED (-1)

/* One dump request and its answer, copied to out: one family (AF_INET, AF_INET6) with
 * SOCK_DIAG_BY_FAMILY, or both (AF_UNSPEC) with TCPDIAG_GETSOCK. Returns 0, an exit status, or
 * REFUSED (AF_UNSPEC only: the kernel answered NLMSG_ERROR before any socket). */
static int dump(int fd, int out, unsigned char family, unsigned int states, unsigned char ext, unsigned int seq, char *buf) {
  union {
    struct {
      struct nlmsghdr nlh;
      struct inet_diag_req_v2 req;
    } v2;
    struct {
      struct nlmsghdr nlh;
      struct inet_diag_req req;
    } both;
  } msg;
  size_t request_len;
  if (family == AF_UNSPEC) {
    request_len = sizeof msg.both;
    nl_init(&msg.both, request_len, TCPDIAG_GETSOCK);
    msg.both.req.idiag_family = AF_INET; /* not read: the kernel dumps both families */
    msg.both.req.idiag_ext = ext;
    msg.both.req.idiag_states = states;
  } else {
    request_len = sizeof msg.v2;
    nl_init(&msg.v2, request_len, SOCK_DIAG_BY_FAMILY);
    msg.v2.req.sdiag_family = family;
    msg.v2.req.sdiag_protocol = IPPROTO_TCP;
    msg.v2.req.idiag_ext = ext;
    msg.v2.req.idiag_states = states;
  }
  msg.v2.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.v2.nlh.nlmsg_seq = seq;

  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, &msg, request_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return fail("sendto", errno);

  int written = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, RECV_BUFFER, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("recv", errno);
    }
    if (n == 0) return fail("recv", ECONNRESET);
    struct nlmsghdr *done = NULL;
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (family == AF_UNSPEC && !written) return REFUSED;
        const struct nlmsgerr *e = NLMSG_DATA(h);
        int err = h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) ? -e->error : EPROTO;
        /* ENOENT: no inet_diag handler for TCP (module tcp_diag missing). */
        return fail(family == AF_INET ? "inet_diag dump (IPv4)" : family == AF_INET6 ? "inet_diag dump (IPv6)" : "inet_diag dump", err);
      }
      if (h->nlmsg_type == NLMSG_DONE) done = h;
      else if (h->nlmsg_type == TCPDIAG_GETSOCK) h->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    }
    int err = write_all(out, buf, (size_t)n);
    /* Both families: a second NLMSG_DONE, as if each family had been dumped on its own. */
    if (err == 0 && done != NULL && family == AF_UNSPEC) err = write_all(out, (const char *)done, NLMSG_ALIGN(done->nlmsg_len));
    if (err != 0) return fail("write", err);
    written = 1;
    if (done != NULL) return 0;
  }
}

/* Both families of one spec to out, over a netlink socket of its own. Returns 0 or an exit status. */
static int dump_spec(int out, unsigned long states, unsigned long ext, unsigned int *seq) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return fail("socket(AF_NETLINK, NETLINK_SOCK_DIAG)", errno);
  char *buf = malloc(RECV_BUFFER);
  if (buf == NULL) return fail("malloc", ENOMEM);
  int status = REFUSED;
  if (atomic_load(&both_families)) {
    status = dump(fd, out, AF_UNSPEC, (unsigned int)states, (unsigned char)ext, (*seq)++, buf);
    if (status == REFUSED) atomic_store(&both_families, 0);
  }
  if (status == REFUSED) {
    static const unsigned char families[] = {AF_INET, AF_INET6};
    status = 0;
    for (int f = 0; f < 2 && status == 0; f++) {
      status = dump(fd, out, families[f], (unsigned int)states, (unsigned char)ext, (*seq)++, buf);
    }
  }
  free(buf);
  close(fd);
  return status;
}

/* ---- Network namespaces: entering one for a dump, and saying why one could not be entered. ---- */

/* This program's own network namespace, to come back to after a round elsewhere. */
static int home_netns = -1;

/* Enters the network namespace behind path, for the calling thread (threads and processes it
 * starts afterwards inherit it). Returns 0 or an errno. */
static int netns_enter(const char *path) {
  if (home_netns < 0) {
    home_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_netns < 0) return errno;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = setns(fd, CLONE_NEWNET) < 0 ? errno : 0;
  close(fd);
  return err;
}

/* Back to the own namespace. Returns 0 or an errno (then nothing this program dumps can be trusted). */
static int netns_leave(void) {
  return setns(home_netns, CLONE_NEWNET) < 0 ? errno : 0;
}

/* A round whose namespace could not be entered: each output gets one NLMSG_ERROR per family in
 * place of that family's dump, as the kernel answers a failed request. Returns 0 or an exit status. */
static int netns_failed(int dumps, int err) {
  struct {
    struct nlmsghdr nlh;
    struct nlmsgerr e;
  } msg;
  nl_init(&msg, sizeof msg, NLMSG_ERROR);
  msg.e.error = -err;
  for (int i = 0; i < dumps; i++) {
    for (int f = 0; f < 2; f++) {
      int werr = write_all(i == 0 ? STDOUT_FILENO : i + 2, (const char *)&msg, sizeof msg);
      if (werr != 0) return fail("write", werr);
    }
  }
  return 0;
}

/* Reads the whole of a small /proc file into buf (NUL-terminated). Returns 0 or an errno. */
static int read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : 0;
      close(fd);
      buf[len] = '\0';
      return err;
    }
    len += (size_t)n;
    if (len == cap - 1) {
      close(fd);
      buf[len] = '\0';
      return 0;
    }
  }
}

/* The value after `key` in text (e.g. "TCP: inuse " then a number), or -1 if absent. */
static long counter_after(const char *text, const char *key) {
  const char *at = strstr(text, key);
  if (at == NULL) return -1;
  char *end;
  errno = 0;
  long v = strtol(at + strlen(key), &end, 10);
  return errno != 0 || end == at + strlen(key) ? -1 : v;
}

/* Whether the network namespace the calling thread is in holds no TCP socket a dump could return,
 * by its own counters, so that the round can be answered without a dump: with the kernel's default
 * one established-socket hash for the whole host, a dump of even an empty namespace walks every
 * socket of the host (docs/performance.md). /proc/thread-self/net/sockstat{,6} are the calling
 * thread's namespace's; of their fields, TCP `inuse` (IPv4) and TCP6 `inuse` (hashed full sockets:
 * listeners, connections, orphans) and `tw` (TIME-WAIT and FIN-WAIT-2 minisockets) are per
 * namespace (`orphan`, `alloc` and `mem` are host-wide). All three 0: no listener (so no SYN-RECV
 * request either), no connection, no TIME-WAIT. Not known (a file unreadable, a field missing): 0,
 * and the round dumps. A socket made after this check is missed as one made after a dump passed its
 * hash bucket would be: a dump is not a snapshot either. */
static int netns_known_empty(void) {
  char text[1024];
  if (read_small("/proc/thread-self/net/sockstat", text, sizeof text) != 0) return 0;
  long inuse = counter_after(text, "TCP: inuse ");
  long tw = counter_after(text, " tw ");
  if (inuse != 0 || tw != 0) return 0;
  int err = read_small("/proc/thread-self/net/sockstat6", text, sizeof text);
  /* No sockstat6: a kernel without IPv6, where no TCP6 socket can exist. */
  if (err == ENOENT) return 1;
  return err == 0 && counter_after(text, "TCP6: inuse ") == 0;
}

/* A round answered without a dump: each output gets the two NLMSG_DONE (one per family) that end an
 * empty dump. Their nlmsg_pid is 0 where the kernel's carry the dumping socket's port ID (tests tell
 * the two apart by it). Returns 0 or an exit status. */
static int netns_empty_round(int dumps, unsigned int seq) {
  struct {
    struct nlmsghdr nlh;
    int status;
  } msg;
  nl_init(&msg, sizeof msg, NLMSG_DONE);
  msg.nlh.nlmsg_flags = NLM_F_MULTI;
  for (int i = 0; i < dumps; i++) {
    msg.nlh.nlmsg_seq = seq + 3 * (unsigned int)i;
    for (int f = 0; f < 2; f++) {
      int werr = write_all(i == 0 ? STDOUT_FILENO : i + 2, (const char *)&msg, sizeof msg);
      if (werr != 0) return fail("write", werr);
    }
  }
  return 0;
}

/* One --serve request: a line, empty for the own namespace, else a namespace file's path. Read a
 * byte at a time so that no later request is consumed. Returns 1 (path set), 0 at end of input
 * before a request, or -errno; a line longer than cap is consumed and returns -ENAMETOOLONG. */
static int read_request(char *path, size_t cap) {
  size_t len = 0;
  int too_long = 0;
  for (;;) {
    char c;
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n == 0) return len == 0 && !too_long ? 0 : -EPIPE;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (c == '\n') break;
    if (len + 1 >= cap) too_long = 1;
    else path[len++] = c;
  }
  path[len] = '\0';
  return too_long ? -ENAMETOOLONG : 1;
}

/* One spec of a --serve round, dumped by a thread of its own. */
struct round_job {
  pthread_t thread;
  int out;
  unsigned long states, ext;
  unsigned int seq;
  int status;
};

static void *run_job(void *arg) {
  struct round_job *job = arg;
  job->status = dump_spec(job->out, job->states, job->ext, &job->seq);
  return NULL;
}

/* --serve: one round per request line on stdin, every spec in a thread of its own. */
static int serve(int dumps, const unsigned long *states, const unsigned long *exts) {
  for (int i = 1; i < dumps; i++) {
    if (fcntl(i + 2, F_GETFD) < 0) {
      fprintf(stderr, "tcpstate-diag: --serve with %d specs needs fd %d open for spec %d\n", dumps, i + 2, i);
      return 1;
    }
  }
  for (int i = 0; i < dumps; i++) prepare_output(i == 0 ? STDOUT_FILENO : i + 2, 1);
  const int skip_empty = proc_net_follows_setns();
  unsigned int seq = 1;
  char nspath[4096];
  for (;;) {
    int r = read_request(nspath, sizeof nspath);
    if (r == 0) return 0;
    if (r == -ENAMETOOLONG) {
      int s = netns_failed(dumps, ENAMETOOLONG);
      if (s != 0) return s;
      continue;
    }
    if (r < 0) return fail("read(stdin)", -r);
    if (nspath[0] != '\0') {
      int err = netns_enter(nspath);
      if (err != 0) {
        int s = netns_failed(dumps, err);
        if (s != 0) return s;
        continue;
      }
      if (skip_empty && netns_known_empty()) {
        int s = netns_empty_round(dumps, seq);
        seq += 3 * (unsigned int)dumps;
        err = netns_leave();
        if (err != 0) return fail("setns (back to the own network namespace)", err);
        if (s != 0) return s;
        continue;
      }
    }
    struct round_job jobs[64];
    for (int i = 0; i < dumps; i++) {
      jobs[i] = (struct round_job){.out = i == 0 ? STDOUT_FILENO : i + 2, .states = states[i], .ext = exts[i], .seq = seq + 3 * (unsigned int)i};
      /* A new thread starts in the creating thread's network namespace (the round's). */
      int err = pthread_create(&jobs[i].thread, NULL, run_job, &jobs[i]);
      if (err != 0) return fail("pthread_create", err);
    }
    /* The round's dumpers took the namespace with them: the rest of this program goes home. */
    if (nspath[0] != '\0') {
      int err = netns_leave();
      if (err != 0) return fail("setns (back to the own network namespace)", err);
    }
    seq += 3 * (unsigned int)dumps; /* a spec uses up to 3: both families, or each */
    int status = 0;
    for (int i = 0; i < dumps; i++) {
      int err = pthread_join(jobs[i].thread, NULL);
      if (err != 0) return fail("pthread_join", err);
      if (jobs[i].status != 0) status = jobs[i].status;
    }
    if (status != 0) return status; /* the thread said why on stderr */
  }
}

int main(int argc, char **argv) {
  int first = 1;
  int serving = argc > 1 && strcmp(argv[1], "--serve") == 0;
  if (serving) first = 2;
  const char *netns = NULL;
  if (!serving && argc > 2 && strcmp(argv[1], "--netns") == 0) {
    netns = argv[2];
    first = 3;
  }
  if (argc <= first || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    int asked = argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0);
    fputs("usage: tcpstate-diag [--serve | --netns NSFILE] STATES[:EXT]...  (hex masks; raw netlink inet_diag messages on stdout)\n",
          asked ? stdout : stderr);
    return asked ? 0 : 1;
  }
  unsigned long states[64], exts[64];
  int dumps = argc - first;
  if (dumps > 64) {
    fputs("tcpstate-diag: at most 64 dump specs\n", stderr);
    return 1;
  }
  for (int i = 0; i < dumps; i++) {
    const char *spec = argv[first + i];
    char *end;
    exts[i] = 0;
    if (parse_hex(spec, &end, 0xffffffffUL, &states[i]) != 0 ||
        (*end == ':' && parse_hex(end + 1, &end, 0xffUL, &exts[i]) != 0) || *end != '\0') {
      fprintf(stderr, "tcpstate-diag: bad dump spec '%s' (want STATES[:EXT] in hex)\n", spec);
      return 1;
    }
  }
  /* A reader that went away ends us quietly, as it would end ss. */
  signal(SIGPIPE, SIG_DFL);
  if (getenv("TCPSTATE_DIAG_PER_FAMILY") != NULL) atomic_store(&both_families, 0);
  if (serving) return serve(dumps, states, exts);
  if (netns != NULL) {
    int err = netns_enter(netns);
    if (err != 0) {
      fprintf(stderr, "tcpstate-diag: setns(%s, CLONE_NEWNET): %s\n", netns, strerror(err));
      return 2;
    }
  }

  prepare_output(STDOUT_FILENO, 0); /* not a pipe or socket, or not allowed: fine */
  unsigned int seq = 1;
  for (int i = 0; i < dumps; i++) {
    int status = dump_spec(STDOUT_FILENO, states[i], exts[i], &seq);
    if (status != 0) return status;
  }
  return 0;
}
