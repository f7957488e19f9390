/** netbpf/elf: the elf layer on its own (pure: loads without the FFI or libc). */
export { ElfFile, SectionType, SectionFlag, SymbolType, SymbolBinding, elfMachineBpf, type ElfSection, type ElfSymbol, type ElfRelocation } from "./elf-file.js";
export { ElfFormatError } from "./elf-format-error.js";
export { programKindOfSection, knownSectionNames, type SectionProgramKind, type AttachTarget } from "./section-names.js";
export { loadCollectionSpec, type CollectionSpec, type CollectionProgramSpec, type CollectionMapSpec, type ProgramMapReference, type MapPinning, type ProgramLineInfo } from "./collection-spec.js";
export { DataSection, type DataVariable, type DataValue } from "./data-section.js";
export { dataSectionLayout } from "./data-section.js";
