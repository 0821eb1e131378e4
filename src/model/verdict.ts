import { z } from 'zod';

/** A check's finding, written into the block before anchoring (DESIGN.md "Interfaces"). */
export const verdictSchema = z.looseObject({
  type: z.enum(['duplicate', 'unauthorised', 'anomaly', 'unanchored-change', 'info']),
  code: z.string().min(1).max(64).optional(),
  reason: z.string().max(1024).optional(),
});
export type Verdict = z.infer<typeof verdictSchema>;
