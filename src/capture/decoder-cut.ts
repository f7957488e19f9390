/**
 * Set by an application decoder when the message was cut where tcpdump
 * unwinds its printer (a failed GET_… read): tcpdump then knows no header
 * length and its -x / -X dump starts at the frame's first byte instead of
 * the network header. The summarizer clears it for each packet.
 */
export const decoderCut = { wholeFrame: false };
