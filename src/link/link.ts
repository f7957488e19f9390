import { unlinkSync } from "node:fs";
import { expectProgram, type Program } from "../core/program.js";
import { expectPinPath, FdOwner } from "../core/fd-owner.js";
import { getFdById, linkDetach, linkUpdate, objectGet } from "../sys/bpf.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { FileDescriptor } from "../sys/file-descriptor.js";
import { linkInfo, type LinkInfo } from "../sys/object-info.js";

import { OwnedResources } from "../sys/owned-resources.js";
import { expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
/** Something closed along with a link (a perf event, a cgroup directory, …). */
export type { Closable } from "../sys/owned-resources.js";

/**
 * An attachment of a program to a hook. Most are kernel BPF links: the link
 * owns a file descriptor, and closing the last descriptor detaches the
 * program unless the link is pinned in bpffs. Older mechanisms (a netlink tc
 * filter, a socket's SO_ATTACH_BPF, PERF_EVENT_IOC_SET_BPF) have no kernel
 * link; for those, close() performs the explicit detach.
 */
export class Link extends FdOwner {
  #fd: FileDescriptor | undefined;
  #closed = false;
  #pinnedPath: string | undefined;
  /** Closed after the link itself. */
  protected readonly owned = new OwnedResources();
  /** What was attached where, for messages ("tcx ingress on veth0"). */
  readonly description: string;

  protected constructor(fd: number | undefined, description: string) {
    if (fd !== undefined) expectInteger("construct Link", "fd", fd, 0);
    expectString("construct Link", "description", description);
    super();
    this.#fd = fd === undefined ? undefined : new FileDescriptor(fd);
    this.description = description;
  }

  /** Takes ownership of an existing BPF link file descriptor. */
  static fromFd(fd: number, description = "bpf link"): Link {
    expectInteger("open link", "fd", fd, 0);
    return new Link(fd, description);
  }

  /** Opens a link pinned in bpffs; closing it leaves the pinned link attached. */
  static openPinned(path: string): Link {
    return new Link(objectGet(path), `pinned link ${path}`);
  }

  /** Opens a link by its kernel id. */
  static fromId(id: number): Link {
    const fd = getFdById("link", id);
    if (fd === undefined) throw new NetbpfError("open link", `no link with id ${id}`, "list links with `bpftool link list`");
    return new Link(fd, `link ${id}`);
  }

  /** True for a kernel BPF link; false for an older attachment that has no link object. */
  get isBpfLink(): boolean {
    return this.#fd !== undefined;
  }

  /** The BPF link's file descriptor. */
  get fd(): FileDescriptor {
    return this.#requireFd("use link file descriptor");
  }

  override get closed(): boolean {
    return this.#closed;
  }

  /** Where this object pinned the link, if it did. */
  get pinnedPath(): string | undefined {
    return this.#pinnedPath;
  }

  #requireFd(operation: string): FileDescriptor {
    if (this.#closed) throw new UsageError(operation, `${this.description} is closed`, "do not use a link after close()");
    if (!this.#fd) {
      throw new UsageError(operation, `${this.description} is not a BPF link (it was attached with an older mechanism)`,
        "only BPF links can be pinned, queried, updated and detached this way; close() detaches this one");
    }
    return this.#fd;
  }

  info(): LinkInfo {
    return linkInfo(this.#requireFd("link info").value);
  }

  get id(): number {
    return this.info().id;
  }

  /**
   * Pins the link in bpffs: the program stays attached after this process
   * closes the link or exits, until the pin is removed (unpin(), or unlink
   * the file) and no descriptor is left.
   */
  override pin(path: string): void {
    expectPinPath(`pin ${this.description}`, path);
    this.#requireFd(`pin ${this.description}`);
    super.pin(path);
    this.#pinnedPath = path;
  }

  /** Removes the pin this object made. */
  unpin(): void {
    if (!this.#pinnedPath) throw new UsageError(`unpin ${this.description}`, "this link object did not pin it", "remove another pin by deleting its file");
    unlinkSync(this.#pinnedPath);
    this.#pinnedPath = undefined;
  }

  /** Replaces the attached program without a moment with no program (BPF_LINK_UPDATE). */
  update(program: Program, options: { expected?: Program } = {}): void {
    const operation = `update ${this.description}`;
    expectProgram(operation, program);
    expectObject(operation, "options", options, true);
    if (options.expected !== undefined) expectProgram(operation, options.expected, "options.expected");
    linkUpdate(this.#requireFd(`update ${this.description}`).value, program.fd.value, options.expected?.fd.value ?? 0);
  }

  /**
   * Detaches the program now, even when the link is pinned or other
   * descriptors refer to it (BPF_LINK_DETACH). The object stays open until
   * close().
   */
  detach(): void {
    if (this.#fd) {
      linkDetach(this.#requireFd(`detach ${this.description}`).value);
    } else if (!this.#closed) {
      this.close();
    }
  }

  /** Detaches an attachment that has no kernel link; overridden by those. */
  protected release(): void {}

  /** Detaches (unless pinned) and frees everything the link holds. Safe to call twice. */
  override close(): void {
    if (this.#closed) return;
    this.#closed = true;
    let failure: unknown;
    try {
      if (this.#fd) this.#fd.close();
      else this.release();
    } catch (error) {
      failure = error;
    }
    failure ??= this.owned.closeAll();
    if (failure) throw failure;
  }
}
