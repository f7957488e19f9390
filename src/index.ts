export * from "./sys/errors.js";
