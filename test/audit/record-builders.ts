/** Audit records for tests of alert rules and sinks, built field by field (every field present, as the recorder stores them). */
import type { AuditFlow, AuditProcess, AuditRecord } from "../../src/audit/audit-record.js";

let clock = Date.parse("2026-12-04T10:00:00.000Z");

export function process(overrides: Partial<AuditProcess> = {}): AuditProcess {
  return {
    pid: 4242, parentPid: 1, uid: 1000, command: "curl", executable: "/usr/bin/curl",
    cgroupId: "1234", cgroupPath: "/user.slice", containerId: null, ...overrides,
  };
}

export interface RecordInput {
  kind?: AuditRecord["kind"];
  sequence?: number;
  /** Milliseconds since the start of the test clock (default: 1 s after the previous record). */
  at?: number;
  process?: Partial<AuditProcess> | null;
  flow?: Partial<AuditFlow> | null;
  dns?: AuditRecord["dns"];
  drop?: AuditRecord["drop"];
}

const base = Date.parse("2026-12-04T10:00:00.000Z");

export function record(input: RecordInput = {}): AuditRecord {
  const end = input.at !== undefined ? base + input.at : (clock += 1000);
  const kind = input.kind ?? "connection";
  const flow: AuditFlow | null = input.flow === null ? null : {
    protocol: kind === "udp" ? "udp" : "tcp", family: "ipv4", direction: "outbound",
    localAddress: "10.0.0.5", localPort: 40000, remoteAddress: "192.0.2.10", remotePort: 443, remoteName: null, ...input.flow,
  };
  return {
    sequence: input.sequence ?? 0,
    kind,
    start: new Date(end - 500),
    end: new Date(end),
    process: input.process === null ? null : process(input.process),
    flow,
    bytesSent: kind === "connection" ? 100 : null,
    bytesReceived: kind === "connection" ? 2000 : null,
    packetsSent: null,
    packetsReceived: null,
    closeReason: kind === "connection" ? "fin" : null,
    dns: input.dns ?? null,
    drop: input.drop ?? null,
    loss: null,
    alert: null,
  };
}

export function dnsRecord(queryName: string, answers: string[], overrides: RecordInput = {}): AuditRecord {
  return record({
    kind: "dns", flow: null, process: { command: "resolved" }, ...overrides,
    dns: { queryName, queryType: "A", responseCode: "NOERROR", answers, clientAddress: "10.0.0.5", clientPort: 53000, serverAddress: "10.0.0.53", serverPort: 53 },
  });
}

/** Two alert rules (an SSH connection out, a destination never seen before), as YAML. */
export const sampleRulesText = `rules:
  - name: ssh-out
    severity: high
    message: "{process.command} opened SSH to {flow.remoteAddress}"
    filter: tcp dst port 22
  - name: new-destination
    severity: low
    message: "first connection to {flow.remoteAddress}:{flow.remotePort}"
    firstSeen: destination
`;
