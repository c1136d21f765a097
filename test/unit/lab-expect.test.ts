// What `npm run lab` tells a new user (test/lab/expect.ts): the check-by-hand command matches the
// orphans (the server side: sport), TIME-WAIT is not announced after it expired, and the
// ESTABLISHED count says it includes the orphans' zero-window clients.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectations } from '../lab/expect.ts';
import type { LabFigures, LabPorts } from '../lab/lab.ts';

const PORTS: LabPorts = { fin_wait1: 17001, established: 17002, time_wait: 17003 };

function figures(over: Partial<LabFigures>): LabFigures {
  return {
    fin_wait1: 20, established: 40, established_parts: { fin_wait1_clients: 20, idle_pairs: 20 }, time_wait: 10, time_wait_expires_in: 42,
    listen: 3, other_states: {}, states: {}, scenarios: {}, age_seconds: 18, fin_wait1_send_queue_without_fin: 500_000, peer_recv_queue: 0, written: 0, fin_wait1_sockets: [],
    ...over,
  };
}

describe('npm run lab: what it tells the user', () => {
  it('the check-by-hand command selects the orphans by their local port (sport), in the namespace when there is one', () => {
    const text = expectations(figures({}), PORTS, 'tcpstate-lab-1');
    assert.match(text, /ip netns exec tcpstate-lab-1 ss -tno state fin-wait-1 '\( sport = :17001 \)'/);
    assert.doesNotMatch(text, /dport/);
    assert.match(expectations(figures({}), PORTS, undefined), /^ {4}ss -tno state fin-wait-1 '\( sport = :17001 \)'$/m);
  });

  it('TIME-WAIT: announced with the time it has left, and as expired (+0) once it is', () => {
    assert.match(expectations(figures({ time_wait: 10, time_wait_expires_in: 42 }), PORTS, undefined), /tcpstate_sockets\{state="time_wait"\} +\+10 \(for 42 s more\)/);
    const expired = expectations(figures({ time_wait: 0, time_wait_expires_in: 0 }), PORTS, undefined);
    assert.match(expired, /tcpstate_sockets\{state="time_wait"\} +\+0 \(the lab's TIME-WAIT sockets expired; run it again to renew them\)/);
    assert.doesNotMatch(expired, /for \d+ s more/);
  });

  it('ESTABLISHED says it counts the orphans\' zero-window clients', () => {
    assert.match(expectations(figures({}), PORTS, undefined), /tcpstate_sockets\{state="established"\} +\+40 \(20 zero-window clients of the orphans, still ESTABLISHED; 20 ends of the idle pairs\)/);
  });
});
