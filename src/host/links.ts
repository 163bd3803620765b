/**
 * The one reader of `ip -j link show`: interfaces of a namespace with their
 * index, MTU, type and XDP attachment, read through the tolerant schema below
 * (fields netfence does not use, or a newer iproute2 adds, pass through).
 * @module
 */
import { z } from 'zod';
import { NetfenceError } from '../errors.js';
import { Err, Ok, type Result } from '../result.js';
import { run } from './run.js';

/** One interface as `ip -j link show` prints it (the fields netfence reads; others kept). */
export const LinkSchema = z
  .object({
    ifindex: z.number().int(),
    ifname: z.string(),
    mtu: z.number().int().optional(),
    link_type: z.string().optional(),
    operstate: z.string().optional(),
    flags: z.array(z.string()).optional(),
    address: z.string().optional(),
    /** Present when an XDP program is attached: mode 1 native, 2 generic, 3 offload, 4 several. */
    xdp: z
      .object({
        mode: z.number().int().optional(),
        prog: z.object({ id: z.number().int(), name: z.string().optional() }).passthrough().optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();
/** One interface as listed by `ip -j link show`. */
export type Link = z.infer<typeof LinkSchema>;

const LinksSchema = z.array(LinkSchema);

/** The argv listing every interface, or `dev` only. */
export function linkShowArgv(dev?: string): string[] {
  return dev === undefined ? ['ip', '-j', 'link', 'show'] : ['ip', '-j', 'link', 'show', 'dev', dev];
}

/** Parse the output of `ip -j link show`; Err is the reason it is not a listing. */
export function parseLinks(stdout: string): Result<Link[], string> {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch (e) {
    return Err((e as Error).message);
  }
  const r = LinksSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return Err(`${i?.path.join('.') || 'listing'}: ${i?.message ?? 'unexpected shape'}`);
  }
  return Ok(r.data);
}

/**
 * The interfaces of a namespace (`dev` only, when given). Err is the
 * `CommandError` of `ip` (e.g. no such device), or a `BAD_LISTING`
 * {@link NetfenceError} when its output is not a listing.
 */
export async function listLinks(options: { netns?: string | undefined; dev?: string; what?: string } = {}): Promise<Result<Link[], NetfenceError>> {
  const r = await run(linkShowArgv(options.dev), { netns: options.netns, what: options.what ?? (options.dev === undefined ? 'list interfaces' : `read interface ${options.dev}`) });
  if (r.err) return Err(r.val);
  const links = parseLinks(r.val.stdout);
  if (links.err) return Err(new NetfenceError('BAD_LISTING', `unparseable ip -j link output: ${links.val}`));
  return Ok(links.val);
}

/** The XDP attachment mode named by `ip -j link`'s number. */
export function xdpModeName(mode: number | undefined): 'native' | 'generic' | 'offload' | 'multi' {
  return mode === 1 ? 'native' : mode === 2 ? 'generic' : mode === 3 ? 'offload' : 'multi';
}
