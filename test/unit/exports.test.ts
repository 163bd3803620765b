import { describe, expect, it } from 'vitest';
import * as advanced from '../../src/advanced.js';
import * as netfence from '../../src/index.js';

const names = (m: object) => Object.keys(m).filter((k) => k !== 'default' && k !== 'module.exports').sort();

/** The runtime names `netfence` exported before the split (0.1.x, 79 of its 190 names; the rest were types). */
const BEFORE = 'ApplyError CapabilityEntrySchema CapabilityReportSchema CaptureFormatError ChainSpec CommandError DEFAULT_BITTORRENT_DOMAINS DpiBlocker DpiEngine Err FastPathSpec Firewall FirewallOptions Flow FlowTable LimitSchema LinkType LockTimeoutError MapSpec NFT_FEATURES NetfenceError NftFeatureEntrySchema NotImplementedError OWNER_MARK Ok OwnershipError PER_PROCESS_NOTE PeerCache RuleSpec SetSpec StreamPrefix Throttler ThrottlerOptionsSchema UnsupportedError ValidationError VmFirewallRule XdpBlocklist XdpBlocklistOptionsSchema apply bittorrentClassifier capabilityRows check checkCapability classifyPcap classifyPcapSync clearCapabilityCache compileSteering configureHost configureLocks decodeFrame destroy detectCapabilities dpiHandlerPath emptyPlan explain flowKeyOf formatAddress fromZodIssues isOwned lockSettings nfqueue nft nftApply nftList nftProgram ownedTable ownerMarkCommand ownerMarkName ownerOf ownershipCommands planBatch probeOwnership pruneLockFiles readCapture reconcile run setDefaultNftRenderer steeringNames validate'.split(' ');

describe('netfence exports the public surface, netfence/advanced the low-level pieces', () => {
  const pub = names(netfence);
  const adv = names(advanced);

  it('keeps the internals out of netfence', () => {
    for (const internal of ['run', 'apply', 'check', 'destroy', 'planBatch', 'emptyPlan', 'nftApply', 'nftList', 'setDefaultNftRenderer', 'ownedTable', 'ownershipCommands', 'ownerMarkCommand', 'probeOwnership', 'isOwned', 'ownerOf', 'OWNER_MARK', 'configureLocks', 'lockSettings', 'pruneLockFiles', 'nft', 'nfqueue', 'compileSteering', 'DpiEngine', 'FlowTable', 'decodeFrame', 'readCapture', 'fromZodIssues']) {
      expect(pub, internal).not.toContain(internal);
      expect(adv, internal).toContain(internal);
    }
  });

  it('keeps the classes, errors, Result, capabilities and reconcile in netfence', () => {
    for (const name of ['Firewall', 'Throttler', 'XdpBlocklist', 'DpiBlocker', 'NetfenceError', 'ValidationError', 'CommandError', 'UnsupportedError', 'ApplyError', 'OwnershipError', 'LockTimeoutError', 'CaptureFormatError', 'Ok', 'Err', 'detectCapabilities', 'explain', 'checkCapability', 'reconcile', 'configureHost', 'classifyPcap', 'bittorrentClassifier', 'LimitSchema', 'XdpBlocklistOptionsSchema', 'validate', 'readStatus', 'confirmApplied', 'pendingConfirms']) {
      expect(pub, name).toContain(name);
    }
  });

  it('exports the metrics surface from netfence, its parts from netfence/advanced', () => {
    for (const name of ['toPrometheusText', 'PROMETHEUS_CONTENT_TYPE', 'METRIC_DEFINITIONS', 'metricsOf', 'collectMetrics', 'netnsMetrics', 'netnsMetricsSource', 'registerPromClient']) expect(pub, name).toContain(name);
    for (const name of ['mergeFamilies', 'statusFamilies', 'parsePrometheusText', 'PrometheusTextError']) expect(adv, name).toContain(name);
  });

  it('exports declarative files from netfence, plan merging from netfence/advanced', () => {
    for (const name of ['parseDeclaration', 'loadDeclaration', 'planDeclaration', 'applyDeclaration', 'destroyDeclaration', 'DeclarationSchema', 'declarationJsonSchema']) expect(pub, name).toContain(name);
    expect(adv).toContain('mergePlans');
  });

  it('loses no name: each one exported before is in exactly one of the two', () => {
    for (const name of BEFORE) expect([pub.includes(name), adv.includes(name)], name).toContain(true);
    expect(pub.filter((n) => adv.includes(n))).toEqual([]);
    // the same objects, not copies: the advanced layer's errors are netfence's
    expect(advanced.emptyPlan('o:x').owner).toBe('o:x');
    expect(netfence.Throttler).toBeTypeOf('function');
  });

  it('counts (runtime names; types are not visible here)', () => {
    expect(BEFORE).toHaveLength(79);
    expect(pub.length).toBeLessThan(BEFORE.length);
    expect(pub.length + adv.length).toBeGreaterThanOrEqual(BEFORE.length);
  });
});
