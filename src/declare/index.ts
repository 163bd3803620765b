/**
 * Declarative files: firewalls, VM firewalls, SmartProxy routes, Throttler
 * limits and XDP blocklists declared in one YAML or JSON file with the
 * classes' own options, compared with the kernel (`planDeclaration`), applied
 * as one transaction (`applyDeclaration`) and removed (`destroyDeclaration`).
 * The `netfence plan | apply | destroy FILE` commands are these functions.
 * @module
 */
export { DeclarationSchema, DECLARATION_VERSION, declarationJsonSchema, declarationSchemaText, type Declaration, type DeclarationInput, type FirewallDecl, type VmFirewallDecl, type SmartProxyDecl, type ThrottleDecl, type BlocklistDecl } from './schema.js';
export { parseDeclaration, loadDeclaration, type LoadedDeclaration } from './load.js';
export { planDeclaration, applyDeclaration, destroyDeclaration, type DeclareOptions, type ApplyDeclarationOptions, type AppliedDeclaration, type DestroyedDeclaration, type DeclarationDiff, type ObjectDiff, type ObjectAction } from './engine.js';
export type { TableChanges, TableModel, ModelRule } from './model.js';
export type { ObjectRecord } from './objects.js';
