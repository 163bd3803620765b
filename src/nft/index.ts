/**
 * Typed libnftables JSON: zod schemas (strict for what netfence emits,
 * tolerant for what nft lists), parse helpers returning `Result`, a renderer
 * to readable nft text, and small typed constructors.
 *
 * ```ts
 * import { nft } from 'netfence/advanced';
 * const t = { family: 'inet', table: 'demo' } as const;
 * const doc = nft.document([
 *   nft.cmd.add(nft.table('inet', 'demo')),
 *   nft.cmd.add(nft.chain(t, 'input', { type: 'filter', hook: 'input', prio: 0, policy: 'drop' })),
 *   nft.cmd.add(nft.rule(t, 'input', [nft.match(nft.payload('tcp', 'dport'), '==', 22), nft.accept()])),
 * ]);
 * nft.parseDocument(doc, { mode: 'emit' }); // Ok(doc)
 * nft.renderDocument(doc);                  // "add table inet demo\n..."
 * ```
 * @module
 */
export * from './schema/index.js';
export * from './parse.js';
export * from './render.js';
export * from './build.js';

import { setDefaultNftRenderer } from '../host/nft.js';
import { renderCommand } from './render.js';
// Failed nft batches name their failing command in readable nft text.
setDefaultNftRenderer(renderCommand);
