import { test } from "node:test";
import assert from "node:assert/strict";
import { OwnedResources } from "../../src/sys/owned-resources.js";

test("owned resources close last first, all of them even when one throws, once", () => {
  const closed: string[] = [];
  const owned = new OwnedResources();
  const map = owned.add({ close: () => closed.push("map") });
  owned.add({ close: () => { closed.push("program"); throw new Error("program busy"); } });
  owned.add({ close: () => { closed.push("link"); throw new Error("link gone"); } });
  assert.equal(typeof map.close, "function", "add returns what it was given");
  const failure = owned.closeAll();
  assert.deepEqual(closed, ["link", "program", "map"]);
  assert.equal((failure as Error).message, "link gone", "the first failure is reported");
  assert.equal(owned.closeAll(), undefined);
  assert.deepEqual(closed, ["link", "program", "map"], "nothing is closed twice");
});
