/**
 * The rule-id comment codec. Every nft rule netfence writes carries its id in
 * its comment, so that one rule can be found (and deleted by handle) by
 * listing one chain:
 *
 * - Firewall rules: `nf:<id>` or `nf:<id> <free text>` (the id has no spaces;
 *   VM rules use the id `vm:<vmId>:<ruleId>:<in|out>`, the fast path's
 *   offload rule `<name>:offload`);
 * - rules of an owner inside a shared chain (SmartProxy routes):
 *   `nf:<owner>:<kind>`, e.g. `nf:r0123456789ab:dnat`.
 * @module
 */

/** Prefix of every rule comment carrying a rule id. */
export const RULE_COMMENT_PREFIX = 'nf:';

/** The comment carrying `id` (and optional free text after a space). */
export function ruleComment(id: string, text?: string): string {
  return text ? `${RULE_COMMENT_PREFIX}${id} ${text}` : `${RULE_COMMENT_PREFIX}${id}`;
}

/** The rule id carried by a comment (up to the first space), if any. */
export function ruleIdOf(comment: unknown): string | undefined {
  if (typeof comment !== 'string' || !comment.startsWith(RULE_COMMENT_PREFIX)) return undefined;
  return comment.slice(RULE_COMMENT_PREFIX.length).split(' ')[0] || undefined;
}

/** The comment of an owner's rule of kind `kind`: `nf:<owner>:<kind>` (`owner` has no `:`). */
export function ownedRuleComment(owner: string, kind: string): string {
  return ruleComment(`${owner}:${kind}`);
}

/** Owner and kind of a comment `nf:<owner>:<kind>` (kind: the last `:` part), if it is one. */
export function parseOwnedRuleComment(comment: unknown): { owner: string; kind: string } | undefined {
  const owner = ownerOfRuleComment(comment);
  if (owner === undefined) return undefined;
  return { owner, kind: (comment as string).slice((comment as string).lastIndexOf(':') + 1) };
}

/** The owner of a comment `nf:<owner>:<kind>` (what {@link parseOwnedRuleComment} gives as `owner`), without allocating. */
export function ownerOfRuleComment(comment: unknown): string | undefined {
  if (typeof comment !== 'string' || !comment.startsWith(RULE_COMMENT_PREFIX)) return undefined;
  const end = comment.indexOf(':', RULE_COMMENT_PREFIX.length);
  return end > RULE_COMMENT_PREFIX.length ? comment.slice(RULE_COMMENT_PREFIX.length, end) : undefined;
}

/** The start of every comment of `owner`'s rules: `nf:<owner>:`. */
export function ownedRuleCommentPrefix(owner: string): string {
  return `${RULE_COMMENT_PREFIX}${owner}:`;
}

/** Whether `comment` is one of `owner`'s rules (`nf:<owner>:...`). */
export function isOwnedRuleComment(comment: unknown, owner: string): boolean {
  return typeof comment === 'string' && comment.startsWith(ownedRuleCommentPrefix(owner));
}
