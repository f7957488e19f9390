import { NetbpfError } from "../sys/errors.js";

/** Malformed BTF or BTF.ext input: says what was wrong and where (byte offset or type id). */
export class BtfFormatError extends NetbpfError {
  /** Byte offset in the blob where the problem was found, when known. */
  readonly offset: number | undefined;
  /** Type id the problem belongs to, when known. */
  readonly typeId: number | undefined;

  constructor(
    message: string,
    where: { offset?: number; typeId?: number } = {},
    operation = "parse BTF",
    hint = "the BTF data is corrupt or was produced by an unsupported tool version",
  ) {
    const place = [
      where.typeId !== undefined ? `type [${where.typeId}]` : undefined,
      where.offset !== undefined ? `byte offset ${where.offset}` : undefined,
    ].filter((part) => part !== undefined);
    super(operation, place.length > 0 ? `${message} (at ${place.join(", ")})` : message, hint);
    this.offset = where.offset;
    this.typeId = where.typeId;
  }
}
