//! Fuzz target `address_list`: see `cmsi_mail_testkit::fuzz::check_address_list` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cmsi_mail_testkit::fuzz::check_address_list(data);
});
