/**
 * Traffic checks of the crash trials (reliability-crash.test.ts): after every
 * repair, packets must show the host behaving as the old or the new
 * configuration, whichever the kill left. Each check is bounded (short
 * transfers, sub-second timeouts).
 */
import { run } from '../../src/host/run.js';
import type { Lab, LabHost } from '../../src/lab/index.js';

/** Which configuration the host is in after reconcile(). */
export type Final = 'old' | 'new';

/** A TCP connection's outcome (`open` with the reply, `refused`, `timeout`, ...). */
export async function tcp(lab: Lab, from: LabHost, addr: string, port: number, timeoutMs = 400): Promise<string> {
  const p = await lab.probe(from, 'tcp', addr, port, { timeoutMs });
  return p.result;
}

/** Whether one ping from `src` (an address of `from`) to `dst` was answered. */
export async function pingFrom(from: LabHost, src: string, dst: string): Promise<boolean> {
  const r = await run(['ping', '-n', '-q', '-c', '1', '-W', '1', '-I', src, dst], { netns: from.netns, timeoutMs: 5000 });
  const text = r.ok ? r.val.stdout : r.val.failure.stdout;
  return /\b1 (?:packets )?received/.test(text);
}

/**
 * Download `bytes` from a `%bytes:N` lab server at `addr:port` into `from`;
 * the steady rate in Mbit/s, measured from the moment the first quarter has
 * arrived to the last byte (the first packets pass a shaper at line rate: its
 * burst and queue), or undefined if the transfer did not complete within
 * `timeoutMs`.
 */
export async function transferMbit(from: LabHost, addr: string, port: number, bytes: number, timeoutMs = 3000): Promise<number | undefined> {
  const q = Math.floor(bytes / 4);
  const code = `const s=require('net').connect({host:${JSON.stringify(addr)},port:${port}});let n=0,n1=0,t1=0;s.on('data',d=>{n+=d.length;if(!t1&&n>=${q}){t1=performance.now();n1=n}});s.on('end',()=>{console.log(JSON.stringify({n,n1,ms:performance.now()-t1}));process.exit(0)});s.on('error',e=>{console.log(JSON.stringify({error:String(e.code)}));process.exit(0)});setTimeout(()=>{console.log(JSON.stringify({timeout:n}));process.exit(0)},${timeoutMs});`;
  const r = await run([process.execPath, '-e', code], { netns: from.netns, timeoutMs: timeoutMs + 30_000 });
  const text = (r.ok ? r.val.stdout : r.val.failure.stdout).trim().split('\n').pop() ?? '';
  const o = JSON.parse(text) as { n?: number; n1?: number; ms?: number };
  if (o.n !== bytes || o.n1 === undefined || o.ms === undefined) return undefined;
  return ((bytes - o.n1) * 8) / 1000 / Math.max(o.ms, 0.001);
}
