//! Fuzz target `request`: see `cmsi_mail_testkit::fuzz::check_request` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cmsi_mail_testkit::fuzz::check_request(data);
});
