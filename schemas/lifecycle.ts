import { z } from "zod";
import { TaskScope } from "./action.js";

/**
 * What ends a task's access, beyond drift (DESIGN.md, Credential lifecycle). The detector
 * sees these happen and puts a `TaskEvent` on `agent.lifecycle`; the revoker acts on each as
 * the agent's profile says (`lifecycle:`): revoke, notify or ignore.
 *
 * - `task_completed`: the task's root span ended (its final span arrived);
 * - `task_idle`: no span of the task for the idle timeout (`DRIFTWATCH_TASK_IDLE_MS`);
 * - `scope_changed`: the task's scope or objective changed while it ran (the scope registry
 *   registered another scope, or a span declared another scope or objective);
 * - `environment_changed`: a step ran in another environment or trust zone than the task began in;
 * - `telemetry_silence`: the agent's telemetry stopped mid-task (the profile's `telemetry.silenceMs`);
 * - `telemetry_resumed`: a task whose credentials were suspended for its silence reported again;
 * - `credential_reuse`: a credential bound to one task was used on a step of another.
 */
export const LifecycleTrigger = z.enum([
  "task_completed",
  "task_idle",
  "scope_changed",
  "environment_changed",
  "telemetry_silence",
  "telemetry_resumed",
  "credential_reuse",
]);
export type LifecycleTrigger = z.infer<typeof LifecycleTrigger>;

/** One lifecycle event of a task. On `agent.lifecycle`, keyed by task id; its id is the same however often it is produced. */
export const TaskEvent = z.object({
  id: z.string().min(1),
  taskId: z.string().min(1),
  agentId: z.string().optional(),
  spiffeId: z.string().optional(),
  /** The agent profile whose `lifecycle:` settings decided to revoke (none: the defaults). */
  profileId: z.string().optional(),
  trigger: LifecycleTrigger,
  /** When it happened: the final span's arrival, the idle deadline, the step that changed the context, the silence found. */
  atMs: z.number(),
  /** `telemetry_silence`: suspend the credentials (until the task reports again) rather than revoke them. */
  suspend: z.boolean().optional(),
  /** Not before this time (the profile's grace period after the task ended); now when absent. */
  dueAtMs: z.number().optional(),
  /** The step it was seen on, when one (its span's end). */
  traceId: z.string().optional(),
  spanId: z.string().optional(),
  spanEndMs: z.number().optional(),
  /** `credential_reuse`: the credential, and the task it is bound to. */
  credentialId: z.string().min(1).optional(),
  ownerTaskId: z.string().min(1).optional(),
  /** The finding that reports it to the SOC, when there is one. */
  findingId: z.string().optional(),
  /** What it was before and what it is now (scope, objective, environment). */
  from: z.unknown().optional(),
  to: z.unknown().optional(),
  detail: z.string().min(1),
  detectedAtMs: z.number(),
});
export type TaskEvent = z.infer<typeof TaskEvent>;

/** What a credential bound to a task is, as the scope registry was told or a span reported it. */
export const CredentialBinding = z
  .object({
    /** The credential reference (schemas: see services/revoker/credential-stores/credential-ref.ts), e.g. `vault:lease:<id>`. */
    credentialId: z.string().min(1).max(1024),
    taskId: z.string().min(1),
    agentId: z.string().optional(),
    /** `registry`: the platform registered it with the task; `span`: an `agent.credential.id` reported it first. */
    source: z.enum(["registry", "span"]),
    /** The credential store and kind as registered (`vault`/`lease`, `webhook`/`api-key`, …). */
    store: z.string().optional(),
    kind: z.string().optional(),
    expiresAtMs: z.number().optional(),
    boundAtMs: z.number(),
  })
  .strict();
export type CredentialBinding = z.infer<typeof CredentialBinding>;

/** A time as epoch ms, or as an ISO 8601 time with its offset (read as epoch ms). */
const Instant = z.union([
  z.number().int().nonnegative().max(8_640_000_000_000_000),
  z.iso.datetime({ offset: true }).transform((v) => Date.parse(v)),
]);

/**
 * A credential as the scope registry is told it (`PUT /api/v1/tasks/:id/scope` and
 * `PUT /api/v1/tasks/:id/credentials`): its reference as a span would carry it
 * (`agent.credential.id`), or the store's own id with the store and kind. With `store`
 * `vault` or `caep` and an `id` without that scheme, the reference is `<store>:<kind>:<id>`
 * (Vault kinds `lease`, `prefix`, `accessor`; CAEP `session` or `credential:<type>`, or no
 * kind for every session of the subject `id`); otherwise it is `id` as given.
 */
export const CredentialRegistration = z
  .object({
    id: z.string().min(1).max(1024),
    store: z.enum(["vault", "caep", "webhook"]).optional(),
    /** printable, no whitespace (a Vault kind, a CAEP kind, or a label such as `api-key`) */
    kind: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x21-\x7e]+$/, "printable characters without whitespace")
      .optional(),
    /** When the credential expires by itself: epoch ms or ISO 8601. */
    expiresAt: Instant.optional(),
  })
  .strict();
export type CredentialRegistration = z.infer<typeof CredentialRegistration>;

/** At most this many credentials per registration request. */
export const MAX_REGISTERED_CREDENTIALS = 100;

/** `PUT /api/v1/tasks/:id/credentials`: credentials registered with a task, alone. */
export const CredentialsRegistration = z
  .object({ credentials: z.array(CredentialRegistration).min(1).max(MAX_REGISTERED_CREDENTIALS) })
  .strict();
export type CredentialsRegistration = z.infer<typeof CredentialsRegistration>;

/** `PUT /api/v1/tasks/:id/scope`: a task's scope, and optionally the credentials it is given. */
export const ScopeRegistration = TaskScope.extend({
  credentials: z.array(CredentialRegistration).max(MAX_REGISTERED_CREDENTIALS).optional(),
});
export type ScopeRegistration = z.infer<typeof ScopeRegistration>;
