import { describe, expect, it } from 'vitest';
import { IfName, NftName, parsePrefix, validate } from '../../src/validate.js';

describe('validate', () => {
  it('refuses hostile names', () => {
    for (const bad of ['a"b', 'a\nb', 'a;b', '$(reboot)', '`id`', 'a\0b', '', 'ä', 'x'.repeat(65)]) {
      expect(NftName.safeParse(bad).success, bad).toBe(false);
    }
    expect(NftName.safeParse('netfence_web-1.v4').success).toBe(true);
  });
  it('limits interface names to IFNAMSIZ', () => {
    expect(IfName.safeParse('eth0').success).toBe(true);
    expect(IfName.safeParse('x'.repeat(16)).success).toBe(false);
    expect(IfName.safeParse('a/b').success).toBe(false);
  });
  it('parses prefixes', () => {
    expect(parsePrefix('198.18.0.0/15')).toEqual({ family: 4, address: '198.18.0.0', len: 15, explicit: true });
    expect(parsePrefix('fd00::1')).toEqual({ family: 6, address: 'fd00::1', len: 128, explicit: false });
    expect(parsePrefix('1.2.3.4/33')).toBeUndefined();
    expect(parsePrefix('1.2.3/8')).toBeUndefined();
  });
  it('returns a ValidationError naming the field', () => {
    const r = validate('table', NftName, 'bad name');
    expect(r.err).toBe(true);
    if (r.err) expect(r.val.issues[0]?.path).toBe('');
  });
});
