import { NetbpfError } from "../sys/errors.js";

/** A malformed or unsupported ELF object: says what was wrong and where (section, byte offset). */
export class ElfFormatError extends NetbpfError {
  /** Name (or index) of the section the problem is in, when known. */
  readonly section: string | undefined;
  /** Byte offset in the file (or in the section, when `section` is set), when known. */
  readonly offset: number | undefined;

  constructor(
    message: string,
    where: { section?: string; offset?: number } = {},
    hint = "the object file is corrupt or was not produced by `clang -target bpf -c`",
    options?: ErrorOptions,
  ) {
    const place = [
      where.section !== undefined ? `section ${where.section}` : undefined,
      where.offset !== undefined ? `offset ${where.offset}` : undefined,
    ].filter((part) => part !== undefined);
    super("read ELF object", place.length > 0 ? `${message} (at ${place.join(", ")})` : message, hint, options);
    this.section = where.section;
    this.offset = where.offset;
  }
}
