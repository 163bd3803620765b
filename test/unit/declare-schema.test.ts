/**
 * The JSON Schema shipped for editors (schema/netfence.schema.json) is what
 * the generator makes from the classes' zod schemas now, so it cannot go
 * stale; and it is made of those schemas (the rule, limit and blocklist
 * fields are the classes' own).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { declarationSchemaText, DeclarationSchema } from '../../src/declare/schema.js';
import { parseDeclaration } from '../../src/declare/load.js';
import { RuleSpec } from '../../src/firewall/spec.js';
import { LimitSchema } from '../../src/throttle/types.js';
import { XdpBlocklistOptionsSchema } from '../../src/xdp/types.js';

const shipped = fileURLToPath(new URL('../../schema/netfence.schema.json', import.meta.url));
const example = fileURLToPath(new URL('../../examples/netfence.yaml', import.meta.url));
const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { files: string[] };

type Json = Record<string, unknown>;
function resolve(root: Json, s: Json): Json {
  const ref = s.$ref;
  if (typeof ref === 'string' && ref.startsWith('#/$defs/')) return resolve(root, (root.$defs as Json)[ref.slice(8)] as Json);
  return s;
}

describe('schema/netfence.schema.json', () => {
  it('equals what scripts/gen-schema.mjs generates from the zod schemas now (run `node scripts/gen-schema.mjs` after changing an option)', () => {
    expect(readFileSync(shipped, 'utf8')).toBe(declarationSchemaText());
  });

  it('is shipped in the npm package', () => {
    expect(pkg.files).toContain('schema');
  });

  it('describes the classes\' own fields: firewall rules, limits, blocklists', () => {
    const root = JSON.parse(readFileSync(shipped, 'utf8')) as Json;
    const props = root.properties as Record<string, Json>;
    const fw = resolve(root, (resolve(root, props.firewalls as Json).items as Json));
    const rules = resolve(root, (fw.properties as Record<string, Json>).rules as Json);
    const rule = resolve(root, (resolve(root, rules.additionalProperties as Json).items as Json));
    expect(Object.keys(rule.properties as Json).sort()).toEqual(Object.keys(RuleSpec.shape).sort());
    expect(rule.additionalProperties).toBe(false);
    const throttle = resolve(root, props.throttle as Json);
    const limit = resolve(root, (resolve(root, (throttle.properties as Record<string, Json>).limits as Json).items as Json));
    expect(Object.keys(limit.properties as Json).sort()).toEqual(Object.keys(LimitSchema.shape).sort());
    const bl = resolve(root, (resolve(root, props.blocklists as Json).items as Json));
    const want = [...Object.keys(XdpBlocklistOptionsSchema.shape).filter((k) => k !== 'netns'), 'entries'].sort();
    expect(Object.keys(bl.properties as Json).sort()).toEqual(want);
    expect(Object.keys(props).sort()).toEqual(Object.keys(DeclarationSchema.shape).sort());
  });

  it('the example file examples/netfence.yaml is valid', () => {
    const r = parseDeclaration(readFileSync(example, 'utf8'), example);
    expect(r.err ? r.val.message : 'ok').toBe('ok');
    expect(r.ok && r.val.owner).toBe('example-web');
  });
});
