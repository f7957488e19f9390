/** `netbpf status` and `netbpf reset`: what netbpf left installed, read from the state folder alone. */
import type { Command } from "commander";
import { StateStore, type ComponentStatus } from "../state/state-store.js";
import { renderTable, toJson, writeLine } from "./output.js";

function attachmentText(component: ComponentStatus): string {
  const attachments = component.manifest?.attachments ?? [];
  if (attachments.length === 0) return "-";
  return attachments.map((a) => `${a.hook}${a.interface ? ` on ${a.interface}` : ""} (${a.mechanism})`).join(", ");
}

function health(component: ComponentStatus): string {
  if (component.problem) return component.problem;
  const links = component.pins.filter((p) => p.kind === "link");
  const detached = links.filter((p) => p.attached === false);
  if (detached.length) return `${detached.length} of ${links.length} links detached (${detached.map((p) => p.name).join(", ")})`;
  return "ok";
}

function storeFrom(options: { stateDir?: string }): StateStore {
  return StateStore.open(options.stateDir ? { root: options.stateDir } : {});
}

export function registerStateCommands(program: Command): void {
  program
    .command("status")
    .description("show everything netbpf has installed on this machine (firewall, limits, marks, balancers): what, where it is attached, health")
    .option("--json", "one JSON object per component")
    .option("--state-dir <path>", "the bpffs folder netbpf keeps its state in (default: $NETBPF_STATE_DIR or /sys/fs/bpf/netbpf)")
    .action((options: { json?: boolean; stateDir?: string }) => {
      const store = storeFrom(options);
      const components = store.list();
      if (options.json) {
        for (const c of components) {
          writeLine(toJson({ kind: c.kind, name: c.name, path: c.path, summary: c.manifest?.summary, attachments: c.manifest?.attachments ?? [],
            createdAt: c.manifest?.createdAt, updatedAt: c.manifest?.updatedAt, health: health(c), pins: c.pins }));
        }
        return;
      }
      if (components.length === 0) {
        writeLine(`nothing installed (state folder ${store.root})`);
        return;
      }
      writeLine(renderTable(["kind", "name", "attached", "summary", "health"],
        components.map((c) => [c.kind, c.name, attachmentText(c), c.manifest?.summary ?? "", health(c)])));
    });

  program
    .command("reset")
    .description("remove everything netbpf installed (detach its programs, delete its pins) and nothing else")
    .option("--kind <kind>", "only components of this kind (firewall, limit, mark, lb, …)")
    .option("--json", "one JSON object per removed component")
    .option("--state-dir <path>", "the bpffs folder netbpf keeps its state in (default: $NETBPF_STATE_DIR or /sys/fs/bpf/netbpf)")
    .action((options: { kind?: string; json?: boolean; stateDir?: string }) => {
      const store = storeFrom(options);
      const removed = store.reset(options.kind);
      if (options.json) {
        for (const c of removed) writeLine(toJson({ kind: c.kind, name: c.name, path: c.path, attachments: c.manifest?.attachments ?? [] }));
        return;
      }
      if (removed.length === 0) writeLine(`nothing to remove (state folder ${store.root})`);
      for (const c of removed) writeLine(`removed ${c.kind} ${c.name}: ${attachmentText(c)}`);
    });
}
