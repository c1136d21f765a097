// What `npm run lab` tells the user the exporter should show, from the lab's measurement: pure, so
// that its wording (ports, expiry, what each count includes) is tested.

import type { LabFigures, LabPorts } from './lab.ts';

const plus = (n: number | null | undefined) => (n === null || n === undefined ? '?' : `+${n}`);

/** What the exporter should show, in its own series names; the check-by-hand commands use ss. */
export function expectations(m: LabFigures, ports: LabPorts, inNetns: string | undefined): string {
  const ssCmd = inNetns === undefined ? 'ss' : `ip netns exec ${inNetns} ss`;
  const lines = [
    `  tcpstate_sockets{state="fin_wait1"}            +${m.fin_wait1}`,
    `  tcpstate_send_queue_bytes{state="fin_wait1"}   +${m.fin_wait1_send_queue_without_fin + m.fin_wait1} ` +
      `(${m.fin_wait1_send_queue_without_fin} unacknowledged bytes + 1 FIN per socket)`,
    `  tcpstate_orphan_sockets{state="fin_wait1"}     +${m.fin_wait1}`,
    `  tcpstate_timer_sockets{state="fin_wait1",timer="persist"} +${m.fin_wait1}`,
    `  tcpstate_sockets{state="established"}          +${m.established + (m.other_states.established ?? 0)} ` +
      `(${m.established_parts.fin_wait1_clients} zero-window clients of the orphans, still ESTABLISHED; ` +
      `${m.established_parts.idle_pairs} ends of the idle pairs` +
      (m.other_states.established ? `; ${m.other_states.established} of the failure-mode scenarios` : '') +
      ')',
    m.time_wait === 0
      ? `  tcpstate_sockets{state="time_wait"}            +0 (the lab's TIME-WAIT sockets expired; run it again to renew them)`
      : `  tcpstate_sockets{state="time_wait"}            ${plus(m.time_wait)} (for ${m.time_wait_expires_in} s more)`,
    `  check by hand (the orphans are the server side, so the port is their local port):`,
    `    ${ssCmd} -tno state fin-wait-1 '( sport = :${ports.fin_wait1} )'`,
  ];
  const s = m.scenarios;
  if (s.close_wait !== undefined) {
    const q = s.close_wait.sockets.reduce((a, x) => a + (x.unread ?? 0), 0);
    lines.push(
      `  CLOSE-WAIT leak on port ${s.close_wait.port}: tcpstate_port_sockets{port="${s.close_wait.port}",state="close_wait"} ` +
        `+${s.close_wait.sockets.length}, Recv-Q ${q} bytes never read; their clients wait in FIN-WAIT-2 (owned)`,
      `    ${ssCmd} -tnp state close-wait '( sport = :${s.close_wait.port} )'`,
    );
  }
  if (s.fin_wait2 !== undefined) {
    lines.push(
      `  orphaned FIN-WAIT-2 on port ${s.fin_wait2.port}: tcpstate_orphan_sockets{state="fin_wait2"} ${plus(s.fin_wait2.orphans)} ` +
        `(they die tcp_fin_timeout = ${s.fin_wait2.fin_timeout_seconds} s after the close; now ${s.fin_wait2.age_seconds} s); ` +
        `their clients sit in CLOSE-WAIT on port="other"`,
      `    ${ssCmd} -tno state fin-wait-2 '( sport = :${s.fin_wait2.port} )'`,
    );
  }
  if (s.last_ack !== undefined) {
    const q = s.last_ack.sockets.reduce((a, x) => a + (x.send_queue ?? 0), 0);
    lines.push(
      `  orphaned LAST-ACK on port ${s.last_ack.port}: tcpstate_orphan_sockets{state="last_ack"} +${s.last_ack.sockets.length}, ` +
        `Send-Q ${q} bytes (1 FIN each included), persist timer`,
      `    ${ssCmd} -tno state last-ack '( sport = :${s.last_ack.port} )'`,
    );
  }
  if (s.syn_recv !== undefined) {
    lines.push(
      `  SYN-RECV flood on port ${s.syn_recv.port}: tcpstate_port_sockets{port="${s.syn_recv.port}",state="syn_recv"} +${s.syn_recv.sockets.length}; ` +
        `their clients in SYN-SENT`,
      `    ${ssCmd} -tn state syn-recv '( sport = :${s.syn_recv.port} )'`,
    );
  }
  if (s.listen_overflow !== undefined) {
    const o = s.listen_overflow;
    const waiting = o.clients.filter((c) => c === 'syn_sent').length;
    lines.push(
      `  listen-queue overflow on port ${o.port}: accept queue ${o.accept_queue} of backlog ${o.backlog} (full above it); ` +
        `${waiting} clients' SYNs dropped and retransmitted; ListenOverflows +${o.counters_since_start.ListenOverflows ?? '?'}, ` +
        `ListenDrops +${o.counters_since_start.ListenDrops ?? '?'} since the lab started`,
      `    ${ssCmd} -tln '( sport = :${o.port} )'    # LISTEN Recv-Q = accept queue, Send-Q = backlog`,
    );
  }
  return lines.join('\n');
}

