import { z } from "zod";

/**
 * Console API identities (services/console/auth.ts): three roles, each including the one
 * below it (`viewer` reads; `responder` also decides approvals and lifts quarantines; `admin`
 * also registers task scopes and credentials), and the static tokens small setups use.
 */
export const Role = z.enum(["viewer", "responder", "admin"]);
export type Role = z.infer<typeof Role>;

/** A static token and who holds it. */
export const StaticToken = z
  .object({
    name: z.string().min(1).max(200),
    role: Role,
    token: z.string().min(16, "at least 16 characters"),
  })
  .strict();
export type StaticToken = z.infer<typeof StaticToken>;

/** The tokens file (`DRIFTWATCH_API_TOKENS_FILE`, YAML or JSON): a list of `{name, role, token}`, names and tokens unique. */
export const TokensFile = z
  .array(StaticToken)
  .min(1)
  .refine((l) => new Set(l.map((t) => t.name)).size === l.length, "token names must be unique")
  .refine((l) => new Set(l.map((t) => t.token)).size === l.length, "tokens must be unique");
