/**
 * zod schemas of the libnftables JSON format, in two modes: `strict` (what
 * netfence emits) and `tolerant` (what any nft 1.0.x–1.1.x lists).
 * @module
 */
import type { z } from 'zod';
import type { SchemaMode } from './common.js';
import { makeExpressionSchemas, type Expression, type SetItem, type Immediate } from './expressions.js';
import { makeStatementSchemas, type Statement } from './statements.js';
import { makeObjectSchemas, type ObjectSchemas, type SetType } from './objects.js';
import { makeCommandSchemas, type Command, type Document, type DocumentItem, type RulesetObject } from './commands.js';

export * from './common.js';
export * from './expressions.js';
export * from './statements.js';
export * from './objects.js';
export * from './commands.js';

/** Every schema of one mode. */
export interface NftSchemas extends ObjectSchemas {
  /** The mode these schemas were built for. */
  mode: SchemaMode;
  /** Any expression. */
  Expression: z.ZodType<Expression>;
  /** Set elements (`elem` of sets and element commands, anonymous sets). */
  SetItems: z.ZodType<SetItem[] | Immediate>;
  /** Set key/data types. */
  SetType: z.ZodType<SetType>;
  /** Any statement. */
  Statement: z.ZodType<Statement>;
  /** A rule's statement list (`expr`). */
  Statements: z.ZodType<Statement[]>;
  /** Any command. */
  Command: z.ZodType<Command>;
  /** A bare ruleset object. */
  RulesetObject: z.ZodType<RulesetObject>;
  /** One item of a document. */
  DocumentItem: z.ZodType<DocumentItem>;
  /** A whole `{"nftables": [...]}` document. */
  Document: z.ZodType<Document>;
}

function build(mode: SchemaMode): NftSchemas {
  const ex = makeExpressionSchemas(mode);
  const st = makeStatementSchemas(mode, ex);
  const objects = makeObjectSchemas(mode, ex, st);
  const cmd = makeCommandSchemas(mode, objects);
  return { mode, ...ex, ...st, ...objects, ...cmd };
}

/** Schemas for what netfence emits: unknown keys and kinds refused, vocabularies checked. */
export const strict: NftSchemas = build('strict');
/** Schemas for reading listings: unknown keys kept, unknown kinds become opaque nodes. */
export const tolerant: NftSchemas = build('tolerant');

/** The schemas of a mode. */
export function schemas(mode: SchemaMode): NftSchemas {
  return mode === 'strict' ? strict : tolerant;
}
