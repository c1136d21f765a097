// Numbers the kernel uses for TCP states and timers, shared by every source that reads them raw
// (/proc/net/tcp prints them in hex, inet_diag sends them as bytes), and address formatting.

import type { TcpState, TimerKind } from '../model.ts';

/** include/net/tcp_states.h. 0x0C NEW_SYN_RECV is reported as SYN-RECV; 0x0D has no label. */
export const STATE_CODES: ReadonlyArray<TcpState | undefined> = [
  undefined,
  'established', // 01
  'syn_sent', // 02
  'syn_recv', // 03
  'fin_wait1', // 04
  'fin_wait2', // 05
  'time_wait', // 06
  'close', // 07
  'close_wait', // 08
  'last_ack', // 09
  'listen', // 0A
  'closing', // 0B
];

/** Real states without a label value: TCP_NEW_SYN_RECV (0x0C) and TCP_BOUND_INACTIVE (0x0D). */
export function isUnlabelledState(code: number): boolean {
  return code === 0x0c || code === 0x0d;
}

/**
 * Timer codes: `tr` of /proc/net/tcp and `idiag_timer` of inet_diag agree on 0-4. inet_diag's
 * 5 (delayed ACK, 2026 kernels) is not exported, like ss's `delack`.
 */
export const TIMER_CODES: ReadonlyArray<TimerKind | undefined> = [undefined, 'retransmit', 'keepalive', 'timewait', 'persist'];

/** An IPv4 address from its four bytes in network order. */
export function ipv4Text(a: number, b: number, c: number, d: number): string {
  return `${a}.${b}.${c}.${d}`;
}

/**
 * An IPv6 address from 16 bytes in network order, as ss prints it: the C library's inet_ntop()
 * (RFC 5952; v4-mapped ::ffff:a.b.c.d; and, as glibc does, the deprecated IPv4-compatible form
 * ::a.b.c.d when the first six groups are 0 and the seventh is not; docs/kernel-and-ss.md).
 */
export function ipv6Text(bytes: ArrayLike<number>): string {
  let zeros10 = true;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) zeros10 = false;
  if (zeros10 && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${ipv4Text(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!)}`;
  }
  if (zeros10 && bytes[10] === 0 && bytes[11] === 0 && (bytes[12] !== 0 || bytes[13] !== 0)) {
    return `::${ipv4Text(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!)}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // Compress the longest run of zero groups (length >= 2) to "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexGroups = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hexGroups.join(':');
  return `${hexGroups.slice(0, bestStart).join(':')}::${hexGroups.slice(bestStart + bestLen).join(':')}`;
}
