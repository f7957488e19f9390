import { test } from "node:test";
import assert from "node:assert/strict";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { FilterSyntaxError } from "../../src/filter/filter-syntax-error.js";

/** The error's caret line, checked to sit under the last `offending` in the expression. */
function assertCaretUnder(expression: string, offending: string, pattern: RegExp): void {
  let error: unknown;
  try {
    compileFilter(expression, { linkType: 1 });
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof FilterSyntaxError, `${expression}: ${String(error)}`);
  assert.match(error.message, pattern, expression);
  const [, line, carets] = error.caret.split("\n").length === 2 ? ["", ...error.caret.split("\n")] : [];
  assert.equal(line, `  ${expression}`);
  const start = expression.lastIndexOf(offending);
  assert.ok(start >= 0);
  // The carets cover exactly the offending text (in UTF-16 units, as the terminal shows a BMP character or a surrogate pair at its start).
  assert.equal(carets, `  ${" ".repeat(start)}${"^".repeat(offending.length)}`, `${expression}\n${error.caret}`);
  assert.equal(error.position, start);
}

test("filter error carets point at the offending characters", () => {
  assertCaretUnder("tcp port 99999", "99999", /illegal port number 99999/);
  assertCaretUnder("tcp and and udp", "and", /unexpected keyword 'and'/);
  // A misspelt keyword: the caret is under the word, not under what follows it.
  assertCaretUnder("tcp and prt 80", "prt", /unknown keyword 'prt' at offset 8; expected 'port'/);
  assertCaretUnder("src host 1.2.3.4 and dst hst 5.6.7.8", "hst", /unknown keyword 'hst'.*expected 'dst' or 'host'/);
  // A character outside the BMP is one character, shown whole.
  assertCaretUnder("port 80 and \u{1F600} x", "\u{1F600}", /illegal character "\u{1F600}" at offset 12/u);
  assertCaretUnder("port 80 and é", "é", /illegal character "é"/);
  assertCaretUnder("ip[2]/0 > 1", "0", /division by zero/);
});
