/**
 * The one place where netbpf keeps what outlives a command: every persistent
 * tool (firewall, limits, marks, load balancer) pins its programs, links and
 * maps under one bpffs folder, one sub-folder per installed component:
 *
 *     <root>/<kind>/<name>/            e.g. /sys/fs/bpf/netbpf/firewall/veth0/
 *         manifest                     a frozen one-element array map holding JSON
 *         <pins>                       the component's links, programs and maps
 *
 * The root is `$NETBPF_STATE_DIR`, or `<bpffs>/netbpf`. `status` lists the
 * components from their manifests alone, so it needs no tool's code; `reset`
 * detaches every pinned link and removes every component, and nothing outside
 * the root. Writers hold a per-component lock (flock on the folder), so two
 * netbpf commands never change one component at the same time.
 */
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, constants as fsConstants } from "node:fs";
import { join } from "node:path";
import { linkDetach, objectGet } from "../sys/bpf.js";
import { MapType } from "../sys/bpf-constants.js";
import { argumentError, expectArray, expectBoolean, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { errnoName, NetbpfError, UsageError } from "../sys/errors.js";
import { lastErrno, libcClose, libcFlock } from "../sys/libc.js";
import { bpffsPath, isOnBpffs } from "../sys/mounts.js";
import { linkInfo, mapInfo, programInfo } from "../sys/object-info.js";
import { BpfMap } from "../core/map.js";

/** Where a component hooks into the kernel, as shown by `netbpf status`. */
export interface StateAttachment {
  /** "xdp", "tc ingress", "tc egress", "cgroup ingress", … */
  hook: string;
  /** How: "tcx", "xdp native", "xdp generic", "netlink tc", "cgroup link", … */
  mechanism: string;
  interface?: string;
  /** The pin (inside the component) of the link that holds this attachment, if any. */
  pin?: string;
}

/** What a component says about itself; `config` is the tool's own data. */
export interface StateManifest<Config = unknown> {
  kind: string;
  name: string;
  /** Manifest format; bump when a tool changes what `config` means. */
  version: number;
  createdAt: string;
  updatedAt: string;
  /** One line for people: "3 rules, drop by default". */
  summary: string;
  attachments: StateAttachment[];
  config: Config;
}

export type PinKind = "link" | "program" | "map" | "unknown";

export interface PinStatus {
  name: string;
  kind: PinKind;
  /** Kernel object id. */
  id?: number;
  /** For links: whether the link is still attached (a link whose interface went away reports false). */
  attached?: boolean;
}

export interface ComponentStatus {
  kind: string;
  name: string;
  path: string;
  manifest: StateManifest | undefined;
  /** Why the manifest could not be read, when it could not. */
  problem?: string;
  pins: PinStatus[];
}

export interface Pinnable {
  pin(path: string): void;
}

const manifestPin = "manifest";
const maximumManifestSize = 1 << 20;
const namePattern = /^[A-Za-z0-9_\[\]][A-Za-z0-9_.:@+=,\[\]-]{0,127}$/;

// bpffs refuses names with a dot (they are reserved for the kernel's own
// files), so dots in names (addresses: 10.0.0.1:80) are stored as %2E.
function encodeName(name: string): string {
  return name.replaceAll(".", "%2E");
}

function decodeName(entry: string): string {
  return entry.replaceAll("%2E", ".");
}

function checkName(what: string, value: string): void {
  if (typeof value !== "string" || !namePattern.test(value) || value.includes("..")) {
    throw new UsageError("use netbpf state", `invalid ${what} ${JSON.stringify(value)}`,
      "use letters, digits and . _ : @ - [ ] (no slashes), at most 128 characters");
  }
}

/** Kind of a BPF object file descriptor, from /proc/self/fdinfo. */
function objectKind(fd: number): PinKind {
  try {
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    if (/^link_type:/m.test(info)) return "link";
    if (/^prog_type:/m.test(info)) return "program";
    if (/^map_type:/m.test(info)) return "map";
  } catch {
    // fall through
  }
  return "unknown";
}

function withPinnedObject<T>(path: string, use: (fd: number) => T): T {
  const fd = objectGet(path);
  try {
    return use(fd);
  } finally {
    libcClose(fd);
  }
}

function describePin(path: string, name: string): PinStatus {
  try {
    return withPinnedObject(path, (fd) => {
      const kind = objectKind(fd);
      if (kind === "link") {
        const info = linkInfo(fd);
        // A detached link (interface deleted, BPF_LINK_DETACH) keeps its id but loses its program.
        return { name, kind, id: info.id, attached: info.programId !== 0 && (info.ifindex === undefined || info.ifindex !== 0) };
      }
      if (kind === "program") return { name, kind, id: programInfo(fd).id };
      if (kind === "map") return { name, kind, id: mapInfo(fd).id };
      return { name, kind };
    });
  } catch {
    return { name, kind: "unknown" };
  }
}

/** An exclusive lock on a component folder, released by dispose. */
export class StateLock {
  #fd: number;
  constructor(fd: number) {
    this.#fd = fd;
  }
  release(): void {
    if (this.#fd >= 0) {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }
  [Symbol.dispose](): void {
    this.release();
  }
}

const LOCK_EX = 2;
const LOCK_NB = 4;

/** One installed thing: a folder of pins and its manifest. */
export class StateComponent {
  readonly kind: string;
  readonly name: string;
  readonly path: string;

  constructor(root: string, kind: string, name: string) {
    checkName("component kind", kind);
    checkName("component name", name);
    this.kind = kind;
    this.name = name;
    this.path = join(root, encodeName(kind), encodeName(name));
  }

  exists(): boolean {
    return existsSync(this.path);
  }

  /** Creates the folder (0700, parents too) if it is missing. */
  create(): void {
    mkdirSync(this.path, { recursive: true, mode: 0o700 });
  }

  /**
   * Takes the component's lock, creating the folder first. `wait: false`
   * (the default) fails at once when another netbpf command holds it.
   */
  lock(options: { wait?: boolean } = {}): StateLock {
    expectObject(`lock ${this.kind} ${this.name}`, "options", options);
    expectBoolean(`lock ${this.kind} ${this.name}`, "options.wait", options.wait, true);
    this.create();
    const fd = openSync(this.path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    if (libcFlock(fd, LOCK_EX | (options.wait ? 0 : LOCK_NB)) !== 0) {
      const errno = lastErrno();
      closeSync(fd);
      if (errnoName(errno) === "EWOULDBLOCK" || errnoName(errno) === "EAGAIN") {
        throw new NetbpfError(`change ${this.kind} ${this.name}`, "another netbpf command is changing it right now", "wait for it to finish and try again");
      }
      throw new NetbpfError(`lock ${this.path}`, `flock failed with ${errnoName(errno)}`);
    }
    return new StateLock(fd);
  }

  pinPath(name: string): string {
    checkName("pin name", name);
    return join(this.path, encodeName(name));
  }

  has(name: string): boolean {
    return existsSync(this.pinPath(name));
  }

  /**
   * Pins an object under `name`, atomically replacing an existing pin of that
   * name (the new object is pinned beside it, then renamed over it).
   */
  pin(name: string, object: Pinnable): void {
    checkName("pin name", name);
    if (typeof (object as Partial<Pinnable> | null)?.pin !== "function") {
      throw argumentError(`pin in ${this.kind} ${this.name}`, "object", "a BPF object to pin (a BpfMap, Program or Link)", object);
    }
    this.create();
    const target = this.pinPath(name);
    if (!existsSync(target)) {
      object.pin(target);
      return;
    }
    const staging = `${target}-new-${process.pid}`;
    object.pin(staging);
    try {
      renameSync(staging, target);
    } catch (error) {
      unlinkSync(staging);
      throw error;
    }
  }

  /** Removes one pin (a pinned link whose last reference this was detaches). */
  unpin(name: string): void {
    const path = this.pinPath(name);
    if (existsSync(path)) unlinkSync(path);
  }

  /** Names of the pins in the folder (the manifest excluded). */
  pins(): string[] {
    if (!this.exists()) return [];
    return readdirSync(this.path).filter((entry) => entry !== manifestPin).map(decodeName).sort();
  }

  readManifest<Config = unknown>(): StateManifest<Config> | undefined {
    const path = join(this.path, manifestPin);
    if (!existsSync(path)) return undefined;
    using map = BpfMap.openPinned(path);
    const raw = map.get(Buffer.alloc(4));
    if (!raw) return undefined;
    const length = raw.readUInt32LE(0);
    try {
      return JSON.parse(raw.toString("utf8", 4, 4 + length)) as StateManifest<Config>;
    } catch {
      throw new NetbpfError(`read ${this.kind} ${this.name}`, `its manifest (${path}) is not valid JSON`,
        "remove the component with `netbpf reset` and install it again");
    }
  }

  /**
   * Writes the manifest: a new frozen map holding the JSON replaces the old
   * one in one rename, so a reader sees the old or the new manifest, never half.
   */
  writeManifest<Config>(manifest: Omit<StateManifest<Config>, "kind" | "name" | "version" | "createdAt" | "updatedAt"> & { version?: number }): StateManifest<Config> {
    const operation = `write ${this.kind} ${this.name}`;
    expectObject(operation, "manifest", manifest);
    expectString(operation, "manifest.summary", manifest.summary);
    expectArray(operation, "manifest.attachments", manifest.attachments);
    if (manifest.version !== undefined) expectInteger(operation, "manifest.version", manifest.version, 1);
    const now = new Date().toISOString();
    const previous = this.readManifestQuietly();
    const full: StateManifest<Config> = {
      kind: this.kind, name: this.name, version: manifest.version ?? 1,
      createdAt: previous?.createdAt ?? now, updatedAt: now,
      summary: manifest.summary, attachments: manifest.attachments, config: manifest.config,
    };
    const json = Buffer.from(JSON.stringify(full), "utf8");
    if (json.length > maximumManifestSize) {
      throw new NetbpfError(`write ${this.kind} ${this.name}`, `its manifest would take ${json.length} bytes, more than ${maximumManifestSize}`,
        "keep large data (rules, addresses) in the component's maps");
    }
    const value = Buffer.alloc(4 + json.length + ((4 - (json.length % 4)) % 4));
    value.writeUInt32LE(json.length, 0);
    json.copy(value, 4);
    using map = BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: value.length, maxEntries: 1, name: "nb_manifest" });
    map.put(Buffer.alloc(4), value);
    map.freeze();
    this.pin(manifestPin, map);
    return full;
  }

  private readManifestQuietly(): StateManifest | undefined {
    try {
      return this.readManifest();
    } catch {
      return undefined;
    }
  }

  status(): ComponentStatus {
    let manifest: StateManifest | undefined;
    let problem: string | undefined;
    try {
      manifest = this.readManifest();
      if (!manifest) problem = "no manifest (an interrupted install?)";
    } catch (error) {
      problem = (error as Error).message;
    }
    const pins = this.pins().map((name) => describePin(this.pinPath(name), name));
    return { kind: this.kind, name: this.name, path: this.path, manifest, problem, pins };
  }

  /**
   * Detaches every pinned link now (even if a running netbpf process still
   * holds it), then removes every pin and the folder.
   */
  remove(): void {
    if (!this.exists()) return;
    for (const name of this.pins()) {
      const path = this.pinPath(name);
      try {
        withPinnedObject(path, (fd) => {
          if (objectKind(fd) === "link") linkDetach(fd);
        });
      } catch {
        // Already detached, or not a BPF object: removing the pin is all there is to do.
      }
      if (lstatSync(path).isDirectory()) removeTree(path);
      else unlinkSync(path);
    }
    const manifest = join(this.path, manifestPin);
    if (existsSync(manifest)) unlinkSync(manifest);
    rmdirSync(this.path);
    // Drop the kind folder when this was its last component.
    const kindFolder = join(this.path, "..");
    if (existsSync(kindFolder) && readdirSync(kindFolder).length === 0) rmdirSync(kindFolder);
  }
}

function removeTree(path: string): void {
  for (const entry of readdirSync(path)) {
    const child = join(path, entry);
    if (lstatSync(child).isDirectory()) removeTree(child);
    else unlinkSync(child);
  }
  rmdirSync(path);
}

/** Everything netbpf has installed on this machine, under one bpffs folder. */
export class StateStore {
  readonly root: string;

  private constructor(root: string) {
    this.root = expectString("open netbpf state", "root", root);
    if (!root.startsWith("/")) throw new UsageError("open netbpf state", `root must be an absolute path, got ${JSON.stringify(root)}`);
  }

  /** The default root: $NETBPF_STATE_DIR, else <bpffs>/netbpf. */
  static defaultRoot(): string {
    return process.env.NETBPF_STATE_DIR || join(bpffsPath(), "netbpf");
  }

  /** Opens the store (nothing is created until a component is). The root must be on bpffs. */
  static open(options: { root?: string } = {}): StateStore {
    expectObject("open netbpf state", "options", options);
    const root = options.root === undefined ? StateStore.defaultRoot() : expectString("open netbpf state", "options.root", options.root);
    if (!root.startsWith("/")) throw new UsageError("open netbpf state", `the state folder ${root} is not an absolute path`, "give a folder on bpffs, e.g. /sys/fs/bpf/netbpf");
    if (!isOnBpffs(root)) {
      throw new UsageError("open netbpf state", `${root} is not on a bpffs mount`, "set NETBPF_STATE_DIR to a folder under /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)");
    }
    return new StateStore(root);
  }

  component(kind: string, name: string): StateComponent {
    return new StateComponent(this.root, kind, name);
  }

  /** Components of one kind, or of every kind. */
  components(kind?: string): StateComponent[] {
    if (kind !== undefined) checkName("component kind", kind);
    if (!existsSync(this.root)) return [];
    const kinds = kind === undefined ? readdirSync(this.root).map(decodeName).sort() : [kind];
    return kinds.flatMap((k) => {
      const folder = join(this.root, encodeName(k));
      if (!existsSync(folder) || !lstatSync(folder).isDirectory()) return [];
      return readdirSync(folder).filter((n) => lstatSync(join(folder, n)).isDirectory()).map(decodeName).sort().map((n) => this.component(k, n));
    });
  }

  list(kind?: string): ComponentStatus[] {
    return this.components(kind).map((component) => component.status());
  }

  /** Removes every component (or those of one kind); returns what was removed. */
  reset(kind?: string): ComponentStatus[] {
    const removed: ComponentStatus[] = [];
    for (const component of this.components(kind)) {
      const status = component.status();
      using _lock = component.lock({ wait: true });
      component.remove();
      removed.push(status);
    }
    if (existsSync(this.root) && readdirSync(this.root).length === 0) rmdirSync(this.root);
    return removed;
  }
}
