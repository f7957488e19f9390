/** netbpf/pcap: the pcap layer on its own (pure: loads without the FFI or libc). */
export * from "./capture-format-error.js";
export * from "./capture-record.js";
export * from "./link-type.js";
export * from "./capture-sink.js";
export { captureFormatFromPath, createCaptureWriter, detectCaptureFormat, interfaceOfPacket, openCapture,
  readCapture, readCaptureFile, readCapturePackets, readCaptureRecords, CaptureReader,
  type CaptureContents, type CaptureWriterOptions, type OpenCaptureOptions } from "./capture-file.js";
export type { CaptureWriter } from "./capture-writer.js";
export { PcapWriter, encodePcapHeader, type PcapWriterOptions } from "./pcap-writer.js";
export { PcapngWriter, encodePacketFlags, type PcapngWriterOptions, type InterfaceToWrite,
  type SectionToWrite, type NameResolutionToWrite, type InterfaceStatisticsToWrite } from "./pcapng-writer.js";
export { NETBPF_PRIVATE_ENTERPRISE_NUMBER } from "./pcapng-options.js";
