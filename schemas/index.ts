export * from "./action.js";
export * from "./deadletter.js";
export * from "./finding.js";
export * from "./lifecycle.js";
export * from "./policy.js";
export * from "./revocation.js";
export * from "./step.js";
export * from "./topics.js";
