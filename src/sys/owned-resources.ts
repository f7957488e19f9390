/** Something that frees what it holds when closed (a map, a program, a link, a descriptor). */
export interface Closable {
  close(): void;
}

/**
 * What an object created and must free: added in creation order, closed in
 * reverse (links before the programs they attach, programs before their
 * maps). One close that throws does not stop the others.
 */
export class OwnedResources {
  readonly #resources: Closable[] = [];

  /** Takes ownership of `resource` and returns it. */
  add<T extends Closable>(resource: T): T {
    this.#resources.push(resource);
    return resource;
  }

  /** Closes everything, last added first; returns the first error a close threw, if any. */
  closeAll(): unknown {
    let failure: unknown;
    for (const resource of this.#resources.splice(0).reverse()) {
      try {
        resource.close();
      } catch (error) {
        failure ??= error;
      }
    }
    return failure;
  }
}
