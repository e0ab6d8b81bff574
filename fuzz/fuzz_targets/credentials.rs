//! Fuzz target `credentials`: see `cmsi_mail_gateway::fuzz::check_credentials` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cmsi_mail_gateway::fuzz::check_credentials(data);
});
