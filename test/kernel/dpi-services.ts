/**
 * Ordinary services for the DpiBlocker kernel tests on the server host
 * (198.18.2.2 / fd00:2::2): HTTP, TLS, an SSH stand-in, DNS, and OpenSSH's
 * sshd when installed; and a client run of each through the router.
 * @module
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/host/run.js';
import type { Lab } from '../../src/lab/index.js';
import { bg, sleep, type Bg } from './dpi-lab.js';
import type { Topo } from './nfqueue-lab.js';

export const SERVERS = fileURLToPath(new URL('./dpi-servers.mjs', import.meta.url));

/** Server ports of the services (TCP: HTTP, TLS, SSH stand-in, sshd; UDP: DNS). */
export const SERVICE_PORTS = { http: 8080, https: 8443, sshStandIn: 2222, sshd: 2200, dns: 5353 } as const;

/** Ordinary services on the server side. */
export interface Services {
  certDir: string;
  procs: Bg[];
  sshd: boolean;
}

export async function startServices(lab: Lab, t: Topo): Promise<Services> {
  const certDir = mkdtempSync(join(tmpdir(), 'netfence-dpi-'));
  const cert = join(certDir, 'cert.pem');
  const key = join(certDir, 'key.pem');
  const gen = await run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=dpi.test'], { timeoutMs: 30_000 });
  if (gen.err) throw gen.val;
  const procs = [
    bg(t.s, [process.execPath, SERVERS, 'http', '8080', '60000', '::']),
    bg(t.s, [process.execPath, SERVERS, 'https', '8443', '60000', '::', cert, key]),
    bg(t.s, [process.execPath, SERVERS, 'ssh', '2222', '60000', '::']),
    bg(t.s, [process.execPath, SERVERS, 'dns', '5353', '60000', '0.0.0.0']),
  ];
  // Real OpenSSH when installed: sshd -D with a config of our own on port 2200, key login.
  let sshd = false;
  if (existsSync('/usr/sbin/sshd')) {
    const hostKey = join(certDir, 'host_ed25519');
    const userKey = join(certDir, 'user_ed25519');
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', hostKey], { timeoutMs: 10_000 });
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', userKey], { timeoutMs: 10_000 });
    writeFileSync(join(certDir, 'authorized_keys'), readFileSync(`${userKey}.pub`));
    chmodSync(certDir, 0o700);
    const cfg = join(certDir, 'sshd_config');
    writeFileSync(
      cfg,
      [`Port 2200`, `ListenAddress 0.0.0.0`, `HostKey ${hostKey}`, `AuthorizedKeysFile ${join(certDir, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'UsePAM no', 'StrictModes no', `PidFile ${join(certDir, 'sshd.pid')}`, ''].join('\n'),
    );
    await run(['mkdir', '-p', '/run/sshd'], { timeoutMs: 5000 });
    procs.push(bg(t.s, ['/usr/sbin/sshd', '-D', '-e', '-f', cfg]));
    sshd = true;
  }
  await sleep(1200);
  void lab;
  return { certDir, procs, sshd };
}

export async function ordinaryTraffic(t: Topo, svc: Services): Promise<Record<string, boolean | string>> {
  const curl = async (url: string, v6 = false): Promise<string> => {
    const r = await run(['curl', '-s', '-k', '--max-time', '4', ...(v6 ? ['-g'] : []), url], { netns: t.c.netns, timeoutMs: 8000 });
    return r.ok ? r.val.stdout.trim() : `failed: ${r.val.failure.exitCode}`;
  };
  const out: Record<string, boolean | string> = {};
  out.http = await curl('http://198.18.2.2:8080/');
  out.http6 = await curl('http://[fd00:2::2]:8080/', true);
  out.tls = await curl('https://198.18.2.2:8443/');
  const dig = await run(['dig', '@198.18.2.2', '-p', '5353', 'example.test', 'A', '+short', '+tries=1', '+time=3'], { netns: t.c.netns, timeoutMs: 8000 });
  out.dns = dig.ok ? dig.val.stdout.trim() : 'failed';
  const ssh = await run([process.execPath, SERVERS, 'ssh-client', '198.18.2.2', '2222'], { netns: t.c.netns, timeoutMs: 8000 });
  out.sshStandIn = ssh.ok ? (JSON.parse(ssh.val.stdout.trim()) as { ok: boolean }).ok : false;
  if (svc.sshd) {
    const r = await run(
      ['ssh', '-i', join(svc.certDir, 'user_ed25519'), '-p', '2200', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=4', '-o', 'LogLevel=ERROR', 'root@198.18.2.2', 'echo', 'hello-over-ssh'],
      { netns: t.c.netns, timeoutMs: 10_000 },
    );
    out.ssh = r.ok ? r.val.stdout.trim() : `failed: ${r.val.failure.stderr.trim().slice(0, 200)}`;
  }
  return out;
}

