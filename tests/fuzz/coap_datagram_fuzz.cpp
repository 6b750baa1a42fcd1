// Fuzz target: CoAP datagrams as the trigger meets them (src/triggers/coap_datagram). tern
// decides which datagrams libcoap may read: every datagram it calls well-formed must parse
// in libcoap (which then reads its options as the request handler does) unless libcoap
// refuses an option's length, a Reset answers only a Confirmable message with its message
// ID, and nothing longer than the MTU passes.

#include <coap3/coap.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.h"
#include "triggers/coap_datagram.h"

using namespace tern::triggers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool started = [] {
    coap_startup();
    coap_set_log_level(LOG_EMERG);
    return true;
  }();
  (void)started;
  std::span<const uint8_t> d(data, size);
  DatagramVerdict verdict = checkDatagram(d);
  if (verdict == DatagramVerdict::kReset) {
    FUZZ_CHECK(size >= 4 && ((data[0] >> 4) & 3) == 0);
    auto rst = resetFor(d);
    FUZZ_CHECK(rst[0] == 0x70 && rst[1] == 0 && rst[2] == data[2] && rst[3] == data[3]);
    return 0;
  }
  if (verdict == DatagramVerdict::kIgnore) return 0;
  FUZZ_CHECK(size >= 4 && size <= kMaxCoapDatagram);
  coap_pdu_t* pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_EMPTY_CODE, 0, kMaxCoapDatagram);
  FUZZ_CHECK(pdu != nullptr);
  if (coap_pdu_parse(COAP_PROTO_UDP, data, size, pdu) != 1) {
    // libcoap still refuses options whose length its definition does not allow (RFC 7252
    // 5.10), and logs them (docs/coap.md, "Retransmissions and bad datagrams"); anything
    // else tern lets through it must parse. The options start after the token.
    size_t optionsAt = 4 + (data[0] & 0x0f);
    FUZZ_CHECK(data[1] != 0 && optionsAt < size && data[optionsAt] != 0xff);
    coap_delete_pdu(pdu);
    return 0;
  }
  coap_opt_iterator_t it;
  if (coap_option_iterator_init(pdu, &it, COAP_OPT_ALL)) {
    while (coap_opt_t* opt = coap_option_next(&it)) {
      (void)coap_opt_value(opt);
      (void)coap_opt_length(opt);
    }
  }
  size_t length = 0;
  const uint8_t* payload = nullptr;
  (void)coap_get_data(pdu, &length, &payload);
  coap_delete_pdu(pdu);
  return 0;
}
