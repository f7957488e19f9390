/**
 * User names ↔ numeric ids, from the account database (/etc/passwd; the
 * `NETBPF_PASSWD_FILE` variable points elsewhere, for tests). Read once and
 * cached; an unreadable file means no names are known.
 */
import { readFileSync } from "node:fs";

interface Accounts {
  idsByName: Map<string, number>;
  namesById: Map<number, string>;
}

let cached: { file: string; accounts: Accounts } | undefined;

function accounts(): Accounts {
  const file = process.env.NETBPF_PASSWD_FILE ?? "/etc/passwd";
  if (cached?.file === file) return cached.accounts;
  const idsByName = new Map<string, number>();
  const namesById = new Map<number, string>();
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    // No account database: only numeric ids.
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields.length < 3 || line.startsWith("#")) continue;
    const id = Number(fields[2]);
    if (!Number.isInteger(id) || id < 0 || fields[0] === "") continue;
    if (!idsByName.has(fields[0]!)) idsByName.set(fields[0]!, id);
    if (!namesById.has(id)) namesById.set(id, fields[0]!);
  }
  cached = { file, accounts: { idsByName, namesById } };
  return cached.accounts;
}

/** The numeric user id of an account name, or undefined when there is no such account. */
export function userIdForName(name: string): number | undefined {
  return accounts().idsByName.get(name);
}

/** The account name of a numeric user id, or undefined when no account has it. */
export function userNameForId(id: number): string | undefined {
  return accounts().namesById.get(id);
}
