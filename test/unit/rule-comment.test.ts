import { describe, expect, it } from 'vitest';
import { isOwnedRuleComment, ownedRuleComment, parseOwnedRuleComment, ruleComment, ruleIdOf } from '../../src/util/rule-comment.js';

describe('rule-id comments', () => {
  it('encodes and decodes rule ids with optional text', () => {
    expect(ruleComment('web')).toBe('nf:web');
    expect(ruleComment('web', 'allow http')).toBe('nf:web allow http');
    expect(ruleIdOf('nf:web allow http')).toBe('web');
    expect(ruleIdOf(ruleComment('vm:v1:ssh:in'))).toBe('vm:v1:ssh:in');
    expect(ruleIdOf('nf:')).toBeUndefined();
    expect(ruleIdOf('nf: text')).toBeUndefined();
    expect(ruleIdOf('other')).toBeUndefined();
    expect(ruleIdOf(undefined)).toBeUndefined();
    expect(ruleIdOf(7)).toBeUndefined();
  });

  it('encodes and decodes owned rules', () => {
    const c = ownedRuleComment('r0123456789ab', 'dnat');
    expect(c).toBe('nf:r0123456789ab:dnat');
    expect(ruleIdOf(c)).toBe('r0123456789ab:dnat');
    expect(parseOwnedRuleComment(c)).toEqual({ owner: 'r0123456789ab', kind: 'dnat' });
    expect(isOwnedRuleComment(c, 'r0123456789ab')).toBe(true);
    expect(isOwnedRuleComment(c, 'r0123456789a')).toBe(false);
    expect(isOwnedRuleComment(undefined, 'r0123456789ab')).toBe(false);
    expect(parseOwnedRuleComment('nf:web')).toBeUndefined();
    expect(parseOwnedRuleComment('x:r1:dnat')).toBeUndefined();
    expect(parseOwnedRuleComment(undefined)).toBeUndefined();
  });
});
