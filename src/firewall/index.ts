/**
 * Firewall: nftables firewalls, NAT and per-VM bridge firewalls.
 * @module
 */
export { Firewall, type FirewallStatus, type VmOptions, type ChainInput, type FirewallInit, type MapInput, type RuleInput, type SetInput, type VmSpec, type VmBackends, type FirewallCompileOptions, type FastPathInput, type FlowtableCapabilitySource } from './firewall.js';
export { type FirewallRule, VmFirewallRule, parseVm } from './vm.js';
export { RuleSpec, ChainSpec, SetSpec, MapSpec, FirewallOptions, FastPathSpec } from './spec.js';
