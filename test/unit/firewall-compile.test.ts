import { describe, expect, it } from 'vitest';
import { Firewall } from '../../src/firewall/firewall.js';
import { parseVm, vmAttachCommands, vmBaseCommands, vmLayoutIssue, type FirewallRule, type VmBackends } from '../../src/firewall/vm.js';
import { parseDocument } from '../../src/nft/index.js';

const B: VmBackends = { reject: 'native', stateful: 'native', rejectMark: 0x400000, establishedMark: 0x800000 };
const BNF: VmBackends = { ...B, reject: 'br_netfilter', stateful: 'br_netfilter' };

function strictOk(cmds: unknown[]): string {
  const r = parseDocument({ nftables: cmds }, { mode: 'emit' });
  return r.ok ? 'ok' : r.val.message;
}

function full(): Firewall {
  return new Firewall({ table: 'web', family: 'inet' })
    .set('blocked', { type: 'ipv4_addr', interval: true, counter: true, elements: ['198.18.9.0/24', '198.18.10.1', '198.18.11.1-198.18.11.9'] })
    .set('svc', { type: ['ipv4_addr', 'inet_service'], timeout: 60, elements: [['198.18.1.1', 22], { value: ['198.18.1.2', 80], timeout: 30 }] })
    .set('macs', { type: 'ether_addr', elements: ['02:00:00:00:00:01'] })
    .chain('input', { hook: 'input', priority: 0, policy: 'drop' })
    .chain('tcp_in')
    .chain('nat_pre', { type: 'nat', hook: 'prerouting', priority: -100 })
    .map('dispatch', { type: 'inet_service', map: 'verdict', elements: [[22, { jump: 'tcp_in' }], [23, 'drop']] })
    .rule('input', { id: 'est', ctState: ['established', 'related'], action: 'accept' })
    .rule('input', { id: 'blocked', saddr: '@blocked', action: 'drop', log: { prefix: 'blocked ', level: 'info' } })
    .rule('input', { id: 'svc6', saddr: ['fd00::/8', 'fd01::1'], protocol: ['tcp', 'udp'], dport: [53, { from: 8000, to: 8100 }], action: 'accept' })
    .rule('input', { id: 'ping', protocol: 'icmp', icmpType: ['echo-request'], limit: { rate: 10, per: 'second' }, action: 'accept' })
    .rule('input', { id: 'ping6', protocol: 'icmpv6', icmpv6Type: ['echo-request', 'nd-neighbor-solicit'], action: 'accept' })
    .rule('input', { id: 'ssh', nfproto: 'ipv4', protocol: 'tcp', dport: 22, ctState: ['new'], meter: { name: 'ssh_meter', key: 'saddr', timeout: 60, limit: { rate: 3, per: 'minute', over: true } }, action: 'drop' })
    .rule('input', { id: 'conns', protocol: 'tcp', dport: 80, ctCountOver: 20, action: { type: 'reject', with: 'tcp-reset' } })
    .rule('input', { id: 'quota', iifname: 'eth*', quota: { bytes: 1_000_000, over: true }, action: 'drop' })
    .rule('input', { id: 'mark', mark: { value: 1, mask: 0xff }, setCtMark: 7, setMark: 9 })
    .rule('input', { id: 'disp', protocol: 'tcp', action: { type: 'vmap', key: 'dport', map: '@dispatch' } })
    .rule('input', { id: 'macs', etherSaddr: '@macs', action: 'accept' })
    .rule('input', { id: 'meta', meta: [{ key: 'pkttype', value: 'broadcast' }], action: 'drop' })
    .rule('tcp_in', { id: 'ssh-ok', protocol: 'tcp', dport: 22, action: 'accept' })
    .rule('input', { id: 'rej', action: { type: 'reject', code: 'admin-prohibited' } })
    .rule('nat_pre', { id: 'lb', daddr: '198.18.0.1', protocol: 'tcp', dport: 80, action: { type: 'dnat', to: ['198.18.1.1', '198.18.1.2'], port: 8080 } })
    .rule('nat_pre', { id: 'redir', protocol: 'tcp', dport: 3000, action: { type: 'redirect', port: 3128 } });
}

describe('Firewall.compile', () => {
  it('is pure, deterministic and emits JSON that the strict nft schema accepts', () => {
    const a = full().compile();
    const b = full().compile();
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(JSON.stringify(a.val)).toBe(JSON.stringify(b.val));
    expect(a.val.tables).toEqual([{ family: 'inet', name: 'web' }]);
    expect(a.val.owner).toBe('firewall:web');
    // atomic replacement: add, delete, add the table first
    expect(a.val.nft.slice(0, 3)).toEqual([{ add: { table: { family: 'inet', name: 'web' } } }, { delete: { table: { family: 'inet', name: 'web' } } }, { add: { table: { family: 'inet', name: 'web' } } }]);
    expect(strictOk(a.val.nft)).toBe('ok');
  });

  it('carries each rule id in the comment and compiles matches to the right protocol', () => {
    const p = full().compile();
    if (!p.ok) throw p.val;
    const rules = p.val.nft.filter((c) => 'add' in (c as object) && 'rule' in (c as { add: object }).add).map((c) => (c as { add: { rule: { comment: string; expr: unknown[] } } }).add.rule);
    const byId = Object.fromEntries(rules.map((r) => [r.comment.slice(3), JSON.stringify(r.expr)]));
    expect(Object.keys(byId)).toContain('ssh');
    expect(byId.svc6).toContain('"protocol":"ip6","field":"saddr"');
    expect(byId.svc6).toContain('"protocol":"th","field":"dport"');
    expect(byId.svc6).toContain('{"range":[8000,8100]}');
    expect(byId.ping6).toContain('ipv6-icmp');
    expect(byId.ssh).toContain('"meter"');
    expect(byId.conns).toContain('"ct count":{"val":20,"inv":true}');
    expect(byId.lb).toContain('"numgen":{"mode":"inc","mod":2');
    expect(byId.blocked).toContain('"@blocked"');
  });

  it('refuses invalid rules naming the rule id and the field', () => {
    const fw = new Firewall({ table: 't', family: 'inet' })
      .chain('input', { hook: 'input' })
      .rule('input', { id: 'a', protocol: 'icmp', saddr: 'fd00::1', action: 'accept' })
      .rule('input', { id: 'b', dport: 22, action: 'accept' })
      .rule('input', { id: 'c', protocol: 'icmp', dport: 22 })
      .rule('input', { id: 'd', saddr: '198.18.0.0/33' })
      .rule('input', { id: 'e', saddr: '198.18.0.1', daddr: 'fd00::1' })
      .rule('input', { id: 'f', protocol: 'tcp', dport: { from: 90, to: 80 } })
      .rule('input', { id: 'g', action: { type: 'jump', chain: 'nope' } })
      .rule('input', { id: 'h', saddr: '@nope' })
      .rule('input', { id: 'i', action: 'allow' as 'accept' })
      .rule('input', { id: 'a', action: 'accept' })
      .rule('nochain', { id: 'j', action: 'accept' })
      .rule('input', { id: 'k', protocol: 'udp', action: { type: 'reject', with: 'tcp-reset' } })
      .rule('input', { id: 'l', comment: 'bad"quote' });
    const r = fw.compile();
    expect(r.err).toBe(true);
    const paths = r.err ? r.val.issues.map((i) => i.path) : [];
    for (const p of ['rule a.protocol', 'rule b.dport', 'rule c.dport', 'rule d.saddr', 'rule e.daddr', 'rule f.dport', 'rule g.action.chain', 'rule h.saddr', 'rule i.action', 'rule a.id', 'rule j.chain', 'rule k.action.with', 'rule l.comment']) {
      expect(paths.some((x) => x.startsWith(p)), `${p} in ${paths.join(', ')}`).toBe(true);
    }
  });

  it('refuses bad set elements naming the set and index', () => {
    const r = new Firewall({ table: 't' }).set('s', { type: 'ipv4_addr', elements: ['198.18.0.0/24', 'fd00::1', 'x'] }).compile();
    expect(r.err && r.val.issues.map((i) => i.path)).toEqual(['set s.elements.0', 'set s.elements.1', 'set s.elements.2']);
  });

  it('NAT is refused in bridge tables; ct state warns in bridge tables', () => {
    const r = new Firewall({ table: 't', family: 'bridge' }).chain('f', { hook: 'forward' }).rule('f', { id: 'n', protocol: 'tcp', action: { type: 'dnat', to: '198.18.0.1' } }).compile();
    expect(r.err && r.val.message).toContain('rule n.action');
  });
});

const rule = (r: Partial<FirewallRule> & Pick<FirewallRule, 'id' | 'action' | 'direction' | 'protocol'>): FirewallRule => ({ name: r.id, priority: 100, ...r });

describe('VM firewall compilation', () => {
  const vm = (rules: FirewallRule[], extra: object = {}) => {
    const p = parseVm({ vmId: 'vm1', iface: 'tap1', rules, ...extra });
    if (!p.ok) throw new Error(JSON.stringify(p.issues));
    return p.vm;
  };
  const ruleExprs = (cmds: unknown[], idPart: string) =>
    cmds
      .map((c) => (c as { add?: { rule?: { comment?: string; expr: unknown[] } } }).add?.rule)
      .filter((r) => r?.comment?.includes(idPart))
      .map((r) => JSON.stringify(r?.expr));

  it('ICMP follows the address family; protocol all with IPv6 matches ip6', () => {
    const cmds = vmAttachCommands('t', vm([
      rule({ id: 'i6', action: 'DROP', direction: 'IN', protocol: 'icmp', srcIpAddr: 'fd00::/8' }),
      rule({ id: 'i4', action: 'DROP', direction: 'IN', protocol: 'icmp', srcIpAddr: '198.18.0.0/15' }),
      rule({ id: 'iany', action: 'DROP', direction: 'IN', protocol: 'icmp' }),
      rule({ id: 'all6', action: 'DROP', direction: 'IN', protocol: 'all', dstIpAddr: 'fd00::1' }),
    ]), B);
    expect(ruleExprs(cmds, ':i6:')[0]).toContain('"right":"ipv6-icmp"');
    expect(ruleExprs(cmds, ':i6:')[0]).toContain('"protocol":"ip6","field":"saddr"');
    expect(ruleExprs(cmds, ':i4:')[0]).toContain('"right":"icmp"');
    expect(ruleExprs(cmds, ':iany:')[0]).toContain('{"set":["icmp","ipv6-icmp"]}');
    expect(ruleExprs(cmds, ':all6:')[0]).toContain('"right":"ip6"');
    expect(ruleExprs(cmds, ':all6:')[0]).toContain('"protocol":"ip6","field":"daddr"');
  });

  it('orders by priority (stable), splits INOUT, and puts the policy last', () => {
    const cmds = vmAttachCommands('t', vm([
      rule({ id: 'late', action: 'ACCEPT', direction: 'INOUT', protocol: 'tcp', priority: 50 }),
      rule({ id: 'early', action: 'DROP', direction: 'IN', protocol: 'udp', priority: 1 }),
      rule({ id: 'mid', action: 'REJECT', direction: 'IN', protocol: 'all', priority: 10 }),
    ], { defaultPolicy: 'DROP', mac: '02:00:00:00:00:01' }), B);
    const comments = (chain: string) => cmds.map((c) => (c as { add?: { rule?: { chain: string; comment: string } } }).add?.rule).filter((r) => r?.chain === chain).map((r) => r?.comment);
    // Native bridge reject: the prerouting copy answers (TCP reset + ICMP), the forward/output copy drops.
    const inOrder = comments('vm_vm1_inp');
    expect(inOrder.filter((c) => c && !c.includes(':_'))).toEqual(['nf:vm:vm1:early:in', 'nf:vm:vm1:mid:in:tcp', 'nf:vm:vm1:mid:in', 'nf:vm:vm1:late:in']);
    expect(inOrder.at(-1)).toBe('nf:vm:vm1:_policy:in');
    expect(comments('vm_vm1_in').filter((c) => c && !c.includes(':_'))).toEqual(['nf:vm:vm1:early:in', 'nf:vm:vm1:mid:in', 'nf:vm:vm1:late:in']);
    expect(ruleExprs(cmds.filter((c) => JSON.stringify(c).includes('"vm_vm1_in"')), ':mid:in')[0]).toContain('"drop":null');
    expect(JSON.stringify(cmds)).toContain('"name":"vm_in_mac"');
    expect(strictOk([...vmBaseCommands('t', B), ...cmds])).toBe('ok');
    const out = cmds.map((c) => (c as { add?: { rule?: { chain: string; comment: string; expr: unknown[] } } }).add?.rule).filter((r) => r?.chain === 'vm_vm1_out');
    // ACCEPT leaves the OUT chain with return, so the destination VM's IN chain still runs
    expect(JSON.stringify(out.find((r) => r?.comment === 'nf:vm:vm1:late:out')?.expr)).toContain('"return":null');
  });

  it('native bridge reject judges in prerouting, and needs the MAC for REJECT towards the VM', () => {
    const base = JSON.stringify(vmBaseCommands('t', B));
    expect(base).toContain('"hook":"prerouting"');
    expect(base).not.toContain('"name":"vm_input"');
    const rej = [rule({ id: 'r', action: 'REJECT', direction: 'IN', protocol: 'tcp' })];
    expect(vmLayoutIssue(vm(rej), B)?.path).toBe('vm vm1.mac');
    expect(vmLayoutIssue(vm(rej, { mac: '02:00:00:00:00:01' }), B)).toBeUndefined();
    expect(vmLayoutIssue(vm(rej), BNF)).toBeUndefined();
    expect(JSON.stringify(vmBaseCommands('t', BNF))).not.toContain('"name":"vm_prerouting"');
  });

  it('updateVm is one batch: flush of the VM chains and the new rules, nothing of other VMs', () => {
    const cmds = vmAttachCommands('t', vm([rule({ id: 'a', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: 22 })]), B);
    const text = JSON.stringify(cmds);
    expect(cmds.filter((c) => 'flush' in (c as object)).length).toBe(2);
    expect(text).not.toContain('vm2');
    expect(strictOk([...vmBaseCommands('t', BNF), ...cmds])).toBe('ok');
  });

  it('anti-spoofing keeps ARP probes, DHCP, link-local and :: allowed', () => {
    const cmds = vmAttachCommands('t', vm([], { mac: '02:00:00:00:00:01', ips: ['198.18.5.1', 'fd00:5::1'] }), B);
    const spoof = JSON.stringify(cmds.filter((c) => JSON.stringify(c).includes('_spoof')));
    expect(spoof).toContain('fe80::');
    expect(spoof).toContain('0.0.0.0');
    expect(spoof).toContain('"saddr ether"');
    expect(JSON.stringify(cmds)).toContain('_dhcp');
  });

  it('names the rule id and field of invalid rules', () => {
    const p = parseVm({
      vmId: 'v', iface: 'tap1', rules: [
        rule({ id: 'r1', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstPortStart: 90, dstPortEnd: 80 }),
        rule({ id: 'r2', action: 'ACCEPT', direction: 'IN', protocol: 'icmp', srcPortStart: 1 }),
        rule({ id: 'r3', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', dstIpAddr: 'not-an-ip' }),
        { ...rule({ id: 'r4', action: 'ACCEPT', direction: 'IN', protocol: 'tcp' }), action: 'PASS' },
        rule({ id: 'r5', action: 'ACCEPT', direction: 'IN', protocol: 'tcp', srcIpAddr: '198.18.0.1', dstIpAddr: 'fd00::1' }),
        rule({ id: 'r6', action: 'ACCEPT', direction: 'IN', protocol: 'udp', dstPortEnd: 5 }),
      ],
    });
    expect(p.ok).toBe(false);
    const paths = p.ok ? [] : p.issues.map((i) => i.path);
    expect(paths).toEqual(['vm v.rule r1.dstPortStart', 'vm v.rule r2.srcPortStart', 'vm v.rule r3.dstIpAddr', 'vm v.rule r4.action', 'vm v.rule r5.dstIpAddr', 'vm v.rule r6.dstPortEnd']);
    expect(p.ok ? '' : p.issues[3]?.message).toContain('unknown action "PASS"');
  });
});
