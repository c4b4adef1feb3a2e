/** The parts of the API's answers the pages show (services/console/api.ts). */
export interface TaskSummary {
  taskId: string;
  status: string;
  agentId?: string;
  agents: string[];
  tools: string[];
  dataClassifications: string[];
  environments: string[];
  destinations: string[];
  credentials: string[];
  children: string[];
  parentTaskId?: string;
  intent?: string;
  steps: number;
  findings?: number;
  firstSeenMs: number;
  lastSeenMs: number;
  startMs: number;
  endMs: number;
  durationMs: number;
  completedAtMs?: number;
  revokedAtMs?: number;
  lineage?: Hop[];
}

export interface Hop {
  taskId: string;
  agentId?: string;
}

export interface TreeNode {
  taskId: string;
  agentId?: string;
  status?: string;
  steps?: number;
  children: TreeNode[];
}

export interface Step {
  id: string;
  index: number;
  name: string;
  operation?: string;
  agent: { id?: string; name?: string; spiffeId?: string };
  tool?: { name: string };
  dataClassification?: string;
  environment?: string;
  destination?: { address?: string; url?: string };
  credentialId?: string;
  status: string;
  startTimeMs: number;
  endTimeMs: number;
  parentTaskId?: string;
  findings: string[];
}

export interface Finding {
  id: string;
  taskId: string;
  stepIndex: number;
  ruleId: string;
  kind: string;
  severity: string;
  mode: string;
  explanation: string;
  evidence: { observed: unknown; expected: unknown };
  detectedAtMs: number;
  traceId: string;
  spanId: string;
}

export interface Revocation {
  id: string;
  taskId: string;
  credentialId: string;
  credentialStore: string;
  status: string;
  trigger?: string;
  decidedBy?: string;
  findingId?: string;
  detail?: string;
  attempts: number;
  requestedAtMs?: number;
  completedAtMs?: number;
}

export interface Credential {
  credentialId: string;
  store?: string;
  kind?: string;
  source: string;
  status: string;
  expiresAtMs?: number;
  boundTo?: string;
  revocation?: { id: string; status: string; trigger?: string; decidedBy?: string; detail?: string; completedAtMs?: number };
}

export interface LifecycleEvent {
  id: string;
  trigger: string;
  atMs: number;
  detail: string;
  findingId?: string;
}

export interface TaskDetail {
  task: TaskSummary;
  delegation: { lineage: Hop[]; tree: TreeNode };
  path: Step[];
  findings: Finding[];
  revocations: Revocation[];
  credentials: Credential[];
  lifecycle?: LifecycleEvent[];
}

export interface Approval {
  id: string;
  taskId: string;
  agentId?: string;
  findingIds: string[];
  rule: string;
  proposed: string;
  onTimeout: string;
  status: string;
  requestedAtMs: number;
  expiresAtMs: number;
  decidedBy?: string;
  decidedAtMs?: number;
  comment?: string;
  dryRun: boolean;
}

export interface QuarantineMark {
  agentId: string;
  atMs: number;
  taskId: string;
  findingId: string;
  by?: string;
}

export interface Incident {
  id: string;
  taskId: string;
  status: string;
  version: number;
  severity: string;
  title: string;
  agents: string[];
  findingCount: number;
  revocations: unknown[];
  createdAtMs: number;
  updatedAtMs: number;
}
