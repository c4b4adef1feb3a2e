import { z } from "zod";
import { ResponseAction } from "./policy.js";

/**
 * A response held for a human (a response rule's `ask_human`): approve it and the proposed
 * action is taken, reject it and the findings are only notified; past `expiresAtMs` the
 * rule's `onTimeout` action is taken. One open approval per task gathers its findings.
 */
export const ApprovalStatus = z.enum(["pending", "approved", "rejected", "expired"]);
export type ApprovalStatus = z.infer<typeof ApprovalStatus>;

export const Approval = z.object({
  id: z.string().min(1),
  taskId: z.string().min(1),
  agentId: z.string().optional(),
  /** The findings that asked, oldest first. */
  findingIds: z.array(z.string().min(1)).min(1),
  /** The response rule that asked. */
  rule: z.string().min(1),
  /** What approval does. */
  proposed: ResponseAction.exclude(["ask_human", "notify"]),
  /** What happens when no one answers in time. */
  onTimeout: ResponseAction.exclude(["ask_human"]),
  status: ApprovalStatus,
  requestedAtMs: z.number(),
  expiresAtMs: z.number(),
  decidedBy: z.string().optional(),
  decidedAtMs: z.number().optional(),
  comment: z.string().optional(),
  dryRun: z.boolean(),
});
export type Approval = z.infer<typeof Approval>;

/** A human's answer, through `POST /api/v1/approvals/:id/decision`. */
export const ApprovalDecision = z
  .object({
    decision: z.enum(["approve", "reject"]),
    /** Who decides (an analyst's name or id); recorded in the ledger. */
    by: z.string().min(1).max(200),
    comment: z.string().max(2_000).optional(),
  })
  .strict();
export type ApprovalDecision = z.infer<typeof ApprovalDecision>;
