/** netbpf/asm: the asm layer on its own (pure: loads without the FFI or libc). */
export * from "./opcodes.js";
export { encode, decode, validateInstructions, type Instruction } from "./instruction.js";
export { helperIds, helperIdOf, helperNameOf } from "./helpers.js";
export { Assembler, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, type Register, type AssembledProgram, type MapReference } from "./assembler.js";
export { assembleText } from "./text-assembler.js";
export { Interpreter, runProgram } from "./interpreter.js";
export { disassemble } from "./disassembler.js";
export { makeInstruction, makeWideInstruction, slotIndexes, instructionProblem } from "./instruction.js";
export type { HelperName } from "./helpers.js";
export type { Operand, AccessType, Condition, AtomicOperationName } from "./assembler.js";
export { disassembleInstruction, labelSymbols, type DisassemblyOptions } from "./disassembler.js";
export { assembleLlvm } from "./llvm-assembler.js";
export { ExecutionError, type Helper, type HelperContext, type InterpreterOptions, type InterpreterRunOptions, type RunResult, type ExecutionFailure } from "./interpreter.js";
export { xdpContext, socketBufferContext, packetHelpers, ethernetProtocol, type ContextModel, type PacketPointer } from "./contexts.js";
