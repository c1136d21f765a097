// npm run test:image: the Dockerfile, unmodified, built and run on this machine with buildah (no
// Docker engine, no container registry). Needs root, buildah, mmdebstrap, curl
// (scripts/debian-setup.sh --test). Nothing here is skipped: a missing tool is a failure.
//
// 1. scripts/image-base.sh makes the Dockerfile's FROM image locally (kept between runs while its
//    recipe is unchanged and it is younger than a week).
// 2. buildah build --isolation chroot --pull=never --format docker (docker: HEALTHCHECK kept).
// 3. The image's own ENTRYPOINT runs as its USER with the host network and a read-only root
//    filesystem; /metrics must show the netlink source up and a listener and a connection this
//    test opens on loopback, the HEALTHCHECK command must pass on a non-default port and fail once
//    the exporter is gone, and the init must adopt and reap an orphaned grandchild.
// Figures (base, build, image size, total) are printed.

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = new URL('../../', import.meta.url).pathname;
const TAG = `localhost/tcpstate-exporter:test-${process.pid}`;
/** The commit under test, passed to the build (the context has no .git) and expected in tcpstate_build_info. */
const HEAD = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
const figures: string[] = [];
const t0 = performance.now();

function sh(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['pipe', 'pipe', 'inherit'], ...opts }).trim();
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

interface ImageConfig {
  User: string;
  Entrypoint: string[];
  Healthcheck?: { Test: string[] };
}

/** A free loopback TCP port (bound then released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * On networks that reach the npm registry through a TLS-intercepting proxy, the host's npm has a
 * `cafile`: hand it to the build's npm through a read-only mount over /usr/local/etc (npm's global
 * config directory, empty in the base image), so nothing of it lands in a layer.
 */
function caMount(): string[] {
  let cafile = '';
  try {
    cafile = sh('npm', ['config', 'get', 'cafile']);
  } catch {
    // no npm config: nothing to hand over
  }
  if (cafile === '' || cafile === 'null' || cafile === 'undefined') cafile = process.env['NODE_EXTRA_CA_CERTS'] ?? '';
  if (cafile === '' || !existsSync(cafile)) return [];
  const dir = mkdtempSync(join(tmpdir(), `tcpstate-image-npmetc-${process.pid}-`));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'extra-ca.crt'), readFileSync(cafile), { mode: 0o644 });
  writeFileSync(join(dir, 'npmrc'), 'cafile=/usr/local/etc/extra-ca.crt\n', { mode: 0o644 });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return ['-v', `${dir}:/usr/local/etc:ro`];
}

const cleanups: (() => void)[] = [];
let ctr = '';
let mnt = '';
let config: ImageConfig;

/** Read-only binds of every top-level directory of the container's root filesystem over itself. */
function readOnlyRoot(): string[] {
  const out: string[] = [];
  for (const name of readdirSync(mnt)) {
    if (['proc', 'sys', 'dev', 'run'].includes(name)) continue; // the runtime mounts its own
    if (!lstatSync(join(mnt, name)).isDirectory()) continue; // /bin, /lib...: symlinks into /usr
    out.push('--mount', `type=bind,source=${join(mnt, name)},destination=/${name},ro`);
  }
  return out;
}

function runArgs(): string[] {
  return ['run', '--isolation', 'chroot', '--network', 'host', '--user', config.User, ...readOnlyRoot(), ctr, '--'];
}

describe('the image, built and run here', { timeout: 30 * 60_000 }, () => {
  before(() => {
    for (const tool of ['buildah', 'mmdebstrap', 'curl']) {
      assert.equal(spawnSync('sh', ['-c', `command -v ${tool}`]).status, 0, `${tool} missing: run ./scripts/debian-setup.sh --test`);
    }
    assert.equal(process.getuid?.(), 0, 'test:image needs root (buildah, mmdebstrap)');
  });

  after(() => {
    if (ctr !== '') spawnSync('buildah', ['rm', ctr], { stdio: 'ignore' });
    spawnSync('buildah', ['rmi', TAG], { stdio: 'ignore' });
    for (const c of cleanups) c();
    figures.push(`total ${seconds(t0)} s`);
    process.stdout.write(`# test:image figures: ${figures.join(', ')}\n`);
  });

  it('makes the base image the Dockerfile names (scripts/image-base.sh)', () => {
    const t = performance.now();
    const base = sh('sh', ['scripts/image-base.sh']);
    figures.push(`base ${base} ready in ${seconds(t)} s`);
    const from = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').match(/^ARG NODE_BASE=(\S+)$/m)?.[1];
    assert.equal(base, from);
    const node = sh('buildah', ['inspect', '--type', 'image', '--format', '{{index .OCIv1.Config.Labels "tcpstate.base.node"}}', base]);
    const pinned = readFileSync(join(ROOT, 'scripts/node-dist.sh'), 'utf8').match(/^NODE_VERSION=(\S+)/m)?.[1];
    assert.equal(node, pinned);
  });

  it('builds the unmodified Dockerfile (--pull=never, docker format)', () => {
    const t = performance.now();
    execFileSync(
      'buildah',
      ['build', '--isolation', 'chroot', '--pull=never', '--format', 'docker', '--quiet', ...caMount(), '--build-arg', `TCPSTATE_BUILD_REVISION=${HEAD}`, '-f', 'Dockerfile', '-t', TAG, '.'],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    figures.push(`build ${seconds(t)} s`);
    const size = sh('buildah', ['images', '--format', '{{.Size}}', TAG]);
    figures.push(`image size ${size}`);
    config = (JSON.parse(sh('buildah', ['inspect', '--type', 'image', TAG])) as { Docker: { config: ImageConfig } }).Docker.config;
    assert.equal(config.User, '1000:1000', 'runs as a non-root user');
    assert.equal(config.Entrypoint[0], '/usr/bin/tini', 'an init is PID 1');
    assert.equal(config.Healthcheck?.Test[0], 'CMD', 'HEALTHCHECK kept');
    ctr = sh('buildah', ['from', '--pull=never', TAG]);
    mnt = sh('buildah', ['mount', ctr]);
  });

  it('its root filesystem is read-only as run here (a write fails with EROFS)', () => {
    const r = spawnSync('buildah', [...runArgs(), 'sh', '-c', 'for d in /tmp /var/tmp /home/node /app; do touch $d/probe 2>&1; done; id -u'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((r.stdout.match(/Read-only file system/g) ?? []).length, 4, r.stdout);
    assert.match(r.stdout, /^1000$/m, 'as uid 1000');
  });

  it('the init adopts and reaps an orphaned grandchild (zombies when node is PID 1)', () => {
    const init = config.Entrypoint.slice(0, config.Entrypoint.findIndex((a) => a.endsWith('/bin/tcpstate-exporter.js')));
    assert.ok(init.length > 0, `no init before the exporter in ${JSON.stringify(config.Entrypoint)}`);
    const probe =
      'gc=$( (sleep 0.6 >/dev/null 2>&1 & echo $!) ); sleep 0.2; echo "adopter=$(cut -d" " -f4 /proc/$gc/stat) init=$PPID"; sleep 1; ' +
      'if [ -e /proc/$gc ]; then echo "left=$(cut -d" " -f3 /proc/$gc/stat)"; else echo left=none; fi';
    const r = spawnSync('buildah', [...runArgs(), ...init, 'sh', '-c', probe], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const m = /adopter=(\d+) init=(\d+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(m[1], m[2], 'the orphan was reparented to the init');
    assert.match(r.stdout, /left=none/, 'and reaped, not left a zombie');
  });

  describe('running: /metrics, real sockets, HEALTHCHECK', () => {
    let exporter: ChildProcess | undefined;
    let listener: net.Server | undefined;
    let client: net.Socket | undefined;
    let webPort = 0;
    let labPort = 0;
    let log = '';
    const inContainer: number[] = []; // the exporter and its children (the netlink helper)

    /** The container's processes: argv carries this run's unique listen address, root is not the host's. */
    function containerPids(): { pid: number; comm: string }[] {
      const r = spawnSync('pgrep', ['-f', '--', `--web.listen-address=127.0.0.1:${webPort}`], { encoding: 'utf8' });
      const out: { pid: number; comm: string }[] = [];
      for (const pid of r.stdout.split('\n').filter((l) => l !== '').map(Number)) {
        try {
          if (readlinkSync(`/proc/${pid}/root`) === '/') continue; // buildah itself, pgrep
          out.push({ pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() });
        } catch {
          // exited meanwhile
        }
      }
      return out;
    }

    /** What `docker stop` does: SIGTERM to the container's PID 1 (the init), then wait. */
    async function stop(): Promise<number | string | null> {
      if (exporter === undefined || exporter.exitCode !== null) return exporter?.exitCode ?? null;
      const exited = new Promise<number | string | null>((resolve) => exporter!.once('exit', (c, s) => resolve(c ?? s)));
      const init = containerPids().find((p) => p.comm === config.Entrypoint[0]!.split('/').pop());
      assert.ok(init, `no init process among ${JSON.stringify(containerPids())}`);
      process.kill(init.pid, 'SIGTERM');
      return Promise.race([exited, sleep(10_000).then(() => 'still running 10 s after SIGTERM')]);
    }

    after(async () => {
      client?.destroy();
      listener?.close();
      if (exporter !== undefined && exporter.exitCode === null) {
        for (const p of containerPids()) process.kill(p.pid, 'SIGKILL');
        exporter.kill('SIGKILL');
      }
    });

    it('serves the host real sockets from the netlink source', async () => {
      webPort = await freePort();
      listener = net.createServer((s) => s.on('error', () => {}));
      await new Promise<void>((resolve) => listener!.listen(0, '127.0.0.1', resolve));
      labPort = (listener.address() as net.AddressInfo).port;
      client = net.connect(labPort, '127.0.0.1');
      await new Promise((resolve) => client!.once('connect', resolve));

      // The image's ENTRYPOINT as it is, with a non-default listen address (the HEALTHCHECK must follow).
      exporter = spawn(
        'buildah',
        [...runArgs(), ...config.Entrypoint, `--web.listen-address=127.0.0.1:${webPort}`, `--ports=${labPort}`, '--poll.interval=1s'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      exporter.stdout?.on('data', (d: Buffer) => (log += d.toString()));
      exporter.stderr?.on('data', (d: Buffer) => (log += d.toString()));
      let text = '';
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && exporter.exitCode === null) {
        try {
          text = await (await fetch(`http://127.0.0.1:${webPort}/metrics`)).text();
          if (text.includes(`tcpstate_port_sockets{port="${labPort}",state="listen"}`)) break;
        } catch {
          // not listening yet
        }
        await sleep(250);
      }
      assert.match(text, /^tcpstate_source_up\{source="netlink"\} 1$/m, `netlink source up\n${log}`);
      assert.match(text, new RegExp(`^tcpstate_port_sockets\\{port="${labPort}",state="listen"\\} 1$`, 'm'), 'the listener this test opened');
      assert.match(text, new RegExp(`^tcpstate_port_sockets\\{port="${labPort}",state="established"\\} 1$`, 'm'), 'its accepted connection');
      assert.match(text, /^tcpstate_build_info\{[^}]*nodejs="v24\./m, 'on the Node.js of the base image');
      assert.match(text, new RegExp(`^tcpstate_build_info\\{[^}]*revision="${HEAD}"`, 'm'), 'the commit, passed as a build argument');
      // The process tree under the init: the exporter, and under it the netlink helper.
      const children = (pid: number) =>
        readdirSync(`/proc/${pid}/task`).flatMap((t) =>
          readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(' ').filter((c) => c !== '').map(Number),
        );
      const init = containerPids().find((p) => p.comm === config.Entrypoint[0]!.split('/').pop());
      assert.ok(init, `the init process among ${JSON.stringify(containerPids())}`);
      const [node] = children(init.pid);
      assert.ok(node !== undefined, 'the exporter under the init');
      inContainer.push(node, ...children(node));
    });

    it('HEALTHCHECK passes on the configured port, fails when the exporter is gone', async () => {
      const cmd = config.Healthcheck!.Test.slice(1);
      const ok = spawnSync('buildah', [...runArgs(), ...cmd], { encoding: 'utf8' });
      assert.equal(ok.status, 0, `${ok.stdout}${ok.stderr}`);
      assert.match(ok.stdout, new RegExp(`healthy: http://127\\.0\\.0\\.1:${webPort}/healthz 200`));

      const code = await stop();
      assert.equal(code, 0, `SIGTERM to the init: the container exits 0\n${log}`);
      const gone = spawnSync('buildah', [...runArgs(), ...cmd], { encoding: 'utf8' });
      assert.equal(gone.status, 1, `${gone.stdout}${gone.stderr}`);
      // No process of it is left behind (tini forwards the signal, node exits, the helper too).
      assert.deepEqual(containerPids(), [], 'processes left after SIGTERM');
      assert.ok(inContainer.length >= 2, `the exporter and its netlink helper were seen: ${inContainer.join(' ')}`);
      for (const pid of inContainer) assert.equal(existsSync(`/proc/${pid}`), false, `process ${pid} left after SIGTERM`);
    });
  });
});
