/**
 * Every function and class of the root export, and every static method of
 * those classes ("Program.load"), refuses nonsense arguments (issue #13
 * item 6): called with `()`, `(undefined)`, `(42)`, `("x")` or `({})` it
 * throws a NetbpfError whose message names the bad parameter, unless the
 * call is valid (the `accepted` list, with the reason).
 *
 * The calls run in a child process (test/support/argument-probe.ts) as user
 * nobody in an empty network namespace: a missing check must not be able to
 * attach a program, touch an interface or leave a server running here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as netbpf from "../src/index.js";
import { asNobody, pathForNobody } from "./support/cli.js";
import { skipUnlessRoot } from "./support/kernel.js";
import type { CallLabel, ExportReport } from "./support/argument-probe.js";
import { assertWrongCallsRefused } from "./support/wrong-calls.js";

/** Wrong-looking calls that are in fact valid for an export, and why. */
const accepted: Record<string, { calls: CallLabel[]; reason: string }> = {
  // ab
  bytes: { calls: ["(42)"], reason: "a 42-byte raw codec" },
  cString: { calls: ["(42)"], reason: "a 42-byte NUL-padded string codec" },
  lpmKey: { calls: ["(42)"], reason: "an LPM key codec with 42 address bytes" },
  socketDescriptor: { calls: ["(42)"], reason: "42 is a socket descriptor number, returned as it is" },
  formatVerifierError: { calls: ["()", "(undefined)", "(42)", '("x")', "({})"], reason: "takes any caught value and returns undefined for what is not a VerifierError (its options are checked)" },
  // aa
  compileFilter: { calls: ['("x")'], reason: "\"x\" is a string, the expression's type; as an expression it is a syntax error (FilterSyntaxError with the position: a bare name needs a qualifier)" },
  parseFilter: { calls: ['("x")'], reason: "\"x\" is a string, the expression's type; as an expression it is a syntax error (FilterSyntaxError with the position: a bare name needs a qualifier)" },
  // ga
  compileFlowFilter: { calls: ['("x")'], reason: "\"x\" is a string, the expression's type; as an expression it is a syntax error (FilterSyntaxError with the position: a bare name needs a qualifier)" },
  JsonLinesSink: { calls: ["({})"], reason: "every option has a default: every record kind as JSON lines on standard output" },
  MemorySeenHistory: { calls: ["(42)"], reason: "a history that remembers at most 42 keys" },
  clickHouseTableStatement: { calls: ['("x")'], reason: "\"x\" is a valid ClickHouse table name" },
  parseSyslogTarget: { calls: ['("x")'], reason: "a bare host name: UDP to host x, port 514" },
  DashboardAccess: { calls: ["()", "(undefined)"], reason: "no token: only requests naming a loopback host are answered (what forListen gives a loopback host)" },
  JsonLinesAlertSource: { calls: ['("x")'], reason: "alerts read from the file x (a missing file has no alerts)" },
  PortLabels: { calls: ["(42)"], reason: "the first 42 ports seen get their own label" },
  isLoopbackHost: { calls: ['("x")'], reason: "\"x\" is a host name, not a loopback one: false" },
  // gs
  TrafficWatcher: { calls: ["({})"], reason: "every option has a default: {} counts this host's sockets through the root cgroup (as user nobody the kernel then refuses the programs)" },
  validateWatchTcpOptions: { calls: ["({})"], reason: "every option has a default: {} watches every TCP connection" },
  defaultHint: { calls: ['("x")'], reason: "any errno code may be asked about; one without a hint gives undefined" },
  errnoName: { calls: ["(42)"], reason: "42 is an errno (ENOMSG)" },
  findNetworkInterface: { calls: ['("x")'], reason: "a well-formed interface name: undefined when there is no such interface" },
  interfaceIndex: { calls: ["(42)", '("x")'], reason: "a well-formed interface index or name: the answer is a UsageError that no interface has it" },
  interfaceLinkDetected: { calls: ['("x")'], reason: "a well-formed interface name: undefined when no driver answers (there is no such interface)" },
  interfaceName: { calls: ["(42)"], reason: "a well-formed interface index: undefined when no interface has it" },
  parseRegisterState: { calls: ['("x")'], reason: "any text is printed register state; text without registers gives {}" },
  perfEventDisable: { calls: ["(42)"], reason: "42 is a well-formed descriptor: the kernel's answer (EBADF here) is a SyscallError" },
  perfEventEnable: { calls: ["(42)"], reason: "42 is a well-formed descriptor: the kernel's answer (EBADF here) is a SyscallError" },
  probeMapType: { calls: ["(42)"], reason: "42 is a map type number: the kernel is asked whether it has it (newer types than the MapType enum knows are probed too)" },
  summarizeVerifierLog: { calls: ['("x")'], reason: "any text is a verifier log; without the verifier's lines its last line is the message" },
  // gp
  AtomicFileSink: { calls: ['("x")'], reason: "\"x\" is a file name: a capture file written (renamed into place on close) in the working folder" },
  DirectFileSink: { calls: ['("x")'], reason: "\"x\" is a file name: a capture file written in the working folder" },
  openFileSink: { calls: ['("x")'], reason: "\"x\" is a file name: a capture file written in the working folder" },
  openCaptureSink: { calls: ['("x")'], reason: "\"x\" is a file name: a capture file written in the working folder" },
  captureFormatFromPath: { calls: ['("x")'], reason: "\"x\" is a path without a capture extension: the format is unknown (undefined)" },
  linkTypeFromName: { calls: ['("x")'], reason: "\"x\" is a string, the name's type; no link type has that name (undefined)" },
  linkTypeName: { calls: ["(42)"], reason: "42 is a link-type number: \"LINKTYPE_42\" (no name in the table)" },
  protocolName: { calls: ["(42)"], reason: "42 is an IP protocol number: \"42\" (no name in the table)" },
  encodePacketFlags: { calls: ["(42)"], reason: "42 is an epb_flags word, returned as it is when nothing overrides its bits" },
  parseProtocol: { calls: ['("x")'], reason: "\"x\" is a string, the text's type; as a protocol it is unknown (UsageError listing the names)" },
  interfaceLinkType: { calls: ['("x")'], reason: "\"x\" is a well-formed interface name; one that does not exist gets Ethernet, as a tc program sees on most" },
  openCapture: { calls: ['("x")'], reason: "\"x\" is a path: opening or reading it fails with the file's own error (no such file, or not a capture)" },
  readCaptureFile: { calls: ['("x")'], reason: "\"x\" is a path: opening or reading it fails with the file's own error (no such file, or not a capture)" },
  // gb
  coreRelocationKindName: { calls: ["(42)"], reason: "any integer has a name: unknown kinds read \"unknown kind 42\" (for messages about malformed relocations)" },
  essentialName: { calls: ['("x")'], reason: "\"x\" is a name without a ___flavor suffix: it is its own essential name" },
  essentialNameLength: { calls: ['("x")'], reason: "\"x\" is a name without a ___flavor suffix: its length is 1" },
  identifierName: { calls: ['("x")'], reason: "\"x\" is already a valid identifier" },
  pascalName: { calls: ['("x")'], reason: "\"x\" gives the type name \"X\"" },
  jsonFriendly: { calls: ["()", "(undefined)", "(42)", '("x")', "({})"], reason: "takes any decoded value: numbers, strings, undefined and plain objects come back as they are" },
  kernelSymbolAddress: { calls: ['("x")'], reason: "\"x\" is a symbol name; a symbol /proc/kallsyms lacks gives undefined" },
  kernelVersionCode: { calls: ['("x")'], reason: "\"x\" is a release string without a version: code 0, as for any unparsable release" },
  loadKernelBtf: { calls: ['("x")'], reason: "\"x\" is a file path: a missing file or one that is not BTF gets a NetbpfError naming the file" },
  // gm
  assembleLlvm: { calls: ['("x")'], reason: "\"x\" is a string, the source's type; as assembly it is an error naming the line and the unreadable instruction" },
  assembleText: { calls: ['("x")'], reason: "\"x\" is a string, the source's type; as assembly it is an error naming the line and the unknown mnemonic" },
  helperIdOf: { calls: ['("x")'], reason: "a lookup: an unknown helper name gives undefined" },
  helperNameOf: { calls: ["(42)"], reason: "42 is a helper id (get_numa_node_id); an unknown id gives undefined" },
  instructionClass: { calls: ["(42)"], reason: "42 is an opcode byte" },
  isLoadStoreClass: { calls: ["(42)"], reason: "42 is an opcode byte" },
  sizeBytes: { calls: ["(42)"], reason: "42 is an opcode byte" },
  programKindOfSection: { calls: ['("x")'], reason: "a lookup: a section name no program kind matches gives undefined" },
  loadCollectionSpec: { calls: ['("x")'], reason: "\"x\" is a path; reading it fails with the file's own problem (missing, or not an ELF object)" },
  "BpfMap.openPinned": { calls: ['("x")'], reason: "\"x\" is a path (relative to the working folder); as nobody the kernel refuses it with EACCES" },
  "Program.openPinned": { calls: ['("x")'], reason: "\"x\" is a path (relative to the working folder); as nobody the kernel refuses it with EACCES" },
  "Link.openPinned": { calls: ['("x")'], reason: "\"x\" is a path (relative to the working folder); as nobody the kernel refuses it with EACCES" },
  "BpfMap.fromFd": { calls: ["(42)"], reason: "42 is a descriptor number; it is not a BPF map here, which the kernel reports (SyscallError)" },
  "Program.fromFd": { calls: ["(42)"], reason: "42 is a descriptor number; it is not a BPF program here, which the kernel reports (SyscallError)" },
  "Link.fromFd": { calls: ["(42)"], reason: "42 is a descriptor number, taken over as it is (a link is not asked about before use)" },
  "VerifierReport.fromLog": { calls: ['("x")'], reason: "\"x\" is a verifier log with no error in it: the report says what little it can" },
  "Firewall.open": { calls: ['("x")'], reason: "\"x\" is an interface name; none by that name exists here (UsageError naming the interface)" },
  "Marker.open": { calls: ['("x")'], reason: "\"x\" is an interface name; none by that name exists here (UsageError naming the interface)" },
  "RateLimiter.open": { calls: ['("x")'], reason: "\"x\" is an interface name; none by that name exists here (UsageError naming the interface)" },
  "LoadBalancer.open": { calls: ['("x")'], reason: "\"x\" is a string, the service's type; as a service it is refused as not ADDRESS:PORT" },
  // main
  "AlertRules.parse": { calls: ['("x")'], reason: "\"x\" is rules text: an AlertRulesError gives the file, line and what is wrong (x is not a `rules:` list)" },
  "AuditLog.open": { calls: ['("x")'], reason: "\"x\" is a database path: the log is created there" },
  "FileSeenHistory.open": { calls: ['("x")'], reason: "\"x\" is a file path: the history is kept there" },
  "PcapScanner.open": { calls: ['("x")'], reason: "\"x\" is a file path (the probe's AuditLog.open made it): a file that is not pcap gives undefined, for the caller's general reader" },
  "AlertRules.fromObject": { calls: ["({})"], reason: "{} has the shape of a rules file: an AlertRulesError says that its `rules:` list is missing" },
  "ConnectionFilter.compile": { calls: ['("x")'], reason: "\"x\" is a string, the expression's type; as an expression it is a syntax error (FilterSyntaxError with the position)" },
  "DashboardAccess.forListen": { calls: ['("x")'], reason: "\"x\" is a host name that is not loopback: access with a new random token" },
};

/**
 * NOT DONE YET: exports that, for some wrong call, still throw something
 * other than a NetbpfError naming the argument, or return silently. An entry
 * that starts passing fails this test, so the list only shrinks.
 */
const notYetChecked = new Set<string>([
]);

let probed: ExportReport[] | undefined;

function probe(): ExportReport[] {
  if (probed !== undefined) return probed;
  const work = mkdtempSync(join(tmpdir(), "nb-arguments-"));
  try {
    chownSync(work, 65534, 65534);
    pathForNobody(join("dist", "test", "support", "wrong-calls.js"));
    const result = spawnSync("unshare", ["--net", "setpriv", ...asNobody, process.execPath, pathForNobody(join("dist", "test", "support", "argument-probe.js"))], {
      cwd: work, encoding: "utf8", timeout: 600_000, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(result.status, 0, `the probe failed (signal ${result.signal}): ${result.stderr.slice(-2000)}`);
    probed = JSON.parse(result.stdout) as ExportReport[];
    return probed;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

test("every root export refuses nonsense arguments with a NetbpfError naming the argument", (t) => {
  if (skipUnlessRoot(t, "to run the calls as user nobody in an empty network namespace")) return;
  const checkedCalls = assertWrongCallsRefused(probe(), accepted, notYetChecked, "exports");
  // A floor that rises as checks land.
  assert.ok(checkedCalls >= 1393, `only ${checkedCalls} wrong calls were refused properly`);
});

test("every entry of the lists is a root export or a static method of one that the probe called", (t) => {
  if (skipUnlessRoot(t, "to run the calls as user nobody in an empty network namespace")) return;
  const called = new Set(probe().filter((entry) => Object.keys(entry.calls).length > 0).map((entry) => entry.name));
  const roots = [...called].filter((name) => !name.includes("."));
  assert.ok(roots.length > 100 && roots.length <= Object.keys(netbpf).length);
  // Static methods are reported as "Class.method", of a root class that has that method.
  const statics = [...called].filter((name) => name.includes("."));
  assert.ok(statics.length > 20);
  const exports = netbpf as Record<string, unknown>;
  assert.deepEqual(statics.filter((name) => {
    const [owner, method] = name.split(".") as [string, string];
    return typeof exports[owner] !== "function" || !Object.hasOwn(exports[owner], method);
  }), []);
  assert.deepEqual([...Object.keys(accepted), ...notYetChecked].filter((name) => !called.has(name)), []);
});
