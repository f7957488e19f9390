import { UsageError } from "../sys/errors.js";

/**
 * Runs a command action so that bad input (a UsageError) ends the process
 * with one line and exit status 2; other errors go to the common error path
 * (exit 1).
 */
export function exitTwoOnUsageError<A extends unknown[]>(action: (...args: A) => void | Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (error) {
      if (error instanceof UsageError) {
        process.stderr.write(`netbpf: ${error.message.split("\n")[0]}\n`);
        process.exit(2);
      }
      throw error;
    }
  };
}
