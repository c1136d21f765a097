// `npm run lab -- [--fin-wait1 N] [--established M] [--time-wait K] [--close-wait N] [--fin-wait2 N]
//   [--last-ack N] [--syn-recv N --netns] [--listen-overflow N] [--base-port P]`
// Builds the FIN-WAIT-1 failure (and, on request, the other stuck-state failure modes) on loopback
// so a running exporter (and its dashboard) shows it, prints what the exporter should report, and
// cleans up on Ctrl-C.

import { Command, InvalidArgumentError } from 'commander';
import { expectations } from './expect.ts';
import { Lab, createNetns, deleteNetns } from './lab.ts';

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 15000) throw new InvalidArgumentError('a whole number from 0 to 15000');
  return n;
}

interface Options {
  finWait1: number;
  established: number;
  timeWait: number;
  closeWait: number;
  finWait2: number;
  lastAck: number;
  synRecv: number;
  listenOverflow: number;
  listenBacklog: number;
  basePort: number;
  netns: boolean;
  host: boolean;
}

const opts = new Command('npm run lab --')
  .description(
    'Creates orphaned FIN-WAIT-1 sockets stuck behind zero-window peers, idle ESTABLISHED pairs and TIME-WAIT\n' +
      'sockets on 127.0.0.1, and keeps them until Ctrl-C. The orphans die on their own about 5 minutes after\n' +
      'they were made (zero-window probe backoff, docs/runbook.md "Background"); run the lab again to renew them.\n' +
      'The other failure modes are built on request, each on its own port (see docs/runbook.md for each alert).\n' +
      "Where: --netns (a namespace of its own) or --host (this host's loopback); one is required.",
  )
  .option('--fin-wait1 <n>', 'orphaned FIN-WAIT-1 sockets (port P)', count, 200)
  .option('--established <n>', 'idle ESTABLISHED pairs (port P+1)', count, 50)
  .option('--time-wait <n>', 'TIME-WAIT sockets, they expire after 60 s (port P+2)', count, 50)
  .option('--close-wait <n>', 'CLOSE-WAIT sockets an application never closes (port P+3)', count, 0)
  .option('--fin-wait2 <n>', 'orphaned FIN-WAIT-2 sockets whose peers never close; they live tcp_fin_timeout (port P+4)', count, 0)
  .option('--last-ack <n>', 'orphaned LAST-ACK sockets behind zero-window peers (port P+5)', count, 0)
  .option('--syn-recv <n>', 'half-open handshakes whose SYN-ACKs are dropped; needs --netns (port P+6)', count, 0)
  .option('--listen-overflow <n>', 'clients of a listener that never accepts (port P+7)', count, 0)
  .option('--listen-backlog <n>', 'backlog of the --listen-overflow listener', count, 4)
  .option('--base-port <port>', 'the first port P; the lab listens on P .. P+7', count, 17001)
  .option('--netns', 'build everything in a network namespace of its own (tcpstate-lab-PID), deleted on exit', false)
  .option('--host', "build it on this host's own loopback: its orphans count against the host's tcp_max_orphans", false)
  .parse()
  .opts<Options>();

// The lab changes the network it runs in: the host's only when asked to, in so many words.
if (opts.netns === opts.host) {
  process.stderr.write(
    'npm run lab: say where to build the sockets (one of):\n' +
      '  --netns  in a private network namespace (then run the exporter there: ip netns exec tcpstate-lab-PID npm start)\n' +
      "  --host   on THIS HOST's loopback: hundreds of orphaned sockets that count against the host's\n" +
      '           tcp_max_orphans and pin memory for ~5 minutes\n',
  );
  process.exit(2);
}

if (opts.synRecv > 0 && !opts.netns) {
  process.stderr.write('--syn-recv drops SYN-ACKs with an iptables rule: it only runs with --netns (a namespace of its own)\n');
  process.exit(2);
}
const netns = opts.netns ? `tcpstate-lab-${process.pid}` : undefined;
if (netns !== undefined) await createNetns(netns);
const lab = await Lab.start({ ...opts, netns });

const show = async () => {
  const m = await lab.measure();
  process.stdout.write(
    `${new Date().toISOString()}  the exporter should show (this lab's sockets only; the host has others too):\n` +
      `${expectations(m, lab.ports, netns)}\n\n`,
  );
};
if (netns !== undefined) {
  process.stdout.write(`the lab runs in network namespace ${netns}: run the exporter there, e.g. ip netns exec ${netns} npm start\n`);
}
await show();
const timer = setInterval(() => void show(), 30_000);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  process.stdout.write('cleaning up: closing the peers resets the orphans; ss -K on the lab ports\n');
  await lab.stop();
  if (netns !== undefined) await deleteNetns(netns);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
