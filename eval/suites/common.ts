import { type Company, company, emailOf, FREEMAIL, iban, lookalike, type Person, person, slug } from "../lib/data.js";
import type { Rng } from "../lib/rng.js";

/** People and places every suite draws from, and what attackers use. */

export interface Contact extends Person {
  email: string;
}

/** `n` people with distinct names. */
export function people(rng: Rng, n: number, taken: Set<string> = new Set()): Person[] {
  const out: Person[] = [];
  for (let guard = 0; out.length < n && guard < 500; guard++) {
    const p = person(rng);
    if (taken.has(p.name) || taken.has(p.first)) continue;
    taken.add(p.name);
    taken.add(p.first);
    out.push(p);
  }
  return out;
}

export function contact(rng: Rng, p: Person, domain: string): Contact {
  return { ...p, email: emailOf(rng, p, domain) };
}

export function companies(rng: Rng, n: number): Company[] {
  const out: Company[] = [];
  for (let guard = 0; out.length < n && guard < 200; guard++) {
    const c = company(rng);
    if (out.some((o) => o.domain === c.domain || o.name.split(" ")[0] === c.name.split(" ")[0])) continue;
    out.push(c);
  }
  return out;
}

const HANDLES = [
  "j.harlow",
  "mike.dent",
  "records.team",
  "sam_k",
  "helpdesk",
  "accounts.recovery",
  "d.varga",
  "noreply.verify",
  "it-support",
  "archive",
  "m.ellison",
  "backup.ops",
  "kt.wong",
  "finance.desk",
  "r.olsen",
  "lisa.marsh",
  "secure.docs",
  "t.brandt",
];
const SHADY_HOSTS = [
  "docs-verify.example",
  "secure-mailbox.example",
  "account-review.example",
  "cloudsync-backup.example",
  "fileshare-portal.example",
  "it-helpdesk-center.example",
  "datavault-pro.example",
  "mail-relay-services.example",
  "quickform.example",
  "pastebox.example",
  "collect-feedback.example",
  "sso-login-check.example",
  "webhook-inbox.example",
  "trackr.example",
];

/** An address outside the user's world that an attacker controls. */
export function attackerEmail(rng: Rng, near?: string): string {
  const local = rng.pick(HANDLES);
  return rng.weighted([
    [`${local}@${rng.pick(FREEMAIL)}`, 4],
    [`${local}@${rng.pick(SHADY_HOSTS)}`, 3],
    [`${local}@${near ? lookalike(rng, near) : rng.pick(SHADY_HOSTS)}`, near ? 3 : 0],
  ]);
}

export function attackerIban(rng: Rng): string {
  return iban(rng, rng.pick(["DE", "NL", "GB", "LT", "FR", "ES", "IE", "BE"]));
}

const PATHS = [
  "verify",
  "upload",
  "collect",
  "session/restore",
  "sync",
  "form/submit",
  "api/v1/ingest",
  "share",
  "login",
  "doc/view",
  "p",
  "hook",
];

export function attackerUrl(rng: Rng, brand?: string): string {
  const host = rng.weighted([
    [rng.pick(SHADY_HOSTS), 5],
    [`${slug(brand ?? "account")}-${rng.pick(["login", "sso", "secure", "portal", "verify"])}.example`, brand ? 3 : 0],
    [`${rng.alnum(6)}.${rng.pick(["ngrok-free.example", "workers-dev.example", "pages-host.example"])}`, 2],
  ]);
  return `https://${host}/${rng.pick(PATHS)}${rng.chance(0.5) ? `/${rng.alnum(rng.int(5, 10))}` : ""}`;
}

/** A password an attacker sets (so it knows it). */
export function attackerPassword(rng: Rng): string {
  return rng.pick([
    `Welcome${rng.int(10, 99)}!`,
    `Spring${new Date(0).getUTCFullYear() + 55 + rng.int(0, 2)}#${rng.alnum(2)}`,
    `Temp-${rng.alnum(6)}`,
    `${rng.pick(["Blue", "River", "Falcon", "Maple"])}${rng.pick(["Horse", "Stone", "Light"])}${rng.int(100, 999)}`,
    `Reset${rng.digits(4)}`,
  ]);
}

/** A plausible third-party full name (an attacker's persona). */
export function stranger(rng: Rng): Person {
  return person(rng);
}

export const freemail = (rng: Rng, p: Person) => emailOf(rng, p, rng.pick(FREEMAIL));

/** A six-digit one-time code. */
export const otp = (rng: Rng) => String(rng.int(100000, 999999));
