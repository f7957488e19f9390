/*
 * A fast packet source for the firewall bench: sends one prebuilt Ethernet
 * frame (UDP, given source and destination addresses) over an AF_PACKET
 * socket bound to an interface, 64 at a time with sendmmsg and
 * PACKET_QDISC_BYPASS, for a given number of seconds. No IP stack, routing
 * or qdisc on the sending side, so the receiver's work dominates the CPU
 * the bench measures. Prints the number of frames sent.
 *
 * Usage: packet-flood IFACE SRC_IPV4 DST_IPV4 SECONDS
 * (the destination MAC is the broadcast address: a veth peer accepts it.)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint16_t checksum(const void *data, size_t length) {
  const uint8_t *bytes = data;
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (length & 1) sum += bytes[length - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(~sum & 0xffff);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s IFACE SRC_IPV4 DST_IPV4 SECONDS\n", argv[0]);
    return 2;
  }
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  struct sockaddr_ll address = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(argv[1]), .sll_halen = ETH_ALEN };
  if (address.sll_ifindex == 0) { perror("if_nametoindex"); return 1; }
  memset(address.sll_addr, 0xff, ETH_ALEN);
  if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) { perror("bind"); return 1; }
  struct ifreq request = { 0 };
  strncpy(request.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFHWADDR, &request) < 0) { perror("SIOCGIFHWADDR"); return 1; }

  uint8_t frame[60] = { 0 };
  struct ether_header *ethernet = (struct ether_header *)frame;
  memset(ethernet->ether_dhost, 0xff, ETH_ALEN);
  memcpy(ethernet->ether_shost, request.ifr_hwaddr.sa_data, ETH_ALEN);
  ethernet->ether_type = htons(ETHERTYPE_IP);
  struct iphdr *ip = (struct iphdr *)(frame + sizeof *ethernet);
  ip->version = 4; ip->ihl = 5; ip->ttl = 64; ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(sizeof frame - sizeof *ethernet);
  if (inet_pton(AF_INET, argv[2], &ip->saddr) != 1 || inet_pton(AF_INET, argv[3], &ip->daddr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
  ip->check = checksum(ip, sizeof *ip);
  struct udphdr *udp = (struct udphdr *)(ip + 1);
  udp->source = htons(40000); udp->dest = htons(9);
  udp->len = htons(sizeof frame - sizeof *ethernet - sizeof *ip);

  enum { batch = 64 };
  struct iovec vectors[batch];
  struct mmsghdr messages[batch];
  memset(messages, 0, sizeof messages);
  for (int i = 0; i < batch; i++) {
    vectors[i] = (struct iovec){ frame, sizeof frame };
    messages[i].msg_hdr.msg_iov = &vectors[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  double seconds = atof(argv[4]);
  unsigned long long sent = 0;
  for (unsigned long iteration = 0;; iteration++) {
    int n = sendmmsg(fd, messages, batch, 0);
    if (n > 0) sent += (unsigned long long)n;
    if ((iteration & 15) == 0) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 >= seconds) break;
    }
  }
  printf("%llu\n", sent);
  return 0;
}
