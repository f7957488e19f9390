import { UsageError } from "../sys/errors.js";

/** A span of the filter text: character offsets, end exclusive. */
export interface SourceSpan {
  start: number;
  end: number;
}

/**
 * An invalid filter expression: carries the expression, where the problem is
 * (character offsets) and what was expected there.
 */
export class FilterSyntaxError extends UsageError {
  readonly expression: string;
  readonly position: number;
  readonly end: number;
  readonly detail: string;
  readonly expected: string | undefined;

  constructor(expression: string, span: SourceSpan, detail: string, expected?: string) {
    const atEnd = span.start >= expression.length;
    const where = atEnd ? (detail.includes("end of expression") ? "" : " at end of expression") : ` at offset ${span.start}`;
    const message = expected ? `${detail}${where}; expected ${expected}` : `${detail}${where}`;
    super("compile filter", message, "see pcap-filter(7) for the filter syntax");
    // The caret rendering closes the message (the hint stays available as a property).
    this.message = `compile filter: ${message}\n${renderCaret(expression, span)}`;
    this.expression = expression;
    this.position = span.start;
    this.end = Math.max(span.end, span.start + 1);
    this.detail = detail;
    this.expected = expected;
  }

  /** The expression with a caret line under the offending part. */
  get caret(): string {
    return renderCaret(this.expression, { start: this.position, end: this.end });
  }
}

export function renderCaret(expression: string, span: SourceSpan): string {
  const line = expression.replace(/[\t\n\r]/g, " ");
  const start = Math.min(span.start, line.length);
  const width = Math.max(1, Math.min(span.end, line.length + 1) - start);
  return `  ${line}\n  ${" ".repeat(start)}${"^".repeat(width)}`;
}
