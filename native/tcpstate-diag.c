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
 * variable TCPSTATE_DIAG_PER_FAMILY set (tests compare the two ways). A spec's dumps carry fixed
 * sequence numbers: n for both families, n + 1 and n + 2 for IPv4 and IPv6, whether or not the
 * both-families request was asked. TCPSTATE_DIAG_REFUSE_BOTH_FAMILIES set (tests): the helper
 * acts as if the kernel had refused that request.
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
 * One walk for every spec (--serve, a namespace entered by setns): where the namespace shares the
 * host's established-socket hash (net.ipv4.tcp_ehash_entries negative there, or absent: before
 * Linux 6.1 every namespace shared it), each dump walks every socket of the host to find the
 * namespace's own, so a walk per spec costs the kernel that walk again for each spec. If the
 * namespace holds few enough full sockets that asking every spec's extensions (tcp_info,
 * skmeminfo) of all of them costs less than one more walk of the hash (merge_pays: the figures of
 * bench/netns-walk.ts), the round is ONE dump of the union of the specs' states and extensions. Each
 * socket's message goes to the output of the spec whose states hold its idiag_state, without the
 * attributes that only other specs' extension bits made the kernel add (attr_needs), with the
 * sequence number of that spec's own dump; each output gets the dump's NLMSG_DONE (two for both
 * families), so each output reads byte for byte as its own dump would, but for what moves between
 * two dumps (timers, counters) and the order of the sockets. It is done only where it is exact:
 * specs whose states do not overlap, with TIME-WAIT and FIN-WAIT-2 in one spec (a TIME-WAIT
 * minisocket is reported in its substate, FIN-WAIT-2 for an orphan's; inet_diag_dump_icsk selects it
 * by that substate too, but kernels that kept minisockets on a chain of their own walked it for the
 * TIME-WAIT bit: the pair stays one spec's) and SYN-RECV and NEW_SYN_RECV in one (a request is
 * selected by either and reported as SYN-RECV); never in this program's own
 * namespace, nor in one with a hash of its own (the walk is of its own sockets only), nor on a
 * kernel whose /proc/thread-self/net does not follow setns (the counters the choice needs). The
 * dump runs in the main thread: one walking thread instead of one per spec, one CPU left to the
 * exporter. TCPSTATE_DIAG_PER_SPEC set: a walk per spec always (tests compare the two ways);
 * TCPSTATE_DIAG_TRACE set: a line on stderr per dump asked of the kernel and per round's choice.
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

/* Whether the environment asks for a line on stderr per dump request (TCPSTATE_DIAG_TRACE). */
static int trace_dumps;

static void trace_dump(unsigned char family, unsigned int states, unsigned char ext, int specs) {
  if (!trace_dumps) return;
  fprintf(stderr, "tcpstate-diag: trace: dump %s states %#x ext %#x for %d spec%s\n",
          family == AF_INET ? "ipv4" : family == AF_INET6 ? "ipv6" : "both", states, (unsigned int)ext, specs, specs == 1 ? "" : "s");
}

/* Whether the kernel answers the both-families request: 1 yes (or not asked yet), 0 refused. */
static atomic_int both_families = 1;

/* A refused both-families request: nothing was written, ask per family. */
#define REFUSED (-1)

/* TCPSTATE_DIAG_REFUSE_BOTH_FAMILIES set (tests): a both-families request is taken as refused
 * without being sent, as a kernel that refuses it would answer (then per family, as there). */
static int refuse_both;

/* Sends one dump request: one family (AF_INET, AF_INET6) with SOCK_DIAG_BY_FAMILY, or both
 * (AF_UNSPEC) with TCPDIAG_GETSOCK; `specs` is for the trace only. Returns 0, an exit status, or
 * REFUSED (a both-families request under TCPSTATE_DIAG_REFUSE_BOTH_FAMILIES, not sent). */
static int send_dump_request(int fd, unsigned char family, unsigned int states, unsigned char ext, unsigned int seq, int specs) {
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
  trace_dump(family, states, ext, specs);
  if (family == AF_UNSPEC && refuse_both) return REFUSED;

  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, &msg, request_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return fail("sendto", errno);
  return 0;
}

/* What the kernel's NLMSG_ERROR answer to a dump means: REFUSED for a both-families request
 * refused before any socket was written, otherwise an exit status (the reason on stderr). */
static int dump_error(const struct nlmsghdr *h, unsigned char family, int written) {
  if (family == AF_UNSPEC && !written) return REFUSED;
  const struct nlmsgerr *e = NLMSG_DATA(h);
  int err = h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) ? -e->error : EPROTO;
  /* ENOENT: no inet_diag handler for TCP (module tcp_diag missing). */
  return fail(family == AF_INET ? "inet_diag dump (IPv4)" : family == AF_INET6 ? "inet_diag dump (IPv6)" : "inet_diag dump", err);
}

/* One read of a dump's answer into buf (RECV_BUFFER bytes): its length, or -1 with *status set
 * to the exit status (the reason on stderr). */
static int recv_answer(int fd, char *buf, int *status) {
  for (;;) {
    ssize_t n = recv(fd, buf, RECV_BUFFER, 0);
    if (n > 0) return (int)n;
    if (n < 0 && errno == EINTR) continue;
    *status = fail("recv", n < 0 ? errno : ECONNRESET);
    return -1;
  }
}

/* One dump request and its answer, copied to out (see send_dump_request). Returns 0, an exit
 * status, or REFUSED (AF_UNSPEC only: the kernel answered NLMSG_ERROR before any socket). */
static int dump(int fd, int out, unsigned char family, unsigned int states, unsigned char ext, unsigned int seq, char *buf) {
  int sent = send_dump_request(fd, family, states, ext, seq, 1);
  if (sent != 0) return sent;

  int written = 0;
  for (;;) {
    int status;
    const int got = recv_answer(fd, buf, &status);
    if (got < 0) return status;
    struct nlmsghdr *done = NULL;
    int len = got;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return dump_error(h, family, written);
      if (h->nlmsg_type == NLMSG_DONE) done = h;
      else if (h->nlmsg_type == TCPDIAG_GETSOCK) h->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    }
    int err = write_all(out, buf, (size_t)got);
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
  /* A spec's three sequence numbers: the both-families request's, then IPv4's and IPv6's, whether
   * or not the first was asked (threads of one round may find it refused already, or not yet): a
   * spec's dumps carry the same numbers either way, and as the merged walk gives them. */
  const unsigned int base = *seq;
  *seq += 3;
  int status = REFUSED;
  if (atomic_load(&both_families)) {
    status = dump(fd, out, AF_UNSPEC, (unsigned int)states, (unsigned char)ext, base, buf);
    if (status == REFUSED) atomic_store(&both_families, 0);
  }
  if (status == REFUSED) {
    static const unsigned char families[] = {AF_INET, AF_INET6};
    status = 0;
    for (int f = 0; f < 2 && status == 0; f++) {
      status = dump(fd, out, families[f], (unsigned int)states, (unsigned char)ext, base + 1 + (unsigned int)f, buf);
    }
  }
  free(buf);
  close(fd);
  return status;
}

/* ---- One walk for every spec: a namespace that shares the host's hash (see the header). ---- */

/*
 * The request's ext bits (bit n-1 = attribute n) that make the kernel add attribute `type` to a
 * full socket's message (inet_sk_diag_fill, inet_diag_msg_attrs_fill, tcp_diag_get_aux and the
 * congestion controls' get_info); 0 for one it adds whatever ext says: SHUTDOWN, SKV6ONLY (IPv6
 * listeners), MARK (CAP_NET_ADMIN), PROTOCOL (raw sockets), CGROUP_ID, SOCKOPT, and any attribute
 * newer than this list. TIME-WAIT and SYN-RECV minisockets carry no attribute that depends on ext.
 */
static unsigned int attr_needs(unsigned short type) {
  switch (type) {
  case INET_DIAG_MEMINFO:
    return 1u << (INET_DIAG_MEMINFO - 1);
  case INET_DIAG_INFO:
  case INET_DIAG_MD5SIG:   /* tcp_diag_get_aux(), called only with INFO asked */
  case INET_DIAG_ULP_INFO: /* the same */
    return 1u << (INET_DIAG_INFO - 1);
  case INET_DIAG_VEGASINFO:
  case INET_DIAG_DCTCPINFO: /* the congestion control's get_info(): its own bit is beyond the u8 */
  case INET_DIAG_BBRINFO:   /* of idiag_ext, so it answers the VEGASINFO bit */
    return 1u << (INET_DIAG_VEGASINFO - 1);
  case INET_DIAG_CONG:
    return 1u << (INET_DIAG_CONG - 1);
  case INET_DIAG_TOS:
    return 1u << (INET_DIAG_TOS - 1);
  case INET_DIAG_TCLASS:
  case INET_DIAG_CLASS_ID: /* asked with the TCLASS bit (uapi: "request as INET_DIAG_TCLASS") */
    return 1u << (INET_DIAG_TCLASS - 1);
  case INET_DIAG_SKMEMINFO:
    return 1u << (INET_DIAG_SKMEMINFO - 1);
  default:
    return 0;
  }
}

/* The merged walk's plan, made once from the specs: which spec each reported idiag_state goes to. */
static struct {
  int possible; /* the specs can share one walk */
  unsigned int states;
  unsigned char ext;
  signed char route[256];
} merge;

#define ST_SYN_RECV 3
#define ST_FIN_WAIT2 5
#define ST_TIME_WAIT 6
#define ST_LISTEN 10
#define ST_NEW_SYN_RECV 12

/* The spec whose states hold bit `state`, or -1. */
static int spec_of(int dumps, const unsigned long *states, int state) {
  for (int i = 0; i < dumps; i++) {
    if (states[i] & (1UL << state)) return i;
  }
  return -1;
}

/*
 * Whether one walk with the union of the specs' states and extensions can stand for the specs'
 * walks, and if so the routing. The kernel selects a socket by its state and reports idiag_state.
 * A TIME-WAIT minisocket is reported in its substate, FIN-WAIT-2 (an orphan's) or TIME-WAIT;
 * inet_diag_dump_icsk selects it by that substate too (an orphaned FIN-WAIT-2 minisocket answers
 * states 0x20, not 0x40: seen on Linux 6.18), but kernels that kept minisockets on a chain of their
 * own walked that chain for the TIME-WAIT bit. A SYN-RECV request (NEW_SYN_RECV, selected by
 * SYN-RECV or NEW_SYN_RECV) is reported as SYN-RECV. So both states of each pair belong to one
 * spec. States that overlap between specs (a socket in two answers): no merge either.
 */
static void plan_merge(int dumps, const unsigned long *states, const unsigned long *exts) {
  merge.possible = 0;
  if (dumps < 2) return;
  unsigned long all = 0;
  for (int i = 0; i < dumps; i++) {
    if (all & states[i]) return;
    all |= states[i];
    merge.ext |= (unsigned char)exts[i];
  }
  static const int pairs[][2] = {{ST_FIN_WAIT2, ST_TIME_WAIT}, {ST_SYN_RECV, ST_NEW_SYN_RECV}};
  for (int p = 0; p < 2; p++) {
    int a = spec_of(dumps, states, pairs[p][0]), b = spec_of(dumps, states, pairs[p][1]);
    if (a >= 0 && b >= 0 && a != b) return;
  }
  /* A state no spec asks for can still be reported: a socket whose state changed between the
   * kernel's selection and its message, or a listening-hash socket (that loop does not filter by
   * state). Its own walk would have been the LISTEN spec's, or any: the first spec. */
  int fallback = spec_of(dumps, states, ST_LISTEN);
  if (fallback < 0) fallback = 0;
  for (int s = 0; s < 256; s++) {
    int i = s < 32 ? spec_of(dumps, states, s) : -1;
    merge.route[s] = (signed char)(i >= 0 ? i : fallback);
  }
  int i = spec_of(dumps, states, ST_TIME_WAIT);
  if (i < 0) i = spec_of(dumps, states, ST_FIN_WAIT2);
  if (i >= 0) merge.route[ST_FIN_WAIT2] = (signed char)i;
  i = spec_of(dumps, states, ST_SYN_RECV);
  if (i < 0) i = spec_of(dumps, states, ST_NEW_SYN_RECV);
  if (i >= 0) merge.route[ST_SYN_RECV] = (signed char)i;
  merge.states = (unsigned int)all;
  merge.possible = 1;
}

/*
 * Appends socket message h to out as a dump asking `ext` would have carried it: the attributes
 * only other specs' ext bits added are left out (with the INET_DIAG_PAD the kernel put before a
 * 64-bit attribute, such as INFO's), and the length is set again. Returns the bytes appended.
 */
static size_t strip_into(char *out, const struct nlmsghdr *h, unsigned int ext) {
  const size_t head = NLMSG_LENGTH(sizeof(struct inet_diag_msg));
  if (h->nlmsg_len < head) {
    memcpy(out, h, h->nlmsg_len);
    memset(out + h->nlmsg_len, 0, NLMSG_ALIGN(h->nlmsg_len) - h->nlmsg_len);
    return NLMSG_ALIGN(h->nlmsg_len);
  }
  memcpy(out, h, NLMSG_ALIGN(head));
  size_t len = NLMSG_ALIGN(head);
  const char *at = (const char *)h + NLMSG_ALIGN(head), *end = (const char *)h + h->nlmsg_len;
  while (at < end) {
    const struct nlattr *a = (const struct nlattr *)at;
    if (end - at < NLA_HDRLEN || a->nla_len < NLA_HDRLEN || a->nla_len > end - at) {
      /* Malformed: copied as the kernel wrote it, for the parser to say so. */
      memcpy(out + len, at, (size_t)(end - at));
      len += (size_t)(end - at);
      break;
    }
    size_t step = NLA_ALIGN(a->nla_len);
    if (step > (size_t)(end - at)) step = (size_t)(end - at);
    unsigned short type = a->nla_type & NLA_TYPE_MASK;
    const struct nlattr *judged = a;
    if (type == INET_DIAG_PAD && at + step + NLA_HDRLEN <= end) judged = (const struct nlattr *)(at + step);
    unsigned int needs = attr_needs(judged->nla_type & NLA_TYPE_MASK);
    if (needs == 0 || (needs & ext) != 0) {
      memcpy(out + len, at, step);
      len += step;
    }
    at += step;
  }
  struct nlmsghdr *copy = (struct nlmsghdr *)out;
  copy->nlmsg_len = (unsigned int)len;
  /* The next message starts 4-aligned, after zeroed padding (a malformed tail may end unaligned). */
  memset(out + len, 0, NLMSG_ALIGN(len) - len);
  return NLMSG_ALIGN(len);
}

/* The NLMSG_DONE each output gets: a fixed size (header and the kernel's int), whatever the kernel's
 * length (extended acks may make it longer), so that ROUTED_BUFFER always has room for two. */
struct done_msg {
  struct nlmsghdr nlh;
  int status;
};

/* Room per output for one read's worth of messages (stripping only shortens them; a last message of
 * unaligned length is padded) and two NLMSG_DONE. */
#define ROUTED_BUFFER (RECV_BUFFER + NLMSG_ALIGNTO + 2 * sizeof(struct done_msg))

/*
 * One dump of the union of the specs (one family, or both with TCPDIAG_GETSOCK), each socket's
 * message routed to its spec's output and stripped to that spec's extensions. Each output's
 * messages carry the sequence number its own dump would have (seq + 3 per spec; per family,
 * merged_round passes the spec's IPv4 number and IPv6 takes the next), and each output gets the
 * dump's NLMSG_DONE (two for both families). Returns 0, an exit status, or REFUSED as dump() does.
 */
static int dump_merged(int fd, int dumps, const unsigned long *exts, unsigned char family, unsigned int seq, char *buf, char *const *outbufs) {
  unsigned int sent_seq = seq + (family == AF_INET6 ? 1 : 0);
  int sent = send_dump_request(fd, family, merge.states, merge.ext, sent_seq, dumps);
  if (sent != 0) return sent;

  int written = 0;
  size_t lens[64];
  for (;;) {
    int status;
    int len = recv_answer(fd, buf, &status);
    if (len < 0) return status;
    for (int i = 0; i < dumps; i++) lens[i] = 0;
    const struct nlmsghdr *done = NULL;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != sent_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return dump_error(h, family, written);
      if (h->nlmsg_type == NLMSG_DONE) {
        done = h;
        continue;
      }
      if (h->nlmsg_type == TCPDIAG_GETSOCK) h->nlmsg_type = SOCK_DIAG_BY_FAMILY;
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(2)) {
        /* Not a socket: each spec's own dump would have carried it. */
        for (int i = 0; i < dumps; i++) {
          memcpy(outbufs[i] + lens[i], h, h->nlmsg_len);
          memset(outbufs[i] + lens[i] + h->nlmsg_len, 0, NLMSG_ALIGN(h->nlmsg_len) - h->nlmsg_len);
          ((struct nlmsghdr *)(outbufs[i] + lens[i]))->nlmsg_seq = sent_seq + 3 * (unsigned int)i;
          lens[i] += NLMSG_ALIGN(h->nlmsg_len);
        }
        continue;
      }
      const unsigned char state = ((const unsigned char *)NLMSG_DATA(h))[1];
      const int i = merge.route[state];
      struct nlmsghdr *copy = (struct nlmsghdr *)(outbufs[i] + lens[i]);
      lens[i] += strip_into(outbufs[i] + lens[i], h, (unsigned int)exts[i]);
      copy->nlmsg_seq = sent_seq + 3 * (unsigned int)i;
    }
    struct done_msg end = {.nlh = {.nlmsg_len = sizeof end, .nlmsg_type = NLMSG_DONE}};
    if (done != NULL) {
      end.nlh.nlmsg_flags = done->nlmsg_flags;
      end.nlh.nlmsg_pid = done->nlmsg_pid;
      if (done->nlmsg_len >= NLMSG_LENGTH(sizeof end.status)) memcpy(&end.status, NLMSG_DATA(done), sizeof end.status);
    }
    for (int i = 0; i < dumps; i++) {
      /* Both families: two NLMSG_DONE, as if each family had been dumped on its own. */
      for (int d = 0; done != NULL && d < (family == AF_UNSPEC ? 2 : 1); d++) {
        end.nlh.nlmsg_seq = sent_seq + 3 * (unsigned int)i;
        memcpy(outbufs[i] + lens[i], &end, sizeof end);
        lens[i] += sizeof end;
      }
      int err = lens[i] > 0 ? write_all(i == 0 ? STDOUT_FILENO : i + 2, outbufs[i], lens[i]) : 0;
      if (err != 0) return fail("write", err);
    }
    written = 1;
    if (done != NULL) return 0;
  }
}

/* A merged round over netlink socket fd (made in the round's namespace). Returns 0 or an exit status. */
static int merged_round(int fd, int dumps, const unsigned long *exts, unsigned int seq, char *buf, char *const *outbufs) {
  int status = REFUSED;
  if (atomic_load(&both_families)) {
    status = dump_merged(fd, dumps, exts, AF_UNSPEC, seq, buf, outbufs);
    if (status == REFUSED) atomic_store(&both_families, 0);
  }
  if (status == REFUSED) {
    /* As dump_spec: the families' dumps take the two numbers after the both-families one. */
    status = dump_merged(fd, dumps, exts, AF_INET, seq + 1, buf, outbufs);
    if (status == 0) status = dump_merged(fd, dumps, exts, AF_INET6, seq + 1, buf, outbufs);
  }
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

/* A network namespace's TCP counters, read right after entering it. */
struct netns_counts {
  long inuse;  /* full TCP sockets of the namespace (listeners, connections, orphans), IPv4 + IPv6 */
  long tw;     /* its TIME-WAIT and FIN-WAIT-2 minisockets */
  long alloc;  /* TCP sockets allocated on the whole host (all namespaces) */
};

/* Reads the counters of the namespace the calling thread is in. /proc/thread-self/net/sockstat{,6}
 * are that namespace's; of their fields, TCP `inuse` (IPv4) and TCP6 `inuse` (hashed full sockets:
 * listeners, connections, orphans) and `tw` (TIME-WAIT and FIN-WAIT-2 minisockets) are per
 * namespace (`orphan`, `alloc` and `mem` are host-wide). Returns 1 if every count was read, else 0
 * (a file unreadable, a field missing: the round dumps as if nothing were known). */
static int netns_read_counts(struct netns_counts *c) {
  char text[1024];
  if (read_small("/proc/thread-self/net/sockstat", text, sizeof text) != 0) return 0;
  long inuse = counter_after(text, "TCP: inuse ");
  c->tw = counter_after(text, " tw ");
  c->alloc = counter_after(text, " alloc ");
  if (inuse < 0 || c->tw < 0 || c->alloc < 0) return 0;
  int err = read_small("/proc/thread-self/net/sockstat6", text, sizeof text);
  /* No sockstat6: a kernel without IPv6, where no TCP6 socket can exist. */
  long inuse6 = err == ENOENT ? 0 : err != 0 ? -1 : counter_after(text, "TCP6: inuse ");
  if (inuse6 < 0) return 0;
  c->inuse = inuse + inuse6;
  return 1;
}

/* Whether the namespace holds no TCP socket a dump could return, by its own counters, so that the
 * round can be answered without a dump: with the kernel's default one established-socket hash for
 * the whole host, a dump of even an empty namespace walks every socket of the host
 * (docs/performance.md). No listener (so no SYN-RECV request either), no connection, no TIME-WAIT.
 * A socket made after this check is missed as one made after a dump passed its hash bucket would
 * be: a dump is not a snapshot either. */
static int netns_known_empty(const struct netns_counts *c) {
  return c->inuse == 0 && c->tw == 0;
}

/* The size of the established-socket hash the calling thread's namespace uses, negative when it
 * shares the host's (net.ipv4.tcp_ehash_entries, Linux >= 6.1; /proc/sys/net follows setns). Before
 * 6.1 the file is absent and every namespace shares the one hash: 0 (shared, size unknown). The
 * host's own namespace reads positive although other namespaces may share its hash: treated as
 * having its own. Returns 1 and sets *entries, or 0 if it could not be read. */
static int netns_ehash_entries(long *entries) {
  char text[64];
  int err = read_small("/proc/sys/net/ipv4/tcp_ehash_entries", text, sizeof text);
  if (err == ENOENT) {
    *entries = 0;
    return 1;
  }
  if (err != 0) return 0;
  char *end;
  errno = 0;
  *entries = strtol(text, &end, 10);
  return errno == 0 && end != text;
}

/*
 * Whether one walk with every spec's extensions costs the kernel less than a walk per spec, for a
 * namespace that shares the host's hash: the walk saved is of the whole hash (its buckets and every
 * socket of the host in them), the price is the extensions (tcp_info, skmeminfo) asked of each full
 * socket of the namespace that its own spec did not want. Per-unit costs measured with
 * bench/netns-walk.ts (docs/performance.md "One walk per namespace where the hash is shared"), in
 * picoseconds of the dumping thread's system time: MERGE_PS_PER_EXT_SOCKET per socket given the
 * extensions, and a walk's MERGE_PS_PER_BUCKET per hash bucket and MERGE_PS_PER_HOST_SOCKET per
 * socket walked past. The host's sockets are sockstat `alloc` (full sockets of every namespace: some
 * may sit in hashes of their own, and TIME-WAIT ones are not counted, so it is an estimate).
 */
#define MERGE_PS_PER_EXT_SOCKET 360000L
#define MERGE_PS_PER_BUCKET 700L
#define MERGE_PS_PER_HOST_SOCKET 100000L
/* TCPSTATE_DIAG_MERGE_MAX_SOCKETS=N: merge when the namespace holds at most N full sockets instead
 * (tests choose which side of the threshold a namespace is on, whatever else the host holds). */
static long merge_max_sockets = -1;
static int merge_pays(const struct netns_counts *c, long ehash_entries) {
  if (merge_max_sockets >= 0) return c->inuse <= merge_max_sockets;
  long buckets = ehash_entries < 0 ? -ehash_entries : ehash_entries;
  double walk = (double)buckets * MERGE_PS_PER_BUCKET + (double)c->alloc * MERGE_PS_PER_HOST_SOCKET;
  return (double)c->inuse * MERGE_PS_PER_EXT_SOCKET < walk;
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
  /* The merged walk reads the namespace's counters too: only where they follow setns. */
  const int merging = skip_empty && merge.possible && getenv("TCPSTATE_DIAG_PER_SPEC") == NULL;
  char *buf = NULL, *outbufs[64];
  if (merging) {
    buf = malloc(RECV_BUFFER);
    for (int i = 0; i < dumps && buf != NULL; i++) {
      outbufs[i] = malloc(ROUTED_BUFFER);
      if (outbufs[i] == NULL) buf = NULL;
    }
    if (buf == NULL) return fail("malloc", ENOMEM);
  }
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
      struct netns_counts counts;
      const int counted = skip_empty && netns_read_counts(&counts);
      if (counted && netns_known_empty(&counts)) {
        int s = netns_empty_round(dumps, seq);
        seq += 3 * (unsigned int)dumps;
        err = netns_leave();
        if (err != 0) return fail("setns (back to the own network namespace)", err);
        if (s != 0) return s;
        continue;
      }
      long ehash = 0;
      const int hashed = counted && (merging || trace_dumps) && netns_ehash_entries(&ehash);
      const int merged = merging && hashed && ehash <= 0 && merge_pays(&counts, ehash);
      if (trace_dumps && counted) {
        fprintf(stderr, "tcpstate-diag: trace: round %s: %s (%ld full sockets, host alloc %ld, tcp_ehash_entries %ld)\n", nspath,
                merged ? "one walk" : "a walk per spec", counts.inuse, counts.alloc, ehash);
      }
      if (merged) {
        /* One walk for every spec, in this thread: the socket belongs to the namespace it was made in. */
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        int sock_err = errno;
        err = netns_leave();
        if (err != 0) return fail("setns (back to the own network namespace)", err);
        if (fd < 0) return fail("socket(AF_NETLINK, NETLINK_SOCK_DIAG)", sock_err);
        int s = merged_round(fd, dumps, exts, seq, buf, outbufs);
        close(fd);
        seq += 3 * (unsigned int)dumps;
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
    seq += 3 * (unsigned int)dumps; /* a spec's 3: both families, IPv4, IPv6 (dump_spec) */
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
  refuse_both = getenv("TCPSTATE_DIAG_REFUSE_BOTH_FAMILIES") != NULL;
  trace_dumps = getenv("TCPSTATE_DIAG_TRACE") != NULL;
  const char *max_sockets = getenv("TCPSTATE_DIAG_MERGE_MAX_SOCKETS");
  if (max_sockets != NULL) merge_max_sockets = strtol(max_sockets, NULL, 10);
  plan_merge(dumps, states, exts);
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
