//! Fuzz target `send_msg`: see `cmsi_mail_gateway::fuzz::check_send_msg` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cmsi_mail_gateway::fuzz::check_send_msg(data);
});
