/**
 * The programs behind `netbpf tcp` / watchTcp(): tracepoint programs that
 * follow every TCP connection through its life and send one fixed-size
 * record per event to a ring buffer.
 *
 * Hooks (all stable tracepoints, no kprobes):
 * - sock:inet_sock_set_state — every state change. The connecting process
 *   is the task running at CLOSE→SYN_SENT (connect() is a system call); the
 *   listening one at CLOSE→LISTEN. At every change the connection's bytes
 *   acked / received, smoothed RTT and retransmission total are read from
 *   struct tcp_sock at offsets taken from the running kernel's BTF.
 * - syscalls:sys_exit_accept4 (and sys_exit_accept) — the accepting process:
 *   the returned descriptor leads to the struct sock (task → files → fdtable
 *   → file → socket → sk, every offset from BTF), so accepted connections get
 *   the pid of the process that accepted them, not of whoever ran the softirq
 *   that completed the handshake.
 * - tcp:tcp_retransmit_skb, tcp:tcp_send_reset, tcp:tcp_receive_reset —
 *   counted per connection and reported as events.
 * - tcp:tcp_destroy_sock — forgets a socket's record if CLOSE did not.
 *
 * Per connection the programs keep one record in a hash map keyed by the
 * kernel socket address; the record *is* the event layout (below), so an
 * event is the record as it stands, written to the ring with
 * bpf_ringbuf_output. Tracepoint field offsets come from tracefs format
 * files, struct offsets from BTF: nothing is hard-coded.
 */
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R9, R10, type AssembledProgram } from "../asm/assembler.js";
import { argumentError, expectArray, expectBoolean, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { readTracepointFormat, requireField, type TracepointFormat } from "../sys/tracepoint-format.js";
import { addToCounter } from "./add-to-counter.js";
import { isTcpKernelOffsets, type TcpKernelOffsets } from "./tcp-kernel-offsets.js";

export { tcpKernelOffsets, type TcpKernelOffsets } from "./tcp-kernel-offsets.js";

/** Map names the programs refer to. */
export const tcpEventRingName = "tcp_events";
export const tcpLostName = "tcp_lost";
export const tcpConnectionsName = "tcp_connections";

/** Record kinds (the `kind` field). */
export const TcpRecordKind = {
  State: 1,
  Accept: 2,
  Retransmit: 3,
  ResetSent: 4,
  ResetReceived: 5,
} as const;

/** Connection roles (the `role` field). */
export const TcpRole = { Unknown: 0, Active: 1, Passive: 2, Listener: 3 } as const;

/**
 * The record: kept per connection in the hash map, and written to the ring as
 * the event. Little-endian, 160 bytes; addresses as on the wire (IPv4 in the
 * first 4 bytes of the 16).
 */
export const tcpRecordLayout = {
  timestamp: 0, // u64 ns since boot (ktime_get_ns) of this event
  socket: 8, // u64 kernel address of the struct sock
  start: 16, // u64 ns since boot of SYN_SENT / SYN_RECV (0: began before watching)
  established: 24, // u64 ns since boot of the first ESTABLISHED (0: not yet)
  bytesAcked: 32, // u64 tcp_sock.bytes_acked
  bytesReceived: 40, // u64 tcp_sock.bytes_received
  kind: 48, // u32 TcpRecordKind
  pid: 52, // u32 process id (tgid) of the connecting / accepting / listening process, 0 unknown
  oldState: 56, // i32
  newState: 60, // i32 (for retransmits and resets: the state at the time)
  smoothedRtt: 64, // u32 tcp_sock.srtt_us (microseconds << 3)
  totalRetransmits: 68, // u32 tcp_sock.total_retrans
  retransmits: 72, // u32 tcp:tcp_retransmit_skb events seen
  resetsSent: 76, // u32
  resetsReceived: 80, // u32
  localPort: 84, // u16 host order
  remotePort: 86, // u16 host order
  family: 88, // u16 AF_INET 2 / AF_INET6 10
  role: 90, // u8 TcpRole
  statistics: 91, // u8 1 when the tcp_sock fields were read
  uid: 92, // u32 user id of the process at `pid` (bpf_get_current_uid_gid)
  localAddress: 96, // 16 bytes
  remoteAddress: 112, // 16 bytes
  command: 128, // 16 bytes, the process's comm
  cgroupId: 144, // u64 cgroup v2 id of the process at `pid` (bpf_get_current_cgroup_id)
  parentPid: 152, // u32 process id (tgid) of its parent (task->real_parent->tgid), 0 unknown
  // 156: 4 bytes of padding
  size: 160,
} as const;

export const tcpStateNames: Record<number, string> = {
  1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
  7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
};

const TcpState = { Established: 1, SynSent: 2, SynReceived: 3, Close: 7, Listen: 10 } as const;
const addressFamilyInet6 = 10;
const ipProtocolTcp = 6;
const mapUpdateNoExist = 1;

function expectTcpKernelOffsets(operation: string, value: unknown): void {
  if (!isTcpKernelOffsets(value)) throw argumentError(operation, "offsets", "TcpKernelOffsets (from tcpKernelOffsets)", value);
}

/** Checks what a TCP program is to write to the ring (TcpEmitOptions). */
function checkEmitOptions(operation: string, emitOptions: TcpEmitOptions): void {
  expectObject(operation, "emitOptions", emitOptions);
  expectBoolean(operation, "emitOptions.emit", emitOptions.emit, true);
  expectBoolean(operation, "emitOptions.wakeup", emitOptions.wakeup, true);
  if (emitOptions.emitStates !== undefined) {
    expectArray(operation, "emitOptions.emitStates", emitOptions.emitStates).forEach((state, index) => expectInteger(operation, `emitOptions.emitStates[${index}]`, state, 1, 12));
  }
}

const programOperation = "generate tcp program";

/** The tracepoints the programs attach to; `optional` ones may be missing. */
export const tcpTracepoints = [
  { category: "sock", name: "inet_sock_set_state", optional: false },
  { category: "syscalls", name: "sys_exit_accept4", optional: false },
  { category: "syscalls", name: "sys_exit_accept", optional: true },
  { category: "tcp", name: "tcp_retransmit_skb", optional: false },
  { category: "tcp", name: "tcp_send_reset", optional: false },
  { category: "tcp", name: "tcp_receive_reset", optional: false },
  { category: "tcp", name: "tcp_destroy_sock", optional: false },
] as const;

// Stack: the socket key at fp-8, a zeroed record at fp-8-size (built only to create an entry).
const keySlot = -8;
const recordSlot = keySlot - tcpRecordLayout.size;
const counterSlot = recordSlot - 8;

type Access = "u8" | "u16" | "u32" | "u64";
const accessBySize: Record<number, Access> = { 1: "u8", 2: "u16", 4: "u32", 8: "u64" };

/**
 * Copies `length` bytes from the tracepoint record (r6) to the connection
 * record (r7), in the widest loads both offsets' alignment allows (the
 * verifier refuses misaligned context loads).
 */
function copyFromContext(assembler: Assembler, from: number, to: number, length: number): void {
  for (let done = 0; done < length; ) {
    let size = 8;
    while (size > 1 && ((from + done) % size !== 0 || (to + done) % size !== 0 || done + size > length)) size /= 2;
    assembler.load(accessBySize[size]!, R1, R6, from + done).store(accessBySize[size]!, R7, to + done, R1);
    done += size;
  }
}

/**
 * Looks up the record of the socket whose address is in the key slot;
 * creates a zeroed one when there is none (r9 = 1 then, else 0). Leaves the
 * record in r7; jumps to `out` if it cannot be had.
 */
function lookupOrCreateRecord(assembler: Assembler, out: string): void {
  const found = assembler.newLabel("found");
  assembler
    .mov64(R9, 0)
    .loadMapFd(R1, tcpConnectionsName).mov64(R2, R10).add64(R2, keySlot)
    .call("map_lookup_elem")
    .jumpIf(R0, "!=", 0, found);
  for (let offset = 0; offset < tcpRecordLayout.size; offset += 8) assembler.store("u64", R10, recordSlot + offset, 0);
  assembler
    .loadMapFd(R1, tcpConnectionsName).mov64(R2, R10).add64(R2, keySlot)
    .mov64(R3, R10).add64(R3, recordSlot).mov64(R4, mapUpdateNoExist)
    .call("map_update_elem")
    .loadMapFd(R1, tcpConnectionsName).mov64(R2, R10).add64(R2, keySlot)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, out)
    .mov64(R9, 1)
    .label(found)
    .mov64(R7, R0);
}

/** record.timestamp = now; record.kind = kind. */
function stamp(assembler: Assembler, kind: number): void {
  assembler.call("ktime_get_ns").store("u64", R7, tcpRecordLayout.timestamp, R0).store("u32", R7, tcpRecordLayout.kind, kind);
}

/**
 * record.pid, parent pid, uid, cgroup id and command from the running task:
 * all read here, while the process lives, so a process that exits right
 * after connecting keeps them. The parent is task->real_parent->tgid (BTF
 * offsets); it stays 0 if a read fails. Uses the counter slot as scratch.
 */
function recordCurrentProcess(assembler: Assembler, offsets: TcpKernelOffsets): void {
  const noParent = assembler.newLabel("no_parent");
  assembler
    .call("get_current_pid_tgid").rightShift64(R0, 32).store("u32", R7, tcpRecordLayout.pid, R0)
    .call("get_current_uid_gid").store("u32", R7, tcpRecordLayout.uid, R0)
    .call("get_current_cgroup_id").store("u64", R7, tcpRecordLayout.cgroupId, R0)
    .store("u32", R7, tcpRecordLayout.parentPid, 0)
    .store("u64", R10, counterSlot, 0)
    .call("get_current_task").mov64(R3, R0).add64(R3, offsets.taskRealParent)
    .mov64(R1, R10).add64(R1, counterSlot).mov64(R2, 8)
    .call("probe_read_kernel")
    .load("u64", R3, R10, counterSlot).jumpIf(R3, "==", 0, noParent)
    .add64(R3, offsets.taskTgid).mov64(R1, R7).add64(R1, tcpRecordLayout.parentPid).mov64(R2, 4)
    .call("probe_read_kernel")
    .label(noParent)
    .mov64(R1, R7).add64(R1, tcpRecordLayout.command).mov64(R2, 16)
    .call("get_current_comm");
}

/** bpf_ringbuf_output flag: commit without waking a reader waiting on the ring. */
const ringbufNoWakeup = 1;

/**
 * Writes the record (r7) to the ring; a full ring is counted as lost. Jumps
 * to `done` afterwards. Without `wakeup` the kernel does not wake a waiting
 * reader (no irq_work, no wake-up of the reader's thread per event): the
 * reader reads on its own schedule.
 */
function output(assembler: Assembler, done: string, wakeup: boolean | undefined): void {
  assembler
    .loadMapFd(R1, tcpEventRingName).mov64(R2, R7).mov64(R3, tcpRecordLayout.size).mov64(R4, wakeup === false ? ringbufNoWakeup : 0)
    .call("ringbuf_output")
    .jumpIf(R0, "==", 0, done);
  addToCounter(assembler, tcpLostName, 0, { stackOffset: counterSlot, skip: done });
}

/**
 * What a program writes to the ring (the per-connection record is kept up to
 * date either way): `emit: false` writes nothing; `emitStates` (state-change
 * program only) writes only changes to one of these new states. Filtering
 * here, before the ring, spares the reserve, the copy and the decoding in
 * user space of events nobody asked for. `wakeup: false` commits events
 * without waking a reader that waits on the ring (see watchTcp's `wakeup`).
 */
export interface TcpEmitOptions {
  emit?: boolean;
  emitStates?: readonly number[];
  wakeup?: boolean;
}

/** Deletes the record of the socket in the key slot. */
function deleteRecord(assembler: Assembler): void {
  assembler.loadMapFd(R1, tcpConnectionsName).mov64(R2, R10).add64(R2, keySlot).call("map_delete_elem");
}

/**
 * Copies ports, family and addresses from a tracepoint record with the
 * usual sport/dport/family/saddr/daddr/saddr_v6/daddr_v6 fields.
 */
function copyEndpoints(assembler: Assembler, format: TracepointFormat): void {
  const field = (name: string) => requireField(format, name).offset;
  const ipv6 = assembler.newLabel("ipv6");
  const done = assembler.newLabel("endpoints");
  copyFromContext(assembler, field("sport"), tcpRecordLayout.localPort, 2);
  copyFromContext(assembler, field("dport"), tcpRecordLayout.remotePort, 2);
  copyFromContext(assembler, field("family"), tcpRecordLayout.family, 2);
  assembler.load("u16", R1, R6, field("family")).jumpIf(R1, "==", addressFamilyInet6, ipv6);
  copyFromContext(assembler, field("saddr"), tcpRecordLayout.localAddress, 4);
  copyFromContext(assembler, field("daddr"), tcpRecordLayout.remoteAddress, 4);
  assembler.jump(done).label(ipv6);
  copyFromContext(assembler, field("saddr_v6"), tcpRecordLayout.localAddress, 16);
  copyFromContext(assembler, field("daddr_v6"), tcpRecordLayout.remoteAddress, 16);
  assembler.label(done);
}

/** bpf_probe_read_kernel(record + to, size, r8 + from), r8 holding a kernel pointer. */
function readKernel(assembler: Assembler, to: number, size: number, from: number): void {
  assembler.mov64(R1, R7).add64(R1, to).mov64(R2, size).mov64(R3, R8).add64(R3, from).call("probe_read_kernel");
}

/** sock:inet_sock_set_state: create / update the record, emit it, forget it at CLOSE. */
export function tcpStateChangeProgram(format: TracepointFormat, offsets: TcpKernelOffsets, emitOptions: TcpEmitOptions = {}): AssembledProgram {
  const socketField = requireField(format, "skaddr").offset;
  expectTcpKernelOffsets(programOperation, offsets);
  checkEmitOptions(programOperation, emitOptions);
  const field = (name: string) => requireField(format, name).offset;
  const state = tcpRecordLayout;
  const assembler = new Assembler().mov64(R6, R1);
  assembler.load("u16", R1, R6, field("protocol")).jumpIf(R1, "!=", ipProtocolTcp, "out");
  assembler.load("u64", R1, R6, socketField).store("u64", R10, keySlot, R1);
  lookupOrCreateRecord(assembler, "out");
  assembler.load("u64", R1, R6, socketField).store("u64", R7, state.socket, R1);
  stamp(assembler, TcpRecordKind.State);
  copyEndpoints(assembler, format);
  assembler
    .load("u32", R1, R6, field("oldstate")).store("u32", R7, state.oldState, R1)
    .load("u32", R8, R6, field("newstate")).store("u32", R7, state.newState, R8);
  // Who and when: the connecting process at SYN_SENT, the listener at LISTEN;
  // a passive connection starts at SYN_RECV (its process comes with accept).
  assembler
    .jumpIf(R8, "==", TcpState.SynSent, "active")
    .jumpIf(R8, "==", TcpState.Listen, "listen")
    .jumpIf(R8, "==", TcpState.SynReceived, "passive")
    .jumpIf(R8, "!=", TcpState.Established, "statistics")
    .load("u64", R1, R7, state.established).jumpIf(R1, "!=", 0, "statistics")
    .load("u64", R1, R7, state.timestamp).store("u64", R7, state.established, R1)
    .jump("statistics");
  assembler.label("active").load("u64", R1, R7, state.timestamp).store("u64", R7, state.start, R1).store("u8", R7, state.role, TcpRole.Active);
  recordCurrentProcess(assembler, offsets);
  assembler.jump("statistics");
  assembler.label("listen").store("u8", R7, state.role, TcpRole.Listener);
  recordCurrentProcess(assembler, offsets);
  assembler.jump("emit");
  assembler.label("passive").load("u64", R1, R7, state.timestamp).store("u64", R7, state.start, R1).store("u8", R7, state.role, TcpRole.Passive);
  // Bytes, RTT and retransmissions so far, for connections (not listeners).
  assembler.label("statistics")
    .load("u32", R1, R7, state.oldState).jumpIf(R1, "==", TcpState.Listen, "emit")
    .load("u64", R8, R6, socketField);
  readKernel(assembler, state.bytesAcked, 8, offsets.bytesAcked);
  readKernel(assembler, state.bytesReceived, 8, offsets.bytesReceived);
  readKernel(assembler, state.smoothedRtt, 4, offsets.smoothedRtt);
  readKernel(assembler, state.totalRetransmits, 4, offsets.totalRetransmits);
  assembler.store("u8", R7, state.statistics, 1);
  assembler.label("emit");
  // Emitting nothing leaves no output code at all: the verifier refuses unreachable instructions.
  if (emitOptions.emit !== false) {
    if (emitOptions.emitStates !== undefined) {
      assembler.load("u32", R1, R7, state.newState);
      for (const wanted of new Set(emitOptions.emitStates)) assembler.jumpIf(R1, "==", wanted, "output");
      assembler.jump("sent");
    }
    assembler.label("output");
    output(assembler, "sent", emitOptions.wakeup);
  }
  assembler.label("sent").load("u32", R1, R7, state.newState).jumpIf(R1, "!=", TcpState.Close, "out");
  deleteRecord(assembler);
  return assembler.label("out").return(0).finish();
}

/**
 * syscalls:sys_exit_accept4 / sys_exit_accept: find the accepted socket from
 * the returned descriptor and give its record the accepting process.
 */
export function tcpAcceptProgram(format: TracepointFormat, offsets: TcpKernelOffsets, emitOptions: TcpEmitOptions = {}): AssembledProgram {
  const returned = requireField(format, "ret").offset;
  expectTcpKernelOffsets(programOperation, offsets);
  checkEmitOptions(programOperation, emitOptions);
  const assembler = new Assembler().mov64(R6, R1);
  // r9 = the descriptor; the pointer chase goes through the key slot.
  assembler.load("u64", R9, R6, returned).jumpIf(R9, "s<", 0, "out");
  const chase = (base: typeof R0, offset: number, size: 4 | 8 = 8) => {
    assembler.store("u64", R10, keySlot, 0)
      .mov64(R1, R10).add64(R1, keySlot).mov64(R2, size).mov64(R3, base).add64(R3, offset)
      .call("probe_read_kernel").jumpIf(R0, "!=", 0, "out")
      .load(size === 8 ? "u64" : "u32", R8, R10, keySlot);
    if (size === 8) assembler.jumpIf(R8, "==", 0, "out");
  };
  assembler.call("get_current_task").mov64(R8, R0).jumpIf(R8, "==", 0, "out");
  chase(R8, offsets.taskFiles); // files_struct *
  chase(R8, offsets.filesTable); // fdtable *
  assembler.mov64(R7, R8);
  chase(R7, offsets.tableMaximum, 4);
  assembler.jumpIf(R9, ">=", R8, "out");
  chase(R7, offsets.tableDescriptors); // struct file **
  assembler.mov64(R1, R9).leftShift64(R1, 3).add64(R8, R1);
  chase(R8, 0); // struct file *
  chase(R8, offsets.filePrivateData); // struct socket *
  chase(R8, offsets.socketSock); // struct sock *, now in the key slot
  assembler.loadMapFd(R1, tcpConnectionsName).mov64(R2, R10).add64(R2, keySlot).call("map_lookup_elem").jumpIf(R0, "==", 0, "out").mov64(R7, R0);
  assembler.load("u8", R1, R7, tcpRecordLayout.role).jumpIf(R1, "!=", TcpRole.Passive, "out");
  stamp(assembler, TcpRecordKind.Accept);
  recordCurrentProcess(assembler, offsets);
  if (emitOptions.emit !== false) output(assembler, "out", emitOptions.wakeup);
  return assembler.label("out").return(0).finish();
}

/**
 * tcp:tcp_retransmit_skb and tcp:tcp_receive_reset: count the event in the
 * socket's record and emit it. A socket not being followed gets a record
 * just for this event.
 */
export function tcpSocketEventProgram(format: TracepointFormat, kind: typeof TcpRecordKind.Retransmit | typeof TcpRecordKind.ResetReceived, emitOptions: TcpEmitOptions = {}): AssembledProgram {
  const socketField = requireField(format, "skaddr").offset;
  expectOneOf(programOperation, "kind", kind, [TcpRecordKind.Retransmit, TcpRecordKind.ResetReceived]);
  checkEmitOptions(programOperation, emitOptions);
  const field = (name: string) => requireField(format, name).offset;
  const counter = kind === TcpRecordKind.Retransmit ? tcpRecordLayout.retransmits : tcpRecordLayout.resetsReceived;
  const assembler = new Assembler().mov64(R6, R1);
  assembler.load("u64", R1, R6, socketField).store("u64", R10, keySlot, R1);
  lookupOrCreateRecord(assembler, "out");
  assembler.load("u64", R1, R6, socketField).store("u64", R7, tcpRecordLayout.socket, R1);
  assembler.mov64(R1, 1).atomic("u32", "add", R7, counter, R1);
  stamp(assembler, kind);
  copyEndpoints(assembler, format);
  if (format.fields.has("state")) assembler.load("u32", R1, R6, field("state")).store("u32", R7, tcpRecordLayout.newState, R1);
  if (emitOptions.emit !== false) output(assembler, "sent", emitOptions.wakeup);
  assembler.label("sent").jumpIf(R9, "==", 0, "out");
  deleteRecord(assembler);
  return assembler.label("out").return(0).finish();
}

/**
 * tcp:tcp_send_reset: the socket may be missing (a reset for a port nobody
 * listens on): such resets use the record of socket 0, made for the event
 * and removed after it. Endpoints come as struct sockaddr_in / sockaddr_in6.
 */
export function tcpResetSentProgram(format: TracepointFormat, emitOptions: TcpEmitOptions = {}): AssembledProgram {
  const socketField = requireField(format, "skaddr").offset;
  checkEmitOptions(programOperation, emitOptions);
  const field = (name: string) => requireField(format, name).offset;
  const local = field("saddr");
  const remote = field("daddr");
  const assembler = new Assembler().mov64(R6, R1);
  assembler.load("u64", R1, R6, socketField).store("u64", R10, keySlot, R1);
  lookupOrCreateRecord(assembler, "out");
  assembler.load("u64", R1, R6, socketField).store("u64", R7, tcpRecordLayout.socket, R1);
  assembler.mov64(R1, 1).atomic("u32", "add", R7, tcpRecordLayout.resetsSent, R1);
  stamp(assembler, TcpRecordKind.ResetSent);
  assembler.load("u32", R1, R6, field("state")).store("u32", R7, tcpRecordLayout.newState, R1);
  // sockaddr: family (host order) at 0, port (network order) at 2, IPv4 address at 4, IPv6 at 8.
  copyFromContext(assembler, local, tcpRecordLayout.family, 2);
  for (const [from, to] of [[local, tcpRecordLayout.localPort], [remote, tcpRecordLayout.remotePort]] as const) {
    assembler.load("u16", R1, R6, from + 2).toBigEndian(R1, 16).store("u16", R7, to, R1);
  }
  assembler.load("u16", R1, R6, local).jumpIf(R1, "==", addressFamilyInet6, "ipv6");
  copyFromContext(assembler, local + 4, tcpRecordLayout.localAddress, 4);
  copyFromContext(assembler, remote + 4, tcpRecordLayout.remoteAddress, 4);
  assembler.jump("addressed").label("ipv6");
  copyFromContext(assembler, local + 8, tcpRecordLayout.localAddress, 16);
  copyFromContext(assembler, remote + 8, tcpRecordLayout.remoteAddress, 16);
  assembler.label("addressed");
  if (emitOptions.emit !== false) output(assembler, "sent", emitOptions.wakeup);
  assembler.label("sent").jumpIf(R9, "==", 0, "out");
  deleteRecord(assembler);
  return assembler.label("out").return(0).finish();
}

/** tcp:tcp_destroy_sock: forget the socket's record (normally gone at CLOSE already). */
export function tcpDestroyProgram(format: TracepointFormat): AssembledProgram {
  const assembler = new Assembler().mov64(R6, R1);
  assembler.load("u64", R1, R6, requireField(format, "skaddr").offset).store("u64", R10, keySlot, R1);
  deleteRecord(assembler);
  return assembler.return(0).finish();
}

/** Reads the tracepoint formats (a missing tracepoint is a UsageError naming it). */
export function readTcpTracepointFormats(tracepoints: readonly { category: string; name: string; optional: boolean }[] = tcpTracepoints): Map<string, TracepointFormat | undefined> {
  expectArray<unknown>("read tracepoint format", "tracepoints", tracepoints).forEach((tracepoint, index) => {
    const { category, name, optional } = expectObject<Record<string, unknown>>("read tracepoint format", `tracepoints[${index}]`, tracepoint);
    expectString("read tracepoint format", `tracepoints[${index}].category`, category);
    expectString("read tracepoint format", `tracepoints[${index}].name`, name);
    expectBoolean("read tracepoint format", `tracepoints[${index}].optional`, optional);
  });
  const formats = new Map<string, TracepointFormat | undefined>();
  for (const tracepoint of tracepoints) {
    try {
      formats.set(`${tracepoint.category}:${tracepoint.name}`, readTracepointFormat(tracepoint.category, tracepoint.name));
    } catch (error) {
      if (!tracepoint.optional) throw error;
      formats.set(`${tracepoint.category}:${tracepoint.name}`, undefined);
    }
  }
  return formats;
}

/** One record as read from the ring. */
export interface TcpRecord {
  kind: number;
  timestamp: bigint;
  socket: bigint;
  start: bigint;
  established: bigint;
  bytesAcked: bigint;
  bytesReceived: bigint;
  pid: number;
  /** The parent's process id, read in the kernel with `pid` (0 when unknown). */
  parentPid: number;
  /** User id and cgroup v2 id of the process at `pid` (0 when unknown). */
  uid: number;
  cgroupId: bigint;
  oldState: number;
  newState: number;
  smoothedRttMicroseconds: number;
  totalRetransmits: number;
  retransmits: number;
  resetsSent: number;
  resetsReceived: number;
  localPort: number;
  remotePort: number;
  family: number;
  role: number;
  statistics: boolean;
  localAddress: Buffer;
  remoteAddress: Buffer;
  command: string;
}

/** Decodes a record; its addresses are views into `data` (copy them to keep them past `data`). */
export function decodeTcpRecord(data: Uint8Array): TcpRecord {
  if (!(data instanceof Uint8Array)) throw argumentError("decode tcp record", "data", "a Buffer or Uint8Array (a record from the tcp_events ring)", data);
  if (data.length < tcpRecordLayout.size) throw argumentError("decode tcp record", "data.length", `at least ${tcpRecordLayout.size} (the bytes of a record)`, data.length);
  // A Buffer already (as ring records are) is read as it is: one object fewer per event.
  const view = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const layout = tcpRecordLayout;
  const family = view.readUInt16LE(layout.family);
  const addressLength = family === addressFamilyInet6 ? 16 : 4;
  const commandBytes = view.subarray(layout.command, layout.command + 16);
  const end = commandBytes.indexOf(0);
  return {
    kind: view.readUInt32LE(layout.kind),
    timestamp: view.readBigUInt64LE(layout.timestamp),
    socket: view.readBigUInt64LE(layout.socket),
    start: view.readBigUInt64LE(layout.start),
    established: view.readBigUInt64LE(layout.established),
    bytesAcked: view.readBigUInt64LE(layout.bytesAcked),
    bytesReceived: view.readBigUInt64LE(layout.bytesReceived),
    pid: view.readUInt32LE(layout.pid),
    parentPid: view.readUInt32LE(layout.parentPid),
    uid: view.readUInt32LE(layout.uid),
    cgroupId: view.readBigUInt64LE(layout.cgroupId),
    oldState: view.readInt32LE(layout.oldState),
    newState: view.readInt32LE(layout.newState),
    smoothedRttMicroseconds: view.readUInt32LE(layout.smoothedRtt) / 8,
    totalRetransmits: view.readUInt32LE(layout.totalRetransmits),
    retransmits: view.readUInt32LE(layout.retransmits),
    resetsSent: view.readUInt32LE(layout.resetsSent),
    resetsReceived: view.readUInt32LE(layout.resetsReceived),
    localPort: view.readUInt16LE(layout.localPort),
    remotePort: view.readUInt16LE(layout.remotePort),
    family,
    role: view[layout.role]!,
    statistics: view[layout.statistics] === 1,
    localAddress: view.subarray(layout.localAddress, layout.localAddress + addressLength),
    remoteAddress: view.subarray(layout.remoteAddress, layout.remoteAddress + addressLength),
    command: commandBytes.subarray(0, end < 0 ? 16 : end).toString("latin1"),
  };
}
