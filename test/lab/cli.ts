// `npm run lab -- [--fin-wait1 N] [--established M] [--time-wait K] [--base-port P]`
// Builds the FIN-WAIT-1 failure on this host's loopback so a running exporter (and its dashboard)
// shows it, prints what the exporter should report, and cleans up on Ctrl-C.

import { Command, InvalidArgumentError } from 'commander';
import { Lab } from './lab.ts';

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 15000) throw new InvalidArgumentError('a whole number from 0 to 15000');
  return n;
}

const opts = new Command('npm run lab --')
  .description(
    'Creates orphaned FIN-WAIT-1 sockets stuck behind zero-window peers, idle ESTABLISHED pairs and TIME-WAIT\n' +
      'sockets on 127.0.0.1, and keeps them until Ctrl-C. The orphans die on their own about 5 minutes after\n' +
      'they were made (zero-window probe backoff, DOMAIN.md §4.3); run the lab again to renew them.',
  )
  .option('--fin-wait1 <n>', 'orphaned FIN-WAIT-1 sockets', count, 200)
  .option('--established <n>', 'idle ESTABLISHED pairs', count, 50)
  .option('--time-wait <n>', 'TIME-WAIT sockets (they expire after 60 s)', count, 50)
  .option('--base-port <port>', 'listeners on port, port+1, port+2', count, 17001)
  .parse()
  .opts<{ finWait1: number; established: number; timeWait: number; basePort: number }>();

const lab = await Lab.start(opts);
const show = async () => {
  const m = await lab.measure();
  const started = new Date().toISOString();
  process.stdout.write(
    `${started}  the exporter should show (this lab's sockets only; the host has others too):\n` +
      `  tcpstate_sockets{state="fin_wait1"}            +${m.fin_wait1}\n` +
      `  tcpstate_send_queue_bytes{state="fin_wait1"}   +${m.fin_wait1_send_queue_without_fin + m.fin_wait1} ` +
      `(${m.fin_wait1_send_queue_without_fin} unacknowledged bytes + 1 FIN per socket)\n` +
      `  tcpstate_orphan_sockets{state="fin_wait1"}     +${m.fin_wait1}\n` +
      `  tcpstate_timer_sockets{state="fin_wait1",timer="persist"} +${m.fin_wait1}\n` +
      `  tcpstate_sockets{state="established"}          +${m.established}\n` +
      `  tcpstate_sockets{state="time_wait"}            +${m.time_wait} (for 60 s)\n` +
      `  check by hand: ss -tno state fin-wait-1 '( dport = :${lab.ports.fin_wait1} )'\n\n`,
  );
};
await show();
const timer = setInterval(() => void show(), 30_000);
const stop = async () => {
  clearInterval(timer);
  process.stdout.write('cleaning up: closing the peers resets the orphans; ss -K on the lab ports\n');
  await lab.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
