/*
 * tcpstate-diag: dumps the kernel's TCP socket table through NETLINK_SOCK_DIAG (inet_diag, the
 * interface ss and node_exporter use) and copies the kernel's netlink messages to stdout
 * unchanged. tcpstate-exporter's `netlink` source parses them (src/parsers/inet-diag.ts); doing
 * no parsing here keeps this program small and lets the parser be tested on captured bytes.
 *
 * usage: tcpstate-diag STATES[:EXT] [STATES[:EXT]]...
 *   STATES  hex bit mask of TCP states (bit n = state n of include/net/tcp_states.h)
 *   EXT     hex bit mask of extensions (bit n-1 = INET_DIAG_* attribute n), default 0
 * Each argument is one dump of IPv4, then one of IPv6. Every dump ends with its NLMSG_DONE.
 * Exit status: 0 when every dump completed; 1 on a usage error; 2 when the kernel or a system
 * call failed (the reason is on stderr, and stdout may hold a partial table).
 *
 * Needs no privileges: any user may dump the socket table (as with ss).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The kernel fills each dump read with up to 32 KiB of messages (netlink_dump()). */
#define RECV_BUFFER (64 * 1024)
/* A big pipe lets the kernel's dump run ahead of the exporter's event loop. */
#define PIPE_SIZE (1024 * 1024)

static int fail(const char *what, int err) {
  fprintf(stderr, "tcpstate-diag: %s: %s\n", what, strerror(err));
  return 2;
}

static int write_all(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDOUT_FILENO, buf, len);
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

/* One dump request and its answer, copied to stdout. Returns 0 or an exit status. */
static int dump(int fd, unsigned char family, unsigned int states, unsigned char ext, unsigned int seq, char *buf) {
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } msg;
  memset(&msg, 0, sizeof msg);
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.nlh.nlmsg_seq = seq;
  msg.req.sdiag_family = family;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_ext = ext;
  msg.req.idiag_states = states;

  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return fail("sendto", errno);

  for (;;) {
    ssize_t n = recv(fd, buf, RECV_BUFFER, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("recv", errno);
    }
    if (n == 0) return fail("recv", ECONNRESET);
    int done = 0;
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        int err = h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) ? -e->error : EPROTO;
        /* ENOENT: no inet_diag handler for TCP (module tcp_diag missing). */
        return fail(family == AF_INET ? "inet_diag dump (IPv4)" : "inet_diag dump (IPv6)", err);
      }
      if (h->nlmsg_type == NLMSG_DONE) done = 1;
    }
    int err = write_all(buf, (size_t)n);
    if (err != 0) return fail("write", err);
    if (done) return 0;
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    fputs("usage: tcpstate-diag STATES[:EXT]...  (hex masks; raw netlink inet_diag messages on stdout)\n",
          argc < 2 ? stderr : stdout);
    return argc < 2 ? 1 : 0;
  }
  unsigned long states[64], exts[64];
  int dumps = argc - 1;
  if (dumps > 64) dumps = 64;
  for (int i = 0; i < dumps; i++) {
    char *end;
    exts[i] = 0;
    if (parse_hex(argv[i + 1], &end, 0xffffffffUL, &states[i]) != 0 ||
        (*end == ':' && parse_hex(end + 1, &end, 0xffUL, &exts[i]) != 0) || *end != '\0') {
      fprintf(stderr, "tcpstate-diag: bad dump spec '%s' (want STATES[:EXT] in hex)\n", argv[i + 1]);
      return 1;
    }
  }

  (void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, PIPE_SIZE); /* not a pipe, or not allowed: fine */

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return fail("socket(AF_NETLINK, NETLINK_SOCK_DIAG)", errno);
  char *buf = malloc(RECV_BUFFER);
  if (buf == NULL) return fail("malloc", ENOMEM);

  unsigned int seq = 1;
  for (int i = 0; i < dumps; i++) {
    static const unsigned char families[] = {AF_INET, AF_INET6};
    for (int f = 0; f < 2; f++) {
      int status = dump(fd, families[f], (unsigned int)states[i], (unsigned char)exts[i], seq++, buf);
      if (status != 0) return status;
    }
  }
  return 0;
}
