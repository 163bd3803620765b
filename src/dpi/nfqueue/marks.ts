/**
 * The packet/conntrack mark bits through which queue readers and steering
 * rules agree on what a flow was judged.
 * @module
 */
import { z } from 'zod';

/** Packet marks that tell the steering rules what a flow was judged (see src/dpi/steering.ts). */
export interface FlowMarks {
  /** Bits of the packet/conntrack mark that netfence owns. */
  mask: number;
  /** Value (within mask) of a flow judged benign: it bypasses the queue from then on. */
  benign: number;
  /** Value (within mask) of a flow judged bad: it is dropped in full from then on. */
  bad: number;
}

/** Default marks: two high bits of the mark, unlikely to clash with routing marks. */
export const DEFAULT_FLOW_MARKS: FlowMarks = { mask: 0x30000000, benign: 0x10000000, bad: 0x20000000 };

const U32 = z.number().int('must be an integer').min(0, 'must be >= 0').max(0xffffffff, 'must fit in 32 bits');

/** zod schema of {@link FlowMarks}: benign and bad distinct, non-zero, inside the mask. */
export const FlowMarksSchema = z
  .object({ mask: U32, benign: U32, bad: U32 })
  .strict()
  .refine((m) => m.benign !== 0 && m.bad !== 0 && m.benign !== m.bad, 'benign and bad must be distinct and non-zero')
  .refine((m) => ((m.benign & ~m.mask) >>> 0) === 0 && ((m.bad & ~m.mask) >>> 0) === 0, 'benign and bad must lie inside mask');
