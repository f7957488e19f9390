/**
 * A state component made of one generated program on one hook of one
 * interface, its maps, and a JSON config in the manifest — the shape of the
 * rate limiter and the marker. A change computes the new config, loads the
 * program generated for it (a verifier rejection changes nothing), swaps it
 * in through the pinned link, and writes the manifest; the first change
 * creates the maps and attaches; a failed first change removes everything.
 */
import { existsSync } from "node:fs";
import type { AssembledProgram } from "../asm/assembler.js";
import { BpfMap, type MapSpec } from "../core/map.js";
import { expectInstance, expectObject, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { interfaceIndex } from "../sys/socket.js";
import { StateStore, type StateAttachment, type StateComponent } from "../state/state-store.js";
import { attachAndPin, loadGenerated, replacePinnedProgram, type Hook } from "./hook-attachment.js";

export interface HookedComponentDefinition<Config> {
  kind: string;
  hook: Hook;
  programName: string;
  /** Maps by pin name (also the name the program refers to them by). */
  maps: Record<string, MapSpec<any, any>>;
  initialConfig(interfaceName: string): Config;
  generate(config: Config): AssembledProgram;
  summary(config: Config): string;
}

const linkPin = "link";

/** The store of `options` (checked: an object whose `store`, when given, is a StateStore), or the default one. */
export function storeOption(operation: string, options: { store?: StateStore }): StateStore {
  expectObject(operation, "options", options);
  if (options.store === undefined) return StateStore.open();
  return expectInstance(operation, "options.store", options.store, StateStore, "a StateStore (from StateStore.open)");
}

/** The component of `definition` on an existing interface, its arguments checked before the store is opened. */
export function openHookedComponent<Config>(definition: HookedComponentDefinition<Config>, interfaceName: string, options: { store?: StateStore }): HookedComponent<Config> {
  const operation = `open ${definition.kind}`;
  interfaceIndex(expectString(operation, "interfaceName", interfaceName), operation);
  return new HookedComponent(definition, interfaceName, storeOption(operation, options), { checkInterface: false });
}

export class HookedComponent<Config> {
  readonly interfaceName: string;
  readonly component: StateComponent;
  readonly #definition: HookedComponentDefinition<Config>;

  constructor(definition: HookedComponentDefinition<Config>, interfaceName: string, store: StateStore, options: { checkInterface?: boolean } = {}) {
    if (options.checkInterface ?? true) interfaceIndex(interfaceName, `open ${definition.kind}`);
    this.#definition = definition;
    this.interfaceName = interfaceName;
    this.component = store.component(definition.kind, interfaceName);
  }

  config(): Config | undefined {
    if (!this.component.exists()) return undefined;
    return this.component.readManifest<Config>()?.config;
  }

  attachments(): StateAttachment[] {
    return this.component.readManifest()?.attachments ?? [];
  }

  /** Opens one of the component's maps for reading (close it after use). */
  openMap<K, V>(name: string): BpfMap<K, V> {
    const spec = this.#definition.maps[name];
    if (!spec) throw new UsageError(`open ${this.#definition.kind} map`, `no map ${name}`);
    return BpfMap.openPinned(this.component.pinPath(name), { key: spec.key, value: spec.value });
  }

  /**
   * Applies a change: `change` gets the current config (the initial one when
   * nothing is installed) and the open maps, and returns the new config and
   * a result. `afterProgram` runs once the new program is in place.
   */
  change<T>(change: (config: Config, maps: Record<string, BpfMap<any, any>>) => { config: Config; result: T; afterProgram?: () => void },
    options: { mustExist?: boolean } = {}): T {
    const definition = this.#definition;
    const existedBefore = this.component.exists();
    const lock = this.component.lock({ wait: true });
    const maps: Record<string, BpfMap<any, any>> = {};
    let fresh = false;
    try {
      const manifest = this.component.readManifest<Config>();
      if (!manifest) {
        if (options.mustExist) throw new UsageError(`change ${definition.kind} on ${this.interfaceName}`, `no ${definition.kind} is installed there`);
        fresh = true;
        for (const [name, spec] of Object.entries(definition.maps)) maps[name] = BpfMap.create(spec);
      } else {
        for (const [name, spec] of Object.entries(definition.maps)) {
          if (existsSync(this.component.pinPath(name))) {
            maps[name] = this.openMap(name);
          } else {
            // A map added to the definition after this component was installed.
            maps[name] = BpfMap.create(spec);
            this.component.pin(name, maps[name]!);
          }
        }
      }
      const current = manifest?.config ?? definition.initialConfig(this.interfaceName);
      const outcome = change(current, maps);
      const program = loadGenerated(definition.programName, definition.hook, definition.generate(outcome.config), maps);
      try {
        let attachments: StateAttachment[];
        if (fresh) {
          for (const [name, map] of Object.entries(maps)) this.component.pin(name, map);
          attachments = [attachAndPin(this.component, linkPin, program, definition.hook, this.interfaceName)];
        } else {
          replacePinnedProgram(this.component, linkPin, program);
          attachments = manifest!.attachments;
        }
        outcome.afterProgram?.();
        this.component.writeManifest<Config>({ summary: definition.summary(outcome.config), attachments, config: outcome.config });
      } finally {
        program.close();
      }
      return outcome.result;
    } catch (error) {
      if (fresh || !existedBefore) {
        try {
          this.component.remove();
        } catch {
          // Left for `netbpf reset`.
        }
      }
      throw error;
    } finally {
      for (const map of Object.values(maps)) map.close();
      lock.release();
    }
  }

  uninstall(): void {
    using _lock = this.component.lock({ wait: true });
    this.component.remove();
  }
}
